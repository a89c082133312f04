"""A whole render of a 1-minute 1080p24 film against real time and against ffmpeg, then a one-line edit.

    python bench/smart_render_bench.py [--minutes 1] [--height 1080] [--fps 24]

The film: the storyboard of ``film_memory_bench`` (5-second shots of generated panels with camera moves, cuts,
dissolves and wipes, a spoken line with burned-in captions every other shot, a music bed), rendered by
``animstudio render`` (each shot encoded once, the film joined from them by stream copy with only its transitions
encoded again). Printed: the render's wall time against real time, and against the ffmpeg binary of imageio-ffmpeg
encoding the film's frames (decoded from the finished film, piped raw) with the same settings.

Then one line of one shot is edited and the film rendered again: the render report's frame counts must show that
only that shot and the transitions into and out of it were encoded (asserted, by counting frames; not timed).
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from encode_bench import ffmpeg_encode_frames  # noqa: E402
from film_memory_bench import make_storyboard  # noqa: E402


def render(storyboard: Path, out: Path) -> tuple[float, dict]:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "animstudio", "render", str(storyboard), "-o", str(out), "-q"], check=True,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - started, json.loads((out / "render-report.json").read_text())


def ffmpeg_encode(film: Path, target: Path) -> float:
    """The ffmpeg CLI encoding ``film``'s frames (decoded and piped raw as they are needed) at the same settings."""
    import av

    def frames():
        with av.open(str(film)) as container:
            for frame in container.decode(video=0):
                yield frame.to_ndarray(format="rgb24")

    with av.open(str(film)) as container:
        stream = container.streams.video[0]
        width, height, rate = stream.codec_context.width, stream.codec_context.height, stream.average_rate
    return ffmpeg_encode_frames(frames(), width, height, rate, target)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=1.0)
    parser.add_argument("--height", type=int, default=1080)
    parser.add_argument("--fps", type=int, default=24)
    args = parser.parse_args()
    height = args.height - args.height % 2
    width = int(round(height * 16 / 9)) // 2 * 2
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        storyboard = make_storyboard(folder, args.minutes, args.fps, width, height)
        out = folder / "out"
        wall, first = render(storyboard, out)
        film = out / first["film"]
        length = first["film_seconds"]
        theirs = ffmpeg_encode(film, folder / "ffmpeg.mp4")
        # edit the line of the second shot, render again
        board = json.loads(storyboard.read_text())
        edited = board["shots"][1]
        edited["dialogue"][0]["text"] = "We have to reach the harbour before the storm, now!"
        storyboard.write_text(json.dumps(board))
        again_wall, again = render(storyboard, out)
    shot_frames = {e["shot"]: round((e["end"] - e["start"]) * args.fps) for e in again["timeline"]}
    shots = board["shots"]
    at = shots.index(edited)
    joins = [shots[at]["transition"]] + ([shots[at + 1]["transition"]] if at + 1 < len(shots) else [])
    transition_frames = sum(round(t["duration"] * args.fps) for t in joins if t["type"] != "cut")
    rerendered = [s for s, r in again["shots"].items() if r["status"] == "rendered"]
    expected = shot_frames[edited["id"]] + transition_frames
    print(f"{length:.0f} s film, {width}x{height} at {args.fps} fps, {len(shots)} shots, {os.cpu_count()} cores:")
    print(f"  animstudio render (whole)     {wall:7.1f} s  {length / wall:6.2f}x real time  "
          f"frames encoded {first['frames']['encoded']}, copied {first['frames']['copied']}")
    print(f"  ffmpeg CLI, the film's frames {theirs:7.1f} s  {length / theirs:6.2f}x real time")
    print(f"  the whole render at {theirs / wall:.2f}x ffmpeg's speed")
    print(f"  after a one-line edit         {again_wall:7.1f} s  shots rendered {rerendered}, frames encoded "
          f"{again['frames']['encoded']} (the shot {shot_frames[edited['id']]} + its transitions {transition_frames})")
    for name, report in (("whole", first), ("edit", again)):
        print(f"  stages ({name}): " + ", ".join(f"{k} {v:.1f} s" for k, v in report["stages"].items()))
    assert rerendered == [edited["id"]], rerendered
    assert again["frames"]["encoded"] == expected, (again["frames"], expected)


if __name__ == "__main__":
    main()
