"""Keeping paths from storyboards and servers inside their folders.

A storyboard names files relative to itself, and a server names output files it wants us to
download; neither may point outside the folder it belongs to (``../../etc/passwd``, an absolute
path, a symlink out).
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import re
import shutil
from pathlib import Path, PurePosixPath
from typing import Iterator


class PathEscapeError(ValueError):
    """A relative path that resolves outside its base folder."""


def resolve_inside(base_dir: str | Path, relative: str) -> Path:
    """``base_dir / relative``, resolved, guaranteed to lie inside ``base_dir``."""
    base = Path(base_dir).resolve()
    if not relative or PurePosixPath(relative).is_absolute() or re.match(r"^[A-Za-z]:", relative):
        raise PathEscapeError(relative)
    candidate = (base / relative).resolve()
    if candidate != base and base not in candidate.parents:
        raise PathEscapeError(relative)
    return candidate


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_filename(name: str, default: str = "file") -> str:
    """A single path component made only of safe characters (no separators, no leading dots)."""
    cleaned = _UNSAFE.sub("_", name.replace("\\", "/").split("/")[-1]).lstrip(".")
    return cleaned[:128] or default


@functools.lru_cache(maxsize=4096)
def _file_digest(path: Path, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def path_digest(path: str | Path) -> str:
    """The SHA-256 of a file's bytes (hex), read once per size and modification time."""
    stat = Path(path).stat()
    return _file_digest(Path(path), stat.st_size, stat.st_mtime_ns)


@contextlib.contextmanager
def written_atomically(path: str | Path) -> Iterator[Path]:
    """A name beside ``path`` to write to, renamed to ``path`` when the block ends well and removed when it fails:
    a crash or an interrupt never leaves a half-written file under the real name."""
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    try:
        yield partial
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def link_or_copy(source: str | Path, target: str | Path) -> Path:
    """``target`` holding ``source``'s bytes, replaced atomically: a hard link where both lie on one filesystem
    (no byte is copied: a film of gigabytes costs nothing), else a copy. For files nobody writes to after."""
    target = Path(target)
    with written_atomically(target) as partial:
        partial.unlink(missing_ok=True)
        try:
            os.link(source, partial)
        except OSError:
            shutil.copyfile(source, partial)
    return target
