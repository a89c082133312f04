"""What the planner is told from the project library (retrieval-augmented planning): the series' characters and
places closest in meaning to the request, or named in it, as a series bible the staged planner's outline picks from
by name (:mod:`..planning.bible`), and the series' style guide. A new episode so reuses the library's people (their
ids, descriptions, voices, wardrobe), places and look instead of inventing new ones; the bible is *open*, so a
character the request needs that the library lacks can still be added."""
from __future__ import annotations

import re

from ..planning.bible import Bible, BibleCharacter, BiblePlace
from .store import Entry, Library

MOST_CHARACTERS, MOST_PLACES = 4, 3
MIN_SCORE = 0.15  # cosine below which a recalled fact is more likely noise than kin (USE v3 scores)


def _named_in(entry: Entry, text: str) -> bool:
    """A character by its whole name; a place also by a word of its name (\"the well\" for \"village well\")."""
    name, text = entry.name.casefold(), text.casefold()
    if not name:
        return False
    if name in text:
        return True
    words = set(re.findall(r"\w+", text))
    return entry.kind == "place" and any(len(w) >= 4 and w in words for w in re.findall(r"\w+", name))


def _recalled(library: Library, request: str, kind: str, most: int, series: str | None) -> list[Entry]:
    """The entries of ``kind`` the request names, then the closest in meaning (score ≥ :data:`MIN_SCORE`)."""
    named = [e for e in library.entries(kind, series) if _named_in(e, request)]
    close = [h.entry for h in library.search(request, k=most * 2, kinds=[kind], series=series) if h.score >= MIN_SCORE]
    out: list[Entry] = []
    for entry in named + close:
        if len(out) < most and all((e.key, e.series) != (entry.key, entry.series) for e in out):
            out.append(entry)
    return out


def character_of(entry: Entry) -> BibleCharacter:
    data = entry.data
    return BibleCharacter(entry.key, entry.name or entry.key, data.get("description") or entry.text,
                          data.get("voice") or None, data.get("language"), data.get("wardrobe"), data.get("age"))


def place_of(entry: Entry) -> BiblePlace:
    data = entry.data
    return BiblePlace(entry.key, entry.name or entry.key, data.get("description", ""), data.get("time_of_day") or "day")


def library_bible(library: Library, request: str, series: str | None = None) -> Bible:
    """The library's characters and places for ``request`` (of ``series``, else of any), as an open bible."""
    people = _recalled(library, request, "character", MOST_CHARACTERS, series)
    places = _recalled(library, request, "place", MOST_PLACES, series)
    return Bible([character_of(e) for e in people], [place_of(e) for e in places],
                 series or next((e.series for e in people + places if e.series), ""), open=True)


def series_bible(library: Library, series: str | None) -> Bible:
    """Every character and place the library keeps for ``series`` (None: for every series), for planning a whole
    text's episodes."""
    return Bible([character_of(e) for e in library.entries("character", series)],
                 [place_of(e) for e in library.entries("place", series)], series or "")


def style_guide(library: Library, series: str | None) -> str | None:
    """The series' style guide, when the library keeps one."""
    entries = [e for e in library.entries("style", series) if e.key == "style"]
    return entries[0].data.get("style") or entries[0].text if entries else None
