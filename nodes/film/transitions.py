"""How clips join in the cut: where each clip sits in the film, which of its frames a transition changes, and the
film's frames, drawn from the clips on demand.

A clip's frame ``j`` becomes film frame ``start + j``: its first ``blend_in`` frames are blended with the previous
clip's last frames (a dissolve or a wipe overlaps the two), its first ``fade_in`` frames fade up from black and its
last ``fade_out`` fade down to it (``fade_black``); its last ``held`` frames are shown only blended into the next
clip. Every other frame is the clip's own, untouched: the frames a smart render copies instead of encoding again.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np

from .clips import Clip, Film

OVERLAPPING = ("dissolve", "wipe_left", "wipe_right")


@dataclass(frozen=True)
class ClipLayout:
    """Where a clip sits in the cut (film frames) and which of its frames a transition changes."""

    start: int
    frame_count: int
    blend_in: int = 0
    fade_in: int = 0
    fade_out: int = 0
    held: int = 0

    @property
    def shown(self) -> int:
        """The clip's frames shown as its own (the held tail appears inside the next clip's blend)."""
        return self.frame_count - self.held

    def untouched(self) -> tuple[int, int]:
        """The clip's frames ``[first, stop)`` shown exactly as the clip has them (empty when first >= stop)."""
        return max(self.blend_in, self.fade_in), self.frame_count - max(self.held, self.fade_out)


def clip_layouts(film: Film) -> list[ClipLayout]:
    """Each clip's place in the cut and its transition frames, in order."""
    layouts = []
    starts = film.clip_starts()
    for index, clip in enumerate(film.clips):
        transition = film.transitions[index]
        fade_in = (min(int(round(transition.seconds * film.fps)), clip.frame_count)
                   if transition.kind == "fade_black" else 0)
        following = film.transitions[index + 1] if index + 1 < len(film.clips) else None
        fade_out = (min(int(round(following.seconds * film.fps)), clip.frame_count)
                    if following is not None and following.kind == "fade_black" else 0)
        held = film.overlap_frames(index + 1) if following is not None else 0
        layouts.append(ClipLayout(starts[index], clip.frame_count, film.overlap_frames(index), fade_in, fade_out,
                                  held))
    return layouts


def blend(a: np.ndarray, b: np.ndarray, kind: str, t: float) -> np.ndarray:
    """Frame ``t`` (0..1) of a transition from ``a`` to ``b``."""
    if kind == "dissolve":
        return (a.astype(np.float32) * (1 - t) + b.astype(np.float32) * t + 0.5).astype(np.uint8)
    width = a.shape[1]
    edge = int(round(width * t))
    out = a.copy()
    if kind == "wipe_left":      # the new shot enters from the right edge, moving left
        out[:, width - edge:] = b[:, width - edge:]
    else:                        # wipe_right: enters from the left
        out[:, :edge] = b[:, :edge]
    return out


def fade(frame: np.ndarray, level: float) -> np.ndarray:
    return (frame.astype(np.float32) * level + 0.5).astype(np.uint8)


class _Cursor:
    """One clip's frames, asked for in increasing order; a step back, or a jump into a clip read from a file,
    starts it again from there (a video file seeks to the key frame before it)."""

    def __init__(self, clip: Clip):
        self.clip = clip
        self.frames: Iterator[np.ndarray] | None = None
        self.next = 0
        self.frame: np.ndarray | None = None

    def get(self, index: int) -> np.ndarray:
        if self.frame is not None and index == self.next - 1:
            return self.frame
        if self.frames is None or index < self.next or (self.clip.source is not None and index - self.next > 1):
            self.close()
            self.frames, self.next = self.clip.frames(index), index
        while self.next <= index:
            self.frame = next(self.frames)
            self.next += 1
        return self.frame

    def close(self) -> None:
        if self.frames is not None and hasattr(self.frames, "close"):
            self.frames.close()
        self.frames, self.frame = None, None


def _clip_frame(film: Film, layouts: list[ClipLayout], cursors: dict[int, _Cursor], index: int, j: int) -> np.ndarray:
    """Clip ``index``'s frame ``j`` as the cut shows it: blended with the previous clip, faded."""
    layout = layouts[index]
    if index not in cursors:
        cursors[index] = _Cursor(film.clips[index])
    frame = cursors[index].get(j)
    if j < layout.blend_in:
        before = _clip_frame(film, layouts, cursors, index - 1, layouts[index - 1].frame_count - layout.blend_in + j)
        frame = blend(before, frame, film.transitions[index].kind, (j + 1) / (layout.blend_in + 1))
    if j < layout.fade_in:      # fade up from black into this clip
        frame = fade(frame, (j + 1) / (layout.fade_in + 1))
    from_end = layout.frame_count - j
    if from_end <= layout.fade_out:  # fade down to black out of this clip
        frame = fade(frame, (from_end - 1) / layout.fade_out)
    return frame


def iter_film_frames(film: Film, start: int = 0, stop: int | None = None) -> Iterator[np.ndarray]:
    """The film's frames ``[start, stop)`` in order, transitions applied; at most two clips are open at a time, and a
    range inside the film decodes its clips from the key frame before it, not from their start."""
    layouts = clip_layouts(film)
    stop = film.frame_count if stop is None else min(stop, film.frame_count)
    cursors: dict[int, _Cursor] = {}
    try:
        for index, layout in enumerate(layouts):
            first, end = max(start - layout.start, 0), min(stop - layout.start, layout.shown)
            for j in range(first, end):
                yield _clip_frame(film, layouts, cursors, index, j)
            for done in [i for i in cursors if i < index]:
                cursors.pop(done).close()
    finally:
        for cursor in cursors.values():
            cursor.close()
