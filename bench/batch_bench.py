"""Batch dispatch: overhead per job and throughput with 1, 2 and 4 real ComfyUI endpoints on loopback.

    python bench/batch_bench.py [--films 4 --shots 4 --endpoints 1 2 4]

Each run starts N fresh ComfyUI instances (``~/comfy/ComfyUI`` or ``$COMFYUI_DIR``, run by its venv) and
renders the same batch with the embedded scheduler: films of panel shots with a camera move (shot jobs,
then a compose job per film), so the work is the pack's own compositing and the figures are about
dispatching. Reported per N: wall time, jobs per second, the ratio to one endpoint (the aim is
N endpoints >= 0.9 N times one), and the dispatch overhead: the median time a slot spends between
finishing one job and starting the next (claiming, journalling), plus the median per-job time outside
ComfyUI's own execution is left to the wall figures. On a machine with fewer cores than endpoints the
instances share the CPU, so throughput cannot grow with N there: the core count is printed beside it.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))


def make_storyboards(folder: Path, films: int, shots: int) -> list[Path]:
    from conftest import write_panel, write_storyboard

    paths = []
    for f in range(films):
        film = folder / f"film{f}"
        write_panel(film / "p.png", color=(40 * f % 255, 90, 160), size=(128, 72))
        paths.append(write_storyboard(film, {
            "version": 1, "project": {"title": f"Bench {f}", "width": 128, "height": 72, "fps": 12, "seed": f},
            "shots": [{"id": f"s{i}", "description": "x", "keyframe": "p.png", "duration": 1.0,
                       "camera": {"move": "zoom_in" if i % 2 else "pan_left"}} for i in range(shots)]}))
    return paths


def run(endpoints: int, storyboards: list[Path], work: Path) -> dict:
    from comfy_env import start_comfyui

    from animstudio.cloud.jobs import plan_batch
    from animstudio.cloud.journal import Journal
    from animstudio.cloud.pool import Endpoint
    from animstudio.cloud.scheduler import Scheduler, Settings

    servers = [start_comfyui(work / f"comfy-{endpoints}-{i}") for i in range(endpoints)]
    try:
        journal = Journal(work / f"journal-{endpoints}.sqlite")
        scheduler = Scheduler(journal, [Endpoint(f"e{i}", s.url) for i, s in enumerate(servers)],
                              work / f"out-{endpoints}", Settings(poll=0.02))
        films = plan_batch(storyboards)
        scheduler.submit("bench", films)
        started = time.monotonic()
        summary = scheduler.run("bench")
        wall = time.monotonic() - started
        assert summary.ok, summary.problems
        rows = journal.jobs("bench")
        gaps = []
        by_endpoint: dict[str, list[tuple[float, float]]] = {}
        for row in rows:
            by_endpoint.setdefault(row.endpoint, []).append((row.started, row.finished))
        for spans in by_endpoint.values():
            spans.sort()
            gaps += [b[0] - a[1] for a, b in zip(spans, spans[1:]) if b[0] >= a[1]]
        return {"endpoints": endpoints, "jobs": len(rows), "wall_s": round(wall, 2),
                "jobs_per_s": round(len(rows) / wall, 3),
                "dispatch_gap_ms": round(1000 * statistics.median(gaps), 1) if gaps else None,
                "job_s_median": round(statistics.median(r.gpu_seconds for r in rows), 3)}
    finally:
        for server in servers:
            server.stop()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--films", type=int, default=4)
    parser.add_argument("--shots", type=int, default=4)
    parser.add_argument("--endpoints", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from comfy_env import comfyui_paths

    if comfyui_paths() is None:
        print("batch bench: no ComfyUI at $COMFYUI_DIR or ~/comfy/ComfyUI; nothing measured")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        storyboards = make_storyboards(work / "boards", args.films, args.shots)
        results = [run(n, storyboards, work) for n in args.endpoints]
    base = results[0]["jobs_per_s"]
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"{args.films} films x {args.shots} panel shots (+1 compose each), {os.cpu_count()} CPU cores:")
    for r in results:
        ratio = r["jobs_per_s"] / base
        print(f"  {r['endpoints']} endpoint(s): {r['jobs']} jobs in {r['wall_s']:.1f} s, {r['jobs_per_s']:.2f} jobs/s, "
              f"{ratio:.2f}x one endpoint (aim {0.9 * r['endpoints']:.1f}x), median job {r['job_s_median']:.2f} s, "
              f"dispatch gap {r['dispatch_gap_ms']} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
