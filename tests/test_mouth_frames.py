"""Mouth shapes per frame at any frame rate: each frame shows the cue covering most of it, every closure
(p, b, m) shows even when shorter than a frame, the frame count is round(duration × fps) and nothing
drifts over ten minutes. Checked on rendered pixels, on the film compositor and on the DAT export."""
from __future__ import annotations

import bisect
import itertools
from fractions import Fraction

import numpy as np
import pytest

from animstudio.nodes.audio.clip import AudioClip
from animstudio.nodes.film.clips import frame_count_for, still_clip
from animstudio.nodes.film.dialogue import Dialogue, SpokenLine
from animstudio.nodes.lipsync.cues import MouthCue, MouthCues, frame_rate, frame_shapes
from animstudio.nodes.lipsync.formats import to_dat
from animstudio.nodes.lipsync.mouths import MouthBox, MouthRig, builtin_mouth_set, frame_count, talking_frames

RATES = [12, 24, 25, 29.97, 60]
EXACT = {12: Fraction(12), 24: Fraction(24), 25: Fraction(25), 29.97: Fraction(30000, 1001), 60: Fraction(60)}
# one stretch of speech, in milliseconds: closures of 30-50 ms (shorter than a frame at 12 fps) and one
# of 120 ms, each at least 250 ms of other shapes from the next, so every closure has frames of its own
PATTERN_MS = [("X", 200), ("A", 30), ("D", 250), ("A", 50), ("E", 300), ("B", 60), ("A", 40), ("C", 260),
              ("A", 120), ("F", 270), ("G", 70), ("H", 90)]
BASE = np.full((28, 28, 3), 90, np.uint8)
BOX = MouthBox(2, 4, 24, 20)
MOUTHS = builtin_mouth_set(48)  # at some sizes (16, 20, 32) the drawn B and G come out alike


def cues_from_ms(spans_ms: list[tuple[str, int]], repeats: int = 1) -> tuple[MouthCues, list[tuple[Fraction, Fraction, str]]]:
    """Contiguous cues from (shape, milliseconds) spans, and the same spans as exact fractions of a second."""
    exact, at = [], 0
    for shape, ms in spans_ms * repeats:
        exact.append((Fraction(at, 1000), Fraction(at + ms, 1000), shape))
        at += ms
    cues = MouthCues(tuple(MouthCue(float(a), float(b), s) for a, b, s in exact), at / 1000)
    return cues, exact


def majority(exact: list[tuple[Fraction, Fraction, str]], rate: Fraction, count: int) -> list[int]:
    """The index of the cue covering most of each frame, in exact arithmetic (ties to the later cue)."""
    starts = [a for a, _, _ in exact]
    out = []
    for n in range(count):
        a, b = n / rate, (n + 1) / rate
        first = max(0, bisect.bisect_right(starts, a) - 1)
        last = max(0, bisect.bisect_left(starts, b) - 1)
        best, most = first, Fraction(-1)
        for i in range(first, last + 1):
            cover = min(b, exact[i][1]) - max(a, exact[i][0])
            if cover >= most:
                best, most = i, cover
        out.append(best)
    return out


def near(cue: tuple[Fraction, Fraction, str], rate: Fraction, count: int) -> range:
    """The frames a cue overlaps, and one either side."""
    first = int(cue[0] * rate)
    last = -int(-cue[1] * rate) - 1
    return range(max(0, first - 1), min(count, last + 2))


