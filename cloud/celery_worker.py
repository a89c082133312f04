"""The worker side of the scale-out engine: ``animstudio worker`` takes the batch's job tasks from the broker and
renders each on a healthy endpoint of its own pool file with a free slot that has the job's nodes and models; it
renews its hold on the messages it has taken, so only a dead worker's jobs are handed to another.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Mapping

from ..common.errors import AnimStudioError, Problem, ServerError
from ..common.urls import redact
from ..translator.engines import ServerEngine
from ..translator.render import Reporter
from . import celery_app
from .celery_app import DEFAULT_VISIBILITY, LOST_RETRY, SLOT_WAIT, JobFailed, make_app, task_options
from .attempts import REQUEUE, RETRY, REVIEW, judge, log_outcome, mark_down
from .execute import run_job
from .jobs import Job
from .pool import Endpoint, PoolError, PoolSpec, endpoints_from
from .scheduler import Settings

log = logging.getLogger(__name__)


class WorkerContext:
    """What a worker process shares between its threads: the endpoints (health, busy slots) and its output folder."""

    def __init__(self, endpoints: list[Endpoint], out_root: Path, hostname: str):
        self.endpoints = endpoints
        self.out_root = Path(out_root).resolve()
        self.hostname = hostname
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ endpoints
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
                    mark_down(endpoint, "its /object_info did not answer", "this worker's pool")
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
        failure = None
        try:
            result = run_job(job, root, ServerEngine(client), Reporter())
        except Exception as exc:  # whatever a stage raises is judged (a bug included), as by the embedded scheduler
            if not isinstance(exc, (AnimStudioError, OSError)):
                log.exception("%s: unexpected failure on %s", job.label, endpoint.name)
            failure = exc
        finally:
            watchdog.cancel()
            self.release(endpoint)
        seconds = round(time.monotonic() - started, 3)
        timed_out = settings["job_timeout"] if seconds >= settings["job_timeout"] else None
        outcome = judge(failure, failures, settings["max_tries"], settings["backoff"], timed_out, endpoint.probe)
        log_outcome(job.label, endpoint.name, outcome, settings["max_tries"])
        if outcome.kind == REQUEUE:
            mark_down(endpoint, outcome.down or "it went away", "this worker's pool")
            raise again(JobFailed(f"{endpoint.name} went away", details(endpoint=endpoint.name, counted=False,
                                                                        tries=failures, countdown=LOST_RETRY)),
                        LOST_RETRY)
        # GPU time and cost count every try, the failed ones too (they were billed)
        failures, gpu, cost = outcome.tries, gpu + seconds, cost + seconds * endpoint.cost_per_gpu_second
        if outcome.kind == REVIEW:
            raise JobFailed(outcome.message, details(endpoint=endpoint.name, final=True)) from None
        if outcome.kind == RETRY:
            raise again(JobFailed(outcome.message, details(endpoint=endpoint.name, counted=True,
                                                           countdown=outcome.delay)), outcome.delay)
        log.info("%s completed on %s in %.1f s", job.label, endpoint.name, seconds)
        return {"result": result, "endpoint": endpoint.name, "worker": self.hostname, "seconds": seconds,
                "gpu_seconds": round(gpu, 3), "cost": round(cost, 6), "tries": failures, "attempt": attempt,
                "run": run_id}


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
    celery_app.serve(WorkerContext(endpoints, folder, hostname))
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
        celery_app.serve(None)
    return worker.exitcode or 0
