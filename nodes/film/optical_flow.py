"""In-between frames from optical flow, with no model weights: the "flow" interpolation engine.

Why this shape: a learned interpolator (RIFE) needs torch and a weights file; this engine needs only
OpenCV, so every install (and the torch-free embedded engine) can raise a clip's frame rate.

How one in-between frame at time ``t`` (0 < t < 1) between frames A and B is made:

1. **Flow both ways.** OpenCV's DIS optical flow (MEDIUM preset) gives ``F_ab`` (where each pixel of
   A is in B) and ``F_ba``, on luma. Frames longer than :data:`MAX_FLOW_SIDE` get their flow at a
   reduced size, scaled up: DIS's cost grows with the pixel count. DIS smooths flow over 8-px
   patches, so each pixel then tries its neighbours' flows and keeps the one that matches best
   (:func:`_sharpen`), which puts motion edges back on the picture's edges.
2. **Occluded pixels.** The forward-backward check ``|F_ab(x) + F_ba(x + F_ab(x))|`` finds the pixels
   of A hidden in B (and vice versa). Their flow is a guess, so they take the flow of a nearby,
   similar-coloured pixel that is tracked both ways (:func:`_fill_occluded`).
3. **Motion at time t.** Each pixel of A is pushed ``t·F_ab`` along its path, carrying ``F_ab``; each
   pixel of B is pushed back ``(1-t)·F_ba``, carrying ``-F_ba`` (bilinear forward splatting). Where
   two surfaces land on one pixel, the one whose motion is confirmed wins (a soft z-buffer): a
   pixel's weight falls with its photometric error against the other frame and with its
   forward-backward error, since the surface being hidden is the one without a match. Pixels no
   source lands on are filled from their neighbours (push-pull).
4. **Backward warping.** With ``u`` the motion at time ``t``, A is sampled at ``x - t·u`` and B at
   ``x + (1-t)·u`` (``cv2.remap``, bilinear).
5. **Occlusion-aware blending.** The forward-backward check carried to time t: A's sample is
   rejected when A tracks the sampled point reliably (small forward-backward error) yet moves it
   differently from ``u`` — A shows another surface there, the one in front. A point A cannot track
   (hidden in B) is not rejected. Likewise for B. Weights are ``(1-t)·g_a`` and ``t·g_b``, so a region
   being uncovered comes from the frame that shows it, a region being covered from the frame that
   still shows it, and everything else from both, the nearer frame weighing more. A sample from
   outside the frame is rejected.
6. **Fallback.** A small constant weight (:data:`FALLBACK_WEIGHT`) of the linear blend of the two
   warped samples is always in the mix: negligible where either sample is kept, and the result
   where both are rejected (the flow disagrees with both frames). On the bench's clip this
   fallback scores 0.7 dB better than cross-fading the unwarped frames.
"""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

#: Longest frame side at which flow is computed; larger frames get flow at a reduced size.
MAX_FLOW_SIDE = 1024
#: Shortest frame side DIS can work on (its patches and pyramid need room).
MIN_FLOW_SIDE = 16
#: Softness of the occlusion test, in pixels of disagreement between two flows.
CONSISTENCY_SIGMA = 1.5
#: Weight of the plain blend of the two warps in every pixel's mix (the fallback where both are rejected).
FALLBACK_WEIGHT = 0.05
#: Forward-backward error (pixels) below which a pixel counts as tracked in both frames.
FB_RELIABLE = 1.0
#: Neighbour distances (pixels) tried when snapping flow to edges, and when filling occluded pixels.
SHARPEN_RADII = (2, 5)
FILL_RADII = (3, 6, 12)
#: Splat z-buffer: weight falls by e per this many grey levels of photometric error ...
PHOTO_SCALE = 4.0
#: ... and per this many pixels of forward-backward flow error.
FB_SCALE = 0.5


def _dis():
    """A DIS flow estimator, MEDIUM preset. On the bench's clip, keeping the full-resolution pyramid
    level gained 0.9 dB for 7× the flow time; sharpening the flow's edges (:func:`_sharpen`) gains
    more (1.2 dB) for less.

    Made per call: OpenCV's estimator keeps per-image state and is not safe to share across threads.
    """
    return cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)


def _luma(frame: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)


