"""In-between frames from optical flow, with no model weights: the "flow" interpolation engine.

Why this shape: a learned interpolator (RIFE) needs torch and a weights file; this engine needs only
OpenCV, so every install (and the torch-free embedded engine) can raise a clip's frame rate.

How one in-between frame at time ``t`` (0 < t < 1) between frames A and B is made. Steps 1-2 are
done once per pair of frames, for any number of in-betweens (:class:`FlowPair`). Steps 1-3 and the
test of step 5 run at the working size (:func:`work_size`: half the frame's, a quarter of the work).

1. **Flow both ways.** OpenCV's DIS optical flow (MEDIUM preset, its finest level at the working size,
   fewer iterations: :data:`DIS_GRAD_ITERS` ...) gives ``F_ab`` (where each pixel of A is in B) and
   ``F_ba``, on luma. DIS smooths flow over 8-px patches, so each pixel then tries its neighbours'
   flows and keeps the one that matches best (:func:`_sharpen`), which puts motion edges back on the
   picture's edges.
2. **Occluded pixels.** The forward-backward check ``|F_ab(x) + F_ba(x + F_ab(x))|`` finds the pixels
   of A hidden in B (and vice versa). Their flow is a guess, so they take the flow of a nearby,
   similar-coloured pixel that is tracked both ways (:func:`_fill_occluded`).
3. **Motion at time t.** Each pixel of A is pushed ``t·F_ab`` along its path, carrying ``F_ab``; each
   pixel of B is pushed back ``(1-t)·F_ba``, carrying ``-F_ba`` (bilinear forward splatting). Where
   two surfaces land on one pixel, the one whose motion is confirmed wins (a soft z-buffer): a
   pixel's weight falls with its photometric error against the other frame and with its
   forward-backward error, since the surface being hidden is the one without a match. Pixels no
   source lands on are filled from their neighbours (push-pull). This motion is scaled up to the
   full size, and each pixel then tries its neighbours' motion and keeps the one under which A's and
   B's samples agree best (:func:`_refine`), putting motion edges back at full-size precision.
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

#: Per-pair work (flow, sharpening, occlusion, splatting) is done at this fraction of the frame's size
#: when that leaves at least :data:`MIN_WORK_SIDE` pixels on the short side; only the motion's
#: refinement (:func:`_refine`), the warp and the blend are at full size. Against the full-size engine
#: on the bench's clip, for 1/3 the time: -0.24 dB at 512×288, -0.55 dB at 640×360, all of it at motion
#: edges. The refinement wins back about 0.25 and 0.1 dB of these (on full-size motion it costs 0.5 dB).
WORK_SCALE = 0.5
MIN_WORK_SIDE = 96
#: Longest side of the working size (and of :func:`dense_flow`'s); larger frames work at a further reduced size.
MAX_FLOW_SIDE = 1024
#: Shortest frame side DIS can work on (its patches and pyramid need room).
MIN_FLOW_SIDE = 16
#: The engine's DIS settings: finest pyramid level (0: the working size itself), gradient-descent and
#: variational-refinement iterations, patch stride. On the bench's clip, MEDIUM's 25 / 5 / 3 scored
#: the same (within 0.01 dB) as these, for twice the flow time; :func:`_sharpen` does the fine work.
DIS_FINEST = 0
DIS_GRAD_ITERS = 12
DIS_VAR_ITERS = 0
DIS_STRIDE = 4
#: Rounds of :func:`_sharpen` (working size) and of :func:`_refine` (full size), and the neighbours
#: the latter tries (4-connected: 8 gained 0.03 dB for 1.6× its time).
SHARPEN_ROUNDS = 2
REFINE_ROUNDS = 2
REFINE_RING = ((1, 0), (-1, 0), (0, 1), (0, -1))
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


def _dis(tuned: bool = False):
    """A DIS flow estimator, MEDIUM preset; ``tuned``: with the engine's settings (:data:`DIS_FINEST` ...).

    Made per call: OpenCV's estimator keeps per-image state and is not safe to share across threads.
    """
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    if tuned:
        dis.setFinestScale(DIS_FINEST)
        dis.setGradientDescentIterations(DIS_GRAD_ITERS)
        dis.setVariationalRefinementIterations(DIS_VAR_ITERS)
        dis.setPatchStride(DIS_STRIDE)
    return dis


def _luma(frame: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)


def work_size(h: int, w: int) -> tuple[int, int]:
    """(width, height) at which a pair of ``h × w`` frames gets its per-pair work."""
    scale = WORK_SCALE if min(h, w) * WORK_SCALE >= MIN_WORK_SIDE else 1.0
    scale = min(scale, MAX_FLOW_SIDE / max(h, w))
    return max(8, round(w * scale)), max(8, round(h * scale))


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
        ga, gb = (cv2.resize(z, size, interpolation=cv2.INTER_AREA) for z in (ga, gb))
    flow = _dis().calc(ga, gb, None)
    if scale < 1.0:  # back to the frame's size, in its pixels
        flow = cv2.resize(flow, (w, h), interpolation=cv2.INTER_LINEAR) * np.float32((w / size[0], h / size[1]))
    return flow


def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    return tuple(np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32)))


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
    x0, y0 = np.floor(xs), np.floor(ys)
    fx, fy = xs - x0, ys - y0
    x0, y0 = x0.astype(np.int32), y0.astype(np.int32)
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


def _snap(flow: np.ndarray, cost, radii: Sequence[int], rounds: int, ring=None) -> np.ndarray:
    """Give each pixel a neighbour's flow (``radii`` px away, in the eight or ``ring`` directions) where ``cost`` says it fits better.

    ``cost(flow)`` scores a whole flow field per pixel (lower is better); each round tries every
    neighbour offset and keeps, per pixel, the cheapest. ``rounds`` let a good value travel further.
    """
    h, w = flow.shape[:2]
    pad = max(radii)
    for _ in range(rounds):
        padded = cv2.copyMakeBorder(flow, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        best, best_cost = flow.copy(), cost(flow)
        for radius in radii:
            for dx, dy in ring or _RING:
                top, left = pad + dy * radius, pad + dx * radius
                candidate = np.ascontiguousarray(padded[top: top + h, left: left + w])
                c = cost(candidate)
                cv2.copyTo(candidate, cv2.compare(c, best_cost, cv2.CMP_LT), best)
                best_cost = cv2.min(best_cost, c)
        flow = best
    return flow


def _patch_cost(diff: np.ndarray) -> np.ndarray:
    """Sum of absolute differences (uint8) over 5×5 patches, exact in uint16."""
    return cv2.boxFilter(diff, cv2.CV_16U, (5, 5), normalize=False, borderType=cv2.BORDER_REPLICATE)


def _sharpen(flow: np.ndarray, src: np.ndarray, dst: np.ndarray, grid2: np.ndarray) -> np.ndarray:
    """Snap each pixel's flow to a neighbour's where that neighbour's flow matches this pixel better.

    DIS smooths flow over patches, so near an object's edge the background gets some of the object's
    motion and vice versa. Trying the flows found a few pixels away (:data:`SHARPEN_RADII`), and
    keeping whichever makes the small patch around the pixel (``src``, uint8 luma) match ``dst`` best,
    moves the flow edge back onto the picture's edge.
    """
    def cost(f):
        warped = cv2.remap(dst, cv2.add(grid2, f), None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return _patch_cost(cv2.absdiff(warped, src))

    return _snap(flow, cost, SHARPEN_RADII, SHARPEN_ROUNDS)


def _refine(u: np.ndarray, t: float, luma_a: np.ndarray, luma_b: np.ndarray, grid2: np.ndarray) -> np.ndarray:
    """Snap the full-size motion at time t (upsampled from the working size) to the picture's edges.

    Each pixel tries its neighbours' motion (1 px away, :data:`REFINE_ROUNDS` rounds) and keeps the
    one under which A's sample (at ``x - t·u``) and B's (at ``x + (1-t)·u``) agree best over a
    5×5 patch: this restores the full-size precision of motion edges that the working size lost.
    """
    def cost(f):
        wa = cv2.remap(luma_a, cv2.scaleAdd(f, -t, grid2), None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        wb = cv2.remap(luma_b, cv2.scaleAdd(f, 1 - t, grid2), None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return _patch_cost(cv2.absdiff(wa, wb))

    return _snap(u, cost, (1,), REFINE_ROUNDS, REFINE_RING)


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
    pad = max(FILL_RADII)
    colour = cv2.GaussianBlur(image, (0, 0), 1.5)
    own = colour[ys, xs]
    best = flow[ys, xs].copy()
    best_d = np.full(len(ys), np.inf, np.float32)
    # padded copies (edges repeated) let every neighbour be indexed without clipping
    colour, padded_flow = (cv2.copyMakeBorder(z, pad, pad, pad, pad, cv2.BORDER_REPLICATE) for z in (colour, flow))
    padded_bad = cv2.copyMakeBorder(bad.view(np.uint8), pad, pad, pad, pad, cv2.BORDER_REPLICATE).view(bool)
    ys, xs = ys + pad, xs + pad
    for radius in FILL_RADII:
        for dx, dy in _RING:
            ny, nx = ys + dy * radius, xs + dx * radius
            d = np.abs(colour[ny, nx] - own).sum(axis=1) + 0.5 * radius
            take = ~padded_bad[ny, nx] & (d < best_d)
            best[take] = padded_flow[ny[take], nx[take]]
            best_d[take] = d[take]
    out = flow.copy()
    out[ys - pad, xs - pad] = best
    return out


class FlowPair:
    """The flows between two frames, computed once, from which any number of in-betweens are made."""

    def __init__(self, a: np.ndarray, b: np.ndarray):
        if a.shape != b.shape:
            raise ValueError(f"frames differ in size: {a.shape} and {b.shape}")
        self.a = np.ascontiguousarray(a[..., :3], dtype=np.uint8)
        self.b = np.ascontiguousarray(b[..., :3], dtype=np.uint8)
        h, w = self.a.shape[:2]
        size = work_size(h, w)
        self.full_grid = np.dstack(_grid(h, w))
        self.luma_a, self.luma_b = _luma(self.a), _luma(self.b)
        self.zoom = (w / size[0], h / size[1])
        small_a, small_b = self.a, self.b
        if size != (w, h):
            small_a, small_b = (cv2.resize(z, size, interpolation=cv2.INTER_AREA) for z in (self.a, self.b))
        self.grid = _grid(size[1], size[0])
        af, bf = small_a.astype(np.float32), small_b.astype(np.float32)
        luma_a, luma_b = _luma(small_a), _luma(small_b)
        if min(size) < MIN_FLOW_SIDE:
            f_ab = f_ba = np.zeros((size[1], size[0], 2), np.float32)
        else:
            grid2 = np.dstack(self.grid)
            f_ab = _sharpen(_dis(True).calc(luma_a, luma_b, None), luma_a, luma_b, grid2)
            f_ba = _sharpen(_dis(True).calc(luma_b, luma_a, None), luma_b, luma_a, grid2)
        self.f_ab = _fill_occluded(f_ab, _fb_error(f_ab, f_ba, self.grid), af)
        self.f_ba = _fill_occluded(f_ba, _fb_error(f_ba, f_ab, self.grid), bf)
        self.fb_a = _fb_error(self.f_ab, self.f_ba, self.grid)
        self.fb_b = _fb_error(self.f_ba, self.f_ab, self.grid)
        self.z_a = self._confidence(af, bf, self.f_ab, self.fb_a)
        self.z_b = self._confidence(bf, af, self.f_ba, self.fb_b)

    def _confidence(self, src: np.ndarray, dst: np.ndarray, f_sd: np.ndarray, fb: np.ndarray) -> np.ndarray:
        """Splat weight of each source pixel: high where its motion is confirmed by the other frame."""
        gx, gy = self.grid
        photo = np.abs(_remap(dst, gx + f_sd[..., 0], gy + f_sd[..., 1]) - src).mean(axis=2)
        photo = cv2.GaussianBlur(photo, (0, 0), 1.0)  # judge small patches, not single noisy pixels
        z = photo / PHOTO_SCALE + fb / FB_SCALE
        return np.exp(-np.minimum(z, 60.0))

    def motion_at(self, t: float) -> np.ndarray:
        """The A→B motion (working-size pixels) of the surface seen at each working pixel at time ``t``."""
        cov_a, tot_a, sum_a = _splat(t * self.f_ab, self.f_ab, self.z_a, self.grid)
        cov_b, tot_b, sum_b = _splat((1 - t) * self.f_ba, -self.f_ba, self.z_b, self.grid)
        total = tot_a + tot_b
        known = ((cov_a + cov_b) > 0.25) & (total > 0)
        motion = ((sum_a + sum_b) / np.where(known, total, 1.0)[..., None]).astype(np.float32)
        motion[~known] = 0.0
        return _push_pull(motion, known)

    def _weights(self, t: float, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """How much to trust A's and B's sample at each working pixel, given the motion ``u`` at time t.

        Each side's sample is rejected when that frame tracks the sampled point reliably (small
        forward-backward error) yet moves it differently from u: it shows another surface there.
        A point hidden in the other frame cannot be checked, so it is not rejected.
        """
        gx, gy = self.grid
        ax, ay = gx - t * u[..., 0], gy - t * u[..., 1]
        bx, by = gx + (1 - t) * u[..., 0], gy + (1 - t) * u[..., 1]
        sigma = CONSISTENCY_SIGMA + 0.05 * cv2.magnitude(u[..., 0], u[..., 1])  # long motions are measured less exactly
        g_a = self._kept(_remap(self.f_ab, ax, ay) - u, _remap(self.fb_a, ax, ay), sigma)
        g_b = self._kept(-_remap(self.f_ba, bx, by) - u, _remap(self.fb_b, bx, by), sigma)
        return (1 - t) * g_a, t * g_b

    def at(self, t: float) -> np.ndarray:
        """The in-between frame at time ``t`` (0 = A, 1 = B), ``uint8 [H, W, 3]``."""
        if t <= 0.0:
            return self.a.copy()
        if t >= 1.0:
            return self.b.copy()
        u = self.motion_at(t)
        w_a, w_b = self._weights(t, u)
        h, w = self.a.shape[:2]
        if u.shape[:2] != (h, w):
            u = cv2.resize(u, (w, h), interpolation=cv2.INTER_LINEAR) * np.float32(self.zoom)
            w_a, w_b = (cv2.resize(z, (w, h), interpolation=cv2.INTER_LINEAR) for z in (w_a, w_b))
            if min(h, w) >= MIN_FLOW_SIDE:
                u = _refine(u, t, self.luma_a, self.luma_b, self.full_grid)
        map_a, map_b = cv2.scaleAdd(u, -t, self.full_grid), cv2.scaleAdd(u, 1 - t, self.full_grid)
        # a sample from outside the frame is rejected
        w_a = w_a * _inside(map_a, w, h) + FALLBACK_WEIGHT * (1 - t)
        w_b = w_b * _inside(map_b, w, h) + FALLBACK_WEIGHT * t
        warped_a = cv2.remap(self.a, map_a, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        warped_b = cv2.remap(self.b, map_b, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return cv2.blendLinear(warped_a, warped_b, w_a, w_b)  # (w_a·A + w_b·B) / (w_a + w_b)

    @staticmethod
    def _kept(disagreement: np.ndarray, fb: np.ndarray, sigma: np.ndarray) -> np.ndarray:
        reliable = np.exp(-np.square(fb / FB_RELIABLE))
        agree = np.exp(-np.square(cv2.magnitude(disagreement[..., 0], disagreement[..., 1]) / sigma))
        return 1.0 - reliable * (1.0 - agree)


def _inside(sample_map: np.ndarray, w: int, h: int) -> np.ndarray:
    """1 where a two-channel sampling map points inside the ``w × h`` frame, else 0 (float32)."""
    inside = cv2.inRange(sample_map, (-0.5, -0.5), (w - 0.5, h - 0.5))
    return cv2.multiply(inside, 1 / 255, dtype=cv2.CV_32F)


def flow_between(a: np.ndarray, b: np.ndarray, times: Sequence[float]) -> list[np.ndarray]:
    """In-between frames of ``a`` and ``b`` at each of ``times`` (0..1), sharing one flow computation."""
    pair = FlowPair(a, b)
    return [pair.at(float(t)) for t in times]
