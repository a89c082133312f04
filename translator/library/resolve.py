"""Which library entry each of a storyboard's characters is: the same id in the series, else the same name, else a
name one or two letters off (itself a spelling to report). Both the continuity checks and adding a storyboard use
it."""
from __future__ import annotations

from dataclasses import dataclass

from ..storyboard_model import Storyboard
from .store import Entry, Library


def series_of(board: Storyboard) -> str:
    return board.project.series or board.project.title


@dataclass(frozen=True)
class Match:
    entry: Entry
    how: str   # "id", "name" or "spelling"


def _distance(a: str, b: str) -> int:
    """Levenshtein distance (names are short)."""
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def _near(a: str, b: str) -> bool:
    a, b = a.casefold().strip(), b.casefold().strip()
    if a == b or min(len(a), len(b)) < 4 or not (a.isascii() or a.isalpha()):
        return False
    return _distance(a, b) <= (1 if max(len(a), len(b)) <= 6 else 2)


def resolve_characters(library: Library, board: Storyboard) -> dict[str, Match]:
    """Which library character each of ``board``'s characters is, where the library knows them."""
    known = library.entries("character", series_of(board))
    by_key = {e.key: e for e in known}
    by_name = {e.name.casefold(): e for e in known}
    out = {}
    for cid, c in board.characters.items():
        if cid in by_key:
            out[cid] = Match(by_key[cid], "id")
        elif c.display_name.casefold() in by_name:
            out[cid] = Match(by_name[c.display_name.casefold()], "name")
        else:
            close = [e for e in known if _near(c.display_name, e.name)]
            if len(close) == 1:
                out[cid] = Match(close[0], "spelling")
    return out
