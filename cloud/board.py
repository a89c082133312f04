"""One batch's jobs in memory, for the embedded scheduler: read from the journal once, then kept in step by the
scheduler's own transitions, which go to the journal first (write-ahead) and then here.

Why: claiming a job used to read and parse every row of the batch from SQLite, under the scheduler's lock, for
every claim and every idle poll of every slot; at 256 endpoints and thousands of jobs that was the bottleneck.
Here the ready jobs (pending or due for a retry, every input completed) are kept as jobs change state, grouped by
what routing ranks them by (model set and stage, see :mod:`.routing`), each group in batch order; "is the batch
finished" is a counter.

Not thread-safe by itself: the scheduler holds its lock around every call.
"""
from __future__ import annotations

import bisect
from typing import Iterable, Iterator

from .attempts import dependency_uids
from .journal import FINAL, Journal, JobRow
from .routing import model_set

_WAITING = ("pending", "retry_pending")
_FIELDS = ("tries", "next_try", "started", "finished", "gpu_seconds", "cost", "error", "result")

Group = tuple[frozenset, int]  # (model set, priority)


class Board:
    """The rows of ``batch`` (the journal's :class:`~.journal.JobRow`, updated in place), the ready ones by
    :data:`Group`, and how many are not final yet. :meth:`transition` has :meth:`.journal.Journal.transition`'s
    signature, so the shared helpers that journal (``block_dependents``) can be handed a board."""

    def __init__(self, journal: Journal, batch: str):
        self.journal, self.batch = journal, batch
        self.reload()

    def reload(self) -> None:
        rows = self.journal.jobs(self.batch)
        self.rows: dict[str, JobRow] = {r.uid: r for r in rows}
        self.in_order = [r.uid for r in rows]                               # batch order: seq → uid
        self.seq = {uid: i for i, uid in enumerate(self.in_order)}
        self.group_of: dict[str, Group] = {r.uid: (model_set(r.job), r.job.priority) for r in rows}
        self.dependents: dict[str, list[str]] = {}                            # film/id → uids waiting on it
        for row in rows:
            for dep in dependency_uids(row.job):
                self.dependents.setdefault(dep, []).append(row.uid)
        self.completed = {r.job.uid for r in rows if r.state == "completed"}
        self.completed_by_id: dict[str, JobRow] = {r.job.id: r for r in rows if r.state == "completed"}
        self.open = sum(1 for r in rows if r.state not in FINAL)
        self.ready: set[str] = set()
        self.groups: dict[Group, list[int]] = {}                              # group → ready seqs, sorted
        for row in rows:
            if self._is_ready(row):
                self._ready(row.uid)

    def _is_ready(self, row: JobRow) -> bool:
        return row.state in _WAITING and all(dep in self.completed for dep in dependency_uids(row.job))

    def _ready(self, uid: str) -> bool:
        if uid in self.ready:
            return False
        self.ready.add(uid)
        bisect.insort(self.groups.setdefault(self.group_of[uid], []), self.seq[uid])
        return True

    def _not_ready(self, uid: str) -> None:
        if uid not in self.ready:
            return
        self.ready.discard(uid)
        group = self.group_of[uid]
        seqs = self.groups[group]
        del seqs[bisect.bisect_left(seqs, self.seq[uid])]
        if not seqs:
            del self.groups[group]

    # ------------------------------------------------------------------ reading
    def ready_in(self, groups: Iterable[Group]) -> Iterator[JobRow]:
        """The ready rows of ``groups``, merged in batch order (a snapshot: the board may change meanwhile)."""
        seqs = sorted(seq for group in groups for seq in self.groups.get(group, ()))
        return (self.rows[self.in_order[seq]] for seq in seqs)

    def completed_run(self, job_id: str) -> JobRow | None:
        """A completed job of this batch with this id (the same job in another film)."""
        return self.completed_by_id.get(job_id)

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
        return self.apply(uid, state, endpoint, **fields)

    def apply(self, uid: str, state: str, endpoint: str | None = None, **fields) -> int:
        """Apply a change the caller journals itself (outside the scheduler's lock: a commit waits on the disk);
        returns how many jobs became ready by it."""
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
            woke += self._ready(uid)
        else:
            self._not_ready(uid)
        if state == "completed" and row.job.uid not in self.completed:
            self.completed.add(row.job.uid)
            self.completed_by_id.setdefault(row.job.id, row)
            for waiting in self.dependents.get(row.job.uid, ()):
                if self._is_ready(self.rows[waiting]):
                    woke += self._ready(waiting)
        return woke
