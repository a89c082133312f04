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
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from ..common.errors import AnimStudioError, GraphValidationError, Problem, ServerError, StoryboardError
from ..translator.engines import ServerEngine
from ..translator.render import Reporter
from ..common.urls import redact
from .execute import copy_outputs, run_job
from .jobs import Film, Job
from .journal import FINAL, Journal, JobRow
from .pool import Endpoint, PoolError, PoolSpec, endpoints_from
from .scheduler import BatchSummary, Settings, summarize

log = logging.getLogger(__name__)

TASK_NAMES = {"train": "animstudio.train", "keyframe": "animstudio.keyframe", "shot": "animstudio.shot",
              "compose": "animstudio.compose"}
QUEUE = "animstudio"
REDIS_SCHEMES = ("redis://", "rediss://", "unix://", "sentinel://")
VISIBILITY_ENV = "ANIMSTUDIO_CELERY_VISIBILITY_TIMEOUT"
DEFAULT_VISIBILITY = 120.0     # seconds before a dead worker's unacknowledged job goes to another worker
RUNNABLE = ("pending", "retry_pending", "failed", "running")  # journal states a (re)started batch submits
LOST_RETRY = 1.0               # countdown when the endpoint went away mid-job: at once, elsewhere
SLOT_WAIT = 2.0                # seconds a task waits for a free slot before it goes back to the queue
PING_EVERY = 15.0              # seconds between checks that some worker answers


class JobFailed(Exception):
    """What a task raises (and the result backend stores) when its job failed: the message, and what the
    scheduler journals (``uid``, ``tries``, ``endpoint``, ``gpu_seconds``, ``cost``, ``counted``, ``countdown``)."""

    def __init__(self, message: str, details: Mapping[str, Any] | None = None):
        super().__init__(message, dict(details or {}))

    @property
    def message(self) -> str:
        return self.args[0]

    @property
    def details(self) -> dict:
        return self.args[1]

    def __str__(self) -> str:
        return self.message


# ====================================================================== the app

_apps: dict[str, Any] = {}
_apps_lock = threading.Lock()


def visibility_timeout() -> float:
    raw = os.environ.get(VISIBILITY_ENV)
    if not raw:
        return DEFAULT_VISIBILITY
    try:
        value = float(raw)
    except ValueError:
        raise AnimStudioError(f"${VISIBILITY_ENV}: {raw!r} is not a number of seconds") from None
    if value < 2:
        raise AnimStudioError(f"${VISIBILITY_ENV}: {raw} s is too short (at least 2 s)")
    return value


def make_app(broker_url: str):
    """The Celery app for one broker (also the result backend). Workers and scheduler build it the same way,
    so they agree on task names, queue and serializer; one app per URL in a process."""
    try:
        from celery import Celery
    except ImportError:
        raise AnimStudioError("the Celery engine needs celery with Redis: pip install 'animstudio[celery]'") from None
    if not broker_url.startswith(REDIS_SCHEMES):
        raise AnimStudioError(f"--broker {redact(broker_url)}: the Celery engine needs Redis as broker and result "
                              "backend (redis://host:6379/0, rediss://, unix:// or sentinel://)")
    with _apps_lock:
        if broker_url in _apps:
            return _apps[broker_url]
        visibility = visibility_timeout()
        app = Celery("animstudio", broker=broker_url, backend=broker_url, set_as_current=False)
        # task_reject_on_worker_lost matters for a prefork pool (a killed child's job is queued again at once);
        # the thread pool's jobs, whose process is killed whole, come back through the visibility timeout
        app.conf.update(
            task_serializer="json", result_serializer="json", accept_content=["json"],
            task_acks_late=True, task_reject_on_worker_lost=True, worker_prefetch_multiplier=1,
            task_track_started=True, task_default_queue=QUEUE, task_default_exchange=QUEUE,
            task_default_routing_key=QUEUE, result_expires=7 * 24 * 3600,
            broker_connection_retry_on_startup=True, worker_hijack_root_logger=False,
            worker_pool="threads", worker_send_task_events=False,
            broker_transport_options={"visibility_timeout": visibility,
                                      "unacked_restore_interval": max(1, int(visibility / 4)),
                                      "unacked_restore_throttle": 1, "unacked_mutex_expire": 60},
        )
        for name in TASK_NAMES.values():
            app.task(name=name, bind=True, shared=False, max_retries=None, acks_late=True,
                     throws=(JobFailed,))(_render_task)
        _apps[broker_url] = app
        return app


def task_options(settings: Settings) -> dict:
    """The scheduler's settings a worker needs, carried in every task (workers have no journal or CLI flags)."""
    return {"max_tries": settings.max_tries, "backoff": settings.backoff, "job_timeout": settings.job_timeout,
            "probe_every": settings.probe_every, "all_down_timeout": settings.all_down_timeout}