def check_frames(shapes: list[str], exact: list[tuple[Fraction, Fraction, str]], rate: Fraction) -> None:
    """Every frame shows its majority cue, except frames given to a closure that won none; every closure
    shows next to where it is; and each closure of the pattern is its own run of closed frames."""
    count = len(shapes)
    owners = majority(exact, rate, count)
    won = set(owners)
    frameless = [i for i, cue in enumerate(exact) if cue[2] == "A" and i not in won]
    allowed = set(itertools.chain.from_iterable(near(exact[i], rate, count) for i in frameless))
    for n, (shape, owner) in enumerate(zip(shapes, owners)):
        if shape != exact[owner][2]:
            assert shape == "A" and n in allowed, (n, shape, exact[owner])
    for cue in exact:
        if cue[2] == "A" and cue[0] * rate < count:
            assert "A" in [shapes[n] for n in near(cue, rate, count)], (cue, float(cue[0] * rate))
    runs = sum(1 for shape, _ in itertools.groupby(shapes) if shape == "A")
    assert runs == sum(1 for cue in exact if cue[2] == "A" and cue[0] * rate < count)


def references() -> dict[str, np.ndarray]:
    """Each shape's mouth box as talking_frames renders it alone."""
    refs = {}
    for shape in "ABCDEFGHX":
        frame = next(talking_frames(MouthCues((MouthCue(0, 1, shape),), 1.0), MOUTHS, [BASE], BOX, 10))
        refs[shape] = frame[BOX.y:BOX.y + BOX.height, BOX.x:BOX.x + BOX.width]
    return refs


def identify(frame: np.ndarray, refs: dict[str, np.ndarray]) -> str:
    """The one shape whose reference matches the frame's mouth box pixel for pixel."""
    box = frame[BOX.y:BOX.y + BOX.height, BOX.x:BOX.x + BOX.width]
    found = [shape for shape, ref in refs.items() if np.array_equal(box, ref)]
    assert len(found) == 1, found
    return found[0]


def test_reference_mouths_are_all_different():
    refs = references()
    for a, b in itertools.combinations(refs, 2):
        assert not np.array_equal(refs[a], refs[b]), (a, b)


def test_frame_rate_is_exact():
    assert frame_rate(29.97) == Fraction(30000, 1001) and frame_rate(59.94) == Fraction(60000, 1001)
    assert frame_rate(23.976) == Fraction(24000, 1001) and frame_rate(Fraction(30000, 1001)) == Fraction(30000, 1001)
    assert frame_rate(24) == 24 and frame_rate(25.0) == 25 and frame_rate(12.5) == Fraction(25, 2)
    with pytest.raises(ValueError):
        frame_rate(0)


def test_a_frame_shows_the_cue_covering_most_of_it():
    # at 10 fps frame 1 is 0.1-0.2 s: X covers 0.03 s of it and D 0.07 s, so D (sampling at 0.1 s: X)
    late = MouthCues((MouthCue(0, 0.13, "X"), MouthCue(0.13, 0.5, "D")), 0.5)
    assert frame_shapes(late, 10, 5) == ["X", "D", "D", "D", "D"]
    # X covers 0.07 s of frame 1, so X (sampling at 0.1 s would agree; at 0.19 s it would not)
    early = MouthCues((MouthCue(0, 0.17, "X"), MouthCue(0.17, 0.5, "D")), 0.5)
    assert frame_shapes(early, 10, 5) == ["X", "X", "D", "D", "D"]
    # three cues in one frame: the one covering most wins, however many there are
    three = MouthCues((MouthCue(0, 0.11, "X"), MouthCue(0.11, 0.16, "E"), MouthCue(0.16, 0.2, "C"),
                       MouthCue(0.2, 0.3, "D")), 0.3)
    assert frame_shapes(three, 10, 3) == ["X", "E", "D"]
    # an exact half and half goes to the later cue, also where float times make it 0.0499999 against 0.05
    tie = MouthCues((MouthCue(0, 0.05, "X"), MouthCue(0.05, 0.2, "D")), 0.2)
    assert frame_shapes(tie, 30, 6)[:2] == ["X", "D"]


def test_frames_past_the_cues_hold_the_nearest():
    cues = MouthCues((MouthCue(0, 0.1, "B"), MouthCue(0.1, 0.2, "X")), 0.2)
    assert frame_shapes(cues, 10, 4) == ["B", "X", "X", "X"]
    assert frame_shapes(MouthCues((), 0.0), 24, 2) == ["X", "X"] and frame_shapes(cues, 24, 0) == []


