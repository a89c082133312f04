"""Talking-mouth animation: the mouth image of the cue active at each frame, composited onto the character.

A mouth set is one RGBA image per shape (A–H, X): from a folder of ``A.png`` … ``X.png`` (missing
extended shapes fall back as Rhubarb's do), from an image batch in shape order, or the built-in
drawn set. Frame ``n`` shows the shape :func:`.cues.frame_shapes` gives it: the cue covering most of
``[n/fps, (n+1)/fps)``, with every closure kept however short.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
from PIL import Image, ImageDraw

from .cues import ALL_SHAPES, EXTENDED_FALLBACK, MouthCues, frame_shapes, frames_for

MouthSet = dict[str, np.ndarray]  # shape → uint8 RGBA [h, w, 4]


@dataclass(frozen=True)
class MouthBox:
    """Where the mouth goes on the base frame, in pixels; the mouth image is scaled to fill it."""

    x: int
    y: int
    width: int
    height: int


def _complete(found: dict[str, np.ndarray], source: str) -> MouthSet:
    missing_basic = [s for s in "ABCDEF" if s not in found]
    if missing_basic:
        raise FileNotFoundError(f"mouth set {source} lacks shape(s) {', '.join(missing_basic)} (needs A-F; G, H, X optional)")
    for shape, fallback in EXTENDED_FALLBACK.items():
        found.setdefault(shape, found[fallback])
    return found


def box_from_mask(mask: np.ndarray) -> MouthBox:
    """The bounding box of a mouth-region mask (first of a batch; values above 0.5 count)."""
    region = np.asarray(mask)
    region = region[0] if region.ndim == 3 else region
    ys, xs = np.nonzero(region > 0.5)
    if not len(xs):
        raise ValueError("the mouth region mask is empty")
    return MouthBox(int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1))


def load_mouth_folder(folder: str | Path) -> MouthSet:
    """``A.png`` … ``F.png`` (and optionally ``G``, ``H``, ``X``) from a folder, any common image type."""
    folder = Path(folder)
    found = {}
    for shape in ALL_SHAPES:
        for suffix in (".png", ".webp", ".jpg", ".jpeg"):
            for name in (shape, shape.lower()):
                path = folder / f"{name}{suffix}"
                if path.is_file():
                    with Image.open(path) as img:
                        found[shape] = np.asarray(img.convert("RGBA"), np.uint8)
                    break
            if shape in found:
                break
    return _complete(found, str(folder))


def mouth_set_from_batch(frames: np.ndarray, alpha: np.ndarray | None = None) -> MouthSet:
    """An image batch in shape order A, B, C, D, E, F[, G, H, X] (optional masks as alpha)."""
    found = {}
    for i, shape in enumerate(ALL_SHAPES[:len(frames)]):
        a = (alpha[i] * 255).astype(np.uint8) if alpha is not None and i < len(alpha) else np.full(frames[i].shape[:2], 255, np.uint8)
        found[shape] = np.dstack([frames[i][..., :3], a])
    return _complete(found, "image batch")


# openness (0..1), width (0..1), roundness, teeth visible, tongue visible, for the built-in drawn set
_DRAWN = {"A": (0.0, 0.55, 0.0, False, False), "B": (0.18, 0.6, 0.0, True, False), "C": (0.45, 0.62, 0.0, True, False),
          "D": (0.8, 0.66, 0.0, True, True), "E": (0.4, 0.45, 0.5, False, False), "F": (0.28, 0.3, 1.0, False, False),
          "G": (0.16, 0.6, 0.0, True, False), "H": (0.5, 0.6, 0.0, True, True), "X": (0.04, 0.5, 0.0, False, False)}


def builtin_mouth_set(size: int = 96) -> MouthSet:
    """A simple drawn mouth set (lips, teeth, tongue), distinct per shape: a default and a test fixture."""
    out = {}
    for shape, (openness, width, rounding, teeth, tongue) in _DRAWN.items():
        img = Image.new("RGBA", (size, size), (0, 0, 0, 0))
        draw = ImageDraw.Draw(img)
        w = size * width
        h = max(size * 0.06, size * 0.55 * openness)
        box = [size / 2 - w / 2, size / 2 - h / 2, size / 2 + w / 2, size / 2 + h / 2]
        draw.ellipse(box, fill=(120, 30, 40, 255), outline=(90, 20, 30, 255), width=max(1, size // 24))
        if openness > 0.1:
            inner = [box[0] + size * 0.05, box[1] + size * 0.04, box[2] - size * 0.05, box[3] - size * 0.04]
            draw.ellipse(inner, fill=(40, 10, 15, 255))
            if teeth:
                draw.rectangle([inner[0] + w * 0.15, inner[1], inner[2] - w * 0.15, inner[1] + size * 0.06],
                               fill=(245, 245, 235, 255))
            if tongue:
                draw.ellipse([size / 2 - w * 0.2, inner[3] - size * 0.12, size / 2 + w * 0.2, inner[3]],
                             fill=(210, 90, 100, 255))
        if shape == "G":  # upper teeth on the lower lip
            draw.rectangle([size / 2 - w * 0.3, size / 2 - size * 0.02, size / 2 + w * 0.3, size / 2 + size * 0.04],
                           fill=(245, 245, 235, 255))
        if rounding:
            draw.ellipse([size / 2 - w * 0.15, size / 2 - h * 0.25, size / 2 + w * 0.15, size / 2 + h * 0.25],
                         fill=(30, 8, 12, 255))
        out[shape] = np.asarray(img, np.uint8)
    return out


@dataclass(frozen=True)
class MouthRig:
    """One character's mouth on a keyframe: whose it is, where it goes, and the shapes to draw.

    ``box`` is the mouth on the keyframe (the first frame); ``None`` draws nothing (the mouth was to be
    found and no face was: ``note`` says why). ``track``, for a moving shot, is the box on each of its
    frames (``None`` where the track was lost: the mouth is hidden there).
    """

    speaker: str
    box: MouthBox | None
    mouths: MouthSet = None  # type: ignore[assignment]
    track: tuple[MouthBox | None, ...] = ()
    note: str = ""

    def __hash__(self):
        return hash((self.speaker, self.box, self.track))

    def box_at(self, index: int) -> MouthBox | None:
        """The mouth box on source frame ``index`` (past the track's end, its last box: sources hold their last frame)."""
        if not self.track:
            return self.box
        return self.track[min(index, len(self.track) - 1)]

    @property
    def lost_at(self) -> int | None:
        """The first frame of the track where the mouth is hidden, if any."""
        return next((i for i, b in enumerate(self.track) if b is None), None)


def composite_mouth(frame: np.ndarray, rig_images: dict[str, tuple[np.ndarray, np.ndarray]], shape: str,
                    box: MouthBox) -> np.ndarray:
    """``frame`` (a copy) with the scaled mouth for ``shape`` blended into ``box``.

    A box reaching past the frame's edge (a tracked face near it) draws only the part inside.
    """
    rgb, alpha = rig_images[shape]
    out = frame.copy()
    h, w = out.shape[:2]
    x0, y0 = max(box.x, 0), max(box.y, 0)
    x1, y1 = min(box.x + box.width, w), min(box.y + box.height, h)
    if x1 <= x0 or y1 <= y0:
        return out
    sx, sy = x0 - box.x, y0 - box.y
    rgb = rgb[sy:sy + y1 - y0, sx:sx + x1 - x0]
    alpha = alpha[sy:sy + y1 - y0, sx:sx + x1 - x0]
    region = out[y0:y1, x0:x1].astype(np.float32)
    out[y0:y1, x0:x1] = (region * (1 - alpha) + rgb * alpha + 0.5).astype(np.uint8)
    return out


RESTING_SHAPES = ("A", "X")  # shut or at rest: never opened wider or narrower


def opened_box(box: MouthBox, shape: str, openness: float) -> MouthBox:
    """Where ``shape`` is drawn when the mouth opens ``openness`` times as wide (a line's emotion): an open shape's
    box that many times as tall about its middle (a shut or resting mouth keeps ``box``)."""
    if openness == 1.0 or shape in RESTING_SHAPES:
        return box
    height = max(1, int(round(box.height * openness)))
    return MouthBox(box.x, box.y + (box.height - height) // 2, box.width, height)


class ScaledMouths:
    """A mouth set resized to each box size it is asked for, the latest few sizes kept (a tracked box
    changes size a little from frame to frame)."""

    def __init__(self, mouths: MouthSet, keep: int = 16):
        self.mouths = mouths
        self.keep = keep
        self._sizes: dict[tuple[int, int], dict[str, tuple[np.ndarray, np.ndarray]]] = {}

    def for_box(self, box: MouthBox) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        key = (box.width, box.height)
        found = self._sizes.pop(key, None)
        if found is None:
            found = scaled_mouths(self.mouths, box)
            if len(self._sizes) >= self.keep:
                self._sizes.pop(next(iter(self._sizes)))
        self._sizes[key] = found
        return found


def check_box(box: MouthBox, width: int, height: int) -> None:
    if box.width <= 0 or box.height <= 0:
        raise ValueError("the mouth box must have a positive size")
    if box.x < 0 or box.y < 0 or box.x + box.width > width or box.y + box.height > height:
        raise ValueError(f"the mouth box {box} does not fit in the {width}x{height} frame")


def scaled_mouths(mouths: MouthSet, box: MouthBox) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each mouth resized to the box once: RGB and alpha (0..1) ready to blend."""
    scaled = {}
    for shape, rgba in mouths.items():
        img = Image.fromarray(rgba, "RGBA").resize((box.width, box.height), Image.Resampling.LANCZOS)
        array = np.asarray(img, np.float32)
        scaled[shape] = (array[..., :3], array[..., 3:4] / 255.0)
    return scaled


def frame_count(cues: MouthCues, fps: float) -> int:
    """Frames the cues' audio fills at ``fps``: ``round(duration × fps)``, so a film of these frames runs as
    long as its sound (to half a frame), at least one frame."""
    return max(1, frames_for(cues.duration, fps))


def talking_frames(cues: MouthCues, mouths: MouthSet, base: Sequence[np.ndarray], box: MouthBox,
                   fps: float, count: int | None = None) -> Iterator[np.ndarray]:
    """Frames at ``fps``: frame n is base frame n (the last one held) with the mouth frame_shapes gives frame n."""
    h, w = base[0].shape[:2]
    check_box(box, w, h)
    scaled = scaled_mouths(mouths, box)
    shapes = frame_shapes(cues, fps, count if count is not None else frame_count(cues, fps))
    for n, shape in enumerate(shapes):
        yield composite_mouth(base[min(n, len(base) - 1)], scaled, shape, box)
