"""The project library's file: one SQLite database, a versioned schema, every write one transaction.

Each entry is a fact of the series (``character``, ``place``, ``prop``, ``style``) or of one episode (``shot``,
``line``), with the text it is searched by, its fields as JSON, where it came from (storyboard file and JSON
path) and its sentence vector. Series-wide facts are episode 0. A file written by a newer animstudio (a higher
``PRAGMA user_version``) is refused whole rather than half-understood.
"""
from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np

from ...common.errors import LibraryError
from . import embed

SCHEMA = 1
KINDS = ("character", "place", "prop", "style", "shot", "line")
SERIES_WIDE = ("character", "place", "prop", "style")
DEFAULT_NAME = "animstudio-library.db"

_TABLES = """
CREATE TABLE entries (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    series TEXT NOT NULL DEFAULT '',
    episode INTEGER NOT NULL DEFAULT 0,
    key TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    text TEXT NOT NULL,
    data TEXT NOT NULL DEFAULT '{}',
    source TEXT NOT NULL DEFAULT '',
    added REAL NOT NULL,
    vector BLOB NOT NULL,
    UNIQUE (kind, series, episode, key)
);
CREATE INDEX entries_by_kind ON entries (kind, series);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True)
class Entry:
    kind: str
    key: str
    text: str
    name: str = ""
    series: str = ""
    episode: int = 0                   # 0: the series' own fact, not one episode's
    data: dict = field(default_factory=dict)
    source: str = ""                   # "episode-01.json $.characters.mira"

    def label(self) -> str:
        """How a message names it: ``character 'mira' (Mira Voss, from episode-01.json $.characters.mira)``."""
        said = ", ".join(p for p in (self.name if self.name != self.key else "",
                                     f"episode {self.episode}" if self.episode else "",
                                     f"from {self.source}" if self.source else "") if p)
        return f"{self.kind} {self.key!r}" + (f" ({said})" if said else "")

    def to_json(self) -> dict:
        return {"kind": self.kind, "key": self.key, "name": self.name, "series": self.series,
                "episode": self.episode or None, "text": self.text, "data": self.data, "source": self.source}


@dataclass(frozen=True)
class Hit:
    entry: Entry
    score: float


class Library:
    """A project library file. ``Library(path)`` opens one that exists; ``Library(path, create=True)`` makes it."""

    def __init__(self, path: str | Path, create: bool = False):
        self.path = Path(path)
        if not self.path.is_file() and not create:
            raise LibraryError(f"{self.path}: no project library there (make one: animstudio library add STORYBOARD "
                               f"--library {self.path})")
        if self.path.exists() and not self.path.is_file():
            raise LibraryError(f"{self.path}: is not a file")
        try:
            self.db = sqlite3.connect(str(self.path), isolation_level=None, timeout=30, check_same_thread=False)
            self._check_schema()
        except sqlite3.DatabaseError as exc:
            raise LibraryError(f"{self.path}: not a project library ({exc})") from None

    def _check_schema(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        tables = {r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if version > SCHEMA:
            raise LibraryError(f"{self.path}: a library of schema {version}, written by a newer animstudio; this one "
                               f"reads schema {SCHEMA} (upgrade animstudio; the file is left as it is)")
        if version == 0 and not tables:
            with self._writing():
                for statement in filter(str.strip, _TABLES.split(";")):  # executescript would commit midway
                    self.db.execute(statement)
                self.db.execute("INSERT INTO meta VALUES ('model', ?), ('dim', ?)", (embed.MODEL, str(embed.DIM)))
                self.db.execute(f"PRAGMA user_version = {SCHEMA}")
            return
        if version != SCHEMA or not {"entries", "meta"} <= tables:
            raise LibraryError(f"{self.path}: an SQLite file, but not a project library")
        model = dict(self.db.execute("SELECT key, value FROM meta")).get("model")
        if model != embed.MODEL:
            raise LibraryError(f"{self.path}: its vectors come from the model {model!r}, this animstudio embeds with "
                               f"{embed.MODEL!r}")

    def _writing(self):
        return _Transaction(self.db)

    def close(self) -> None:
        self.db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- writing -------------------------------------------------------------------------------------------

    def put(self, entries: Iterable[Entry], *, replace_episode: tuple[str, int] | None = None) -> int:
        """Add or replace entries (same kind, series, episode and key), all or none. ``replace_episode``
        (series, n) first removes that episode's shots and lines, so planning an episode again leaves no
        stale ones. Vectors are computed before the transaction opens: a failure there writes nothing."""
        entries = list(entries)
        for e in entries:
            if e.kind not in KINDS:
                raise LibraryError(f"library entry {e.key!r}: unknown kind {e.kind!r} (one of {', '.join(KINDS)})")
        vectors = embed.embed([e.text for e in entries])
        now = time.time()
        with self._writing():
            if replace_episode is not None:
                self.db.execute("DELETE FROM entries WHERE kind IN ('shot', 'line') AND series = ? AND episode = ?",
                                replace_episode)
            self.db.executemany(
                "INSERT INTO entries (kind, series, episode, key, name, text, data, source, added, vector) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (kind, series, episode, key) DO UPDATE SET "
                "name = excluded.name, text = excluded.text, data = excluded.data, source = excluded.source, "
                "added = excluded.added, vector = excluded.vector",
                [(e.kind, e.series, e.episode, e.key, e.name, e.text, json.dumps(e.data, ensure_ascii=False), e.source,
                  now, v.astype(np.float32).tobytes()) for e, v in zip(entries, vectors)])
        return len(entries)

    # --- reading -------------------------------------------------------------------------------------------

    def entries(self, kind: str | None = None, series: str | None = None) -> list[Entry]:
        where, args = _where(kind and [kind], series)
        rows = self.db.execute(f"SELECT kind, key, text, name, series, episode, data, source FROM entries{where} "
                               "ORDER BY kind, series, episode, key", args)
        return [_entry(r) for r in rows]

    def get(self, kind: str, key: str, series: str = "", episode: int = 0) -> Entry | None:
        row = self.db.execute("SELECT kind, key, text, name, series, episode, data, source FROM entries "
                              "WHERE kind = ? AND key = ? AND series = ? AND episode = ?",
                              (kind, key, series, episode)).fetchone()
        return _entry(row) if row else None

    def count(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT kind, count(*) FROM entries GROUP BY kind"))

    def series(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT DISTINCT series FROM entries ORDER BY series")]

    def search(self, query: str, k: int = 5, kinds: Iterable[str] | None = None,
               series: str | None = None) -> list[Hit]:
        """The ``k`` entries closest in meaning to ``query`` (cosine of the sentence vectors), best first."""
        if not query.strip():
            raise LibraryError("library search: the query is empty")
        kinds = list(kinds or ())
        for kind in kinds:
            if kind not in KINDS:
                raise LibraryError(f"library search: unknown kind {kind!r} (one of {', '.join(KINDS)})")
        where, args = _where(kinds, series)
        rows = self.db.execute(f"SELECT id, vector FROM entries{where}", args).fetchall()
        if not rows or k < 1:
            return []
        matrix = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), -1)
        scores = matrix @ embed.embed([query])[0]
        best = np.argsort(-scores, kind="stable")[:k]
        ids = [rows[i][0] for i in best]
        found = {r[0]: _entry(r[1:]) for r in self.db.execute(
            "SELECT id, kind, key, text, name, series, episode, data, source FROM entries WHERE id IN "
            f"({','.join('?' * len(ids))})", ids)}
        return [Hit(found[rows[i][0]], float(scores[i])) for i in best]


class _Transaction:
    """``BEGIN IMMEDIATE`` … ``COMMIT``, or ``ROLLBACK`` on any failure (an interrupt included)."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self):
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind, exc, tb):
        self.db.execute("COMMIT" if kind is None else "ROLLBACK")


def _where(kinds, series) -> tuple[str, list]:
    clauses, args = [], []
    if kinds:
        clauses.append(f"kind IN ({','.join('?' * len(kinds))})")
        args += list(kinds)
    if series is not None:
        clauses.append("series = ?")
        args.append(series)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), args


def _entry(row) -> Entry:
    kind, key, text, name, series, episode, data, source = row
    return Entry(kind, key, text, name, series, episode, json.loads(data), source)
