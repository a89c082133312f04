"""``animstudio batch`` and ``animstudio worker``: the terminal face of :mod:`animstudio.cloud` (arguments, the live
table of jobs and endpoints, the summary, exit codes). The work is done by the scheduler or the Celery engine."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from .cli_common import _emit
from .common.errors import AnimStudioError


def _batch_paths(args) -> tuple[Path, Path]:
    out = Path(args.output) if args.output else None
    journal = Path(args.journal) if args.journal else (out / ".animstudio" / "journal.sqlite" if out else None)
    if journal is None:
        raise AnimStudioError("batch: name the output folder (-o) or the journal (--journal)")
    return out or journal.parent.parent, journal


def _batch_id(storyboards: list[str], out: Path) -> str:
    """The same storyboards into the same folder are the same batch: running the command again resumes it."""
    import hashlib

    names = sorted(str(Path(p).resolve()) for p in storyboards)
    return hashlib.sha256("\n".join(names + [str(out.resolve())]).encode()).hexdigest()[:12]


def _last_batch(journal) -> str:
    batches = journal.batches()
    if not batches:
        raise AnimStudioError(f"no batch in the journal {journal.path}")
    return batches[-1][0]


def _job_table(journal, batch: str, endpoints=()):
    """The live view: jobs per film and state, and the endpoints with what they run."""
    from rich.table import Table

    rows = journal.jobs(batch)
    films: dict[str, dict[str, int]] = {}
    for row in rows:
        films.setdefault(row.job.film, {})[row.state] = films.setdefault(row.job.film, {}).get(row.state, 0) + 1
    table = Table(title=f"batch {batch}", expand=False)
    for column in ("film", "pending", "running", "completed", "retrying", "review"):
        table.add_column(column)
    for film, states in films.items():
        table.add_row(film, str(states.get("pending", 0)), str(states.get("running", 0)),
                      str(states.get("completed", 0)), str(states.get("retry_pending", 0) + states.get("failed", 0)),
                      str(states.get("manual_review", 0) + states.get("cancelled", 0)))
    if endpoints:
        running = {}
        for row in rows:
            if row.state == "running" and row.endpoint:
                running.setdefault(row.endpoint, []).append(row.job.label)
        table.add_section()
        for endpoint in endpoints:
            state = "up" if endpoint.healthy else "DOWN"
            table.add_row(f"[endpoint] {endpoint.name}", state, ", ".join(running.get(endpoint.name, [])) or "idle",
                          "", "", "")
    return table


def cmd_batch(args) -> int:
    from .cloud.journal import Journal
    from .cloud.summary import summarize

    action = args.items[0] if args.items and args.items[0] in ("status", "retry", "cancel") else "run"
    out, journal_path = _batch_paths(args)
    if action != "run":
        if not journal_path.is_file():
            raise AnimStudioError(f"no batch journal at {journal_path}")
        journal = Journal(journal_path)
        batch = args.batch or _last_batch(journal)
        if action == "retry":
            count = journal.retry(batch, args.items[1] if len(args.items) > 1 else None)
            _emit(args, {"ok": True, "batch": batch, "retried": count},
                  f"batch {batch}: {count} job(s) back in the queue; run the batch command again to render them")
        elif action == "cancel":
            count = journal.cancel(batch)
            _emit(args, {"ok": True, "batch": batch, "cancelled": count},
                  f"batch {batch}: {count} job(s) cancelled; a running scheduler stops and closes its instances")
        else:
            summary = summarize(journal, batch, out)
            rows = journal.jobs(batch)
            payload = {"ok": True, "batch": batch, "jobs": [{"job": r.job.label, "state": r.state, "tries": r.tries,
                                                              "endpoint": r.endpoint, "error": r.error} for r in rows],
                       "summary": summary.__dict__}
            if args.json:
                print(json.dumps(payload, indent=2, default=str))
            else:
                from rich.console import Console

                Console().print(_job_table(journal, batch))
        return 0
    return _run_batch(args, out, journal_path)


def _run_batch(args, out: Path, journal_path: Path) -> int:
    import threading

    from .cloud.jobs import plan_batch
    from .cloud.journal import Journal
    from .cloud.pool import endpoints_from, load_pool
    from .cloud.scheduler import Scheduler, Settings

    if not args.pool:
        raise AnimStudioError("batch: --pool pool.yaml is required (the ComfyUI endpoints and providers)")
    pool = load_pool(args.pool)
    train = tuple(args.train or ())
    training = None
    if train:
        from .translator.training import TrainingSettings

        training = TrainingSettings(steps=args.train_steps, training_dtype=args.train_dtype)
    films = plan_batch(args.items, args.max_minutes, train, training)
    if args.estimate:
        return _estimate(args, films, pool, journal_path)
    # a training batch of the same storyboards is another batch than their render
    batch = args.batch or _batch_id(list(args.items) + [f"--train={c}" for c in train], out)
    settings = Settings(max_tries=args.max_tries, job_timeout=args.job_timeout, budget=args.budget)
    if args.budget is not None and args.engine == "celery":
        raise AnimStudioError("batch: --budget needs --engine local (the embedded scheduler decides what starts)")
    if args.engine == "celery":
        from .cloud.celery_engine import run_batch_on_celery

        summary = run_batch_on_celery(films, out, journal_path, batch, args.broker, pool, settings)
    else:
        from .cloud.scaling import Scaler

        journal = Journal(journal_path)
        scaler = Scaler.from_pool(pool) if pool.providers else None
        scheduler = Scheduler(journal, endpoints_from(pool), out, settings, scaler)
        scheduler.submit(batch, films)
        live = None
        if not args.json and not args.quiet and sys.stderr.isatty():
            from rich.console import Console
            from rich.live import Live

            live = Live(_job_table(journal, batch, scheduler.endpoints), console=Console(stderr=True),
                        refresh_per_second=2)
            live.start()
            stop = threading.Event()

            def refresh():
                while not stop.wait(0.5):
                    live.update(_job_table(journal, batch, scheduler.endpoints))

            threading.Thread(target=refresh, daemon=True).start()
        try:
            summary = scheduler.run(batch)
        except KeyboardInterrupt:
            scheduler.stop()
            raise
        finally:
            if live is not None:
                stop.set()
                live.update(_job_table(journal, batch, scheduler.endpoints))
                live.stop()
    films_done = sum(1 for f in summary.films.values() if f)
    text = (f"batch {batch}: {films_done} of {len(summary.films)} film(s) in {out}; jobs "
            + ", ".join(f"{n} {state}" for state, n in sorted(summary.jobs.items()))
            + f"; {summary.retries} retries; {summary.gpu_seconds:.1f} GPU seconds"
            + (f", about {summary.cost:.4f} in cost" if summary.cost else ""))
    for film, path in summary.films.items():
        text += f"\n  {film}: {path or 'not finished'}"
    for who, lora in summary.loras.items():
        text += f"\n  {who}: LoRA {lora}, registered in the storyboard"
    for name, used in summary.endpoints.items():
        text += (f"\n  endpoint {name}: {used['jobs']} job(s), {used['model_loads']} model load(s), "
                 f"{used['gpu_seconds']:.1f} GPU seconds")
    for problem in summary.problems:
        text += f"\n  needs review: {problem}"
    _emit(args, {"ok": summary.ok, **summary.__dict__}, text)
    return 0 if summary.ok else 4


def pool_rate(pool) -> float:
    """The pool's price of a GPU second: the mean ``cost_per_gpu_second`` of its endpoints and providers."""
    rates = [e.cost_per_gpu_second for e in pool.endpoints]
    rates += [float(p.settings.get("cost_per_gpu_second") or 0.0) for p in pool.providers]
    return sum(rates) / len(rates) if rates else 0.0


