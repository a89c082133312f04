"""The scale-out engine: the batch's jobs as Celery tasks on a Redis broker, rendered by ``animstudio worker``
processes, each serving the endpoints of its own pool file.

* A film is a chord: for each shot a chain (keyframe task → shot task, or the shot task alone for a panel
  shot), the group of chains as the chord's header and the compose task as its body, so the DAG of
  :mod:`.jobs` is the canvas and Celery starts each job when its inputs are done.
* A task carries the job (``Job.to_json``), the batch's output folder and the scheduler's settings; the worker
  picks a healthy endpoint of its pool with a free slot that has the job's nodes and models, and runs
  :func:`.execute.run_job` on it. An endpoint that stops answering mid-job sends the task back at once
  without using one of the job's tries; a failure is retried with exponential backoff, then left for review;
  a wrong storyboard or a graph that does not fit is final at once: the same rules as the embedded scheduler.
* Only the scheduler writes the journal: it follows the tasks' states in the result backend (the same Redis)
  and journals each job's transitions, so ``batch status|retry|cancel`` and the summary are the same as with
  the embedded scheduler.
* Messages are acknowledged after the job (``task_acks_late``); a worker killed mid-job leaves its message
  unacknowledged in Redis, and another worker takes it once the broker's visibility timeout has passed. A
  running worker renews the messages it holds, so that timeout can be short (recovery is quick) without a
  long job being handed to a second worker while the first still renders it.
* Workers use Celery's thread pool: a job is mostly waiting on ComfyUI, and threads share the endpoints'
  health and busy slots, which separate processes could not.

This module is the scheduler's side (the canvas, following the tasks, the journal); the app both sides build is
:mod:`.celery_app`, the worker :mod:`.celery_worker`.
"""
from __future__ import annotations

import logging
import time
import urllib.parse
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from ..common.errors import AnimStudioError, Problem, ServerError
from ..common.urls import redact
from .attempts import block_dependents, dependency_uids
from .celery_app import TASK_NAMES, make_app, task_options
from .execute import copy_outputs
from .jobs import Film, Job
from .journal import FINAL, Journal, JobRow
from .pool import PoolError, PoolSpec
from .scheduler import Settings
from .summary import BatchSummary, summarize

log = logging.getLogger(__name__)

RUNNABLE = ("pending", "retry_pending", "failed", "running")  # journal states a (re)started batch submits
PING_EVERY = 15.0              # seconds between checks that some worker answers


# ====================================================================== the canvas

def _task_id(batch: str, job: Job) -> str:
    return f"{batch}.{job.film}.{job.kind}{'.' + job.shot_id if job.shot_id else ''}.{uuid.uuid4().hex[:12]}"


def film_canvas(app, film: Film, out_root: str | Path, settings: Settings | None = None, batch: str = "batch",
                states: Mapping[str, str] | None = None):
    """One film as a canvas: ``chord(group(chain(keyframe, shot) | shot, ...), compose)``, holding only the jobs
    still to do (``states``: job uid → journal state; absent means pending). A shot whose keyframe waits for
    review is left out, and then the compose too (the rest of the header runs as a plain group). Returns
    (the signature or None when nothing is left, {job uid: task id})."""
    from celery import chain, chord, group

    settings = settings or Settings()
    states = states or {}
    options = task_options(settings)
    by_id = {job.id: job for job in film.jobs}
    ids: dict[str, str] = {}

    def state(job: Job) -> str:
        return states.get(job.uid, "pending")

    def signature(job: Job):
        ids[job.uid] = _task_id(batch, job)
        return app.signature(TASK_NAMES[job.kind], kwargs={"job": job.to_json(), "out_root": str(out_root),
                                                            "options": options, "carried": {}},
                             immutable=True).set(task_id=ids[job.uid])

    chains, blocked = [], False
    chains += [signature(job) for job in film.jobs if job.kind == "train" and state(job) in RUNNABLE]
    for shot in (job for job in film.jobs if job.kind == "shot"):
        steps, ready = [], True
        for dep in (by_id[d] for d in shot.depends_on):
            if state(dep) in RUNNABLE:
                steps.append(dep)
            elif state(dep) != "completed":
                ready = False
        if state(shot) in RUNNABLE and ready:
            steps.append(shot)
        elif state(shot) != "completed":
            blocked = True  # it waits for review, or for an input that does: the film cannot be composed
        if steps:
            signatures = [signature(job) for job in steps]
            chains.append(signatures[0] if len(signatures) == 1 else chain(*signatures, app=app))
    compose = next((job for job in film.jobs if job.kind == "compose"), None)
    if compose is not None and state(compose) in RUNNABLE and not blocked:
        body = signature(compose)
        return (chord(group(chains, app=app), body, app=app) if chains else body), ids
    return (group(chains, app=app) if chains else None), ids


