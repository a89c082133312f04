"""One attempt policy for every engine: what running a job on an endpoint came to, decided in one place.

The embedded scheduler (:mod:`.scheduler`) and the Celery worker (:mod:`.celery_worker`) both run a job with
:func:`~.execute.run_job` and hand what happened to :func:`judge`; they only record the outcome (the scheduler in
its journal, the worker as a task result or retry the scheduler journals). The rules:

* the job ran: **completed**;
* the storyboard is wrong, or the graph does not fit the endpoint: **review** at once (another try cannot help);
* the endpoint stopped answering (a server error or a broken connection, and a probe fails): **requeue**
  elsewhere at once, without using one of the job's tries, and the endpoint is marked down;
* anything else, an unexpected exception in a stage included: a **failed try**; after ``max_tries`` of them,
  **review**; before that, **retry** after an exponential backoff (``backoff × 2^(tries-1)``).

Exceptions that are not ``Exception`` (KeyboardInterrupt, SystemExit) are never judged: they stop the engine.
Also here: the dependency key both engines use (:func:`dependency_uids`), blocking the jobs that wait on one
needing review (:func:`block_dependents`), and taking an endpoint out of the pool (:func:`mark_down`).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Callable, Iterable

from ..common.errors import AnimStudioError, GraphValidationError, ServerError, StoryboardError
from ..common.urls import redact

log = logging.getLogger(__name__)

COMPLETED, REQUEUE, RETRY, REVIEW = "completed", "requeue", "retry", "review"


@dataclass(frozen=True)
class Outcome:
    """What an attempt came to: ``kind`` (completed, requeue, retry, review), the ``message`` to journal, the
    job's ``tries`` counted after it (a requeue counts none), the ``delay`` before a retry, and ``down`` (why the
    endpoint is out of the pool) for a requeue."""
    kind: str
    tries: int
    message: str = ""
    delay: float = 0.0
    down: str | None = None

    @property
    def counted(self) -> bool:
        return self.kind != REQUEUE


def describe(exc: BaseException) -> str:
    """An exception as the journal shows it: the project's own errors and OS errors by their message, anything
    else (a bug in a stage) with its type, so it is recognisable as one."""
    text = str(exc)
    if isinstance(exc, (AnimStudioError, OSError)):
        return text or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def judge(exc: Exception | None, tries: int, max_tries: int, backoff: float, timed_out: float | None = None,
          endpoint_answers: Callable[[], bool] = lambda: True) -> Outcome:
    """The outcome of one attempt of a job that had used ``tries`` tries before it: ``exc`` is what the attempt
    raised (None: it ran). ``endpoint_answers`` probes the endpoint, asked only when the failure may be the
    endpoint's; ``timed_out``: the seconds after which the engine's watchdog interrupted the job, if it did."""
    if exc is None:
        return Outcome(COMPLETED, tries + 1)
    if isinstance(exc, (StoryboardError, GraphValidationError)):
        return Outcome(REVIEW, tries + 1, describe(exc))
    if isinstance(exc, (ServerError, OSError)) and not endpoint_answers():
        first = describe(exc).splitlines()[0]  # describe is never empty: it falls back to the type's name
        return Outcome(REQUEUE, tries, f"the endpoint went away: {first}", down=first)
    message = (f"timed out after {timed_out:.0f} s; " if timed_out else "") + describe(exc)
    if tries + 1 >= max_tries:
        return Outcome(REVIEW, tries + 1, message)
    return Outcome(RETRY, tries + 1, message, delay=backoff * (2 ** tries))


def log_outcome(label: str, endpoint: str, outcome: Outcome, max_tries: int) -> None:
    """One log line per failed attempt, the same from every engine."""
    first = outcome.message.splitlines()[0] if outcome.message else ""
    if outcome.kind == REVIEW:
        log.error("%s needs review after %d tr%s: %s", label, outcome.tries, "y" if outcome.tries == 1 else "ies",
                  first)
    elif outcome.kind == RETRY:
        log.warning("%s failed on %s (try %d of %d), retrying in %.1f s: %s", label, endpoint, outcome.tries,
                    max_tries, outcome.delay, first)
    elif outcome.kind == REQUEUE:
        log.warning("%s: %s went away mid-job; the job goes back to the queue", label, endpoint)


def mark_down(endpoint, why: str, pool: str = "the pool") -> None:
    """Take an endpoint out of ``pool`` until a probe finds it again (logged once, its URL without secrets)."""
    if endpoint.healthy:
        log.warning("endpoint %s (%s) is out of %s: %s", endpoint.name, redact(endpoint.url), pool, why)
    endpoint.healthy, endpoint.down_since = False, time.time()


def dependency_uids(job) -> tuple[str, ...]:
    """The uids (``film/id``, :attr:`.jobs.Job.uid`) of the jobs ``job`` waits on: the one dependency key."""
    return tuple(f"{job.film}/{dep}" for dep in job.depends_on)


def block_dependents(journal, rows: Iterable, final: Iterable[str], skip: Callable[[object], bool] = lambda r: False
                     ) -> None:
    """Jobs waiting (directly or not) on one that needs review or was cancelled cannot run either: they wait for
    review too, naming it, so the batch ends instead of waiting forever (``batch retry`` puts them all back).
    ``rows`` are journal rows; ``skip`` keeps a row out (a job an engine holds right now)."""
    rows = list(rows)
    final = set(final)
    stuck = {r.job.uid: r for r in rows if r.state in ("manual_review", "cancelled")}
    changed = True
    while changed:
        changed = False
        for row in rows:
            if row.state in final or row.state == "running" or row.job.uid in stuck or skip(row):
                continue
            blocker = next((stuck[uid] for uid in dependency_uids(row.job) if uid in stuck), None)
            if blocker is not None:
                why = f"waits on {blocker.job.label}, which needs review"
                journal.transition(row.uid, "manual_review", detail=why, error=why)
                row.state = "manual_review"
                stuck[row.job.uid] = row
                changed = True
