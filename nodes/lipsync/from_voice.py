"""Mouth cues straight from the phones a voice reports it spoke: no recognition, any language.

espeak-ng reports every phoneme it speaks with its exact sample position, Piper (with alignments) the
samples of every phoneme id; both name phones in IPA. Those timings are the truth about the audio, so
reading mouth shapes from them beats recognising the speech again, and it works for every language the
voice speaks, where the pocketsphinx aligner knows only English. The phones go through
:mod:`.ipa` (IPA → nearest ARPAbet) and then the same animation rules as the aligner
(:func:`.shapes.phones_to_cues`): closure windows, least effort, anticipation, pauses (a long one
rests, X: over 0.35 s; a shorter one, such as the 0.18 s between sentences, relaxes the mouth as
Rhubarb does), minimum durations, tweens.

Three adjustments, because these timings are exact where a recogniser's are not:

* a voiced B's event is its closure (see :func:`_voiced_closures`), so the lips shut on it, not before;
* a P or B that opens the audio is shown closed although nothing precedes it (:func:`_closed_onset`);
* every P, B and M ends up with a visible closed mouth, even where the minimum cue length would merge
  a short closure away (:func:`_keep_bilabial_closures`).
"""
from __future__ import annotations

import logging
from typing import Iterable

from .cues import MouthCue, MouthCues, merge_equal, restrict_shapes
from .errors import LipSyncError
from .shapes import MIN_CLOSURE, MIN_CUE, STEP, PhoneSegment, phones_to_cues

log = logging.getLogger(__name__)

ENGINE = "animstudio-voice"
PHONE_SETS = ("ipa", "arpabet")
CLOSURE_REACH = 0.02  # an A this near a bilabial (seconds) counts as its closure
RELEASE = 0.02        # the end of a voiced plosive's event that is its release, not its closure


def _arpabet_segments(timings: Iterable) -> list[PhoneSegment]:
    out = []
    for t in timings:
        name, start, end = (t.phone, t.start, t.end) if hasattr(t, "phone") else t
        out.append(PhoneSegment(str(name).upper() if str(name).strip() else "SIL", float(start), float(end)))
    return out


def phone_segments(timings: Iterable, phone_set: str = "ipa", language: str = "en") -> list[PhoneSegment]:
    """Timed ARPAbet segments for :func:`.shapes.phones_to_cues` from timings in ``phone_set``, spoken in
    ``language`` (which decides how a few IPA vowels read: :data:`.ipa.LANGUAGE_PHONES`)."""
    if phone_set not in PHONE_SETS:
        raise LipSyncError(f"unknown phone set {phone_set!r}; one of {', '.join(PHONE_SETS)}")
    if phone_set == "arpabet":
        return _arpabet_segments(timings)
    from .ipa import to_segments

    return to_segments(timings, language)


def _voiced_closures(segments: list[PhoneSegment]) -> list[PhoneSegment]:
    """A voiced B as a closed stretch (M) ending in a short release (B).

    espeak's event for an unvoiced P starts at the burst, its silent closure being the end of the phone
    before, which is where the shape rules put the closed mouth. Its event for a voiced B is the closure
    itself (the voice bar) up to the release, so the closed mouth belongs *on* the B: left to the rules,
    the lips would shut one B early, in the middle of the vowel before.
    """
    out = []
    for seg in segments:
        release = min(RELEASE, (seg.end - seg.start) / 3)
        if seg.phone == "B" and release > 0:
            out += [PhoneSegment("M", seg.start, seg.end - release), PhoneSegment("B", seg.end - release, seg.end)]
        else:
            out.append(seg)
    return out


def _closed_onset(segments: list[PhoneSegment]) -> list[PhoneSegment]:
    """A P or B that opens the audio shows its closure on the plosive itself.

    The shape rules close the lips in a window carved out of what comes *before* a plosive; a voice's
    first phone often starts a few milliseconds into the audio (espeak: 10 ms), leaving no room, and the
    closure would vanish under the minimum cue length. The lips of a speaker about to say "Bob" are shut,
    so such a plosive is shown closed (as M) for ``MIN_CLOSURE``, from the start of the audio if need be.
    """
    spoken = [i for i, s in enumerate(segments) if s.phone not in ("SIL",)]
    if not spoken:
        return segments
    first = segments[spoken[0]]
    if first.phone not in ("P", "B") or first.start > MIN_CLOSURE:
        return segments
    out = [s for s in segments[:spoken[0]]]
    out.append(PhoneSegment("M", max(0.0, min(first.start, first.end - MIN_CLOSURE)), first.end))
    return out + segments[spoken[0] + 1:]


