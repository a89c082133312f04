"""From timed phones to mouth cues, with rules in the spirit of Rhubarb Lip Sync's animation stage.

1. Each ARPAbet phone allows a set of shapes, best first (a T or K barely constrains the lips, so it
   may take whichever of B or C costs least; P B M must close; diphthongs move from one shape to another).
2. Least effort: a Viterbi pass picks, for every segment, the allowed shape that minimises preference
   cost plus the distance the mouth travels between neighbours.
3. Timing rules: silences inside speech are short pauses (the mouth holds, or closes for a following
   plosive); long silences rest (X); closures before plosives last long enough to be seen; cues shorter
   than a minimum merge into a neighbour; wide jumps (D→A) get a brief in-between shape.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .cues import MouthCue, merge_equal

# shape → (openness, rounding): the mouth's travel between shapes is the distance in this plane
SHAPE_POSITION = {"X": (0.0, 0.0), "A": (0.0, 0.0), "B": (1.0, 0.0), "C": (2.0, 0.0), "D": (3.0, 0.0),
                  "E": (2.0, 1.0), "F": (1.0, 2.0), "G": (0.7, 0.0), "H": (2.0, 0.3)}

# ARPAbet (stress digits removed) → allowed shapes, best first; a tuple of two tuples is a diphthong
_ANY_CONSONANT = ("B", "C")
PHONE_SHAPES: dict[str, tuple] = {
    "AA": ("D",), "AE": ("C", "D"), "AH": ("C",), "AO": ("E",), "EH": ("C",), "ER": ("E", "B"), "IH": ("B", "C"),
    "IY": ("B",), "UH": ("E", "F"), "UW": ("F",),
    "AW": (("D", "C"), ("F",)), "AY": (("D", "C"), ("B",)), "EY": (("C",), ("B",)), "OW": (("E",), ("F",)),
    "OY": (("E",), ("B",)),
    "B": ("A",), "M": ("A",), "P": ("A",), "F": ("G",), "V": ("G",), "W": ("F",), "R": ("E", "B"),
    "L": ("H", "C", "B"), "Y": ("B",), "CH": ("B", "F"), "JH": ("B", "F"), "SH": ("B", "F"), "ZH": ("B", "F"),
    "D": _ANY_CONSONANT, "T": _ANY_CONSONANT, "N": _ANY_CONSONANT, "S": ("B",), "Z": ("B",),
    "TH": ("B", "C"), "DH": ("B", "C"), "K": ("B", "C", "E"), "G": ("B", "C", "E"), "NG": ("B", "C", "E"),
    "HH": ("B", "C", "D", "E", "F"),
}
SILENCES = {"SIL", "+NSN+", "+SPN+", "+BREATH+", "+COUGH+", "+SMACK+", "+UH+", "+UM+", "<sil>", "<s>", "</s>"}

SHORT_PAUSE = 0.14       # a silence shorter than this inside speech is a pause, not rest
MIN_CUE = 0.04           # nothing shows for less than this (one frame at 25 fps)
MIN_CLOSURE = 0.06       # a closed mouth before a plosive must be seen
TWEEN = 0.04             # length of an in-between shape
PREFERENCE_COST = 0.6    # cost of taking the second allowed shape instead of the first
TRAVEL_COST = 0.35       # cost per unit of mouth travel between neighbouring segments


@dataclass(frozen=True)
class PhoneSegment:
    phone: str  # ARPAbet without stress digits, or a silence marker
    start: float
    end: float

    @property
    def silent(self) -> bool:
        return self.phone in SILENCES


def _distance(a: str, b: str) -> float:
    (x1, y1), (x2, y2) = SHAPE_POSITION[a], SHAPE_POSITION[b]
    return math.hypot(x1 - x2, y1 - y2)


def _candidate_segments(phones: list[PhoneSegment]) -> list[tuple[float, float, tuple[str, ...]]]:
    """Split diphthongs in two and attach each piece's allowed shapes; silences get ``("X",)`` for now."""
    out = []
    for seg in phones:
        if seg.silent:
            out.append((seg.start, seg.end, ("X",)))
            continue
        allowed = PHONE_SHAPES.get(seg.phone.rstrip("012"), ("B", "C"))
        if isinstance(allowed[0], tuple):
            middle = seg.start + (seg.end - seg.start) * 0.55
            out.append((seg.start, middle, allowed[0]))
            out.append((middle, seg.end, allowed[1]))
        else:
            out.append((seg.start, seg.end, allowed))
    return out


def _least_effort(candidates: list[tuple[float, float, tuple[str, ...]]]) -> list[str]:
    """Viterbi over the segments: preference cost + travel cost; deterministic (ties keep the earlier choice)."""
    if not candidates:
        return []
    costs = [{s: i * PREFERENCE_COST for i, s in enumerate(candidates[0][2])}]
    back: list[dict[str, str]] = [{}]
    for _, _, allowed in candidates[1:]:
        step, pointers = {}, {}
        for rank, shape in enumerate(allowed):
            best_prev = min(costs[-1], key=lambda p: (costs[-1][p] + TRAVEL_COST * _distance(p, shape), p))
            step[shape] = costs[-1][best_prev] + TRAVEL_COST * _distance(best_prev, shape) + rank * PREFERENCE_COST
            pointers[shape] = best_prev
        costs.append(step)
        back.append(pointers)
    shape = min(costs[-1], key=lambda s: (costs[-1][s], s))
    path = [shape]
    for pointers in reversed(back[1:]):
        shape = pointers[shape]
        path.append(shape)
    return path[::-1]


