"""Values a small model copied from what it was told instead of answering: the storyboard schema's own field
descriptions ("visual style words for an image model" as the style), the system prompt, a stage's worked example.

A text value of four words or more found inside those instructions, and not in the user's request (what the user
said is theirs to repeat), is replaced: a title by "Untitled", a style by the planner's default, a character's
description by their name, a shot's by "shot N"; a copied scene description or line is left out.
"""
from __future__ import annotations

import functools
import re

from ..schema_check import storyboard_schema

MIN_WORDS = 4


def _words(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


@functools.lru_cache(maxsize=1)
def schema_descriptions() -> tuple[str, ...]:
    """Every ``description`` the storyboard's JSON Schema holds."""
    out: list[str] = []

    def walk(node) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "description" and isinstance(value, str):
                    out.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
    walk(storyboard_schema())
    return tuple(out)


def is_copy(value: str, instructions: list[str], request: str = "") -> bool:
    words = _words(value)
    if len(words.split()) < MIN_WORDS or words in _words(request):
        return False
    return any(words in _words(text) for text in instructions)


def drop_copies(board: dict, instructions: list[str], request: str = "", default_style: str = "") -> list[str]:
    """Replace (or leave out) each copied value of ``board`` in place; the JSON paths replaced, in order."""
    texts = list(schema_descriptions()) + list(instructions)
    found: list[str] = []

    def copied(value, where: str) -> bool:
        hit = isinstance(value, str) and is_copy(value, texts, request)
        if hit:
            found.append(where)
        return hit
    project = board.get("project", {})
    if copied(project.get("title"), "$.project.title"):
        project["title"] = "Untitled"
    if copied(project.get("style"), "$.project.style"):
        project["style"] = default_style
    for cid, c in board.get("characters", {}).items():
        if copied(c.get("description"), f"$.characters.{cid}.description"):
            c["description"] = c.get("name") or cid
    for sid, s in board.get("scenes", {}).items():
        if copied(s.get("description"), f"$.scenes.{sid}.description"):
            del s["description"]
    for i, shot in enumerate(board.get("shots", [])):
        if copied(shot.get("description"), f"$.shots[{i}].description"):
            shot["description"] = f"shot {i + 1}"
        lines = shot.get("dialogue", [])
        kept = [line for j, line in enumerate(lines) if not copied(line.get("text"), f"$.shots[{i}].dialogue[{j}].text")]
        if len(kept) != len(lines):
            shot["dialogue"] = kept
    return found