def test_two_closures_in_one_frame_show_in_adjacent_frames():
    # at 12 fps frame 6 is 0.500-0.583 s; both closures lie inside it
    tied = MouthCues(tuple(MouthCue(*c) for c in [(0, .5, "X"), (.5, .53, "A"), (.53, .55, "B"), (.55, .58, "A"),
                                                  (.58, 1, "D")]), 1.0)
    assert "".join(frame_shapes(tied, 12, 12)) == "XXXXXAADDDDD"
    # here D covers most of frame 6: the first closure takes it, the second the next frame (nearer it)
    apart = MouthCues(tuple(MouthCue(*c) for c in [(0, .5, "X"), (.5, .52, "A"), (.52, .56, "D"), (.56, .58, "A"),
                                                   (.58, 1, "D")]), 1.0)
    assert "".join(frame_shapes(apart, 12, 12)) == "XXXXXXAADDDD"
    # a short closure in a frame a longer closure won (frame 3, 0.25-0.33 s, is 0.04 s of the first A)
    # takes that closed frame over rather than an open one: the mouth is shut there already
    long = MouthCues(tuple(MouthCue(*c) for c in [(0, .29, "A"), (.29, .30, "D"), (.30, .31, "A"), (.31, 1, "D")]),
                     1.0)
    assert "".join(frame_shapes(long, 12, 12)) == "AAAADDDDDDDD"


@pytest.mark.parametrize("fps", RATES)
def test_every_closure_shows_in_the_rendered_frames(fps):
    cues, exact = cues_from_ms(PATTERN_MS, repeats=3)
    frames = list(talking_frames(cues, MOUTHS, [BASE], BOX, fps))
    assert len(frames) == frame_count(cues, fps) == round(Fraction(cues.duration) * EXACT[fps])
    refs = references()
    shapes = [identify(frame, refs) for frame in frames]
    check_frames(shapes, exact, EXACT[fps])
    assert shapes == frame_shapes(cues, fps, len(frames))


def test_sampling_at_one_instant_would_lose_closures():
    """The pattern is a real test: at 12 fps sampling the start of each frame misses closures."""
    cues, exact = cues_from_ms(PATTERN_MS, repeats=3)
    sampled = [cues.shape_at(n / 12) for n in range(frame_count(cues, 12))]
    runs = sum(1 for shape, _ in itertools.groupby(sampled) if shape == "A")
    assert runs < sum(1 for cue in exact if cue[2] == "A")


