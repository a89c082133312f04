"""One batch's jobs in memory, for the embedded scheduler: read from the journal once, then kept in step by the
scheduler's own transitions, which go to the journal first (write-ahead) and then here.

Why: claiming a job used to read and parse every row of the batch from SQLite, under the scheduler's lock, for
every claim and every idle poll of every slot; at 256 endpoints and thousands of jobs that was the bottleneck.
Here a claim looks only at the jobs that are ready (pending or due for a retry, every input completed), a set
kept as jobs change state, and "is the batch finished" is a counter.

Not thread-safe by itself: the scheduler holds its lock around every call.
"""
from __future__ import annotations

import time
from typing import Iterable

from .attempts import dependency_uids
from .journal import FINAL, Journal, JobRow

_WAITING = ("pending", "retry_pending")
_FIELDS = ("tries", "next_try", "started", "finished", "gpu_seconds", "cost", "error", "result")


class Board:
    """The rows of ``batch`` (the journal's :class:`~.journal.JobRow`, updated in place), which are ready, and how
    many are not final yet. :meth:`transition` has :meth:`.journal.Journal.transition`'s signature, so the
    shared helpers that journal (``block_dependents``) can be handed a board."""

    def __init__(self, journal: Journal, batch: str):
        self.journal, self.batch = journal, batch
        self.reload()

    def reload(self) -> None:
        rows = self.journal.jobs(self.batch)
        self.rows: dict[str, JobRow] = {r.uid: r for r in rows}
        self.seq = {r.uid: i for i, r in enumerate(rows)}
        self.by_job: dict[str, JobRow] = {r.job.uid: r for r in rows}      # film/id → row (the dependency key)
        self.dependents: dict[str, list[str]] = {}                            # film/id → uids waiting on it
        for row in rows:
            for dep in dependency_uids(row.job):
                self.dependents.setdefault(dep, []).append(row.uid)
        self.completed = {r.job.uid for r in rows if r.state == "completed"}
        self.completed_by_id: dict[str, JobRow] = {r.job.id: r for r in rows if r.state == "completed"}
        self.open = sum(1 for r in rows if r.state not in FINAL)
        self.ready: set[str] = {r.uid for r in rows if self._is_ready(r)}

    def _is_ready(self, row: JobRow) -> bool:
        return row.state in _WAITING and all(dep in self.completed for dep in dependency_uids(row.job))

    # ------------------------------------------------------------------ reading
    def candidates(self, now: float | None = None) -> list[JobRow]:
        """The ready jobs whose retry (if any) is due."""
        now = time.time() if now is None else now
        return [row for uid in self.ready if (row := self.rows[uid]).state == "pending" or row.next_try <= now]

    def completed_run(self, job_id: str) -> JobRow | None:
        """A completed job of this batch with this id (the same job in another film)."""
        return self.completed_by_id.get(job_id)

    def order(self, row: JobRow) -> int:
        return self.seq[row.uid]

    def waiting(self) -> int:
        return sum(1 for r in self.rows.values() if r.state in _WAITING)

    def unfinished(self) -> list[JobRow]:
        return [r for r in self.rows.values() if r.state not in FINAL]

    def values(self) -> Iterable[JobRow]:
        return self.rows.values()

    # ------------------------------------------------------------------ writing
    def transition(self, uid: str, state: str, endpoint: str | None = None, detail: str = "", **fields) -> int:
        """Journal the change, then apply it here; returns how many jobs became ready by it."""
        self.journal.transition(uid, state, endpoint, detail, **fields)
        row = self.rows[uid]
        was_final = row.state in FINAL
        row.state = state
        if endpoint is not None:
            row.endpoint = endpoint
        for name in _FIELDS:
            if name in fields:
                setattr(row, name, fields[name])
        self.open += (was_final and state not in FINAL) - (not was_final and state in FINAL)
        woke = 0
        if self._is_ready(row):
            woke += uid not in self.ready
            self.ready.add(uid)
        else:
            self.ready.discard(uid)
        if state == "completed" and row.job.uid not in self.completed:
            self.completed.add(row.job.uid)
            self.completed_by_id.setdefault(row.job.id, row)
            for waiting in self.dependents.get(row.job.uid, ()):
                if waiting not in self.ready and self._is_ready(self.rows[waiting]):
                    self.ready.add(waiting)
                    woke += 1
        return woke
