"""The mouth-shape rules of ``nodes/lipsync/shapes.py`` on hand-made phone sequences (no audio, no decoder)."""
from __future__ import annotations

import random

import pytest

from animstudio.nodes.lipsync.cues import ALL_SHAPES, BASIC_SHAPES, MouthCue, restrict_shapes
from animstudio.nodes.lipsync.shapes import PHONE_SHAPES, SILENCES, PhoneSegment, phones_to_cues

LEAD = 0.5  # silence before the first phone


def spoken(*spec: tuple[str, float], start: float = LEAD) -> list[PhoneSegment]:
    """Back-to-back phones from ``(phone, seconds)`` pairs, starting at ``start``."""
    out, at = [], start
    for phone, seconds in spec:
        out.append(PhoneSegment(phone, round(at, 6), round(at + seconds, 6)))
        at += seconds
    return out


def cues_for(phones: list[PhoneSegment], tail: float = 0.5) -> list[MouthCue]:
    return phones_to_cues(phones, round(phones[-1].end + tail, 6))


def shape_at(cues: list[MouthCue], t: float) -> str:
    return next(c.shape for c in cues if c.start <= t < c.end)


def starts_of(cues: list[MouthCue], shape: str) -> list[float]:
    return [c.start for c in cues if c.shape == shape]


def assert_well_formed(cues: list[MouthCue], duration: float) -> None:
    assert cues[0].start == 0.0 and cues[-1].end == pytest.approx(duration, abs=1e-9)
    for before, after in zip(cues, cues[1:]):
        assert before.end == after.start and before.shape != after.shape
    for cue in cues:
        assert cue.shape in ALL_SHAPES and cue.end > cue.start
    for cue in cues[:-1]:  # on the centisecond grid (only the last end is the audio's own duration)
        assert cue.end * 100 == pytest.approx(round(cue.end * 100), abs=1e-6)
    for cue in cues[1:-1]:
        assert cue.seconds >= 0.0399


# ------------------------------------------------------------------------------------- plosives

@pytest.mark.parametrize("plosive", ["P", "B"])
def test_lips_close_before_a_plosive_release(plosive):
    phones = spoken(("AA", 0.2), (plosive, 0.08), ("AA", 0.2))
    release = phones[1].start
    cues = cues_for(phones)
    closed = [c for c in cues if c.shape == "A"]
    assert len(closed) == 1
    assert closed[0].start < release - 0.03  # shut well before the burst is heard ...
    assert closed[0].end >= release - 1e-9   # ... and until it
    assert shape_at(cues, release + 0.1) == "D"  # open again for the vowel


def test_closure_after_silence_takes_time_from_the_silence():
    phones = spoken(("B", 0.08), ("AA", 0.2))
    cues = cues_for(phones)
    assert shape_at(cues, 0.1) == "X"
    assert shape_at(cues, LEAD - 0.05) == "A"  # the lips close before the first sound
    assert shape_at(cues, phones[1].start + 0.1) == "D"


def test_m_is_closed_throughout():
    phones = spoken(("AA", 0.2), ("M", 0.1), ("AA", 0.2))
    cues = cues_for(phones)
    assert shape_at(cues, phones[1].start + 0.05) == "A"


# ------------------------------------------------------------------------------------- pauses

def test_long_silence_rests_and_so_do_the_edges():
    phones = spoken(("AA", 0.2), ("SIL", 0.6), ("AA", 0.2))
    cues = cues_for(phones)
    assert shape_at(cues, 0.1) == "X" and shape_at(cues, phones[-1].end + 0.3) == "X"
    for t in (0.2, 0.4, 0.5):
        assert shape_at(cues, phones[1].start + t) == "X"


def test_short_pause_inside_speech_holds_the_shape():
    phones = spoken(("AA", 0.2), ("SIL", 0.08), ("IY", 0.2))
    cues = cues_for(phones)
    assert shape_at(cues, phones[1].start + 0.04) == "D"


def test_middling_pause_relaxes_the_shape():
    phones = spoken(("AA", 0.2), ("SIL", 0.2), ("IY", 0.2))
    cues = cues_for(phones)
    assert shape_at(cues, phones[1].start + 0.1) == "C"  # wide open D relaxes to C, not to rest


def test_middling_pause_relaxes_further_when_the_next_shape_would_hide_it():
    phones = spoken(("AA", 0.2), ("SIL", 0.2), ("EH", 0.2))  # EH is C: relaxing D to C would hide the pause
    cues = cues_for(phones)
    assert shape_at(cues, phones[1].start + 0.1) == "B"
    assert shape_at(cues, phones[2].start + 0.1) == "C"


# ------------------------------------------------------------------------------------- vowels

