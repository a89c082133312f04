"""A new storyboard checked against the project library: what it says of a character that the library contradicts.

Each character is matched to the library's (same id in the series, else the same name, else a name one or two
letters off, which is itself reported as a spelling); then its wardrobe (each garment's colour), age (its stage of
life), voice (engine, name, rate, pitch) and name spelling are compared with the library's entry. The findings are
warnings: they name the storyboard's JSON path and the library entry they contradict, and stop nothing.
"""
from __future__ import annotations

import numpy as np

from ...common.errors import Problem
from ...common.jsonio import json_path
from ..storyboard_model import Storyboard
from .facts import age_stage, garment_colours
from .resolve import Match, resolve_characters
from .store import Library

VOICE_TOLERANCE = {"rate": 0.05, "pitch": 0.5}


def continuity_warnings(library: Library, board: Storyboard, faces: dict[str, list[float]] | None = None,
                        same_person: float = 0.6) -> list[Problem]:
    """Every contradiction between ``board``'s characters and the library's, each at its JSON path. ``faces``:
    the face embedding of each character's reference pictures (the identity work's), compared with the library's:
    farther than ``same_person`` (the face model's line between one person and two) is another face."""
    problems = []
    for cid, match in resolve_characters(library, board).items():
        problems += _character_problems(cid, board, match)
        then = match.entry.data.get("face")
        if faces and cid in faces and then:
            distance = float(np.linalg.norm(np.asarray(faces[cid]) - np.asarray(then)))
            if distance > same_person:
                problems.append(Problem(json_path(["characters", cid, "reference_images"]),
                                        f"the reference pictures show another face (distance {distance:.2f} from "
                                        f"the library's {match.entry.label()}; one person is within {same_person})"))
    return problems


def _character_problems(cid: str, board: Storyboard, match: Match) -> list[Problem]:
    c, entry, lib = board.characters[cid], match.entry, match.entry.data
    where = ["characters", cid]
    said = f"the library's {entry.label()}"
    out = []
    if c.display_name != entry.name:
        out.append(Problem(json_path(where + ["name"]), f"spelled {c.display_name!r}; {said} is {entry.name!r}"))
    out += _wardrobe_problems(where, c.wardrobe, c.description, lib, said)
    if c.age is not None and lib.get("age") is not None:
        now, then = age_stage(c.age), age_stage(lib["age"])
        numbers = [a for a in (c.age, lib["age"]) if isinstance(a, int) and not isinstance(a, bool)]
        if (now and then and now != then) or (len(numbers) == 2 and abs(numbers[0] - numbers[1]) > 1):
            out.append(Problem(json_path(where + ["age"]), f"age {c.age!r}; {said} is {lib['age']!r}"))
    voice = lib.get("voice") or {}
    if voice:
        mine = {"engine": c.voice.engine, "name": c.voice.name, "rate": c.voice.rate, "pitch": c.voice.pitch}
        for key in ("engine", "name", "rate", "pitch"):
            old, new = voice.get(key), mine[key]
            if old is None or new is None:
                continue
            differs = abs(float(old) - float(new)) > VOICE_TOLERANCE[key] if key in VOICE_TOLERANCE else old != new
            if differs:
                out.append(Problem(json_path(where + ["voice", key]), f"voice {key} {new!r}; {said} speaks with "
                                                                      f"{key} {old!r}"))
    return out


def _wardrobe_problems(where: list, wardrobe: str | None, description: str, lib: dict, said: str) -> list[Problem]:
    then = {**garment_colours(lib.get("description")), **garment_colours(lib.get("wardrobe"))}
    now_wardrobe, now_description = garment_colours(wardrobe), garment_colours(description)
    out = []
    for garment, colour in {**now_description, **now_wardrobe}.items():
        if garment in then and then[garment] != colour:
            field = "wardrobe" if garment in now_wardrobe else "description"
            out.append(Problem(json_path(where + [field]), f"a {colour} {garment}; {said} wears a {then[garment]} "
                                                           f"{garment}"))
    return out
