"""The batch journal: every job's state change, written to SQLite before it is acted on.

States: ``pending`` → ``running`` → ``completed``; a failure goes ``failed`` → ``retry_pending`` (with
exponential backoff) → … → ``manual_review`` after the last retry; ``cancelled`` by the user. A scheduler
that was killed finds its ``running`` jobs here when it restarts and puts them back to ``pending``;
``completed`` jobs are never run again. Instances a provider opened are recorded too, so a restarted
scheduler closes what a crashed one left billing. Nothing secret is ever written here.
"""
from __future__ import annotations

import json
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from ..common.urls import redact
from .jobs import Film, Job

STATES = ("pending", "running", "completed", "failed", "retry_pending", "manual_review", "cancelled")
DONE = ("completed",)
FINAL = ("completed", "manual_review", "cancelled")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (id TEXT PRIMARY KEY, created REAL, out_dir TEXT, films TEXT, state TEXT);
CREATE TABLE IF NOT EXISTS jobs (
    uid TEXT PRIMARY KEY, batch TEXT, job_id TEXT, film TEXT, kind TEXT, shot TEXT, label TEXT, spec TEXT,
    state TEXT, priority INTEGER, tries INTEGER DEFAULT 0, next_try REAL DEFAULT 0, endpoint TEXT,
    started REAL, finished REAL, gpu_seconds REAL DEFAULT 0, cost REAL DEFAULT 0, error TEXT, result TEXT,
    seq INTEGER);
CREATE INDEX IF NOT EXISTS jobs_by_id ON jobs (job_id, state);
CREATE TABLE IF NOT EXISTS events (at REAL, uid TEXT, state TEXT, endpoint TEXT, detail TEXT);
CREATE TABLE IF NOT EXISTS instances (provider TEXT, instance_id TEXT, url TEXT, opened REAL, closed REAL,
                                      PRIMARY KEY (provider, instance_id));