@pytest.mark.parametrize("fps", RATES)
def test_ten_minutes_do_not_drift(fps):
    period_ms = sum(ms for _, ms in PATTERN_MS)
    repeats = -(-600_000 // period_ms)
    cues, exact = cues_from_ms(PATTERN_MS, repeats)
    assert cues.duration >= 600
    count = frame_count(cues, fps)
    assert count == round(Fraction(cues.duration) * EXACT[fps])
    shapes = frame_shapes(cues, fps, count)
    check_frames(shapes, exact, EXACT[fps])
    # the pixels agree too, over the last five seconds
    window = int(5 * fps)
    refs = references()
    rendered = itertools.islice(talking_frames(cues, MOUTHS, [BASE], BOX, fps), count - window, None)
    assert [identify(frame, refs) for frame in rendered] == shapes[-window:]


def test_an_hour_at_29_97_stays_on_the_frame_grid():
    # an hour of one-frame-long cues at 30000/1001 fps, given as 29.97: frame n shows cue n to the last
    # frame (adding up frame durations rounded to milliseconds would be frames off by then)
    count = 107892
    spans = [(Fraction(n * 1001, 30000), Fraction((n + 1) * 1001, 30000), "ABCDEFGHX"[n % 9]) for n in range(count)]
    cues = MouthCues(tuple(MouthCue(float(a), float(b), s) for a, b, s in spans), float(spans[-1][1]))
    assert frame_count(cues, 29.97) == count
    assert frame_shapes(cues, 29.97, count) == [s for _, _, s in spans]


@pytest.mark.parametrize("fps", RATES)
def test_film_mouths_follow_the_film_frames(fps):
    """A shot's rigged mouth: the shot's frame count, and every closure of each line on the shot's frames."""
    rate = 8000
    line_ms = [("X", 80), ("B", 60), ("A", 30), ("D", 250), ("A", 40), ("E", 280), ("A", 50), ("C", 300), ("X", 60)]
    ada, ada_exact = cues_from_ms(line_ms)
    line_seconds = ada.duration
    first = SpokenLine("Ada", "Hello.", 0.37, AudioClip(np.zeros(int(line_seconds * rate), np.float32), rate), ada)
    other = SpokenLine("Ben", "Hm.", 0.0, AudioClip(np.zeros(rate // 2, np.float32), rate), ada)
    dialogue = Dialogue((first,)).then(Dialogue((other,)), 0.2).then(
        Dialogue((SpokenLine("Ada", "Bye.", 0.0, first.audio, ada),)), 0.31)
    seconds = dialogue.seconds + 0.4
    picture = np.full((40, 64, 3), 90, np.uint8)
    box = MouthBox(20, 10, 24, 20)
    rig = MouthRig("Ada", box, builtin_mouth_set(24))

    def clip_frames(d: Dialogue) -> list[np.ndarray]:
        return list(still_clip(picture, 64, 40, fps, seconds, dialogue=d, rigs=(rig,)).frames())

    refs = {s: clip_frames(Dialogue((SpokenLine("Ada", "", 0.0, AudioClip(np.zeros(int(seconds * rate) + rate),
                                                                                   rate),
                                                MouthCues((MouthCue(0, seconds + 1, s),), seconds + 1)),)))[0]
            for s in "ABCDEX"}
    frames = clip_frames(dialogue)
    assert len(frames) == frame_count_for(seconds, fps)
    shapes = [next(s for s, ref in refs.items() if np.array_equal(frame, ref)) for frame in frames]
    assert shapes == dialogue.mouth_shapes("Ada", fps, len(frames))
    # Ada's mouth on the dialogue's clock: rest until 0.37 s, each of her lines at its time, rest between
    exact, at = [], Fraction(0)
    for line in (first, dialogue.lines[2]):
        begin = Fraction(line.start)
        exact.append((at, begin, "X"))
        exact.extend((begin + a, begin + b, s) for a, b, s in ada_exact)
        at = exact[-1][1]
    exact.append((at, Fraction(seconds) + 1, "X"))
    check_frames(shapes, exact, EXACT[fps])


def test_dat_keeps_every_closure_at_12_fps():
    cues, exact = cues_from_ms(PATTERN_MS, repeats=3)
    lines = to_dat(cues, frame_rate=12).splitlines()
    assert lines[0] == "MohoSwitch1"
    switches = [(int(n), s) for n, s in (line.split() for line in lines[1:-1])]
    shapes, at = [], 0
    for (frame, shape), (following, _) in zip(switches, switches[1:] + [(frame_count(cues, 12) + 1, "")]):
        assert frame == at + 1 and following > frame
        shapes.extend([shape] * (following - frame))
        at = following - 1
    assert shapes == frame_shapes(cues, 12, frame_count(cues, 12))
    check_frames(shapes, exact, Fraction(12))
    assert sum(1 for _, s in switches if s == "A") == sum(1 for cue in exact if cue[2] == "A")
    # Rhubarb's end line is frame 1 + int(12 × 5.22) = 63, which the last shape line took: one later
    assert lines[-1] == f"{frame_count(cues, 12) + 1} X" == "64 X"
