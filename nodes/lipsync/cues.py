"""Mouth cues: which mouth shape shows from when to when, in Rhubarb Lip Sync's shapes.

Basic shapes (Rhubarb's, after Preston Blair): A closed (P B M), B slightly open with teeth (most
consonants, EE), C open (EH, AE), D wide open (AA), E slightly rounded (AO, ER), F puckered (UW, OW, W).
Extended: G teeth on lower lip (F V), H tongue up (long L), X rest (silence).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Iterable, Literal

import numpy as np

BASIC_SHAPES = ("A", "B", "C", "D", "E", "F")
EXTENDED_SHAPES = ("G", "H", "X")
ALL_SHAPES = BASIC_SHAPES + EXTENDED_SHAPES
Shape = Literal["A", "B", "C", "D", "E", "F", "G", "H", "X"]
# what an extended shape becomes when the animator's set lacks it (Rhubarb's own fallbacks)
EXTENDED_FALLBACK = {"G": "B", "H": "C", "X": "A"}
# shapes that must show on at least one frame however short: a p, b or m played with an open mouth is
# the one lip-sync error every viewer sees (a short rest X or vowel that loses its frame is not)
CLOSED_SHAPES = ("A",)
_TIE = 1e-9  # seconds: coverages this close count as equal, so float noise does not pick the winner


@dataclass(frozen=True)
class MouthCue:
    start: float  # seconds
    end: float
    shape: str

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class MouthCues:
    """Contiguous cues from 0 to ``duration``: Rhubarb's ``mouthCues`` plus where they came from."""

    cues: tuple[MouthCue, ...]
    duration: float
    sound_file: str = ""
    engine: str = ""
    extended_shapes: str = "GHX"
    notes: tuple[str, ...] = field(default=())

    def shape_at(self, seconds: float) -> str:
        """The shape showing at ``seconds`` (cues are half-open ``[start, end)``; past the end, the last)."""
        lo, hi = 0, len(self.cues) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.cues[mid].start <= seconds:
                lo = mid
            else:
                hi = mid - 1
        return self.cues[lo].shape if self.cues else "X"


def restrict_shapes(cues: Iterable[MouthCue], extended_shapes: str) -> list[MouthCue]:
    """Map extended shapes the set does not have onto basic ones, then merge neighbours that became equal."""
    allowed = set(BASIC_SHAPES) | set(extended_shapes.upper())
    mapped = [MouthCue(c.start, c.end, c.shape if c.shape in allowed else EXTENDED_FALLBACK[c.shape]) for c in cues]
    return merge_equal(mapped)


def merge_equal(cues: Iterable[MouthCue]) -> list[MouthCue]:
    out: list[MouthCue] = []
    for cue in cues:
        if out and out[-1].shape == cue.shape and abs(out[-1].end - cue.start) < 1e-9:
            out[-1] = MouthCue(out[-1].start, cue.end, cue.shape)
        else:
            out.append(cue)
    return out


def frame_rate(fps: float | Fraction) -> Fraction:
    """``fps`` as an exact fraction, so frame ``n`` starts at exactly ``n / fps`` however long the audio.

    NTSC rates arrive as floats (29.97, 23.976, 59.94) but mean 30000/1001 and its kin: a float within
    1e-3 of ``k·1000/1001`` is taken as that, a whole number as itself, anything else as the nearest
    fraction with a denominator up to 1001.
    """
    if isinstance(fps, (Fraction, int)):
        rate = Fraction(fps)
    else:
        value = float(fps)
        ntsc = Fraction(round(value * 1.001) * 1000, 1001)
        if abs(value - round(value)) < 1e-9:
            rate = Fraction(round(value))
        elif abs(value - ntsc) < 1e-3:
            rate = ntsc
        else:
            rate = Fraction(value).limit_denominator(1001)
    if rate <= 0:
        raise ValueError(f"frame rate must be positive, not {fps}")
    return rate


def frames_for(seconds: float, fps: float | Fraction) -> int:
    """How many frames ``seconds`` of audio fill: ``round(seconds × fps)``, computed exactly (no drift)."""
    return round(Fraction(float(seconds)) * frame_rate(fps))


def frame_edges(count: int, fps: float | Fraction) -> np.ndarray:
    """Frame boundaries ``n / fps`` for ``n`` in ``0..count``, each from the start (never summed durations)."""
    rate = frame_rate(fps)
    return np.arange(count + 1, dtype=np.int64) * rate.denominator / rate.numerator


