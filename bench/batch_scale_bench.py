"""The embedded scheduler at scale, on simulated ComfyUI endpoints (issue 20, item 5).

    python bench/batch_scale_bench.py [--sizes 1 16 64 256 --seconds 2 --short-seconds 0.5 --jobs-per-endpoint 16]

The endpoints are ``tests/sim/comfy_sim.py`` (one asyncio process, execution a timed sleep, model-load delays);
the scheduler, attempt policy, journal, pool endpoints and ComfyClient are the real ones, only the render stage
is the simulator's stand-in (see ``tests/sim/drive.py``). Reported:

* throughput (completed jobs per second) at each pool size and its ratio to N × one endpoint (aim: ≥ 0.9 N);
  a size whose batch runs past ``--cap`` seconds is stopped there and its rate is what finished by then;
* the scheduler's ceiling: the most jobs per second it hands out (the largest pool, jobs far too short for it),
  which says how short jobs may get before the 0.9 N aim fails at a pool size;
* HTTP requests per completed job, by path (counted by the simulator);
* the scheduler process's CPU per job (the simulator runs in its own process, so its CPU is not counted), and
  where the slots' threads spent it (sampled stacks), since that names the bottleneck;
* journal bytes per 1,000 jobs (SQLite file after a WAL checkpoint);
* model-aware routing against model-blind round-robin: model loads and batch time, and their ratios;
* a mixed pool (one fast endpoint, three 4× slower) against the fast endpoint alone on the same jobs;
* 5 % injected failures (plus 2 % dropped websockets): jobs lost, completed jobs re-run.
"""
from __future__ import annotations

import argparse
import collections
import logging
import os
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from animstudio.cloud.scheduler import Settings  # noqa: E402
from sim.comfy_sim import SimPool  # noqa: E402
from sim.drive import make_films, run_batch  # noqa: E402

SHOTS = 4  # per film: 8 jobs (keyframe → shot per shot)
# where a slot thread can be (innermost first wins); "wait": an idle slot waiting for a job to become ready
WATCH = ("_connect_ws", "_history_when_ready", "_read_ws", "queue", "download", "probe", "lacks", "transition",
         "_claim", "_warm", "wait")


def settings() -> Settings:
    """The scheduler's own defaults (poll 0.2 s), with short retry backoff so injected failures do not idle."""
    return Settings(backoff=0.1, probe_every=1.0, max_tries=5, job_timeout=600)


