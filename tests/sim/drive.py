"""Driving the real embedded scheduler on simulated endpoints.

What is real: :class:`animstudio.cloud.scheduler.Scheduler` (slots, ``_claim``, ``_execute``, the watchdog,
``_record``), the attempt policy (:func:`animstudio.cloud.attempts.judge`), the SQLite journal, the pool's
``Endpoint`` (``probe`` on ``/system_stats`` + ``/queue``, ``lacks`` from ``/object_info``), and
``ServerEngine`` over ``ComfyClient`` (graph check, ``POST /prompt``, ``/ws`` with its fallback to ``/history``,
``/view`` downloads). What is not: the render stage. ``cloud.scheduler.run_job`` is replaced by
:func:`sim_run_job`, one prompt per job whose output is fetched into the film folder, because the translator's
real keyframe/shot/compose stages need real pictures and videos (and compose runs ffmpeg locally), which
thousands of simulated jobs cannot provide. Jobs are :class:`~animstudio.cloud.jobs.Job` objects built here:
per film, a keyframe → shot pair per shot (the DAG ``plan_batch`` makes, without the compose job).
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
import time
from pathlib import Path

from animstudio.cloud import scheduler as scheduler_module
from animstudio.cloud.execute import film_dir
from animstudio.cloud.jobs import KIND_PRIORITY, Film, Job, ModelNeed
from animstudio.cloud.journal import Journal
from animstudio.cloud.pool import Endpoint
from animstudio.cloud.scheduler import Scheduler, Settings
from animstudio.cloud.summary import BatchSummary
from animstudio.common.errors import AnimStudioError
from animstudio.translator.client import ComfyClient

from .comfy_sim import LOADER, MODELS, NODE

log = logging.getLogger(__name__)


def make_films(films: int, shots: int, tag: str = "", prefix: str = "film") -> list[Film]:
    """``films`` films of ``shots`` shots each: a keyframe job and a shot job (waiting on it) per shot. Films
    alternate checkpoints, so endpoints pay model loads when they switch. ``tag`` makes other job ids (nothing
    is copied from a batch of another tag), ``prefix`` other film names."""
    result = []
    for f in range(films):
        name, model = f"{prefix}{f}", MODELS[f % 2]
        need = (ModelNeed(LOADER, "ckpt_name", model, "checkpoints"),)
        jobs = []
        for s in range(shots):
            key = Job(_id(tag, name, s, "keyframe"), "keyframe", name, "", f"s{s}", (), KIND_PRIORITY["keyframe"],
                      need, (LOADER, NODE))
            jobs += [key, Job(_id(tag, name, s, "shot"), "shot", name, "", f"s{s}", (key.id,),
                              KIND_PRIORITY["shot"], need, (LOADER, NODE))]
        result.append(Film(name, "", jobs))
    return result


def _id(*parts) -> str:
    return hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()[:32]


def sim_graph(job: Job) -> dict:
    model = job.models[0].file
    return {"1": {"class_type": LOADER, "inputs": {"ckpt_name": model}},
            "2": {"class_type": NODE, "inputs": {"model": ["1", 0], "job": job.id, "kind": job.kind}}}


def sim_run_job(job: Job, out_root: Path, engine, reporter=None, board=None) -> dict:
    """The render stage's stand-in: one prompt on the engine, its output fetched into the film folder; a shot
    refuses to start without its keyframe's file (as the real shot stage does)."""
    folder = film_dir(out_root, job)
    started = time.monotonic()
    if job.kind == "shot" and not (folder / "keyframes" / f"{job.depends_on[0]}.png").is_file():
        raise AnimStudioError(f"job {job.label}: its keyframe is missing")
    outputs = engine.run(sim_graph(job), {}, lambda kind, data: None)
    files = ComfyClient.output_files(outputs)
    if not files:
        raise AnimStudioError(f"job {job.label}: the server reported no output")
    target = folder / ("keyframes" if job.kind == "keyframe" else "shots")
    path = engine.fetch(files[0], target)
    return {"files": [path.relative_to(folder).as_posix()], "seconds": round(time.monotonic() - started, 3)}


@contextlib.contextmanager
def simulated_stage():
    """``Scheduler._execute`` calls ``run_job`` from its module: point it at :func:`sim_run_job` meanwhile."""
    real = scheduler_module.run_job
    scheduler_module.run_job = sim_run_job
    try:
        yield
    finally:
        scheduler_module.run_job = real


def run_batch(urls: list[str], films: list[Film], workdir: Path, settings: Settings | None = None,
              wall_limit: float | None = None, batch: str = "sim", rates: list[float] | None = None,
              journal_path: Path | None = None) -> dict:
    """Run ``films`` on the endpoints at ``urls`` with the real scheduler. Returns the summary, wall seconds,
    the scheduler process's CPU seconds (the simulator runs elsewhere), journal bytes and the final rows.
    ``wall_limit``: stop the scheduler after that long (what finished by then is what counts). ``rates``: each
    endpoint's ``cost_per_gpu_second`` (by index; 0 without). ``journal_path``: the journal to use (another
    batch's, whose history the estimate and the budget read) instead of ``workdir/journal.sqlite``."""
    workdir.mkdir(parents=True, exist_ok=True)
    journal_path = Path(journal_path) if journal_path is not None else workdir / "journal.sqlite"
    journal = Journal(journal_path)
    endpoints = [Endpoint(f"e{i}", url, cost_per_gpu_second=rates[i] if rates else 0.0)
                 for i, url in enumerate(urls)]
    settings = settings or Settings(backoff=0.05, probe_every=1.0, poll=0.05, max_tries=5, job_timeout=120)
    scheduler = Scheduler(journal, endpoints, workdir / "out", settings)
    timer = threading.Timer(wall_limit, scheduler.stop) if wall_limit else None
    with simulated_stage():
        scheduler.submit(batch, films)
        cpu, wall = time.process_time(), time.monotonic()
        if timer:
            timer.start()
        try:
            summary: BatchSummary = scheduler.run(batch)
        finally:
            if timer:
                timer.cancel()
        wall, cpu = time.monotonic() - wall, time.process_time() - cpu
    rows = journal.jobs(batch)
    journal._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    journal.close()
    size = sum(p.stat().st_size for p in journal_path.parent.glob(journal_path.name + "*"))
    return {"summary": summary, "wall": wall, "cpu": cpu, "journal_bytes": size, "rows": rows,
            "completed": sum(1 for r in rows if r.state == "completed"), "jobs": len(rows),
            "stopped_early": wall_limit is not None and wall >= wall_limit}
