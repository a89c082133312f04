"""A series bible: the characters and places every episode of a series shares, given to the staged planner
(:func:`.stages.plan_in_stages` ``bible=``) so its outline picks from them by name (a grammar enum) and its
storyboard carries their full entries, the same ids and words in every episode, never re-invented ones.

Plain data, so any source can fill it: the novel planner (:mod:`.novel`) from the names a text gives, a project
library from its records, a person from JSON::

    {"series": "The Mill",
     "characters": [{"id": "mara", "name": "Mara", "description": "girl in a red coat",
                     "voice": {"engine": "espeak", "pitch": 4}, "language": "en", "wardrobe": "red coat",
                     "age": "child"}],
     "places": [{"id": "mill", "name": "the old mill", "description": "a stone mill by a river",
                 "time_of_day": "day"}]}

A character's ``voice``, ``language``, ``wardrobe`` and ``age`` are the storyboard's own fields (its JSON Schema
checks them when the storyboard is validated); an id, when left out, is made from the name.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from ...common.errors import Problem
from .backends import PlanError

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


@dataclass
class BibleCharacter:
    id: str
    name: str
    description: str
    voice: dict | None = None      # the storyboard's voice entry: engine, name, rate, pitch
    language: str | None = None    # the language the character speaks, when not the project's
    wardrobe: str | None = None
    age: int | str | None = None

    def entry(self) -> dict:
        """The storyboard's ``characters.<id>`` entry."""
        out: dict[str, Any] = {"name": self.name, "description": self.description or self.name}
        for key in ("voice", "language", "wardrobe", "age"):
            value = getattr(self, key)
            if value not in (None, "", {}):
                out[key] = dict(value) if isinstance(value, dict) else value
        return out


@dataclass
class BiblePlace:
    id: str
    name: str                      # the storyboard's scene location
    description: str = ""
    time_of_day: str = "day"

    def entry(self) -> dict:
        """The storyboard's ``scenes.<id>`` entry."""
        out = {"location": self.name, "time_of_day": self.time_of_day or "day"}
        if self.description:
            out["description"] = self.description
        return out


@dataclass
class Bible:
    characters: list[BibleCharacter] = field(default_factory=list)
    places: list[BiblePlace] = field(default_factory=list)
    series: str = ""
    open: bool = False   # the outline may add characters and places of its own beside these (a library's recall)

    def __bool__(self) -> bool:
        return bool(self.characters or self.places)

    def character(self, name: str) -> BibleCharacter | None:
        return next((c for c in self.characters if c.name == name), None)

    def place(self, name: str) -> BiblePlace | None:
        return next((p for p in self.places if p.name == name), None)

    def reusing(self, known: "Bible") -> "Bible":
        """This bible with the characters and places ``known`` has (same name, any case) replaced by its entries
        (their ids, descriptions, voices): a series' second text keeps the first one's cast. Ids of the new ones
        are kept clear of the known ids."""
        def merged(mine: list, theirs: list) -> list:
            by_name = {k.name.casefold(): k for k in theirs}
            taken = {k.id for k in theirs}
            out = []
            for item in mine:
                twin = by_name.get(item.name.casefold())
                if twin is None and item.id in taken:
                    item = replace(item, id=_free(item.id, taken))
                out.append(twin or item)
                taken.add(out[-1].id)
            return out
        return replace(self, characters=merged(self.characters, known.characters),
                       places=merged(self.places, known.places))

    def to_json(self) -> dict:
        def bare(item) -> dict:
            return {k: v for k, v in asdict(item).items() if v not in (None, "", {})}
        return {"series": self.series, "characters": [bare(c) for c in self.characters],
                "places": [bare(p) for p in self.places], **({"open": True} if self.open else {})}

    @classmethod
    def from_json(cls, data: Any, source: str = "the series bible") -> "Bible":
        """A bible from its JSON (above), or from a storyboard's ``characters``/``scenes`` maps; ids made from
        names where missing, names unique; a :class:`PlanError` naming the entry that cannot be one."""
        if isinstance(data, Bible):
            return data
        if not isinstance(data, dict):
            raise PlanError(f"{source} is not a JSON object", [Problem("$", "expected characters and places")])
        raw_chars = _listed(data.get("characters"), "name")
        raw_places = _listed(data.get("places", data.get("scenes")), "location")
        bible = cls(series=str(data.get("series") or ""), open=data.get("open") is True)
        taken: set[str] = set()
        for i, raw in enumerate(raw_chars):
            name = _word(raw.get("name"), f"{source}: characters[{i}] has no name")
            if bible.character(name):
                continue
            bible.characters.append(BibleCharacter(
                _id(raw.get("id"), name, "char", i, taken), name, _clean(raw.get("description")) or name,
                raw.get("voice") if isinstance(raw.get("voice"), dict) else None,
                _clean(raw.get("language")) or None, _clean(raw.get("wardrobe")) or None,
                raw.get("age") if isinstance(raw.get("age"), (int, str)) and raw.get("age") != "" else None))
        for i, raw in enumerate(raw_places):
            name = _word(raw.get("name", raw.get("location")), f"{source}: places[{i}] has no name")
            if bible.place(name):
                continue
            bible.places.append(BiblePlace(_id(raw.get("id"), name, "place", i, taken), name,
                                           _clean(raw.get("description")), _clean(raw.get("time_of_day")) or "day"))
        return bible


def _clean(value: Any) -> str:
    return re.sub(r"[\x00-\x1f\x7f\"\\]+", " ", value).strip()[:400] if isinstance(value, str) else ""


def _word(value: Any, missing: str) -> str:
    name = _clean(value)[:50]
    if not name:
        raise PlanError(missing, [Problem("name", "each character and place needs a name")])
    return name


def _listed(value: Any, name_key: str) -> list[dict]:
    """A list of entries, or a storyboard's map by id (the id kept, the name taken from ``name_key``)."""
    if isinstance(value, dict):
        return [dict(v, id=k, name=v.get("name") or v.get(name_key) or k) for k, v in value.items()
                if isinstance(v, dict)]
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _id(given: Any, name: str, prefix: str, index: int, taken: set[str]) -> str:
    """The given id when it is one, else the name in ASCII letters (``Old Tom`` → ``old_tom``), else
    ``char3``/``place2``; unique across characters and places (both are storyboard ids)."""
    wanted = given if isinstance(given, str) and _ID.match(given) else \
        re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")[:40] or f"{prefix}{index + 1}"
    if not _ID.match(wanted):
        wanted = f"{prefix}{index + 1}"
    out, n = wanted, 2
    while out in taken:
        out, n = f"{wanted}_{n}", n + 1
    taken.add(out)
    return out


def _free(wanted: str, taken: set[str]) -> str:
    """``wanted``, or ``wanted_2``, ``wanted_3`` … the first not ``taken``."""
    n = 2
    while f"{wanted}_{n}" in taken:
        n += 1
    return f"{wanted}_{n}"