def _grid(seconds: float) -> float:
    return round(round(seconds / STEP) * STEP, 6)


def _closure_met(cues: list[MouthCue], seg: PhoneSegment) -> bool:
    return any(c.shape == "A" and c.start < seg.end + CLOSURE_REACH and c.end > seg.start - CLOSURE_REACH
               for c in cues)


def _insert_closed(cues: list[MouthCue], lo: float, hi: float) -> list[MouthCue]:
    """Show A over ``[lo, hi]``; neighbours cut shorter than MIN_CUE are absorbed into it."""
    before = [MouthCue(c.start, min(c.end, lo), c.shape) for c in cues if c.start < lo - 1e-9]
    after = [MouthCue(max(c.start, hi), c.end, c.shape) for c in cues if c.end > hi + 1e-9]
    if before and before[-1].seconds < MIN_CUE - 1e-9:
        lo = before.pop().start
    if after and after[0].seconds < MIN_CUE - 1e-9:
        hi = after.pop(0).end
    return merge_equal(before + [MouthCue(lo, hi, "A")] + after)


def _keep_bilabial_closures(cues: list[MouthCue], segments: list[PhoneSegment], duration: float) -> list[MouthCue]:
    """Every P, B and M shows a closed mouth (A), even where the timing rules merged it away.

    The rules drop cues shorter than MIN_CUE, and a closure window carved out of a short phone can be
    just that short; but lips that never meet on a bilabial are the most visible lip-sync error there
    is. Where a bilabial has no A within ``CLOSURE_REACH``, A is shown for MIN_CLOSURE before a
    plosive's release (or across a nasal's middle), on the 0.01 s grid.
    """
    for seg in segments:
        if seg.phone in ("P", "B"):
            lo, hi = seg.start - MIN_CLOSURE, seg.start
        elif seg.phone == "M":
            middle, half = (seg.start + seg.end) / 2, max(MIN_CLOSURE, seg.end - seg.start) / 2
            lo, hi = middle - half, middle + half
        else:
            continue
        if _closure_met(cues, seg):
            continue
        lo, hi = max(0.0, _grid(lo)), min(duration, _grid(hi))
        if hi - lo < MIN_CUE - 1e-9:
            lo, hi = max(0.0, hi - MIN_CUE), min(duration, max(hi, lo + MIN_CUE))
        if hi > lo:
            cues = _insert_closed(cues, lo, hi)
    return cues


def cues_from_phone_timings(timings, duration: float, extended_shapes: str = "GHX", sound_file: str = "",
                            language: str = "en", phone_set: str = "ipa") -> MouthCues:
    """Rhubarb-compatible mouth cues covering ``[0, duration]`` from a voice's own timed phones.

    ``timings``: :class:`~..audio.tts.PhoneTiming` or ``(phone, start, end)`` in seconds, in
    ``phone_set`` (``ipa`` from espeak-ng and Piper, ``arpabet`` from the pocketsphinx aligner). Time the
    phones do not cover is silence; phones past ``duration`` are cut there.
    """
    if duration <= 0:
        raise LipSyncError("the audio is empty")
    extended_shapes = "".join(s for s in extended_shapes.upper() if s in "GHX")
    segments = phone_segments(list(timings), phone_set, language)
    if phone_set == "ipa":  # a voice's own event timing (espeak, Piper): see _voiced_closures
        segments = _voiced_closures(segments)
    segments = _closed_onset(segments)
    cues = _keep_bilabial_closures(phones_to_cues(segments, duration), segments, duration)
    notes = (f"mouth shapes from the voice's own phoneme events ({len(segments)} {phone_set} phones, "
             f"language {language}); no speech recognition",)
    log.debug("cues from %d voice phones (%s, %s): %d cues", len(segments), phone_set, language, len(cues))
    return MouthCues(tuple(restrict_shapes(cues, extended_shapes)), duration, sound_file, ENGINE,
                     extended_shapes, notes)
