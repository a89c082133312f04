"""The Celery app of the scale-out engine, shared by the scheduler (:mod:`.celery_engine`) and the workers
(:mod:`.celery_worker`): one app per broker URL, with the task names, queue, serializer and broker options both
sides must agree on, the settings a task carries, and what a task raises when its job failed.
"""
from __future__ import annotations

import logging
import os
import threading
from typing import Any, Mapping

from ..common.errors import AnimStudioError
from ..common.urls import redact
from .jobs import Job
from .scheduler import Settings

log = logging.getLogger(__name__)

TASK_NAMES = {"train": "animstudio.train", "keyframe": "animstudio.keyframe", "shot": "animstudio.shot",
              "compose": "animstudio.compose"}
QUEUE = "animstudio"
REDIS_SCHEMES = ("redis://", "rediss://", "unix://", "sentinel://")
VISIBILITY_ENV = "ANIMSTUDIO_CELERY_VISIBILITY_TIMEOUT"
DEFAULT_VISIBILITY = 120.0     # seconds before a dead worker's unacknowledged job goes to another worker
LOST_RETRY = 1.0               # countdown when the endpoint went away mid-job: at once, elsewhere
SLOT_WAIT = 2.0                # seconds a task waits for a free slot before it goes back to the queue


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


_context = None  # this process's WorkerContext while it is an animstudio worker (see serve)


def serve(context) -> None:
    """Make this process an animstudio worker for the app's tasks (``context.run`` renders each job), or stop
    being one (None)."""
    global _context
    _context = context