def test_mouth_rounds_before_a_rounded_vowel():
    phones = spoken(("S", 0.1), ("UW", 0.2))
    cues = cues_for(phones)
    assert shape_at(cues, phones[1].start + 0.1) == "F"
    assert min(starts_of(cues, "F")) < phones[1].start  # F shows before the UW sounds
    assert shape_at(cues, phones[0].start + 0.05) == "F"
    # the same S before a spread vowel is not rounded: the F above is anticipation
    plain = cues_for(spoken(("S", 0.1), ("IY", 0.2)))
    assert "F" not in {c.shape for c in plain}


def test_anticipation_reaches_back_at_most_a_fifth_of_a_second():
    # the S starts 0.15 s before the UW and rounds; the T before it starts 0.25 s before and does not
    phones = spoken(("IY", 0.2), ("T", 0.1), ("S", 0.15), ("UW", 0.2))
    cues = cues_for(phones)
    assert min(starts_of(cues, "F")) == pytest.approx(phones[2].start)
    assert shape_at(cues, phones[1].start + 0.05) == "B"
    # a long consonant starting more than 0.2 s before the vowel is left as it is
    slow = spoken(("IY", 0.2), ("S", 0.4), ("UW", 0.2))
    assert min(starts_of(cues_for(slow), "F")) == pytest.approx(slow[2].start)


def test_long_l_shows_the_tongue_short_l_follows_its_neighbours():
    long_l = spoken(("IY", 0.15), ("L", 0.25), ("IY", 0.15))
    assert shape_at(cues_for(long_l), long_l[1].start + 0.12) == "H"
    short_l = spoken(("IY", 0.15), ("L", 0.08), ("IY", 0.15))
    assert {c.shape for c in cues_for(short_l)} == {"X", "B"}


def test_vowel_length_changes_the_opening():
    short_ah = spoken(("T", 0.1), ("AH", 0.05), ("T", 0.1))
    long_ah = spoken(("T", 0.1), ("AH", 0.3), ("T", 0.1))
    assert shape_at(cues_for(short_ah), short_ah[1].start + 0.02) in ("B", "C")
    assert shape_at(cues_for(long_ah), long_ah[1].start + 0.15) == "D"


# ------------------------------------------------------------------------------------- form

def test_no_speech_is_one_rest_cue():
    assert phones_to_cues([], 1.5) == [MouthCue(0.0, 1.5, "X")]
    assert phones_to_cues([PhoneSegment("SIL", 0.0, 0.7), PhoneSegment("+NSN+", 0.7, 1.0)], 1.2) == \
        [MouthCue(0.0, 1.2, "X")]


def test_random_phone_sequences_give_well_formed_deterministic_cues():
    phones = sorted(PHONE_SHAPES) + ["SIL", "+NSN+", "AH1", "XX"]
    rng = random.Random(1234)
    for _ in range(300):
        at, segments = rng.choice([0.0, 0.003, 0.3]), []
        for _ in range(rng.randint(1, 25)):
            seconds = rng.choice([0.005, 0.02, 0.04, 0.07, 0.12, 0.2, 0.3, 0.6]) * rng.uniform(0.6, 1.4)
            start = max(0.0, at + rng.choice([0.0, 0.0, -0.01, 0.02, 0.25]))  # overlaps and gaps too
            segments.append(PhoneSegment(rng.choice(phones), start, start + seconds))
            at = start + seconds
        duration = max(0.05, round(at + rng.choice([0.0, 0.004, 0.4, -0.1]), rng.choice([2, 3])))
        cues = phones_to_cues(segments, duration)
        assert_well_formed(cues, duration)
        assert phones_to_cues(list(reversed(segments)), duration) == cues  # order of input does not matter
        assert phones_to_cues(segments, duration) == cues


def test_a_sentence_moves_through_many_shapes_and_basic_mode_stays_basic():
    # "the quick brown fox": DH AH K W IH K B R AW N F AA K S
    phones = spoken(("DH", 0.05), ("AH", 0.06), ("K", 0.07), ("W", 0.06), ("IH", 0.08), ("K", 0.07),
                    ("B", 0.06), ("R", 0.06), ("AW", 0.22), ("N", 0.07), ("F", 0.09), ("AA", 0.18),
                    ("K", 0.07), ("S", 0.12))
    duration = round(phones[-1].end + 0.4, 6)
    cues = phones_to_cues(phones, duration)
    assert_well_formed(cues, duration)
    speaking = {c.shape for c in cues} - {"X"}
    assert len(speaking) >= 5 and {"A", "F", "G"} <= speaking
    basic = restrict_shapes(cues, "")
    assert {c.shape for c in basic} <= set(BASIC_SHAPES)


def test_silence_markers_are_public():
    assert {"SIL", "+NSN+", "<sil>"} <= SILENCES
