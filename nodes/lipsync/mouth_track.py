"""A mouth box followed through a moving shot with the pack's own optical flow.

Median flow (Kalal et al., "Forward-backward error", 2010) on the pack's DIS flow
(:func:`..film.optical_flow.dense_flow`): between each pair of frames, the flow both ways inside the
box; the pixels whose forward-backward error is small are the ones tracked; the box moves by their
median motion and scales by the median change of distances between them. A track is **lost**, and
the mouth hidden from that frame on, when

* too few pixels in the box track both ways (:data:`MIN_RELIABLE`): the face turned, was covered or
  replaced;
* the box's content no longer looks like the mouth did (normalised correlation with the first
  frame's patch, and with the previous frame's, under :data:`MIN_MATCH`);
* less than :data:`MIN_INSIDE` of the box is left in the frame.

A lost track never raises: the caller gets ``None`` boxes from then on and a warning with the timecode.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from ..film.optical_flow import dense_flow
from .mouths import MouthBox

log = logging.getLogger(__name__)

#: Forward-backward error (pixels) under which a pixel counts as tracked.
FB_OK = 1.0
#: Share of the box's pixels that must track both ways, or the track is lost.
MIN_RELIABLE = 0.25
#: Normalised correlation of the box's content with its look on the first (and the previous) frame
#: under which the track is lost.
MIN_MATCH = 0.3
#: Share of the box that must stay inside the frame.
MIN_INSIDE = 0.5
#: Flow is computed on a window around the box this many box sizes wide (cheaper than whole frames).
WINDOW = 4.0
#: Patch size (pixels) the box content is compared at.
PATCH = 32


def timecode(frame: int, fps: float) -> str:
    """``HH:MM:SS.mmm`` of frame ``frame`` at ``fps``."""
    ms = int(round(frame / fps * 1000)) if fps else 0
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


@dataclass(frozen=True)
class MouthTrack:
    """The mouth box on every frame of a shot; ``None`` from ``lost_at`` on (the mouth is hidden there)."""

    boxes: tuple[MouthBox | None, ...]
    lost_at: int | None = None
    reason: str = ""

    def at(self, index: int) -> MouthBox | None:
        """The box on frame ``index`` (a frame past the track's end has the last one: sources hold their last frame)."""
        return self.boxes[min(index, len(self.boxes) - 1)] if self.boxes else None


def _box_of(cx: float, cy: float, w: float, h: float) -> MouthBox:
    return MouthBox(int(round(cx - w / 2)), int(round(cy - h / 2)), max(1, int(round(w))), max(1, int(round(h))))


def _inside_share(cx: float, cy: float, w: float, h: float, width: int, height: int) -> float:
    x0, x1 = max(0.0, cx - w / 2), min(float(width), cx + w / 2)
    y0, y1 = max(0.0, cy - h / 2), min(float(height), cy + h / 2)
    return max(0.0, x1 - x0) * max(0.0, y1 - y0) / max(w * h, 1e-6)


def _patch(frame: np.ndarray, cx: float, cy: float, w: float, h: float) -> np.ndarray:
    """The box's content, resampled to ``PATCH``² grey, zero-mean and unit-norm (for correlation)."""
    grey = cv2.cvtColor(np.ascontiguousarray(frame[..., :3]), cv2.COLOR_RGB2GRAY).astype(np.float32)
    sx, sy = w / PATCH, h / PATCH
    m = np.float32([[sx, 0, cx - w / 2 + sx / 2 - 0.5], [0, sy, cy - h / 2 + sy / 2 - 0.5]])
    patch = cv2.warpAffine(grey, m, (PATCH, PATCH), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                           borderMode=cv2.BORDER_REPLICATE)
    patch -= patch.mean()
    norm = float(np.linalg.norm(patch))
    return patch / norm if norm > 1e-3 else patch


def _match(a: np.ndarray, b: np.ndarray) -> float:
    return float((a * b).sum())


def _step(a: np.ndarray, b: np.ndarray, cx: float, cy: float, w: float, h: float):
    """Motion of the box from frame ``a`` to ``b``: (dx, dy, scale, share of pixels tracked both ways)."""
    height, width = a.shape[:2]
    half_w, half_h = WINDOW * w / 2, WINDOW * h / 2
    wx0, wx1 = int(max(0, np.floor(cx - half_w))), int(min(width, np.ceil(cx + half_w)))
    wy0, wy1 = int(max(0, np.floor(cy - half_h))), int(min(height, np.ceil(cy + half_h)))
    wa = np.ascontiguousarray(a[wy0:wy1, wx0:wx1, :3])
    wb = np.ascontiguousarray(b[wy0:wy1, wx0:wx1, :3])
    forward = dense_flow(wa, wb)
    backward = dense_flow(wb, wa)
    bx0, bx1 = int(max(wx0, np.floor(cx - w / 2))), int(min(wx1, np.ceil(cx + w / 2)))
    by0, by1 = int(max(wy0, np.floor(cy - h / 2))), int(min(wy1, np.ceil(cy + h / 2)))
    if bx1 <= bx0 or by1 <= by0:
        return 0.0, 0.0, 1.0, 0.0
    ys, xs = np.mgrid[by0 - wy0:by1 - wy0, bx0 - wx0:bx1 - wx0]
    xs, ys = xs.ravel().astype(np.float32), ys.ravel().astype(np.float32)
    f = forward[ys.astype(int), xs.astype(int)]
    tx, ty = xs + f[:, 0], ys + f[:, 1]
    back = cv2.remap(backward, tx.reshape(1, -1), ty.reshape(1, -1), cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_CONSTANT, borderValue=(1e6, 1e6))[0]
    fb = np.hypot(f[:, 0] + back[:, 0], f[:, 1] + back[:, 1])
    good = fb < FB_OK
    share = float(good.mean())
    if good.sum() < 8:
        return 0.0, 0.0, 1.0, share
    gx, gy, gf = xs[good], ys[good], f[good]
    dx, dy = float(np.median(gf[:, 0])), float(np.median(gf[:, 1]))
    # scale: the median ratio of distances between pairs of tracked pixels, after and before
    rng = np.random.default_rng(0)
    n = len(gx)
    i, j = rng.integers(0, n, 400), rng.integers(0, n, 400)
    before = np.hypot(gx[i] - gx[j], gy[i] - gy[j])
    after = np.hypot(gx[i] + gf[i, 0] - gx[j] - gf[j, 0], gy[i] + gf[i, 1] - gy[j] - gf[j, 1])
    keep = before > 0.25 * min(w, h)
    scale = float(np.median(after[keep] / before[keep])) if keep.sum() >= 8 else 1.0
    return dx, dy, float(np.clip(scale, 0.8, 1.25)), share


def track_box(frames: Sequence[np.ndarray], box: MouthBox, fps: float | None = None, label: str = "") -> MouthTrack:
    """``box`` on ``frames[0]`` followed through ``frames`` (RGB uint8 [H, W, 3] each).

    With ``fps`` a lost track's warning gives its timecode; ``label`` names the shot and character in it.
    """
    if not len(frames):
        return MouthTrack(())
    cx, cy = box.x + box.width / 2, box.y + box.height / 2
    w, h = float(box.width), float(box.height)
    boxes: list[MouthBox | None] = [box]
    first = _patch(frames[0], cx, cy, w, h)
    previous = first
    for index in range(1, len(frames)):
        a, b = frames[index - 1], frames[index]
        dx, dy, scale, share = _step(a, b, cx, cy, w, h)
        reason = ""
        if share < MIN_RELIABLE:
            reason = f"only {share:.0%} of the mouth box tracked both ways"
        else:
            ncx, ncy, nw, nh = cx + dx, cy + dy, w * scale, h * scale
            height, width = b.shape[:2]
            inside = _inside_share(ncx, ncy, nw, nh, width, height)
            if inside < MIN_INSIDE:
                reason = f"the mouth box left the frame ({inside:.0%} inside)"
            else:
                patch = _patch(b, ncx, ncy, nw, nh)
                match = max(_match(patch, first), _match(patch, previous))
                if match < MIN_MATCH:
                    reason = f"the mouth box no longer looks like the mouth (correlation {match:.2f})"
                else:
                    cx, cy, w, h, previous = ncx, ncy, nw, nh, patch
                    boxes.append(_box_of(cx, cy, w, h))
                    continue
        where = f"{timecode(index, fps)} (frame {index})" if fps else f"frame {index}"
        log.warning("%smouth track lost at %s: %s; the mouth is hidden from there",
                    f"{label}: " if label else "", where, reason)
        boxes.extend([None] * (len(frames) - index))
        return MouthTrack(tuple(boxes), index, reason)
    return MouthTrack(tuple(boxes))