def _estimate(args, films, pool, journal_path: Path) -> int:
    """``batch --estimate``: GPU seconds and cost per film and in all, from the journal's history; nothing runs."""
    from .cloud.estimate import estimate
    from .cloud.journal import Journal

    journal = Journal(journal_path if journal_path.is_file() else ":memory:")  # an estimate writes nothing
    try:
        result = estimate(films, journal, pool_rate(pool))
    finally:
        journal.close()
    _emit(args, {"ok": True, "estimate": result.to_json()}, "\n".join(result.lines()))
    return 0


def cmd_worker(args) -> int:
    from .cloud.celery_worker import run_worker
    from .cloud.pool import load_pool

    return run_worker(load_pool(args.pool), args.broker, args.output, concurrency=args.concurrency)


def add_batch_commands(sub) -> None:
    p = sub.add_parser("batch", help="render storyboards on a pool of ComfyUI endpoints; or: batch status|retry|cancel",
                       description="animstudio batch STORYBOARD... --pool pool.yaml -o OUT  |  animstudio batch "
                                   "status|retry [JOB]|cancel -o OUT")
    p.add_argument("items", nargs="+", help="storyboard files, or status / retry [JOB] / cancel")
    p.add_argument("--pool", help="pool file (YAML): endpoints and providers")
    p.add_argument("-o", "--output", help="output folder: one sub-folder per film, and the journal")
    p.add_argument("--journal", help="the SQLite journal (default OUT/.animstudio/journal.sqlite)")
    p.add_argument("--engine", default="local", choices=["local", "celery"],
                   help="local: the embedded scheduler (default); celery: Celery workers through --broker")
    p.add_argument("--broker", default=os.environ.get("ANIMSTUDIO_BROKER", "redis://127.0.0.1:6379/0"),
                   help="Celery broker and result backend (default $ANIMSTUDIO_BROKER or redis://127.0.0.1:6379/0)")
    p.add_argument("--batch", help="batch id (default: derived from the storyboards and the output folder)")
    p.add_argument("--max-tries", type=int, default=3, help="tries per job before it waits for review (default 3)")
    p.add_argument("--job-timeout", type=float, default=3600.0, help="seconds a job may run (default 3600)")
    p.add_argument("--max-minutes", type=float, metavar="N",
                   help="refuse the batch if a film is longer than N minutes (default: $ANIMSTUDIO_MAX_FILM_MINUTES, "
                        "else 180; 0: no limit)")
    p.add_argument("--train", action="append", metavar="CHARACTER",
                   help="instead of rendering: train this character's LoRA in each storyboard (as train-character "
                        "does) on the pool and register it; repeat for several characters")
    p.add_argument("--train-steps", type=int, default=400, help="with --train: training steps (default 400)")
    p.add_argument("--train-dtype", choices=["bf16", "fp32"], default="bf16",
                   help="with --train: bf16 on GPUs (default), fp32 on CPUs")
    p.add_argument("--estimate", action="store_true",
                   help="print the GPU seconds and cost per film and in all, from the journal's history; run nothing")
    p.add_argument("--budget", type=float, metavar="AMOUNT",
                   help="stop starting jobs before the batch's cost would pass AMOUNT (running jobs finish; what is "
                        "left undone is listed, and a later run with a larger budget renders it)")
    p.add_argument("-q", "--quiet", action="store_true", help="no live table")
    p.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    p.set_defaults(func=cmd_batch)

    p = sub.add_parser("worker", help="run a Celery worker that renders batch jobs on the pool's endpoints")
    p.add_argument("--pool", required=True, help="pool file (YAML): the endpoints this worker serves")
    p.add_argument("--broker", default=os.environ.get("ANIMSTUDIO_BROKER", "redis://127.0.0.1:6379/0"))
    p.add_argument("-o", "--output", required=True, help="the batch output folder (shared with the scheduler)")
    p.add_argument("--concurrency", type=int, help="jobs at once (default: the pool's total capacity)")
    p.set_defaults(func=cmd_worker, json=False)