class StackSampler:
    """Samples the scheduler's slot threads every 20 ms: which of ``WATCH`` each is inside (innermost first),
    so the report can say where the CPU went without a profiler that sees only the main thread."""

    def __init__(self):
        self.counts: collections.Counter = collections.Counter()
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._stop.set()
        self._thread.join()

    def _loop(self):
        names = {t.ident: t.name for t in threading.enumerate()}
        while not self._stop.wait(0.02):
            if len(names) < threading.active_count():
                names = {t.ident: t.name for t in threading.enumerate()}
            for ident, frame in sys._current_frames().items():
                if "#" not in names.get(ident, ""):
                    continue
                self.samples += 1
                while frame is not None:
                    if frame.f_code.co_name in WATCH:
                        self.counts[frame.f_code.co_name] += 1
                        break
                    frame = frame.f_back

    def top(self, n: int = 5) -> str:
        total = max(1, self.samples)
        return ", ".join(f"{name} {100 * c / total:.0f}%" for name, c in self.counts.most_common(n))


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) another process has used, from /proc (0.0 where there is no /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_size(n: int, args, workdir: Path, seconds: float | None = None) -> dict:
    films = make_films(max(1, n * args.jobs_per_endpoint // (2 * SHOTS)), SHOTS)
    with SimPool(n, seconds=seconds or args.seconds, load_seconds=args.load_seconds, seed=n) as pool:
        sim_cpu = process_cpu(pool.process.pid)
        with StackSampler() as sampler:
            result = run_batch(pool.urls, films, workdir / f"n{n}", settings(), wall_limit=args.cap)
        sim_cpu = process_cpu(pool.process.pid) - sim_cpu
        requests = pool.stats()["requests"]
    # how busy the machine was: the scheduler's and the simulator's CPU over the wall time, in cores
    result["cores_busy"] = (result["cpu"] + sim_cpu) / result["wall"]
    result["rate"] = result["completed"] / result["wall"]
    result["where"] = sampler.top()
    done = max(1, result["completed"])
    result["requests"] = ", ".join(f"{path} {count / done:.1f}" for path, count in
                                   sorted(requests.items(), key=lambda kv: -kv[1]) if path != "/sim/stats")
    return result


def scaling(args, workdir: Path) -> None:
    print(f"{os.cpu_count()} CPU core(s); {args.seconds} s per job, {args.load_seconds} s per model load, "
          f"{args.jobs_per_endpoint} jobs per endpoint, cap {args.cap:.0f} s per size")
    print(f"{'N':>5} {'jobs':>6} {'done':>6} {'wall s':>7} {'jobs/s':>7} {'ratio':>7} {'aim':>6} "
          f"{'CPU ms/job':>10} {'journal B/1k':>12} {'cores busy':>10}  where the slot threads were")
    base = None
    for n in args.sizes:
        r = one_size(n, args, workdir)
        base = base or (r["rate"] if n == 1 else None)
        ratio = r["rate"] / base if base else float("nan")
        cpu = 1000 * r["cpu"] / max(1, r["completed"])
        per_k = r["journal_bytes"] * 1000 / max(1, r["jobs"])
        flag = " (stopped at cap)" if r["stopped_early"] else ""
        print(f"{n:>5} {r['jobs']:>6} {r['completed']:>6} {r['wall']:>7.1f} {r['rate']:>7.2f} {ratio:>7.1f} "
              f"{0.9 * n:>6.1f} {cpu:>10.1f} {per_k:>12.0f} {r['cores_busy']:>7.2f}/{os.cpu_count()}  "
              f"{r['where']}{flag}", flush=True)
        print(f"{'':>5} HTTP requests per completed job: {r['requests']}", flush=True)
    # the scheduler's own ceiling: 256 endpoints asking for far more jobs per second than it can hand out
    n = max(args.sizes)
    r = one_size(n, args, workdir / "ceiling", seconds=args.short_seconds / 2)
    cpu = 1000 * r["cpu"] / max(1, r["completed"])
    print(f"ceiling: {n} endpoints at {args.short_seconds / 2:g} s per job ask {n / (args.short_seconds / 2):.0f} "
          f"jobs/s; the scheduler handed out {r['rate']:.0f} jobs/s ({cpu:.1f} ms CPU per job, "
          f"{r['cores_busy']:.2f} of {os.cpu_count()} cores busy with the simulator): it keeps up while N endpoints "
          f"ask at most that, i.e. jobs of at least {n / r['rate']:.2f} s at N = {n}", flush=True)


def mixed(args, workdir: Path) -> None:
    films = make_films(8, SHOTS)  # 64 jobs
    knobs = dict(seconds=args.short_seconds, load_seconds=args.load_seconds, seed=5)
    with SimPool(1, **knobs) as fast:
        alone = run_batch(fast.urls, films, workdir / "alone", settings())
    with SimPool(4, speeds=[1.0, 4.0, 4.0, 4.0], **knobs) as pool:
        pooled = run_batch(pool.urls, films, workdir / "mixed", settings())
    verdict = "not slower" if pooled["wall"] <= alone["wall"] else "SLOWER"
    print(f"mixed pool (1 fast + 3 at 4x slower), 64 jobs: {pooled['wall']:.1f} s against the fast endpoint alone "
          f"{alone['wall']:.1f} s -> {verdict} ({alone['wall'] / pooled['wall']:.2f}x)")


def routing(args, workdir: Path) -> None:
    """Model-aware routing against model-blind round-robin (batch order), same jobs, same simulated pool, model
    loads as dear as real ones are next to a job (4 x a job's seconds)."""
    n, films = 16, make_films(48, SHOTS)  # 384 jobs, films alternating two checkpoints
    load = max(args.load_seconds, 4 * args.short_seconds)
    results = {}
    for mode in ("models", "blind"):
        with SimPool(n, seconds=args.short_seconds, load_seconds=load, seed=3) as pool:
            r = run_batch(pool.urls, films, workdir / f"routing-{mode}", replace(settings(), routing=mode))
            r["loads"] = pool.stats()["loads"]
        results[mode] = r
        per = r["summary"].endpoints.values()
        print(f"routing {mode:>6}: {r['completed']}/{r['jobs']} jobs in {r['wall']:.1f} s, {r['loads']} model loads "
              f"(scheduler counted {sum(e['model_loads'] for e in per)}; per endpoint "
              f"{min(e['model_loads'] for e in per)}-{max(e['model_loads'] for e in per)} loads, "
              f"{min(e['jobs'] for e in per)}-{max(e['jobs'] for e in per)} jobs)", flush=True)
    m, b = results["models"], results["blind"]
    print(f"model-aware / blind on {n} endpoints, {load:g} s per load: model loads {m['loads']}/{b['loads']} = "
          f"{m['loads'] / max(1, b['loads']):.2f}, batch time {m['wall']:.1f}/{b['wall']:.1f} s = "
          f"{m['wall'] / b['wall']:.2f}")


def failures(args, workdir: Path) -> None:
    n, films = 16, make_films(64, SHOTS)  # 512 jobs
    with SimPool(n, seconds=args.short_seconds, load_seconds=args.load_seconds, fail_rate=0.05, disconnect_rate=0.02,
                 seed=11) as pool:
        result = run_batch(pool.urls, films, workdir / "failures", settings())
        stats = pool.stats()
    ids = {r.job.id for r in result["rows"]}
    lost = sum(1 for r in result["rows"] if r.state != "completed")
    rerun = sum(c - 1 for c in stats["runs"].values() if c > 1) + len(ids - set(stats["runs"]))
    print(f"5% failures + 2% dropped sockets on {n} endpoints, {len(ids)} jobs: {stats['failures']} failed "
          f"execution(s), {stats['disconnects']} disconnect(s), {result['summary'].retries} retries; "
          f"lost {lost}, completed jobs re-run {rerun}; {result['wall']:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 16, 64, 256])
    parser.add_argument("--seconds", type=float, default=2.0, help="a job's run time in the scaling table")
    parser.add_argument("--short-seconds", type=float, default=0.5,
                        help="a job's run time in the routing, mixed-pool and failure runs (the ceiling: half)")
    parser.add_argument("--load-seconds", type=float, default=0.2)
    parser.add_argument("--jobs-per-endpoint", type=int, default=16)
    parser.add_argument("--cap", type=float, default=120.0)
    parser.add_argument("--skip", nargs="*", default=[], choices=["scaling", "routing", "mixed", "failures"])
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="scale-bench-") as tmp:
        for name, part in (("scaling", scaling), ("routing", routing), ("mixed", mixed), ("failures", failures)):
            if name not in args.skip:
                part(args, Path(tmp))
    print(f"bench took {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