"""


@dataclass
class JobRow:
    uid: str
    batch: str
    job: Job
    state: str
    tries: int
    next_try: float
    endpoint: str | None
    started: float | None
    finished: float | None
    gpu_seconds: float
    cost: float
    error: str | None
    result: dict | None


class Journal:
    """One SQLite file (WAL), shared by the dispatcher's threads; every write is its own transaction."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ------------------------------------------------------------------ batches and jobs
    def add_batch(self, batch: str, out_dir: Path, films: list[Film]) -> None:
        """Record a batch and its jobs; jobs already recorded (a restarted batch) keep their state."""
        with self._tx() as db:
            db.execute("INSERT OR IGNORE INTO batches VALUES (?, ?, ?, ?, 'running')",
                       (batch, time.time(), str(out_dir), json.dumps([f.name for f in films])))
            seq = 0
            for film in films:
                for job in film.jobs:
                    seq += 1
                    db.execute("INSERT OR IGNORE INTO jobs (uid, batch, job_id, film, kind, shot, label, spec, state,"
                               " priority, seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?)",
                               (f"{batch}/{job.uid}", batch, job.id, job.film, job.kind, job.shot_id, job.label,
                                json.dumps(job.to_json()), job.priority, seq))

    def batch_out_dir(self, batch: str) -> Path | None:
        row = self._db.execute("SELECT out_dir FROM batches WHERE id = ?", (batch,)).fetchone()
        return Path(row[0]) if row else None

    def batches(self) -> list[tuple[str, float, str]]:
        return self._db.execute("SELECT id, created, state FROM batches ORDER BY created").fetchall()

    def set_batch_state(self, batch: str, state: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE batches SET state = ? WHERE id = ?", (state, batch))

    _ROW = ("SELECT uid, batch, spec, state, tries, next_try, endpoint, started, finished, gpu_seconds, cost, error, "
            "result FROM jobs")

    @staticmethod
    def _row(r) -> JobRow:
        return JobRow(r[0], r[1], Job.from_json(json.loads(r[2])), r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10],
                      r[11], json.loads(r[12]) if r[12] else None)

    def jobs(self, batch: str) -> list[JobRow]:
        rows = self._db.execute(f"{self._ROW} WHERE batch = ? ORDER BY seq", (batch,)).fetchall()
        return [self._row(r) for r in rows]

    def job(self, uid: str) -> JobRow | None:
        row = self._db.execute(f"{self._ROW} WHERE uid = ?", (uid,)).fetchone()
        return self._row(row) if row else None

    def completed_elsewhere(self, job_id: str) -> JobRow | None:
        """A completed run of the same job (another film, batch or run), whose outputs can be copied."""
        row = self._db.execute("SELECT uid FROM jobs WHERE job_id = ? AND state = 'completed' "
                               "ORDER BY finished LIMIT 1", (job_id,)).fetchone()
        return self.job(row[0]) if row else None

    def completed_runs(self, batch: str) -> dict[str, str]:
        """For the job ids of ``batch``: the uid of each one's earliest completed run, in any batch (read once when
        a batch starts, instead of asking :meth:`completed_elsewhere` job by job)."""
        rows = self._db.execute("SELECT job_id, uid FROM jobs WHERE state = 'completed' AND job_id IN "
                                "(SELECT job_id FROM jobs WHERE batch = ?) ORDER BY finished DESC", (batch,)).fetchall()
        return dict(rows)  # the earliest last, so it stays

    def completed_seconds(self) -> list[tuple[str, float, int]]:
        """Per job kind: the mean GPU seconds of its completed runs that rendered (not copied), and how many."""
        return self._db.execute("SELECT kind, AVG(gpu_seconds), COUNT(*) FROM jobs WHERE state = 'completed' "
                                "AND COALESCE(endpoint, '') != 'copy' AND gpu_seconds > 0 GROUP BY kind").fetchall()

    def highest_try_seconds(self) -> dict[str, float]:
        """Per job kind: the most GPU seconds one try of a completed, rendered (not copied) run took (its seconds
        over its tries: the journal keeps a job's sum)."""
        return dict(self._db.execute("SELECT kind, MAX(gpu_seconds / MAX(tries, 1)) FROM jobs WHERE state = "
                                     "'completed' AND COALESCE(endpoint, '') != 'copy' AND gpu_seconds > 0 "
                                     "GROUP BY kind").fetchall())

    def transition(self, uid: str, state: str, endpoint: str | None = None, detail: str = "", **fields) -> None:
        """Move a job to ``state`` (journalled with an event) and set other columns."""
        assert state in STATES, state
        columns = {"state": state, **fields}
        if endpoint is not None:
            columns["endpoint"] = endpoint
        if "result" in columns and columns["result"] is not None:
            columns["result"] = json.dumps(columns["result"])
        assignments = ", ".join(f"{name} = ?" for name in columns)
        with self._tx() as db:
            db.execute(f"UPDATE jobs SET {assignments} WHERE uid = ?", (*columns.values(), uid))
            db.execute("INSERT INTO events VALUES (?, ?, ?, ?, ?)",
                       (time.time(), uid, state, redact(endpoint) if endpoint else None, detail[:2000]))

    def events(self, uid: str | None = None) -> list[tuple]:
        if uid:
            return self._db.execute("SELECT * FROM events WHERE uid = ? ORDER BY at", (uid,)).fetchall()
        return self._db.execute("SELECT * FROM events ORDER BY at").fetchall()

    def resume(self, batch: str) -> int:
        """After a crash: jobs left ``running`` go back to ``pending`` (what they were doing is lost with the
        scheduler). Returns how many."""
        with self._tx() as db:
            running = db.execute("SELECT uid FROM jobs WHERE batch = ? AND state = 'running'", (batch,)).fetchall()
            for (uid,) in running:
                db.execute("UPDATE jobs SET state = 'pending', endpoint = NULL WHERE uid = ?", (uid,))
                db.execute("INSERT INTO events VALUES (?, ?, 'pending', NULL, 'scheduler restarted')",
                           (time.time(), uid))
        return len(running)

    def retry(self, batch: str, uid: str | None = None) -> int:
        """Put ``manual_review`` / ``failed`` / ``cancelled`` jobs (all, or those whose label or id contains
        ``uid``) back to ``pending`` with fresh tries."""
        with self._tx() as db:
            query = "SELECT uid FROM jobs WHERE batch = ? AND state IN ('manual_review', 'failed', 'cancelled')"
            args: tuple = (batch,)
            if uid:  # a job's label (film:kind:shot), or part of it, or of its id
                query += " AND (uid LIKE ? OR label LIKE ?)"
                args += (f"%{uid}%", f"%{uid}%")
            found = db.execute(query, args).fetchall()
            for (job_uid,) in found:
                db.execute("UPDATE jobs SET state = 'pending', tries = 0, next_try = 0, error = NULL WHERE uid = ?",
                           (job_uid,))
                db.execute("INSERT INTO events VALUES (?, ?, 'pending', NULL, 'retry asked')", (time.time(), job_uid))
            db.execute("UPDATE batches SET state = 'running' WHERE id = ?", (batch,))
        return len(found)

    def cancel(self, batch: str) -> int:
        """Cancel every job not yet completed; a running scheduler stops taking new ones and closes instances."""
        with self._tx() as db:
            found = db.execute("SELECT uid FROM jobs WHERE batch = ? AND state NOT IN ('completed', 'cancelled')",
                               (batch,)).fetchall()
            for (uid,) in found:
                db.execute("UPDATE jobs SET state = 'cancelled' WHERE uid = ?", (uid,))
                db.execute("INSERT INTO events VALUES (?, ?, 'cancelled', NULL, 'cancel asked')", (time.time(), uid))
            db.execute("UPDATE batches SET state = 'cancelled' WHERE id = ?", (batch,))
        return len(found)

    def batch_state(self, batch: str) -> str | None:
        row = self._db.execute("SELECT state FROM batches WHERE id = ?", (batch,)).fetchone()
        return row[0] if row else None

    # ------------------------------------------------------------------ provider instances
    def instance_opened(self, provider: str, instance_id: str, url: str) -> None:
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO instances VALUES (?, ?, ?, ?, NULL)",
                       (provider, instance_id, redact(url), time.time()))

    def instance_closed(self, provider: str, instance_id: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE instances SET closed = ? WHERE provider = ? AND instance_id = ?",
                       (time.time(), provider, instance_id))

    def open_instances(self) -> list[tuple[str, str]]:
        return self._db.execute("SELECT provider, instance_id FROM instances WHERE closed IS NULL").fetchall()