def _render_task(task, job: dict, out_root: str, options: dict, carried: dict | None = None) -> dict:
    context = _context
    if context is None:
        raise JobFailed("this process is not an animstudio worker (start one with `animstudio worker`)",
                        {"uid": Job.from_json(job).uid, "final": True})
    return context.run(task, job, out_root, options, carried or {})


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


# ====================================================================== the worker

_context: "WorkerContext | None" = None


class WorkerContext:
    """What a worker process shares between its threads: the endpoints (health, busy slots) and its output folder."""

    def __init__(self, endpoints: list[Endpoint], out_root: Path, hostname: str):
        self.endpoints = endpoints
        self.out_root = Path(out_root).resolve()
        self.hostname = hostname
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ endpoints
    def _mark_down(self, endpoint: Endpoint, why: str) -> None:
        if endpoint.healthy:
            log.warning("endpoint %s (%s) is out of this worker's pool: %s", endpoint.name, redact(endpoint.url), why)
        endpoint.healthy, endpoint.down_since = False, time.time()

    def _reprobe(self, probe_every: float) -> None:
        for endpoint in self.endpoints:
            if not endpoint.healthy and time.time() - (endpoint.down_since or 0) >= probe_every:
                if endpoint.probe():
                    log.info("endpoint %s answers again", endpoint.name)
                    endpoint.refresh()
                    endpoint.healthy, endpoint.down_since = True, None
                else:
                    endpoint.down_since = time.time()

    def acquire(self, job: Job, probe_every: float) -> tuple[Endpoint | None, str, str]:
        """A healthy endpoint with a free slot that can run *job*, its slot taken; else (None, why, ``lacks``:
        every answering endpoint lacks something the job needs | ``down``: none answers | ``busy``)."""
        deadline = time.monotonic() + SLOT_WAIT
        while True:
            self._reprobe(probe_every)
            usable, lacking = [], []
            for endpoint in [e for e in self.endpoints if e.healthy]:
                try:
                    missing = endpoint.lacks(job)
                except (ServerError, OSError):
                    self._mark_down(endpoint, "its /object_info did not answer")
                    continue
                if missing:
                    lacking.append(f"{endpoint.name} lacks " + ", ".join(missing))
                else:
                    usable.append(endpoint)
            if not usable:
                if lacking:
                    return None, "no endpoint can run it: " + "; ".join(lacking), "lacks"
                return None, f"no endpoint of worker {self.hostname} answers", "down"
            with self._lock:
                free = [e for e in usable if e.healthy and e.busy < e.capacity]
                if free:
                    endpoint = min(free, key=lambda e: (e.busy / e.capacity, e.last_used))
                    endpoint.busy += 1
                    return endpoint, "", "ok"
            if time.monotonic() >= deadline:
                return None, f"every endpoint of worker {self.hostname} is busy", "busy"
            time.sleep(0.2)

    def release(self, endpoint: Endpoint) -> None:
        with self._lock:
            endpoint.busy -= 1
            endpoint.last_used = time.time()

    def batch_root(self, job: Job, out_root: str) -> Path:
        """The batch's output folder, which must be this worker's ``-o`` folder or inside it: a message on the
        broker cannot make a worker write anywhere else."""
        target = Path(out_root).resolve()
        if target != self.out_root and self.out_root not in target.parents:
            raise AnimStudioError(f"job {job.label}: it writes to {target}, but worker {self.hostname} serves "
                                  f"{self.out_root} (-o); start the workers with -o on the batch's output folder")
        return target

    # ------------------------------------------------------------------ one task
    def run(self, task, job_data: dict, out_root: str, options: dict, carried: dict) -> dict:
        job = Job.from_json(job_data)
        settings = {**task_options(Settings()), **options}
        failures = int(carried.get("failures", 0))
        gpu, cost = float(carried.get("gpu_seconds", 0.0)), float(carried.get("cost", 0.0))
        attempt = task.request.retries or 0
        run_id = None  # this run on an endpoint: the scheduler tells a job started again from one it saw start

        def details(**extra) -> dict:
            return {"uid": job.uid, "tries": failures, "gpu_seconds": round(gpu, 3), "cost": round(cost, 6),
                    "attempt": attempt, "worker": self.hostname, **({"run": run_id} if run_id else {}), **extra}

        def again(exc: JobFailed, countdown: float, **keep):
            return task.retry(exc=exc, countdown=countdown,
                              kwargs={"job": job_data, "out_root": out_root, "options": options,
                                      "carried": {"failures": failures, "gpu_seconds": gpu, "cost": cost, **keep}})

        try:
            root = self.batch_root(job, out_root)
        except AnimStudioError as exc:
            raise JobFailed(str(exc), details(tries=failures + 1, final=True)) from None
        endpoint, why, kind = self.acquire(job, settings["probe_every"])
        if endpoint is None:
            if kind == "lacks":
                raise JobFailed(why, details(tries=failures + 1, final=True))
            down_since = None
            if kind == "down":  # back to the queue (another worker may have endpoints that answer), for a while
                down_since = carried.get("down_since") or time.time()
                if time.time() - down_since > settings["all_down_timeout"]:
                    raise JobFailed(f"no endpoint answered for {settings['all_down_timeout']:.0f} s ({why})",
                                    details(tries=failures + 1, final=True))
            countdown = settings["probe_every"] if down_since else LOST_RETRY
            log.info("%s goes back to the queue: %s", job.label, why)
            raise again(JobFailed(why, details(counted=False, countdown=countdown)), countdown,
                        **({"down_since": down_since} if down_since else {}))

        run_id = uuid.uuid4().hex
        task.update_state(state="RUNNING", meta={"endpoint": endpoint.name, "worker": self.hostname,
                                                 "attempt": attempt, "tries": failures + 1, "run": run_id})
        client = endpoint.client(timeout=60)
        started = time.monotonic()
        watchdog = threading.Timer(settings["job_timeout"], client.interrupt)
        watchdog.daemon = True
        watchdog.start()
        try:
            result = run_job(job, root, ServerEngine(client), Reporter())
        except (StoryboardError, GraphValidationError) as exc:
            # the job itself is wrong (or the endpoint lacks something the check missed): trying again cannot help
            failures, gpu, cost = self._spent(failures, gpu, cost, endpoint, started)
            raise JobFailed(str(exc), details(endpoint=endpoint.name, final=True)) from None
        except Exception as exc:  # AnimStudioError, OSError; and a bug in a stage counts as a failed try too
            if isinstance(exc, (ServerError, OSError)) and not endpoint.probe():
                self._mark_down(endpoint, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
                log.warning("%s: %s went away mid-job; the job goes back to the queue", job.label, endpoint.name)
                raise again(JobFailed(f"{endpoint.name} went away", details(endpoint=endpoint.name, counted=False,
                                                                            tries=failures, countdown=LOST_RETRY)),
                            LOST_RETRY)
            if not isinstance(exc, (AnimStudioError, OSError)):
                log.exception("%s: unexpected failure on %s", job.label, endpoint.name)
            timed_out = time.monotonic() - started >= settings["job_timeout"]
            failures, gpu, cost = self._spent(failures, gpu, cost, endpoint, started)
            message = (f"timed out after {settings['job_timeout']:.0f} s; " if timed_out else "") + (
                str(exc) if isinstance(exc, (AnimStudioError, OSError)) else f"{type(exc).__name__}: {exc}")
            if failures >= settings["max_tries"]:
                log.error("%s needs review after %d tr%s: %s", job.label, failures, "y" if failures == 1 else "ies",
                          message.splitlines()[0])
                raise JobFailed(message, details(endpoint=endpoint.name, final=True)) from None
            countdown = settings["backoff"] * (2 ** (failures - 1))
            log.warning("%s failed on %s (try %d of %d), retrying in %.1f s: %s", job.label, endpoint.name, failures,
                        settings["max_tries"], countdown, message.splitlines()[0])
            raise again(JobFailed(message, details(endpoint=endpoint.name, counted=True, countdown=countdown)),
                        countdown)
        finally:
            watchdog.cancel()
            self.release(endpoint)
        seconds = round(time.monotonic() - started, 3)
        gpu, cost = gpu + seconds, cost + seconds * endpoint.cost_per_gpu_second
        log.info("%s completed on %s in %.1f s", job.label, endpoint.name, seconds)
        return {"result": result, "endpoint": endpoint.name, "worker": self.hostname, "seconds": seconds,
                "gpu_seconds": round(gpu, 3), "cost": round(cost, 6), "tries": failures + 1, "attempt": attempt,
                "run": run_id}

    @staticmethod
    def _spent(failures: int, gpu: float, cost: float, endpoint: Endpoint, started: float) -> tuple[int, float, float]:
        seconds = time.monotonic() - started
        return failures + 1, gpu + seconds, cost + seconds * endpoint.cost_per_gpu_second


class _Leases(threading.Thread):
    """Renews this worker's hold on the messages it has taken (kombu's Redis transport hands an unacknowledged
    message to another worker once it is older than the visibility timeout): the timestamps in the broker's
    ``unacked_index`` are moved forward while this process lives, so only a dead worker's jobs are handed on."""

    def __init__(self, broker_url: str, transport_options: Mapping[str, Any]):
        super().__init__(name="animstudio-leases", daemon=True)
        import redis

        self.client = redis.Redis.from_url(broker_url, socket_timeout=10, socket_connect_timeout=10)
        self.key = transport_options.get("global_keyprefix", "") + transport_options.get("unacked_index_key",
                                                                                          "unacked_index")
        self.every = max(0.5, float(transport_options.get("visibility_timeout", DEFAULT_VISIBILITY)) / 4)
        self.tags: set[str] = set()
        self._lock = threading.Lock()
        self._stopped = threading.Event()

    def hold(self, sender=None, request=None, **_) -> None:
        tag = getattr(getattr(request, "message", None), "delivery_tag", None)
        if tag:
            with self._lock:
                self.tags.add(tag)

    def renew(self) -> None:
        with self._lock:
            tags = list(self.tags)
        if not tags:
            return
        now = time.time()
        pipe = self.client.pipeline(transaction=False)
        for tag in tags:
            pipe.zadd(self.key, {tag: now}, xx=True, ch=True)
        changed = pipe.execute()
        with self._lock:  # a tag no longer in the index was acknowledged (or handed on): stop renewing it
            self.tags.difference_update(tag for tag, n in zip(tags, changed) if not n)

    def run(self) -> None:
        while not self._stopped.wait(self.every):
            try:
                self.renew()
            except Exception as exc:  # the broker is away: the worker's own connection reports it
                log.debug("could not renew the held messages: %s", exc)

    def stop(self) -> None:
        self._stopped.set()


def run_worker(pool_spec: PoolSpec, broker_url: str, out_root: str | Path, concurrency: int | None = None) -> int:
    """Run a Celery worker (thread pool) that renders batch jobs on the endpoints of *pool_spec*, writing into
    *out_root* (the batch's output folder, shared with the scheduler). Returns the worker's exit code."""
    global _context
    if pool_spec.providers:
        raise PoolError(f"{pool_spec.source}: a worker serves fixed endpoints; providers "
                        f"({', '.join(p.name for p in pool_spec.providers)}) are for the embedded scheduler",
                        [Problem("$.providers", "remove them, or run the batch with --engine local")])
    endpoints = endpoints_from(pool_spec)
    if not endpoints:
        raise PoolError(f"{pool_spec.source}: no endpoints for the worker to serve", [Problem("$.endpoints", "empty")])
    folder = Path(out_root).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    concurrency = concurrency or sum(e.capacity for e in endpoints)
    for endpoint in endpoints:
        if not endpoint.probe():
            log.warning("endpoint %s (%s) does not answer now; probed again before each job", endpoint.name,
                        redact(endpoint.url))
            endpoint.healthy, endpoint.down_since = False, time.time()
    app = make_app(broker_url)
    from celery import signals

    hostname = f"animstudio-{os.getpid()}@{socket.gethostname()}"
    _context = WorkerContext(endpoints, folder, hostname)
    leases = None
    if broker_url.startswith(("redis://", "rediss://", "unix://")):
        leases = _Leases(broker_url, app.conf.broker_transport_options)
        signals.task_received.connect(leases.hold, weak=False)
        leases.start()
    level = logging.getLogger().getEffectiveLevel()
    log.info("worker %s: %d slot(s) on %s, broker %s, output %s", hostname, concurrency,
             ", ".join(e.name for e in endpoints), redact(broker_url), folder)
    worker = app.Worker(hostname=hostname, concurrency=concurrency, loglevel=logging.getLevelName(level),
                        quiet=True, optimization="fair")
    try:
        worker.start()
    finally:
        if leases is not None:
            leases.stop()
            signals.task_received.disconnect(leases.hold)
        _context = None
    return worker.exitcode or 0


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
        """As with the embedded scheduler: a job waiting on one that needs review (or was cancelled) cannot run
        either (Celery never starts it: its chain or chord is broken), so it waits for review too, naming it, and
        the batch ends (``batch retry`` puts them all back)."""
        stuck = {uid: row for uid, row in rows.items() if row.state in ("manual_review", "cancelled")}
        for uid, row in rows.items():  # in dependency order: what a job waits on comes before it
            if row.state in FINAL or row.state == "running":
                continue
            blocker = next((stuck[f"{row.job.film}/{d}"] for d in row.job.depends_on
                            if f"{row.job.film}/{d}" in stuck), None)
            if blocker is not None:
                why = f"waits on {blocker.job.label}, which needs review"
                self.journal.transition(row.uid, "manual_review", detail=why, error=why)
                row.state = "manual_review"
                stuck[uid] = row

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
            deps_done = all(rows.get(f"{row.job.film}/{d}") is not None
                            and rows[f"{row.job.film}/{d}"].state == "completed" for d in row.job.depends_on)
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
