"""Save Film's streamed encode against the ffmpeg command line encoding the same frames with the same settings.

    python bench/encode_bench.py [--seconds 60] [--height 1080] [--fps 24]

The cut: 5-second shots of generated panels with camera moves, joined by cuts and dissolves (the frames the
Film draws). Save Film's path (``render_film``: frames drawn in a thread ahead of PyAV's libx264, veryfast, CRF 18,
yuv420p, BT.709 tags) is timed end to end; then the very same frames, drawn the same way, are piped as raw RGB into
the ffmpeg binary of imageio-ffmpeg with the same encoder settings. Both pay for drawing the frames, both overlap it
with encoding (ffmpeg in its own process). Also printed: drawing the frames alone, and each against real time.
Goal: Save Film at 0.8x ffmpeg's speed or better. Figures only; nothing here is a test.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

from animstudio.nodes.film.clips import Film, Transition, still_clip
from animstudio.nodes.film.transitions import iter_film_frames
from animstudio.nodes.film.cut import render_film

MOVES = ["zoom_in", "pan_left", "static", "dolly_in", "pan_right", "zoom_out"]


def make_film(seconds: float, width: int, height: int, fps: int) -> Film:
    rng = np.random.default_rng(7)
    film = Film()
    for n in range(max(1, int(seconds / 5))):
        small = rng.integers(0, 255, (9, 16, 3), dtype=np.uint8)
        panel = np.asarray(Image.fromarray(small).resize((width, height), Image.Resampling.BICUBIC))
        transition = Transition("dissolve", 0.5) if n % 2 else Transition("cut")
        film = film.append(still_clip(panel, width, height, fps, 5.0 + (0.5 if n % 2 else 0.0), MOVES[n % 6],
                                      label=f"s{n}"), transition)
    return film


def ffmpeg_encode(film: Film, target: Path) -> float:
    first = film.clips[0]
    return ffmpeg_encode_frames(iter_film_frames(film), first.width, first.height, first.fps, target)


def ffmpeg_encode_frames(frames, width: int, height: int, rate, target: Path) -> float:
    """Seconds the ffmpeg CLI (imageio-ffmpeg's binary) takes to encode ``frames`` (RGB, made as they are piped)
    with Save Film's settings: libx264 veryfast, CRF 18, yuv420p, BT.709 tags."""
    import imageio_ffmpeg

    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24",
               "-s", f"{width}x{height}", "-r", str(rate), "-i", "-", "-c:v", "libx264",
               "-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p", "-colorspace", "bt709",
               "-color_primaries", "bt709", "-color_trc", "bt709", "-movflags", "+faststart", str(target)]
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdin=subprocess.PIPE)

    def feed():
        for frame in frames:
            proc.stdin.write(np.ascontiguousarray(frame).tobytes())
        proc.stdin.close()

    writer = threading.Thread(target=feed)
    writer.start()
    writer.join()
    if proc.wait() != 0:
        raise SystemExit("ffmpeg failed")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--height", type=int, default=1080)
    parser.add_argument("--fps", type=int, default=24)
    args = parser.parse_args()
    height = args.height - args.height % 2
    width = int(round(height * 16 / 9)) // 2 * 2
    film = make_film(args.seconds, width, height, args.fps)
    length = film.seconds
    started = time.perf_counter()
    for _ in iter_film_frames(film):
        pass
    drawing = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        render_film(film, Path(folder) / "save_film.mp4", None, None, crf=18, loudness_lufs=None)
        ours = time.perf_counter() - started
        theirs = ffmpeg_encode(film, Path(folder) / "ffmpeg.mp4")
        sizes = [(Path(folder) / f).stat().st_size / 2 ** 20 for f in ("save_film.mp4", "ffmpeg.mp4")]
    print(f"{length:.0f} s of {width}x{height} at {args.fps} fps ({film.frame_count} frames), {os.cpu_count()} cores:")
    print(f"  drawing the frames alone      {drawing:7.1f} s  {length / drawing:6.2f}x real time")
    print(f"  Save Film (PyAV, streamed)    {ours:7.1f} s  {length / ours:6.2f}x real time  {sizes[0]:7.1f} MiB")
    print(f"  ffmpeg CLI, same frames       {theirs:7.1f} s  {length / theirs:6.2f}x real time  {sizes[1]:7.1f} MiB")
    print(f"  Save Film at {theirs / ours:.2f}x ffmpeg's speed (goal >= 0.8x)")


if __name__ == "__main__":
    main()