# ====================================================================== the scheduler side

@dataclass
class _Seen:
    """What the scheduler last journalled of a job's task, so each transition is written once."""
    retry: Any = None              # the attempt whose retry was journalled
    run: str | None = None         # the run on an endpoint journalled as running
    worker: str | None = None
    endpoint: str | None = None


def _scrubbed(text: str, broker_url: str) -> str:
    """*text* without the broker URL's credentials (a Redis password is often in the URL)."""
    parts = urllib.parse.urlsplit(broker_url)
    text = text.replace(broker_url, redact(broker_url))
    for secret in (parts.password, parts.username):
        if secret and len(secret) > 2:
            text = text.replace(secret, "***")
    return text


class _Follower:
    """Submits a batch's films and journals what their tasks do until each job is done, waits for review or is
    cancelled."""

    def __init__(self, app, journal: Journal, batch: str, out_root: Path, settings: Settings, broker_url: str):
        self.app = app
        self.journal = journal
        self.batch = batch
        self.out_root = out_root
        self.settings = settings
        self.broker_url = broker_url
        self.tasks: dict[str, str] = {}      # job uid (film/id) → task id
        self.seen: dict[str, _Seen] = {}
        self.key = f"animstudio:batch:{batch}:tasks"

    # ------------------------------------------------------------------ submitting
    def copy_shared(self) -> None:
        """Jobs completed for another film or batch: copy their outputs instead of sending them (as the embedded
        scheduler does)."""
        for row in self.journal.jobs(self.batch):
            if row.state not in RUNNABLE or row.job.kind == "compose":
                continue
            earlier = self.journal.completed_elsewhere(row.job.id)
            if earlier is None or earlier.uid == row.uid:
                continue
            source = self.journal.batch_out_dir(earlier.batch) or self.out_root
            try:
                result = copy_outputs(row.job, source, earlier.job.film, self.out_root)
            except AnimStudioError:
                continue  # its outputs are gone: render it
            self.journal.transition(row.uid, "completed", "copy", detail=f"same job as {earlier.uid}",
                                    finished=time.time(), result=result)

    def revoke_previous(self) -> None:
        """Tasks an earlier run of this batch command sent (it was killed): revoked before the rest is sent again."""
        client = self.app.backend.client
        old = [t.decode() if isinstance(t, bytes) else t for t in client.smembers(self.key)]
        if old:
            self.app.control.revoke(old, terminate=False)
            log.info("batch %s: %d task(s) of an earlier run revoked; what is left is sent again", self.batch, len(old))
        client.delete(self.key)

    def submit(self, films: list[Film]) -> None:
        states = {row.job.uid: row.state for row in self.journal.jobs(self.batch)}
        client = self.app.backend.client
        for film in films:
            canvas, ids = film_canvas(self.app, film, self.out_root, self.settings, self.batch, states)
            if canvas is None:
                continue
            client.sadd(self.key, *ids.values())
            client.expire(self.key, 7 * 24 * 3600)
            canvas.apply_async()
            # the states are read with one MGET a poll; Celery's pub/sub subscription per sent task would only
            # pile up unread messages on this connection
            consumer = getattr(self.app.backend, "result_consumer", None)
            for task_id in ids.values() if consumer is not None else ():
                consumer.cancel_for(task_id)
            self.tasks.update(ids)
            log.info("batch %s: film %s sent as %d task(s)", self.batch, film.name, len(ids))

    # ------------------------------------------------------------------ following
    def _metas(self, task_ids: list[str]) -> dict[str, dict]:
        backend = self.app.backend
        if not task_ids:
            return {}
        values = backend.mget([backend.get_key_for_task(t) for t in task_ids])
        return {t: backend.decode(v) for t, v in zip(task_ids, values) if v is not None}

    def _block_dependents(self, rows: dict[str, JobRow]) -> None:
        """As with the embedded scheduler: a job waiting on one that needs review (or was cancelled) waits for
        review too (Celery never starts it: its chain or chord is broken), and the batch ends."""
        block_dependents(self.journal, rows.values(), FINAL)

    def follow(self) -> None:
        outstanding = dict(self.tasks)
        next_ping, silent_since, warned, broker_lost = time.monotonic() + PING_EVERY, None, False, None
        while True:
            try:
                if self.journal.batch_state(self.batch) == "cancelled":
                    self.app.control.revoke(list(outstanding.values()), terminate=False)
                    log.warning("batch %s cancelled: %d task(s) revoked", self.batch, len(outstanding))
                    return
                metas = self._metas(list(outstanding.values()))
                broker_lost = None
            except _broker_errors() as exc:  # Redis restarting: wait for it a while, as for endpoints
                broker_lost = broker_lost or time.monotonic()
                if time.monotonic() - broker_lost > self.settings.all_down_timeout:
                    raise ServerError(f"the Celery broker at {redact(self.broker_url)} stopped answering",
                                      [Problem("--broker", _scrubbed(str(exc), self.broker_url))]) from None
                log.warning("batch %s: the broker does not answer (%s); waiting", self.batch,
                            _scrubbed(str(exc), self.broker_url))
                time.sleep(1.0)
                continue
            rows = {row.job.uid: row for row in self.journal.jobs(self.batch)}
            for uid in [u for u in rows if u in outstanding]:
                meta = metas.get(outstanding[uid])
                if meta is not None and self._apply(rows[uid], meta, rows):
                    del outstanding[uid]
                    rows = {row.job.uid: row for row in self.journal.jobs(self.batch)}
            self._block_dependents(rows)
            if all(rows[uid].state in FINAL for uid in outstanding):
                return
            if time.monotonic() >= next_ping:
                try:
                    answering = self.app.control.ping(timeout=1.0)
                except _broker_errors():
                    continue  # the next poll finds the broker gone
                next_ping = time.monotonic() + PING_EVERY
                if answering:
                    silent_since, warned = None, False
                else:
                    silent_since = silent_since or time.monotonic()
                    if not warned:
                        log.warning("batch %s: no worker answers on %s; start one with `animstudio worker --pool "
                                    "POOL --broker URL -o %s`", self.batch, redact(self.broker_url), self.out_root)
                        warned = True
                    if time.monotonic() - silent_since > self.settings.all_down_timeout:
                        why = f"no worker answered for {self.settings.all_down_timeout:.0f} s"
                        for row in rows.values():
                            if row.state not in FINAL:
                                self.journal.transition(row.uid, "manual_review", detail=why, error=why)
                        self.app.control.revoke(list(outstanding.values()), terminate=False)
                        return
            time.sleep(self.settings.poll)

    def _running(self, row: JobRow, seen: _Seen, info: Mapping[str, Any], started: float | None = None) -> None:
        """Journal the run *info* names as running, once; a short job can start and end between two polls, and
        then its running is journalled when its end is seen. A different run of a job journalled as running means
        the worker of the first one died (or lost its hold on the message) and another took the job."""
        run = info.get("run")
        if run is None or run == seen.run:
            return
        if seen.run is not None and row.state == "running":
            self.journal.transition(row.uid, "pending", seen.endpoint, detail=f"worker {seen.worker} stopped before "
                                    "finishing it; it runs again", tries=max(0, int(info.get("tries") or 1) - 1))
        seen.run, seen.worker, seen.endpoint = run, info.get("worker"), info.get("endpoint")
        self.journal.transition(row.uid, "running", seen.endpoint, detail=f"on {seen.endpoint} (worker {seen.worker})",
                                started=started or time.time(), tries=int(info.get("tries") or 1))

    def _apply(self, row: JobRow, meta: dict, rows: dict[str, JobRow]) -> bool:
        """Journal what *meta* (the task's state in the result backend) says of *row*; True once it is final."""
        status, result = meta.get("status"), meta.get("result")
        seen = self.seen.setdefault(row.job.uid, _Seen())
        journal, uid = self.journal, row.uid
        if status == "RUNNING" and isinstance(result, dict):
            self._running(row, seen, result)
            return False
        if status == "RETRY":
            message, details = _failure(result)
            if details.get("attempt") == seen.retry:
                return False
            seen.retry = details.get("attempt")
            if details.get("counted"):
                self._running(row, seen, {**details, "tries": details.get("tries", 1)})
                journal.transition(uid, "failed", details.get("endpoint"), detail=message, error=message,
                                   gpu_seconds=details.get("gpu_seconds", 0.0), cost=details.get("cost", 0.0),
                                   tries=details.get("tries", row.tries))
                delay = float(details.get("countdown") or 0)
                journal.transition(uid, "retry_pending", detail=f"retry in {delay:.1f} s", next_try=time.time() + delay)
            elif row.state != "pending" or details.get("run"):
                # its endpoint went away mid-job, or no endpoint was free: back in the queue without using a try
                journal.transition(uid, "pending", details.get("endpoint"), detail=message,
                                   tries=details.get("tries", 0))
            seen.run = None
            return False
        if status == "SUCCESS" and isinstance(result, dict):
            self._running(row, seen, result, started=time.time() - float(result.get("seconds") or 0))
            journal.transition(uid, "completed", result.get("endpoint"),
                               detail=f"{result.get('seconds')} s (worker {result.get('worker')})",
                               finished=time.time(), gpu_seconds=result.get("gpu_seconds", 0.0),
                               cost=result.get("cost", 0.0), result=result.get("result"), tries=result.get("tries", 1))
            return True
        if status == "FAILURE":
            message, details = _failure(result)
            deps_done = all(rows.get(uid) is not None and rows[uid].state == "completed"
                            for uid in dependency_uids(row.job))
            if details.get("uid", row.job.uid) != row.job.uid or not deps_done:
                log.info("%s does not run: %s", row.job.label, (message or "an input failed").splitlines()[0])
                return True  # an input failed (the failure came down the chain or chord): see _block_dependents
            self._running(row, seen, details)
            journal.transition(uid, "manual_review", details.get("endpoint"), detail=message, error=message,
                               finished=time.time(), gpu_seconds=details.get("gpu_seconds", row.gpu_seconds or 0.0),
                               cost=details.get("cost", row.cost or 0.0), tries=details.get("tries", row.tries + 1))
            return True
        if status == "REVOKED":
            if row.state not in FINAL:
                journal.transition(uid, "cancelled", detail="its task was revoked", error="its task was revoked")
            return True
        return False


