"""Mouth cues: which mouth shape shows from when to when, in Rhubarb Lip Sync's shapes.

Basic shapes (Rhubarb's, after Preston Blair): A closed (P B M), B slightly open with teeth (most
consonants, EE), C open (EH, AE), D wide open (AA), E slightly rounded (AO, ER), F puckered (UW, OW, W).
Extended: G teeth on lower lip (F V), H tongue up (long L), X rest (silence).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Literal

BASIC_SHAPES = ("A", "B", "C", "D", "E", "F")
EXTENDED_SHAPES = ("G", "H", "X")
ALL_SHAPES = BASIC_SHAPES + EXTENDED_SHAPES
Shape = Literal["A", "B", "C", "D", "E", "F", "G", "H", "X"]
# what an extended shape becomes when the animator's set lacks it (Rhubarb's own fallbacks)
EXTENDED_FALLBACK = {"G": "B", "H": "C", "X": "A"}


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