def dense_flow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """DIS flow from RGB frame ``a`` to ``b``: ``float32 [H, W, 2]`` in pixels (dx, dy).

    Frames under :data:`MIN_FLOW_SIDE` pixels on a side (thumbnails, test patterns) are too small for
    DIS's patches; they get no motion, so their in-betweens are blends.
    """
    h, w = a.shape[:2]
    if min(h, w) < MIN_FLOW_SIDE:
        return np.zeros((h, w, 2), np.float32)
    ga, gb = _luma(a), _luma(b)
    scale = min(1.0, MAX_FLOW_SIDE / max(h, w))
    if scale < 1.0:
        size = (max(8, round(w * scale)), max(8, round(h * scale)))
        ga = cv2.resize(ga, size, interpolation=cv2.INTER_AREA)
        gb = cv2.resize(gb, size, interpolation=cv2.INTER_AREA)
    flow = _dis().calc(ga, gb, None)
    if scale < 1.0:
        sx, sy = w / flow.shape[1], h / flow.shape[0]
        flow = cv2.resize(flow, (w, h), interpolation=cv2.INTER_LINEAR)
        flow[..., 0] *= sx
        flow[..., 1] *= sy
    return flow


def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return gx, gy


def _remap(image: np.ndarray, mx: np.ndarray, my: np.ndarray) -> np.ndarray:
    return cv2.remap(image, mx, my, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _splat(shift: np.ndarray, values: np.ndarray, weights: np.ndarray, grid) -> tuple[np.ndarray, ...]:
    """Bilinear forward splat: each pixel moves by ``shift`` carrying ``values`` ([H,W,2]) with ``weights``.

    Returns the coverage (how much source landed on each pixel, unweighted), the summed weights and
    the weighted sum of the values, all float64 (tiny z-buffer weights must not underflow).
    """
    gx, gy = grid
    h, w = gx.shape
    xs = (gx + shift[..., 0]).ravel()
    ys = (gy + shift[..., 1]).ravel()
    x0 = np.floor(xs)
    y0 = np.floor(ys)
    fx = xs - x0
    fy = ys - y0
    x0 = x0.astype(np.int32)
    y0 = y0.astype(np.int32)
    n = h * w
    weights = weights.ravel().astype(np.float64)
    vx, vy = values[..., 0].ravel(), values[..., 1].ravel()
    cover, total, sum_x, sum_y = (np.zeros(n) for _ in range(4))
    for dx, dy, k in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
        xi, yi = x0 + dx, y0 + dy
        k[(xi < 0) | (xi >= w) | (yi < 0) | (yi >= h)] = 0.0  # off the frame: no weight (cheaper than filtering)
        index = np.clip(yi, 0, h - 1) * w + np.clip(xi, 0, w - 1)
        weighted = k * weights
        cover += np.bincount(index, k, n)  # one corner at a time: peak memory a few frames' worth
        total += np.bincount(index, weighted, n)
        sum_x += np.bincount(index, weighted * vx, n)
        sum_y += np.bincount(index, weighted * vy, n)
    shape = (h, w)
    return cover.reshape(shape), total.reshape(shape), np.stack([sum_x.reshape(shape), sum_y.reshape(shape)], -1)


def _push_pull(values: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Fill pixels where ``known`` is 0 from their known neighbours, nearest first (a push-pull pyramid).

    Known pixels keep their values. Each level halves the image with known-weighted averages, so a
    hole is filled by the closest ring of known motion around it, smoothly.
    """
    if known.all():
        return values
    h, w = known.shape
    weight = known.astype(np.float32)
    levels = [(values * weight[..., None], weight)]
    while min(levels[-1][1].shape) > 2 and (levels[-1][1] <= 1e-6).any():
        sv, sw = levels[-1]
        size = (max(1, sv.shape[1] // 2), max(1, sv.shape[0] // 2))
        levels.append((cv2.resize(sv, size, interpolation=cv2.INTER_AREA),
                       cv2.resize(sw, size, interpolation=cv2.INTER_AREA)))
    filled_v, filled_w = levels[-1]
    estimate = filled_v / np.maximum(filled_w, 1e-6)[..., None]
    for sv, sw in reversed(levels[:-1]):
        up = cv2.resize(estimate, (sw.shape[1], sw.shape[0]), interpolation=cv2.INTER_LINEAR)
        own = sv / np.maximum(sw, 1e-6)[..., None]
        alpha = np.clip(sw, 0.0, 1.0)[..., None]
        estimate = alpha * own + (1 - alpha) * up
    out = values.copy()
    hole = known <= 0
    out[hole] = estimate[hole]
    return out


_RING = ((1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (1, -1), (-1, 1), (-1, -1))


def _sharpen(flow: np.ndarray, src: np.ndarray, dst: np.ndarray, grid) -> np.ndarray:
    """Snap each pixel's flow to a neighbour's where that neighbour's flow matches this pixel better.

    DIS smooths flow over patches, so near an object's edge the background gets some of the object's
    motion and vice versa. Trying the flows found a few pixels away in eight directions, and keeping
    whichever makes the small patch around the pixel (``src``, luma) match ``dst`` best, moves the flow
    edge back onto the picture's edge. Two rounds let a good value travel up to ``2·max(SHARPEN_RADII)``.
    """
    h, w = src.shape
    pad = max(SHARPEN_RADII)
    grid2 = np.dstack(grid)  # remap takes one two-channel map: fewer temporaries per candidate

    def cost(f):
        warped = cv2.remap(dst, cv2.add(grid2, f), None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return cv2.blur(cv2.absdiff(warped, src), (5, 5))

    for _ in range(2):
        padded = cv2.copyMakeBorder(flow, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        best, best_cost = flow.copy(), cost(flow)
        for radius in SHARPEN_RADII:
            for dx, dy in _RING:
                top, left = pad + dy * radius, pad + dx * radius
                candidate = np.ascontiguousarray(padded[top: top + h, left: left + w])
                c = cost(candidate)
                cv2.copyTo(candidate, cv2.compare(c, best_cost, cv2.CMP_LT), best)
                best_cost = cv2.min(best_cost, c)
        flow = best
    return flow


def _fb_error(f_sd: np.ndarray, f_ds: np.ndarray, grid) -> np.ndarray:
    """Forward-backward error ``|F_sd(x) + F_ds(x + F_sd(x))|``, pixels: large where x is hidden in the other frame."""
    gx, gy = grid
    back = _remap(f_ds, gx + f_sd[..., 0], gy + f_sd[..., 1])
    return cv2.magnitude(f_sd[..., 0] + back[..., 0], f_sd[..., 1] + back[..., 1])


def _fill_occluded(flow: np.ndarray, fb: np.ndarray, image: np.ndarray) -> np.ndarray:
    """Give pixels hidden in the other frame the motion of a nearby, similar-coloured, tracked pixel.

    A pixel that is about to be covered has no match in the other frame, so its flow is a guess
    (usually smeared from the object covering it). Its true motion is its own surface's: so it takes
    the flow of a reliable pixel a few pixels away (rings of :data:`FILL_RADII`) whose colour is
    closest to its own, nearer ones preferred. Only the unreliable pixels (a few percent) are visited.
    """
    bad = fb > FB_RELIABLE
    ys, xs = np.nonzero(bad)
    if not len(ys):
        return flow
    h, w = fb.shape
    colour = cv2.GaussianBlur(image, (0, 0), 1.5)
    own = colour[ys, xs]
    best = flow[ys, xs].copy()
    best_d = np.full(len(ys), np.inf, np.float32)
    for radius in FILL_RADII:
        for dx, dy in _RING:
            ny, nx = np.clip(ys + dy * radius, 0, h - 1), np.clip(xs + dx * radius, 0, w - 1)
            d = np.abs(colour[ny, nx] - own).sum(axis=1) + 0.5 * radius
            take = ~bad[ny, nx] & (d < best_d)
            best[take] = flow[ny[take], nx[take]]
            best_d[take] = d[take]
    out = flow.copy()
    out[ys, xs] = best
    return out


class FlowPair:
    """The flows between two frames, computed once, from which any number of in-betweens are made."""

    def __init__(self, a: np.ndarray, b: np.ndarray):
        if a.shape != b.shape:
            raise ValueError(f"frames differ in size: {a.shape} and {b.shape}")
        self.a = np.ascontiguousarray(a[..., :3], dtype=np.uint8)
        self.b = np.ascontiguousarray(b[..., :3], dtype=np.uint8)
        h, w = self.a.shape[:2]
        self.grid = _grid(h, w)
        self.af = self.a.astype(np.float32)
        self.bf = self.b.astype(np.float32)
        luma_a, luma_b = _luma(self.a).astype(np.float32), _luma(self.b).astype(np.float32)
        f_ab = _sharpen(dense_flow(self.a, self.b), luma_a, luma_b, self.grid)
        f_ba = _sharpen(dense_flow(self.b, self.a), luma_b, luma_a, self.grid)
        self.f_ab = _fill_occluded(f_ab, _fb_error(f_ab, f_ba, self.grid), self.af)
        self.f_ba = _fill_occluded(f_ba, _fb_error(f_ba, f_ab, self.grid), self.bf)
        self.fb_a = _fb_error(self.f_ab, self.f_ba, self.grid)
        self.fb_b = _fb_error(self.f_ba, self.f_ab, self.grid)
        self.z_a = self._confidence(self.af, self.bf, self.f_ab, self.fb_a)
        self.z_b = self._confidence(self.bf, self.af, self.f_ba, self.fb_b)

    def _confidence(self, src: np.ndarray, dst: np.ndarray, f_sd: np.ndarray, fb: np.ndarray) -> np.ndarray:
        """Splat weight of each source pixel: high where its motion is confirmed by the other frame."""
        gx, gy = self.grid
        photo = np.abs(_remap(dst, gx + f_sd[..., 0], gy + f_sd[..., 1]) - src).mean(axis=2)
        photo = cv2.GaussianBlur(photo, (0, 0), 1.0)  # judge small patches, not single noisy pixels
        z = photo / PHOTO_SCALE + fb / FB_SCALE
        return np.exp(-np.minimum(z, 60.0))

    def motion_at(self, t: float) -> np.ndarray:
        """The A→B motion of the surface seen at each pixel at time ``t``."""
        cov_a, tot_a, sum_a = _splat(t * self.f_ab, self.f_ab, self.z_a, self.grid)
        cov_b, tot_b, sum_b = _splat((1 - t) * self.f_ba, -self.f_ba, self.z_b, self.grid)
        total = tot_a + tot_b
        known = ((cov_a + cov_b) > 0.25) & (total > 0)
        motion = ((sum_a + sum_b) / np.where(known, total, 1.0)[..., None]).astype(np.float32)
        motion[~known] = 0.0
        return _push_pull(motion, known)

    def at(self, t: float) -> np.ndarray:
        """The in-between frame at time ``t`` (0 = A, 1 = B), ``uint8 [H, W, 3]``."""
        if t <= 0.0:
            return self.a.copy()
        if t >= 1.0:
            return self.b.copy()
        gx, gy = self.grid
        h, w = gx.shape
        u = self.motion_at(t)
        ax, ay = gx - t * u[..., 0], gy - t * u[..., 1]
        bx, by = gx + (1 - t) * u[..., 0], gy + (1 - t) * u[..., 1]
        warped_a = _remap(self.af, ax, ay)
        warped_b = _remap(self.bf, bx, by)
        # Each side's sample is rejected when that frame tracks the sampled point reliably (small
        # forward-backward error) yet moves it differently from u: it shows another surface there.
        # A point hidden in the other frame cannot be checked, so it is not rejected.
        sigma = CONSISTENCY_SIGMA + 0.05 * cv2.magnitude(u[..., 0], u[..., 1])  # long motions are measured less exactly
        g_a = self._kept(_remap(self.f_ab, ax, ay) - u, _remap(self.fb_a, ax, ay), sigma) * _inside(ax, ay, w, h)
        g_b = self._kept(-_remap(self.f_ba, bx, by) - u, _remap(self.fb_b, bx, by), sigma) * _inside(bx, by, w, h)
        w_a = ((1 - t) * g_a)[..., None]
        w_b = (t * g_b)[..., None]
        linear = (1 - t) * warped_a + t * warped_b
        out = (w_a * warped_a + w_b * warped_b + FALLBACK_WEIGHT * linear) / (w_a + w_b + FALLBACK_WEIGHT)
        return np.clip(out + 0.5, 0, 255).astype(np.uint8)

    @staticmethod
    def _kept(disagreement: np.ndarray, fb: np.ndarray, sigma: np.ndarray) -> np.ndarray:
        reliable = np.exp(-np.square(fb / FB_RELIABLE))
        agree = np.exp(-np.square(cv2.magnitude(disagreement[..., 0], disagreement[..., 1]) / sigma))
        return 1.0 - reliable * (1.0 - agree)


def _inside(x: np.ndarray, y: np.ndarray, w: int, h: int) -> np.ndarray:
    return ((x >= -0.5) & (x <= w - 0.5) & (y >= -0.5) & (y <= h - 0.5)).astype(np.float32)


def flow_between(a: np.ndarray, b: np.ndarray, times: Sequence[float]) -> list[np.ndarray]:
    """In-between frames of ``a`` and ``b`` at each of ``times`` (0..1), sharing one flow computation."""
    pair = FlowPair(a, b)
    return [pair.at(float(t)) for t in times]
