"""Wall time and peak memory of rendering a long film, against a 1-minute render in the same run.

    python bench/film_memory_bench.py [--minutes 1 10] [--fps 12] [--height 720]

``--height 1080 --fps 24`` is the studio case (goal: 10 minutes within 1.1x of 1 minute's peak, under 1.5 GB,
and the render's speed against real time). Each film is a generated storyboard (5-second shots cycling through
eight panels of the film's size, camera moves,
dissolves and wipes, a spoken line with burned-in subtitles every other shot, the example's music bed)
rendered by the embedded engine, exactly as `animstudio render` does, in a child process whose peak
resident memory is read from the kernel (``wait4``). Frames and sound are streamed to the encoder, so
the 10-minute peak should stay within 1.5x of the 1-minute one.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
MUSIC = REPO / "workflows" / "examples" / "lighthouse" / "music" / "night-pad.ogg"
MOVES = ["zoom_in", "pan_left", "static", "dolly_in", "pan_right", "zoom_out", "tilt_up", "shake"]
LINES = ["Hold her steady! Look for the light.", "We have to reach the harbor before the storm breaks.",
         "Another quiet night. I hope.", "Bring the lantern and the rope, quickly!"]


def make_panels(folder: Path, width: int, height: int) -> list[str]:
    rng = np.random.default_rng(7)
    names = []
    for i in range(8):
        small = rng.integers(0, 255, (9, 16, 3), dtype=np.uint8)
        image = Image.fromarray(small).resize((width, height), Image.Resampling.BICUBIC)
        name = f"panel{i}.png"
        image.save(folder / name)
        names.append(name)
    return names


def make_storyboard(folder: Path, minutes: float, fps: int, width: int = 1280, height: int = 720) -> Path:
    panels = make_panels(folder, width, height)
    (folder / "music").mkdir(exist_ok=True)
    (folder / "music" / MUSIC.name).write_bytes(MUSIC.read_bytes())
    shots = []
    for n in range(int(minutes * 60 / 5)):
        shot = {"id": f"s{n:04d}", "description": f"shot {n}", "keyframe": panels[n % len(panels)],
                "camera": {"move": MOVES[n % len(MOVES)]}, "duration": 5.0,
                "transition": {"type": ["cut", "dissolve", "wipe_left"][n % 3] if n else "cut", "duration": 0.5}}
        if n % 2:
            shot["characters"] = ["ada"]
            shot["dialogue"] = [{"character": "ada", "text": LINES[n % len(LINES)]}]
        shots.append(shot)
    board = {"version": 1, "project": {"title": f"bench {minutes} min", "width": width, "height": height,
                                                "fps": fps},
             "characters": {"ada": {"description": "the keeper", "voice": {"engine": "espeak", "name": "en-gb"}}},
             "shots": shots, "music": [{"file": f"music/{MUSIC.name}", "volume": 0.2}]}
    path = folder / "storyboard.json"
    path.write_text(json.dumps(board))
    return path


def render_in_child(storyboard: Path, out: Path) -> tuple[float, float]:
    """Seconds of wall time and peak resident MiB of ``animstudio render`` in its own process."""
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "animstudio", "render", str(storyboard), "-o", str(out), "-q"],
                            stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"render of {storyboard} failed")
    return time.perf_counter() - started, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, nargs="+", default=[1, 10])
    parser.add_argument("--fps", type=int, default=12)
    parser.add_argument("--height", type=int, default=720)
    args = parser.parse_args()
    height = args.height - args.height % 2
    width = int(round(height * 16 / 9)) // 2 * 2
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for minutes in args.minutes:
            folder = Path(tmp) / f"m{minutes:g}"
            folder.mkdir()
            wall, peak = render_in_child(make_storyboard(folder, minutes, args.fps, width, height), folder / "out")
            film = next((folder / "out").glob("*.mp4"))
            rows.append((minutes, wall, peak, film.stat().st_size / 2 ** 20))
    base = rows[0]
    print(f"{width}x{height} at {args.fps} fps, {os.cpu_count()} cores:")
    print(f"  {'film':>8} {'wall':>9} {'x realtime':>11} {'peak RSS':>10} {'vs first':>9} {'file':>9}")
    for minutes, wall, peak, size in rows:
        print(f"  {minutes:6g} m {wall:8.1f}s {minutes * 60 / wall:10.2f}x {peak:8.0f} MiB {peak / base[2]:8.2f}x "
              f"{size:7.1f} MiB")


if __name__ == "__main__":
    main()
