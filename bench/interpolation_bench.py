"""Frame interpolation quality and speed: the pack's flow engine against ffmpeg's minterpolate and a cross-fade.

    python bench/interpolation_bench.py [--width 640 --height 360 --frames 49 --seed 7] [--rife]

No real footage ships offline, so the clip is rendered procedurally, photo-like: 1/f ("pink") noise
textures, the statistics of natural images, in several independently moving layers over a panning,
slowly zooming background: rotating shapes with soft edges that pass in front of one another, so
the clip has occlusion, disocclusion and content entering at the frame's edge. Every frame is
rendered from the same continuous scene, so the frames between two others are known exactly.

The clip is rendered at twice the source rate; every other frame is held out, the rest are
interpolated back at factor 2, and the reconstructions of the held-out frames are scored:
PSNR (dB, on all three channels) and SSIM (Wang et al. 2004: 11×11 Gaussian window σ=1.5,
K1=0.01, K2=0.03, L=255, on each RGB channel, averaged). Speed is held-out frames made per second
of wall time (minterpolate's figure includes its piping through ffmpeg, and is an upper bound on its
per-frame cost since it also passes the source frames through). ffmpeg comes from the
``imageio-ffmpeg`` wheel (the bench's only extra; ``pip install imageio-ffmpeg``).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import time

import cv2
import numpy as np

from animstudio.nodes.film.interpolation import interpolate_frames

#: The flow engine's seconds per in-between frame before the speed-up (half-size working resolution,
#: full-size refinement), measured 2026-12-06 on the 2-core dev machine with this bench (seed 7):
#: at 512x288 (``--width 512 --height 288``) and at the default 640x360.
BASELINE_SECONDS = {(512, 288): 0.159, (640, 360): 0.294}
#: The goal: seconds per 512-px in-between frame on 2 cores.
GOAL_SECONDS = 0.06


# --- the scene -------------------------------------------------------------------------------------------

def pink_texture(rng: np.random.Generator, height: int, width: int, beta: float = 1.0) -> np.ndarray:
    """A ``float32 [H, W, 3]`` texture in 0..1 with a 1/f^beta amplitude spectrum, like a photograph's."""
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    f = np.sqrt(fx * fx + fy * fy)
    f[0, 0] = 1.0
    amplitude = f ** -beta
    amplitude[0, 0] = 0.0
    amplitude[f > 0.25] *= np.exp(-((f[f > 0.25] - 0.25) / 0.05) ** 2)  # no detail finer than the pixels hold
    channels = []
    for _ in range(3):
        phase = rng.uniform(0, 2 * np.pi, amplitude.shape)
        field = np.fft.irfft2(amplitude * np.exp(1j * phase), s=(height, width))
        channels.append(field / field.std())
    luma, c1, c2 = channels
    mix = np.array([[1.0, 0.35, 0.0], [1.0, -0.2, 0.25], [1.0, -0.1, -0.4]], np.float64)  # mostly luma, some colour
    rgb = np.stack([luma, c1, c2], -1) @ mix.T
    base = rng.uniform(0.35, 0.65, 3)
    return np.clip(base + 0.16 * rgb, 0, 1).astype(np.float32)


def _affine_map(height, width, centre, angle, scale, source_centre):
    """Sampling maps that show a texture rotated by ``angle``, scaled and centred at ``centre``."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    c, s = np.cos(-angle), np.sin(-angle)
    dx, dy = (x - centre[0]) / scale, (y - centre[1]) / scale
    map_x = source_centre[0] + c * dx - s * dy
    map_y = source_centre[1] + s * dx + c * dy
    return map_x.astype(np.float32), map_y.astype(np.float32)


class Scene:
    """A continuous scene: ``frame(time)`` renders it at any time, in source frames from 0 to ``duration``."""

    def __init__(self, width: int, height: int, seed: int, duration: float = 24.0):
        rng = np.random.default_rng(seed)
        self.width, self.height = width, height
        self.background = pink_texture(rng, height * 2, width * 2)
        self.layers = []
        for index in range(4):
            size = rng.uniform(0.16, 0.3) * height
            side = int(size * 2.6) // 2 * 2 + 2
            texture = np.clip(pink_texture(rng, side, side) + rng.uniform(-0.2, 0.2, 3).astype(np.float32), 0, 1)
            heading = rng.uniform(0, 2 * np.pi)
            velocity = rng.uniform(4, 11) * np.array([np.cos(heading), np.sin(heading)])
            # each layer passes a point inside the frame mid-clip, so it crosses the picture (and its edges)
            middle = np.array([rng.uniform(0.2, 0.8) * width, rng.uniform(0.2, 0.8) * height])
            self.layers.append(dict(texture=texture, size=size, start=middle - velocity * duration / 2,
                                    velocity=velocity, spin=rng.uniform(-0.05, 0.05), shape=index % 3,
                                    aspect=rng.uniform(0.6, 1.0)))
        self.pan = rng.uniform(3, 6) * np.array([1.0, rng.uniform(-0.4, 0.4)])

    def frame(self, t: float) -> np.ndarray:
        h, w = self.height, self.width
        bh, bw = self.background.shape[:2]
        zoom = 1.0 + 0.004 * t  # a slow push-in on top of the pan
        mx, my = _affine_map(h, w, (w / 2, h / 2), 0.0, zoom,
                             (bw / 2 - w * 0.3 + self.pan[0] * t, bh / 2 + self.pan[1] * t))
        image = cv2.remap(self.background, mx, my, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
        for layer in self.layers:  # later layers pass in front of earlier ones
            position = layer["start"] + layer["velocity"] * t
            th, tw = layer["texture"].shape[:2]
            mx, my = _affine_map(h, w, position, layer["spin"] * t, 1.0, (tw / 2, th / 2))
            colour = cv2.remap(layer["texture"], mx, my, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
            u = (mx - tw / 2) / layer["size"]
            v = (my - th / 2) / (layer["size"] * layer["aspect"])
            if layer["shape"] == 0:      # ellipse
                d = np.sqrt(u * u + v * v)
            elif layer["shape"] == 1:    # rounded rectangle
                d = (np.abs(u) ** 4 + np.abs(v) ** 4) ** 0.25
            else:                        # a lobed blob
                d = np.sqrt(u * u + v * v) / (1 + 0.2 * np.cos(3 * np.arctan2(v, u)))
            alpha = np.clip((1.0 - d) * layer["size"] + 0.5, 0, 1)[..., None]  # one-pixel antialiased edge
            image = image * (1 - alpha) + colour * alpha
        return (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)


# --- scores ----------------------------------------------------------------------------------------------

def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM (Gaussian window 11×11, σ=1.5; K1=0.01, K2=0.03, L=255), averaged over the RGB channels."""
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def blur(z):
        return cv2.GaussianBlur(z, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)

    scores = []
    for ch in range(a.shape[2]):
        x = a[..., ch].astype(np.float64)
        y = b[..., ch].astype(np.float64)
        mx, my = blur(x), blur(y)
        sxx = blur(x * x) - mx * mx
        syy = blur(y * y) - my * my
        sxy = blur(x * y) - mx * my
        m = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
        scores.append(m[5:-5, 5:-5].mean())  # the window's valid region, as Wang et al.'s reference code does
    return float(np.mean(scores))


