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
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterator

from ..common.errors import AnimStudioError, Problem, ServerError
from ..translator.engines import ServerEngine
from ..translator.render import Reporter
from ..common.urls import redact
from .attempts import COMPLETED, REQUEUE, REVIEW, Outcome, block_dependents, judge, log_outcome, mark_down
from .board import Board
from .estimate import committed_cost, job_seconds, kind_costs
from .execute import copy_outputs, run_job
from .jobs import Film, Job
from .journal import FINAL, Journal, JobRow
from .pool import Endpoint
from .routing import load_change, tiers
from .summary import BatchSummary, add_endpoints, note_budget, summarize
from .warmup import warm_before_jobs

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
    routing: str = "models"         # "models": endpoints keep their models (see .routing); "blind": batch order


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
        self._wake = threading.Condition(self._lock)  # idle slots wait here for jobs to become ready
        self._stop = threading.Event()
        self._done = threading.Event()  # the batch is finished (or cancelled): slots leave
        self._board: Board | None = None
        self._elsewhere: dict[str, JobRow | None] = {}  # job id → a completed run in another batch (asked once)
        self._completed_before: dict[str, str] = {}     # job id → uid of a run completed before this one started
        self._seen: dict[str, Endpoint] = {}  # every endpoint of the run, closed instances too (for the report)
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
        self._board = Board(self.journal, batch)
        self._completed_before = self.journal.completed_runs(batch)
        self._done.clear()
        with self._lock:
            self._block_dependents()  # what waits on a job an earlier run left for review
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
            cancelled = self.journal.batch_state(batch) == "cancelled"
            if cancelled:
                for endpoint in self.endpoints:  # stop what is running now; the journal says cancelled
                    if endpoint.busy and endpoint.healthy:
                        endpoint.client(timeout=5, retries=0).interrupt()
            self._stop.set()
            with self._wake:
                self._wake.notify_all()
            for thread in self._threads:
                thread.join(timeout=self.settings.job_timeout)
            if self.scaler is not None:
                self.scaler.close_all(self.journal)
        self.journal.set_batch_state(batch, "cancelled" if cancelled else "done")
        summary = summarize(self.journal, batch, self.out_root)
        add_endpoints(summary, {**self._seen, **{e.name: e for e in self.endpoints}}.values())
        if self._budget_hit:
            note_budget(summary, self.settings.budget, self.journal.jobs(batch))
        return summary

    def stop(self) -> None:
        self._stop.set()

    def _finished(self, batch: str) -> bool:
        """Asked by the dispatch loop: the batch is cancelled (in the journal, by ``batch cancel``), every job is
        final, or the budget allows nothing that is ready and nothing runs. Sets ``_done`` for the slots."""
        with self._lock:
            done = self._board.open == 0 or (self._budget_hit and not self._claimed)
        if done or self.journal.batch_state(batch) == "cancelled":
            self._done.set()
            with self._wake:
                self._wake.notify_all()
        return self._done.is_set()

    def _block_dependents(self) -> None:
        """Jobs waiting on one that needs review wait for review too (a job a slot holds is left to its slot).
        Called with the lock held, when a job went to review."""
        block_dependents(self._board, list(self._board.values()), FINAL, skip=lambda row: row.uid in self._claimed)

    def _move(self, uid: str, state: str, endpoint: str | None = None, detail: str = "", **fields) -> None:
        """A job's state change: journalled (without the lock: only the job's own slot moves it, and a commit
        waits on the disk), then on the board; slots wake for the jobs it made ready."""
        self.journal.transition(uid, state, endpoint, detail, **fields)
        with self._wake:
            woke = self._board.apply(uid, state, endpoint, **fields)
            if state in ("manual_review", "cancelled"):
                self._block_dependents()
            if woke:
                self._wake.notify(woke)
            if self._board.open == 0:
                self._wake.notify_all()

    def _earlier(self, row: JobRow) -> JobRow | None:
        """A completed run of the same job (another film of the batch, another batch) whose outputs can be
        copied; the journal is asked once per job id and run."""
        same = self._board.completed_run(row.job.id)
        if same is not None and same.uid != row.uid:
            return same
        if row.job.id not in self._elsewhere:
            uid = self._completed_before.get(row.job.id)
            self._elsewhere[row.job.id] = self.journal.job(uid) if uid else None
        earlier = self._elsewhere[row.job.id]
        return earlier if earlier is not None and earlier.uid != row.uid else None

    def _committed(self, rows: list[JobRow]) -> float:
        """What the batch has spent and its running jobs may still cost (:func:`.estimate.committed_cost`)."""
        known = {**{e.name: e for e in self.endpoints}, **self._seen}
        return committed_cost(rows, lambda row: row.uid in self._claimed, known.values(), self._costs)

    def _affordable(self, row: JobRow, endpoint: Endpoint, rows: list[JobRow], committed: float | None = None) -> bool:
        """Whether starting ``row`` on ``endpoint`` keeps the batch under its budget: what is committed
        (:meth:`_committed`, computed once per claim by the caller) and what this job may cost, together at most
        the budget."""
        if self.settings.budget is None:
            return True
        committed = self._committed(rows) if committed is None else committed
        this = job_seconds(row.job, self._costs, reserve=True) * endpoint.cost_per_gpu_second
        return committed + this <= self.settings.budget + 1e-12

    def _endpoints_usable(self) -> bool:
        """Whether some endpoint answers now (or a provider can still start one); the slots re-probe the rest."""
        if self.scaler is not None and self.scaler.can_grow():
            return True
        return any(e.healthy for e in self.endpoints)

    def _give_up(self, batch: str, why: str) -> None:
        with self._lock:
            unfinished = [r.uid for r in self._board.unfinished()]
        for uid in unfinished:
            self._move(uid, "manual_review", detail=why, error=why)

    def _scale(self, batch: str) -> None:
        if self.scaler is None:
            return
        with self._lock:
            waiting = self._board.waiting()
        for endpoint in self.scaler.tick(waiting, self.endpoints, self.journal):
            self.endpoints.append(endpoint)
        self.endpoints = [e for e in self.endpoints if not getattr(e, "closed", False)]

    def _start_slots(self, batch: str) -> None:
        alive = {t.name for t in self._threads if t.is_alive()}
        for endpoint in self.endpoints:
            self._seen.setdefault(endpoint.name, endpoint)
            for slot in range(endpoint.capacity):
                name = f"{endpoint.name}#{slot}"
                if name not in alive:
                    thread = threading.Thread(target=self._slot, args=(batch, endpoint), name=name, daemon=True)
                    self._threads = [t for t in self._threads if t.name != name] + [thread]
                    thread.start()

    # ------------------------------------------------------------------ one slot
    def _slot(self, batch: str, endpoint: Endpoint) -> None:
        while not self._stop.is_set() and not self._done.is_set() and not getattr(endpoint, "closed", False):
            if not endpoint.healthy:
                if endpoint.down_since and time.time() - endpoint.down_since < self.settings.probe_every:
                    self._done.wait(self.settings.poll)
                    continue
                if not endpoint.probe():
                    endpoint.down_since = time.time()
                    continue
                log.info("endpoint %s answers again", endpoint.name)
                endpoint.healthy, endpoint.down_since = True, None
                endpoint.refresh()
            if endpoint.warm and not endpoint.warmed and not self._warm(endpoint):
                continue
            row = self._claim(batch, endpoint)
            if row is None:
                with self._wake:  # woken when a job becomes ready; the poll catches retries falling due
                    if not self._done.is_set() and not self._stop.is_set():
                        self._wake.wait(self.settings.poll)
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

    def _ranked(self, endpoint: Endpoint) -> Iterator[JobRow]:
        """The ready jobs in the order ``endpoint``'s free slot tries them (:mod:`.routing`), tier by tier."""
        for tier in tiers(self._board.groups, endpoint, self.endpoints, self.settings.routing):
            yield from self._board.ready_in(tier)

    def _warm(self, endpoint: Endpoint) -> bool:
        """Load the pool file's ``warm:`` models before the endpoint's first job (one slot does it, the others
        wait for it); False when the endpoint stopped answering (it is marked down and warmed when it is back)."""
        with endpoint.warm_lock:
            if not endpoint.warmed:
                seconds = warm_before_jobs(endpoint, self.settings.job_timeout)
                if seconds is None:
                    return False
                with self._lock:
                    endpoint.warmed = True
                    endpoint.warm_seconds += seconds
                    endpoint.gpu_seconds += seconds
            return True

    def _claim(self, batch: str, endpoint: Endpoint) -> JobRow | None:
        """The job this endpoint's free slot should run (see :mod:`.routing`), marked running in the journal before
        it starts (the choice under the lock, the journal's commit after it)."""
        row = self._choose(endpoint)
        if row is not None and row.state != "copy":
            self.journal.transition(row.uid, "running", endpoint.name, detail=f"on {endpoint.name}",
                                    started=self._board.rows[row.uid].started, tries=row.tries + 1)
        return row

    def _choose(self, endpoint: Endpoint) -> JobRow | None:
        """:meth:`_claim`'s choice, under the lock: the row as it was before the attempt (its ``state`` "copy" when
        an earlier run's outputs are to be copied), already running on the board."""
        with self._lock:
            held_back, committed, now = False, None, time.time()
            for row in self._ranked(endpoint):
                if row.uid in self._claimed or (row.state == "retry_pending" and row.next_try > now):
                    continue
                if self._earlier(row) is not None:
                    self._claimed.add(row.uid)
                    endpoint.busy += 1
                    return replace(row, state="copy")
                try:
                    lacks = endpoint.lacks(row.job)
                except (ServerError, OSError):
                    mark_down(endpoint, "its /object_info did not answer")
                    return None
                if lacks:
                    if not any(e.healthy and e is not endpoint and not _lacks(e, row.job) for e in self.endpoints) \
                            and not (self.scaler is not None and self.scaler.can_grow()):
                        why = f"no endpoint can run it: {endpoint.name} lacks " + ", ".join(lacks)
                        self._board.transition(row.uid, "manual_review", detail=why, error=why)
                        self._block_dependents()
                    continue
                if self.settings.budget is not None:
                    rows = list(self._board.values())
                    committed = self._committed(rows) if committed is None else committed
                    if not self._affordable(row, endpoint, rows, committed):
                        held_back = True
                        continue
                self._claimed.add(row.uid)
                endpoint.busy += 1
                self._budget_hit = False
                before = replace(row)  # the attempt is judged and recorded from the row as it was before it
                self._board.apply(row.uid, "running", endpoint.name, started=time.time(), tries=row.tries + 1)
                return before
            self._budget_hit = held_back  # ready work, none of it affordable now
        return None

    def _execute(self, row: JobRow, endpoint: Endpoint) -> None:
        job = row.job
        if row.state == "copy":  # the same job completed before: its outputs are copied, else it renders
            with self._lock:
                earlier = self._earlier(row)
            if earlier is not None and job.kind not in ("compose", "train"):
                out = self.journal.batch_out_dir(earlier.batch) or self.out_root
                try:
                    result = copy_outputs(job, out, earlier.job.film, self.out_root)
                    self._move(row.uid, "completed", "copy", detail=f"same job as {earlier.uid}",
                               finished=time.time(), result=result)
                    return
                except AnimStudioError:
                    pass  # its outputs are gone: render it
            self._move(row.uid, "running", endpoint.name, started=time.time(), tries=row.tries + 1)
        client = endpoint.client(timeout=60)
        if load_change(endpoint, job):  # other models than the endpoint holds: make room for them first
            client.free()
        engine = ServerEngine(client, object_info=endpoint.object_info)
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
        with self._lock:
            endpoint.jobs += 1
            endpoint.gpu_seconds += seconds
        if outcome.kind == COMPLETED:
            self._move(row.uid, "completed", endpoint.name, detail=f"{seconds} s", finished=time.time(),
                       gpu_seconds=gpu, cost=cost, result=result)
            log.info("%s completed on %s in %.1f s", row.job.label, endpoint.name, seconds)
            if self.settings.budget is not None:  # what the budget reserves follows what jobs take in this batch
                costs = kind_costs(self.journal)
                with self._lock:
                    self._costs = costs
        elif outcome.kind == REQUEUE:
            mark_down(endpoint, outcome.down or "it went away")
            endpoint.loaded = frozenset()  # a restarted server holds nothing
            self._move(row.uid, "pending", endpoint.name, detail=f"{endpoint.name} went away", tries=row.tries,
                       gpu_seconds=gpu, cost=cost)  # the lost attempt was billed too
        elif outcome.kind == REVIEW:
            self._move(row.uid, "manual_review", endpoint.name, detail=outcome.message, error=outcome.message,
                       finished=time.time(), gpu_seconds=gpu, cost=cost)
        else:
            self._move(row.uid, "failed", endpoint.name, detail=outcome.message, error=outcome.message,
                       gpu_seconds=gpu, cost=cost)
            self._move(row.uid, "retry_pending", detail=f"retry in {outcome.delay:.1f} s",
                       next_try=time.time() + outcome.delay)


def _lacks(endpoint: Endpoint, job: Job) -> list[str]:
    try:
        return endpoint.lacks(job)
    except (ServerError, OSError):
        return ["an answer to /object_info"]