def _broker_errors() -> tuple[type[BaseException], ...]:
    import redis
    from kombu.exceptions import OperationalError

    return OSError, redis.RedisError, OperationalError


def _failure(result: Any) -> tuple[str, dict]:
    """The message and details of a stored exception (read as data: nothing is imported or built from it)."""
    if not isinstance(result, dict):
        return str(result), {}
    args = result.get("exc_message")
    if result.get("exc_type") == "JobFailed" and isinstance(args, (list, tuple)) and len(args) == 2 \
            and isinstance(args[1], dict):
        return str(args[0]), args[1]
    if isinstance(args, (list, tuple)):
        args = " ".join(str(a) for a in args)
    return f"{result.get('exc_type', 'error')}: {args}", {}


def _check_broker(app, broker_url: str) -> None:
    try:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, interval_start=0.5, interval_step=0.5, timeout=5)
        app.backend.client.ping()
    except Exception as exc:
        raise ServerError(f"cannot reach the Celery broker at {redact(broker_url)}",
                          [Problem("--broker", _scrubbed(str(exc) or type(exc).__name__, broker_url))]) from None


def run_batch_on_celery(films: list[Film], out_root: str | Path, journal_path: str | Path, batch: str,
                        broker_url: str, pool_spec: PoolSpec | None = None,
                        settings: Settings | None = None) -> BatchSummary:
    """Run *batch* on Celery workers: journal it, send what is not completed yet (a restarted command sends the
    rest again), journal each job's transitions until the batch ends or is cancelled; returns the summary."""
    settings = settings or Settings()
    if pool_spec is not None and pool_spec.providers:
        raise PoolError(f"{pool_spec.source}: --engine celery renders on the workers' endpoints; providers "
                        f"({', '.join(p.name for p in pool_spec.providers)}) need --engine local",
                        [Problem("$.providers", "remove them, or run the batch with --engine local")])
    out = Path(out_root).resolve()
    out.mkdir(parents=True, exist_ok=True)
    app = make_app(broker_url)
    _check_broker(app, broker_url)
    journal = Journal(journal_path)
    try:
        journal.add_batch(batch, out, films)
        resumed = journal.resume(batch)
        if resumed:
            log.info("batch %s: %d job(s) were running when the scheduler stopped; they are sent again", batch, resumed)
        if journal.batch_state(batch) != "cancelled":
            follower = _Follower(app, journal, batch, out, settings, broker_url)
            follower.revoke_previous()
            follower.copy_shared()
            follower.submit(films)
            follower.follow()
        state = "cancelled" if journal.batch_state(batch) == "cancelled" else "done"
        journal.set_batch_state(batch, state)
        return summarize(journal, batch, out)
    finally:
        journal.close()
