"""The embedded scheduler: no services, one process. A thread per endpoint slot takes the most urgent job whose
inputs are ready and that the endpoint can run, and every state change is journalled first.

* An endpoint that stops answering is taken out (its job goes back to ``pending`` without using a try) and
  probed again from time to time.
* A job that fails goes to ``retry_pending`` with exponential backoff, then ``manual_review`` after the last
  try; a job no endpoint can run (models, node types) goes to ``manual_review`` at once, saying what is missing.
* Killed and restarted with the same journal, it resumes: completed jobs are never run again.
* Provider instances are opened as the scaling policy says and closed when the batch ends, fails or is
  cancelled; instances a crashed scheduler left open are closed when it starts.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..common.errors import AnimStudioError, Problem, ServerError
from ..translator.engines import ServerEngine
from ..translator.render import Reporter
from ..common.urls import redact
from .attempts import (COMPLETED, REQUEUE, REVIEW, Outcome, block_dependents, dependency_uids, judge, log_outcome,
                       mark_down)
from .estimate import job_seconds, kind_costs
from .execute import copy_outputs, run_job
from .jobs import Film, Job
from .journal import FINAL, Journal, JobRow
from .pool import Endpoint

log = logging.getLogger(__name__)


@dataclass
class Settings:
    max_tries: int = 3              # tries per job before manual review
    backoff: float = 2.0            # seconds before the first retry, doubled each time
    job_timeout: float = 3600.0     # a job running longer is interrupted and counts as a failed try
    probe_every: float = 5.0        # seconds between probes of an endpoint that is down
    all_down_timeout: float = 300.0  # seconds with no endpoint answering before the batch stops
    poll: float = 0.2               # how often idle slots look for work
    budget: float | None = None     # cost the batch may reach: no job is started that would pass it (--budget)


@dataclass
class BatchSummary:
    batch: str
    films: dict[str, str | None] = field(default_factory=dict)    # film -> film file (relative to OUT) or None
    jobs: dict[str, int] = field(default_factory=dict)            # state -> count
    retries: int = 0
    gpu_seconds: float = 0.0
    cost: float = 0.0
    gpu_seconds_per_film: dict[str, float] = field(default_factory=dict)
    gpu_seconds_per_shot: dict[str, float] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    loras: dict[str, str] = field(default_factory=dict)           # "film/character" -> trained LoRA (train jobs)

    @property
    def ok(self) -> bool:
        return all(self.films.values()) and set(self.jobs) <= {"completed"}


def summarize(journal: Journal, batch: str, out_root: Path) -> BatchSummary:
    summary = BatchSummary(batch)
    for row in journal.jobs(batch):
        summary.jobs[row.state] = summary.jobs.get(row.state, 0) + 1
        summary.retries += max(0, row.tries - 1)
        summary.gpu_seconds += row.gpu_seconds or 0.0
        summary.cost += row.cost or 0.0
        film = row.job.film
        summary.gpu_seconds_per_film[film] = round(summary.gpu_seconds_per_film.get(film, 0.0) + (row.gpu_seconds or 0), 3)
        if row.job.shot_id:
            key = f"{film}/{row.job.shot_id}"
            summary.gpu_seconds_per_shot[key] = round(summary.gpu_seconds_per_shot.get(key, 0) + (row.gpu_seconds or 0), 3)
        if row.job.kind == "compose":
            files = (row.result or {}).get("files") or []
            summary.films[film] = f"{film}/{files[0]}" if row.state == "completed" and files else None
        if row.job.kind == "train" and row.state == "completed":
            summary.loras[f"{film}/{row.job.character}"] = (row.result or {}).get("lora", "")
        if row.state in ("manual_review", "cancelled") and row.error:
            summary.problems.append(f"{row.job.label}: {row.error}")
    summary.gpu_seconds = round(summary.gpu_seconds, 3)
    summary.cost = round(summary.cost, 4)
    return summary


class Scheduler:
    """Runs one batch to its end on a set of endpoints (and, through ``scaler``, provider instances)."""

    def __init__(self, journal: Journal, endpoints: list[Endpoint], out_root: str | Path,
                 settings: Settings | None = None, scaler=None,
                 on_change: Callable[[], None] | None = None):
        self.journal = journal
        self.endpoints = list(endpoints)
        self.out_root = Path(out_root)
        self.settings = settings or Settings()
        self.scaler = scaler
        self.on_change = on_change or (lambda: None)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._claimed: set[str] = set()
        self._budget_hit = False        # a ready job was held back: it would pass the budget
        self._costs: dict = {}          # job kind → measured GPU seconds (see .estimate), set by run

    # ------------------------------------------------------------------ the batch
    def submit(self, batch: str, films: list[Film]) -> None:
        self.out_root.mkdir(parents=True, exist_ok=True)
        self.journal.add_batch(batch, self.out_root, films)
        resumed = self.journal.resume(batch)
        if resumed:
            log.info("batch %s: %d job(s) were running when the scheduler stopped; they run again", batch, resumed)

    def run(self, batch: str) -> BatchSummary:
        """Dispatch until every job is completed, in manual review or cancelled (or the budget allows no more);
        returns the summary."""
        self._costs = kind_costs(self.journal)
        if self.scaler is not None:
            self.scaler.recover(self.journal)
        for endpoint in self.endpoints:
            if not endpoint.probe():
                mark_down(endpoint, "it does not answer /system_stats")
        if self.endpoints and self.scaler is None and not any(e.healthy for e in self.endpoints):
            raise ServerError("no endpoint of the pool answers, so nothing can render",
                              [Problem(f"endpoint {e.name}", f"{redact(e.url)} does not answer /system_stats")
                               for e in self.endpoints])
        all_down_since: float | None = None
        try:
            while not self._finished(batch) and not self._stop.is_set():
                self._scale(batch)
                self._start_slots(batch)
                if self._endpoints_usable():
                    all_down_since = None
                elif all_down_since is None:
                    all_down_since = time.monotonic()
                elif time.monotonic() - all_down_since > self.settings.all_down_timeout:
                    self._give_up(batch, f"no endpoint answered for {self.settings.all_down_timeout:.0f} s")
                    break
                time.sleep(self.settings.poll)
        finally:
            if self.journal.batch_state(batch) == "cancelled":
                for endpoint in self.endpoints:  # stop what is running now; the journal says cancelled
                    if endpoint.busy and endpoint.healthy:
                        endpoint.client(timeout=5, retries=0).interrupt()
            self._stop.set()
            for thread in self._threads:
                thread.join(timeout=self.settings.job_timeout)
            if self.scaler is not None:
                self.scaler.close_all(self.journal)
        state = "cancelled" if self.journal.batch_state(batch) == "cancelled" else "done"
        self.journal.set_batch_state(batch, state)
        summary = summarize(self.journal, batch, self.out_root)
        if self._budget_hit:
            undone = [r.job.label for r in self.journal.jobs(batch) if r.state not in FINAL]
            summary.problems.append(f"the budget of {self.settings.budget:g} allows no more: {len(undone)} job(s) "
                                    f"left undone ({', '.join(undone[:8])}{', …' if len(undone) > 8 else ''}); "
                                    "run the batch again with a larger --budget to render them")
        return summary

    def stop(self) -> None:
        self._stop.set()

    def _finished(self, batch: str) -> bool:
        if self.journal.batch_state(batch) == "cancelled":
            return True
        if self._budget_hit and not self._claimed:  # nothing runs, and what is ready would pass the budget
            return True
        rows = self.journal.jobs(batch)
        self._block_dependents(rows)
        return all(row.state in FINAL for row in self.journal.jobs(batch))

    def _block_dependents(self, rows: list[JobRow]) -> None:
        """Jobs waiting on one that needs review wait for review too (a job a slot holds is left to its slot)."""
        block_dependents(self.journal, rows, FINAL, skip=lambda row: row.uid in self._claimed)

    def _affordable(self, row: JobRow, endpoint: Endpoint, rows: list[JobRow]) -> bool:
        """Whether starting ``row`` on ``endpoint`` keeps the batch under its budget: what it spent, what the jobs
        running now are estimated to cost, and this job's estimate (from the journal's history, see
        :mod:`.estimate`), together at most the budget."""
        if self.settings.budget is None:
            return True
        rates = {e.name: e.cost_per_gpu_second for e in self.endpoints}
        spent = sum(r.cost or 0.0 for r in rows)
        running = sum(job_seconds(r.job, self._costs) * rates.get(r.endpoint or "", endpoint.cost_per_gpu_second)
                      for r in rows if r.uid in self._claimed)
        this = job_seconds(row.job, self._costs) * endpoint.cost_per_gpu_second
        return spent + running + this <= self.settings.budget + 1e-12

    def _endpoints_usable(self) -> bool:
        """Whether some endpoint answers now (or a provider can still start one); the slots re-probe the rest."""
        if self.scaler is not None and self.scaler.can_grow():
            return True
        return any(e.healthy for e in self.endpoints)

    def _give_up(self, batch: str, why: str) -> None:
        for row in self.journal.jobs(batch):
            if row.state not in FINAL:
                self.journal.transition(row.uid, "manual_review", detail=why, error=why)

    def _scale(self, batch: str) -> None:
        if self.scaler is None:
            return
        waiting = sum(1 for r in self.journal.jobs(batch) if r.state in ("pending", "retry_pending"))
        for endpoint in self.scaler.tick(waiting, self.endpoints, self.journal):
            self.endpoints.append(endpoint)
        self.endpoints = [e for e in self.endpoints if not getattr(e, "closed", False)]

    def _start_slots(self, batch: str) -> None:
        alive = {t.name for t in self._threads if t.is_alive()}
        for endpoint in self.endpoints:
            for slot in range(endpoint.capacity):
                name = f"{endpoint.name}#{slot}"
                if name not in alive:
                    thread = threading.Thread(target=self._slot, args=(batch, endpoint), name=name, daemon=True)
                    self._threads = [t for t in self._threads if t.name != name] + [thread]
                    thread.start()

    # ------------------------------------------------------------------ one slot
    def _slot(self, batch: str, endpoint: Endpoint) -> None:
        while not self._stop.is_set() and not getattr(endpoint, "closed", False):
            if not endpoint.healthy:
                if endpoint.down_since and time.time() - endpoint.down_since < self.settings.probe_every:
                    time.sleep(self.settings.poll)
                    continue
                if not endpoint.probe():
                    endpoint.down_since = time.time()
                    if self._finished(batch):
                        return
                    continue
                log.info("endpoint %s answers again", endpoint.name)
                endpoint.healthy, endpoint.down_since = True, None
                endpoint.refresh()
            row = self._claim(batch, endpoint)
            if row is None:
                if self._finished(batch):
                    return
                time.sleep(self.settings.poll)
                continue
            try:
                self._execute(row, endpoint)
            except Exception as exc:  # outside the stage (copying a shared job's outputs, the client): judged the
                log.exception("%s: unexpected failure on %s", row.job.label, endpoint.name)  # same, never left running
                self._record(row, endpoint, judge(exc, row.tries, self.settings.max_tries, self.settings.backoff,
                                                  endpoint_answers=endpoint.probe), 0.0, None)
            finally:
                with self._lock:
                    self._claimed.discard(row.uid)
                    endpoint.busy -= 1
                endpoint.last_used = time.time()
                self.on_change()

    def _claim(self, batch: str, endpoint: Endpoint) -> JobRow | None:
        """The most urgent ready job this endpoint can run, marked running in the journal before it starts."""
        with self._lock:
            rows = self.journal.jobs(batch)
            done = {r.job.uid for r in rows if r.state == "completed"}
            now = time.time()
            ready = [r for r in rows if r.uid not in self._claimed
                     and (r.state == "pending" or (r.state == "retry_pending" and r.next_try <= now))
                     and all(uid in done for uid in dependency_uids(r.job))]
            ready.sort(key=lambda r: -r.job.priority)
            held_back = False
            for row in ready:
                earlier = self.journal.completed_elsewhere(row.job.id)
                if earlier is not None and earlier.uid != row.uid:
                    self._claimed.add(row.uid)
                    endpoint.busy += 1
                    return row
                try:
                    lacks = endpoint.lacks(row.job)
                except (ServerError, OSError):
                    mark_down(endpoint, "its /object_info did not answer")
                    return None
                if lacks:
                    if not any(e.healthy and e is not endpoint and not _lacks(e, row.job) for e in self.endpoints) \
                            and not (self.scaler is not None and self.scaler.can_grow()):
                        why = f"no endpoint can run it: {endpoint.name} lacks " + ", ".join(lacks)
                        self.journal.transition(row.uid, "manual_review", detail=why, error=why)
                    continue
                if not self._affordable(row, endpoint, rows):
                    held_back = True
                    continue
                self._claimed.add(row.uid)
                endpoint.busy += 1
                self._budget_hit = False
                self.journal.transition(row.uid, "running", endpoint.name, detail=f"on {endpoint.name}",
                                        started=time.time(), tries=row.tries + 1)
                return row
            self._budget_hit = held_back  # ready work, none of it affordable now
        return None

    def _execute(self, row: JobRow, endpoint: Endpoint) -> None:
        job = row.job
        earlier = self.journal.completed_elsewhere(job.id)
        if earlier is not None and earlier.uid != row.uid and job.kind not in ("compose", "train"):
            out = self.journal.batch_out_dir(earlier.batch) or self.out_root
            try:
                result = copy_outputs(job, out, earlier.job.film, self.out_root)
                self.journal.transition(row.uid, "completed", "copy", detail=f"same job as {earlier.uid}",
                                        finished=time.time(), result=result)
                return
            except AnimStudioError:
                pass  # its outputs are gone: render it
            self.journal.transition(row.uid, "running", endpoint.name, started=time.time(), tries=row.tries + 1)
        client = endpoint.client(timeout=60)
        engine = ServerEngine(client)
        started = time.monotonic()
        watchdog = threading.Timer(self.settings.job_timeout, client.interrupt)
        watchdog.daemon = True
        watchdog.start()
        result, failure = None, None
        try:
            result = run_job(job, self.out_root, engine, Reporter())
        except Exception as exc:  # whatever a stage raises is judged (a bug included): no job is left running
            if not isinstance(exc, (AnimStudioError, OSError)):
                log.exception("%s: unexpected failure on %s", job.label, endpoint.name)
            failure = exc
        finally:
            watchdog.cancel()
        seconds = round(time.monotonic() - started, 3)
        timed_out = self.settings.job_timeout if seconds >= self.settings.job_timeout else None
        outcome = judge(failure, row.tries, self.settings.max_tries, self.settings.backoff, timed_out,
                        endpoint.probe)
        self._record(row, endpoint, outcome, seconds, result)

    def _record(self, row: JobRow, endpoint: Endpoint, outcome: Outcome, seconds: float, result) -> None:
        """Journal an attempt's outcome. GPU time and cost count every try, the failed ones too (they were billed);
        a requeue (the endpoint went away) counts no try."""
        gpu = round((row.gpu_seconds or 0) + seconds, 3)
        cost = round((row.cost or 0) + seconds * endpoint.cost_per_gpu_second, 6)
        log_outcome(row.job.label, endpoint.name, outcome, self.settings.max_tries)
        if outcome.kind == COMPLETED:
            self.journal.transition(row.uid, "completed", endpoint.name, detail=f"{seconds} s", finished=time.time(),
                                    gpu_seconds=gpu, cost=cost, result=result)
            log.info("%s completed on %s in %.1f s", row.job.label, endpoint.name, seconds)
        elif outcome.kind == REQUEUE:
            mark_down(endpoint, outcome.down or "it went away")
            self.journal.transition(row.uid, "pending", endpoint.name, detail=f"{endpoint.name} went away",
                                    tries=row.tries)
        elif outcome.kind == REVIEW:
            self.journal.transition(row.uid, "manual_review", endpoint.name, detail=outcome.message,
                                    error=outcome.message, finished=time.time(), gpu_seconds=gpu, cost=cost)
        else:
            self.journal.transition(row.uid, "failed", endpoint.name, detail=outcome.message, error=outcome.message,
                                    gpu_seconds=gpu, cost=cost)
            self.journal.transition(row.uid, "retry_pending", detail=f"retry in {outcome.delay:.1f} s",
                                    next_try=time.time() + outcome.delay)


def _lacks(endpoint: Endpoint, job: Job) -> list[str]:
    try:
        return endpoint.lacks(job)
    except (ServerError, OSError):
        return ["an answer to /object_info"]