def frame_shapes(cues: MouthCues, fps: float | Fraction, count: int) -> list[str]:
    """The mouth shape of each of ``count`` frames at ``fps``: the only place frames are mapped to shapes.

    Frame ``n`` shows the cue covering most of its interval ``[n/fps, (n+1)/fps)`` (a tie goes to the
    later cue), not the cue at one instant, which at low rates shows whatever happens to be under the
    sample point. Then every closure (:data:`CLOSED_SHAPES`) that won no frame is given one (see
    :func:`_keep_closures`), so at 12 fps a 30 ms p, b or m still closes the mouth. Cue ``i`` is taken
    to last until cue ``i + 1`` starts (the last until its end); frames outside the cues hold the
    nearest one. Times are the cues' own, so a caller on another timeline shifts the cues first.
    """
    if count <= 0:
        return []
    if not cues.cues:
        return ["X"] * count
    starts = np.array([c.start for c in cues.cues], np.float64)
    ends = np.append(starts[1:], cues.cues[-1].end)
    shapes = [c.shape for c in cues.cues]
    edges = frame_edges(count, fps)
    owner = _keep_closures(_majority(starts, ends, edges), shapes, starts, ends, edges)
    return [shapes[i] for i in owner]


def _majority(starts: np.ndarray, ends: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """For each frame between consecutive ``edges``, the index of the cue covering most of it.

    Only frames that straddle a cue start are looked at cue by cue (at most one per cue); the rest lie
    inside one cue, found by binary search, so hours of cues at 60 fps cost little.
    """
    last = len(starts) - 1
    first_cue = np.clip(np.searchsorted(starts, edges[:-1], "right") - 1, 0, last)
    last_cue = np.clip(np.searchsorted(starts, edges[1:], "left") - 1, 0, last)
    owner = first_cue.copy()
    for n in np.nonzero(last_cue > first_cue)[0]:
        a, b = edges[n], edges[n + 1]
        most = -np.inf
        for i in range(first_cue[n], last_cue[n] + 1):
            cover = min(b, ends[i]) - max(a, starts[i])
            if cover >= most - _TIE:
                owner[n], most = i, max(most, cover)
    return owner


def _keep_closures(owner: np.ndarray, shapes: list[str], starts: np.ndarray, ends: np.ndarray,
                   edges: np.ndarray) -> np.ndarray:
    """``owner`` with every closure that won no frame given one, so no p, b or m plays with an open mouth.

    A closure takes the frame it covers most. A frame that is another closure's only frame is not taken
    (that would just move the loss); the closure then tries the other frame it touches, then the
    neighbouring frame nearer to it, so two closures falling in one frame show in adjacent frames. A frame
    of a closure with frames to spare is taken over, which changes no pixel: the lips are shut there
    already. When every candidate is some closure's only frame, it shares theirs. Closures starting after
    the last frame (beyond the half frame that rounding the frame count leaves) are not shown.
    """
    owner = owner.copy()
    held = Counter(owner.tolist())  # frames per cue
    limit = edges[-1] + (edges[-1] - edges[-2]) / 2
    for i, shape in enumerate(shapes):
        if shape not in CLOSED_SHAPES or held[i] or ends[i] <= starts[i] or starts[i] >= limit:
            continue
        for n in _frames_near(starts[i], ends[i], edges):
            j = owner[n]
            if shapes[j] not in CLOSED_SHAPES or held[j] > 1:
                owner[n] = i
                held[j] -= 1
                held[i] += 1
                break
    return owner


def _frames_near(start: float, end: float, edges: np.ndarray) -> list[int]:
    """Frames a cue could be shown on: those it overlaps, most covered first, then the two neighbours,
    nearer first."""
    count = len(edges) - 1
    lo = int(np.clip(np.searchsorted(edges, start, "right") - 1, 0, count - 1))
    hi = int(np.clip(np.searchsorted(edges, end, "left") - 1, lo, count - 1))
    touched = sorted(range(lo, hi + 1), key=lambda n: -(min(end, edges[n + 1]) - max(start, edges[n])))
    middle = (start + end) / 2
    neighbours = sorted([(middle - edges[lo], lo - 1), (edges[hi + 1] - middle, hi + 1)])
    return touched + [n for _, n in neighbours if 0 <= n < count]


def cue_problems(cues: MouthCues, tolerance: float = 1e-6) -> list[str]:
    """Why ``cues`` is not well-formed Rhubarb output (empty list when it is)."""
    problems = []
    if not cues.cues:
        return ["no cues"]
    if abs(cues.cues[0].start) > tolerance:
        problems.append(f"the first cue starts at {cues.cues[0].start}, not 0")
    if abs(cues.cues[-1].end - cues.duration) > max(tolerance, 0.011):
        problems.append(f"the last cue ends at {cues.cues[-1].end}, the audio at {cues.duration}")
    for i, cue in enumerate(cues.cues):
        if cue.shape not in ALL_SHAPES:
            problems.append(f"cue {i} has shape {cue.shape!r}")
        if cue.end <= cue.start:
            problems.append(f"cue {i} is empty or reversed ({cue.start}-{cue.end})")
        if i and abs(cues.cues[i - 1].end - cue.start) > tolerance:
            problems.append(f"gap or overlap between cue {i - 1} and cue {i}")
    return problems