def _pauses(cues: list[MouthCue], speech_start: float, speech_end: float) -> list[MouthCue]:
    """Short silences inside speech hold the previous shape, or close early for a following plosive."""
    out = list(cues)
    for i, cue in enumerate(out):
        if cue.shape != "X" or cue.start <= speech_start or cue.end >= speech_end or cue.seconds >= SHORT_PAUSE:
            continue
        following = out[i + 1].shape if i + 1 < len(out) else "X"
        previous = out[i - 1].shape if i else "X"
        out[i] = MouthCue(cue.start, cue.end, "A" if following == "A" else (previous if previous != "X" else "B"))
    return merge_equal(out)


def _closures(cues: list[MouthCue]) -> list[MouthCue]:
    """A closed mouth (A) shorter than MIN_CLOSURE after speech takes time from the cue before it."""
    out = list(cues)
    for i in range(1, len(out)):
        cue, before = out[i], out[i - 1]
        missing = MIN_CLOSURE - cue.seconds
        if cue.shape == "A" and missing > 0 and before.shape not in ("A", "X"):
            take = min(missing, max(0.0, before.seconds - MIN_CUE))
            if take > 0:
                out[i - 1] = MouthCue(before.start, before.end - take, before.shape)
                out[i] = MouthCue(cue.start - take, cue.end, cue.shape)
    return out


def _minimum_durations(cues: list[MouthCue]) -> list[MouthCue]:
    """Merge cues shorter than MIN_CUE into the neighbour whose shape is closer (closures excepted)."""
    out = list(cues)
    changed = True
    while changed and len(out) > 1:
        changed = False
        for i, cue in enumerate(out):
            if cue.seconds >= MIN_CUE - 1e-9:
                continue
            left = out[i - 1] if i else None
            right = out[i + 1] if i + 1 < len(out) else None
            if left is None or (right is not None and _distance(right.shape, cue.shape) < _distance(left.shape, cue.shape)):
                out[i + 1] = MouthCue(cue.start, right.end, right.shape)
            else:
                out[i - 1] = MouthCue(left.start, cue.end, left.shape)
            del out[i]
            changed = True
            break
    return merge_equal(out)


def _tweens(cues: list[MouthCue]) -> list[MouthCue]:
    """Between shapes far apart (closed ↔ wide open), a brief in-between shape carved from the longer side."""
    out: list[MouthCue] = []
    for i, cue in enumerate(cues):
        if out:
            prev = out[-1]
            if _distance(prev.shape, cue.shape) >= 2.5 and "X" not in (prev.shape, cue.shape):
                middle = "C" if max(SHAPE_POSITION[prev.shape][0], SHAPE_POSITION[cue.shape][0]) >= 3 else "B"
                if prev.seconds >= cue.seconds and prev.seconds >= TWEEN + MIN_CUE:
                    out[-1] = MouthCue(prev.start, prev.end - TWEEN, prev.shape)
                    out.append(MouthCue(prev.end - TWEEN, prev.end, middle))
                elif cue.seconds >= TWEEN + MIN_CUE:
                    out.append(MouthCue(cue.start, cue.start + TWEEN, middle))
                    cue = MouthCue(cue.start + TWEEN, cue.end, cue.shape)
        out.append(cue)
    return merge_equal(out)


def _quantize(cues: list[MouthCue], duration: float, step: float = 0.01) -> list[MouthCue]:
    """Cue boundaries on Rhubarb's centisecond grid; the first starts at 0, the last ends at ``duration``."""
    bounds = [0.0] + [round(c.end / step) * step for c in cues[:-1]] + [duration]
    out = [MouthCue(round(bounds[i], 6), round(bounds[i + 1], 6), c.shape)
           for i, c in enumerate(cues) if bounds[i + 1] > bounds[i] + 1e-9]
    return merge_equal(out)


def phones_to_cues(phones: list[PhoneSegment], duration: float) -> list[MouthCue]:
    """Mouth cues covering ``[0, duration]`` for timed ARPAbet phones (silence markers allowed anywhere)."""
    phones = sorted((p for p in phones if p.end > p.start), key=lambda p: p.start)
    filled: list[PhoneSegment] = []
    at = 0.0
    for seg in phones:  # gaps between phones are silence
        if seg.start > at + 1e-6:
            filled.append(PhoneSegment("SIL", at, seg.start))
        filled.append(PhoneSegment(seg.phone, max(seg.start, at), seg.end))
        at = max(at, seg.end)
    if duration > at + 1e-6:
        filled.append(PhoneSegment("SIL", at, duration))
    filled = [s for s in filled if s.end > s.start]
    candidates = _candidate_segments(filled)
    shapes = _least_effort(candidates)
    cues = merge_equal(MouthCue(start, end, shape) for (start, end, _), shape in zip(candidates, shapes))
    spoken = [s for s in filled if not s.silent]
    if not spoken:
        return [MouthCue(0.0, duration, "X")]
    cues = _pauses(cues, spoken[0].start, spoken[-1].end)
    cues = _closures(cues)
    cues = _minimum_durations(cues)
    cues = _tweens(cues)
    return _quantize(cues, duration)