# --- the contenders --------------------------------------------------------------------------------------

def run_flow(sources: list[np.ndarray]) -> list[np.ndarray]:
    out = list(interpolate_frames(iter(sources), 2, engine="flow"))
    return out[1::2]  # the in-betweens: the held-out frames' reconstructions


def run_rife(sources: list[np.ndarray]) -> list[np.ndarray]:
    out = list(interpolate_frames(iter(sources), 2, engine="rife"))
    return out[1::2]


def run_linear(sources: list[np.ndarray]) -> list[np.ndarray]:
    return [((a.astype(np.uint16) + b + 1) // 2).astype(np.uint8) for a, b in zip(sources, sources[1:])]


def run_minterpolate(sources: list[np.ndarray]) -> list[np.ndarray]:
    """ffmpeg's motion-compensated interpolation (bidirectional ME, adaptive OBMC, variable-size blocks)."""
    import imageio_ffmpeg

    h, w = sources[0].shape[:2]
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error",
               "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", "12", "-i", "-",
               "-vf", "minterpolate=fps=24:mi_mode=mci:mc_mode=aobmc:me_mode=bidir:vsbmc=1:scd=none",
               "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    # minterpolate needs frames after the last pair to emit its in-betweens: pad with the last frame
    padded = sources + [sources[-1]] * 2
    result = subprocess.run(command, input=b"".join(f.tobytes() for f in padded), capture_output=True, check=True)
    frames = np.frombuffer(result.stdout, np.uint8).reshape(-1, h, w, 3)
    if len(frames) < 2 * len(sources) - 1:
        raise RuntimeError(f"minterpolate made {len(frames)} frames from {len(sources)}")
    for i in range(len(sources)):  # even outputs are the sources (through YUV, ~52 dB), else alignment is off
        if psnr(frames[2 * i], sources[i]) < 45:
            raise RuntimeError(f"minterpolate output misaligned at source {i}")
    return list(frames[1:2 * len(sources) - 1:2])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--frames", type=int, default=49, help="frames rendered at the doubled rate (odd)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rife", action="store_true",
                        help="also score the RIFE engine (needs torch and weights, see animstudio.nodes.film.rife)")
    args = parser.parse_args()
    scene = Scene(args.width, args.height, args.seed, duration=(args.frames | 1) // 2)
    truth = [scene.frame(i / 2) for i in range(args.frames | 1)]
    sources, held_out = truth[0::2], truth[1::2]
    print(f"clip: {args.width}x{args.height}, {len(sources)} source frames, {len(held_out)} held out; "
          f"{os.cpu_count()} CPU cores; OpenCV {cv2.__version__}")
    contenders = [("flow (animstudio, DIS)", run_flow), ("ffmpeg minterpolate", run_minterpolate),
                  ("linear blend", run_linear)]
    if args.rife:
        contenders.insert(1, ("rife (animstudio)", run_rife))
    rows = []
    for name, fn in contenders:
        started = time.perf_counter()
        made = fn(sources)
        seconds = time.perf_counter() - started
        assert len(made) == len(held_out), (name, len(made))
        p = [psnr(m, t) for m, t in zip(made, held_out)]
        s = [ssim(m, t) for m, t in zip(made, held_out)]
        rows.append((name, np.mean(p), np.min(p), np.mean(s), len(made) / seconds))
    print(f"{'method':<24} {'PSNR dB':>8} {'worst':>7} {'SSIM':>7} {'frames/s':>9} {'s/frame':>8}")
    for name, mean_p, min_p, mean_s, fps in rows:
        print(f"{name:<24} {mean_p:8.2f} {min_p:7.2f} {mean_s:7.4f} {fps:9.1f} {1 / fps:8.4f}")
    flow_seconds = 1 / rows[0][4]
    baseline = BASELINE_SECONDS.get((args.width, args.height))
    before = f"{baseline:.3f} s before the speed-up" if baseline else "no baseline measured at this size"
    print(f"flow engine: {flow_seconds:.3f} s per in-between frame at {args.width}x{args.height} ({before}; "
          f"goal {GOAL_SECONDS} s at 512 px on 2 cores)")


if __name__ == "__main__":
    main()
