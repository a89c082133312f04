"""Planning in stages a small model can follow: the request → an outline (characters, places, exactly N beats) →
the shots (who is in each, where, framing and move) → the dialogue, each stage one short answer held by a grammar
built from what the stages before it decided (the shots may only name the outline's characters and places, a line
only a character of its shot), so a 4-shot request gives 4 shots even from Gemma 3 270M, which, asked for a whole
storyboard at once, wrote one 60-second shot.

The stages' answers are kept (:class:`Stages`, written beside the storyboard by ``animstudio plan``) so a person can
edit the outline and plan again from it. The result goes through the one-shot planner's repair and validation
(:func:`.planner.repair`), so both planners give storyboards of the same shape.
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from ...common.errors import Problem, StoryboardError
from ...common.jsonio import parse_json
from .backends import PlanError
from .bible import Bible
from .copies import drop_copies, is_copy
from .novel_text import request_names
from .planner import (DEFAULT_CHECKPOINT, LANGUAGE_NAMES, MAX_PROBLEMS_SHOWN, MAX_SHOTS, _clean, _enum, _text,
                      _validate, detect_language, repair, storyboard_schema)

DEFAULT_SHOTS = 4
MAX_NAMED = 4  # the request's names the outline must list (more are the model's to pick)
DEFAULT_STYLE = "storybook illustration, soft colors, clean lines"
TIMES = ["day", "night", "dawn", "dusk"]
# what a line may be written with, per language: the grammar keeps a small model in the request's language
_LINE_CHARS = {  # letters of the script and its punctuation; no digits (a small model fills a line with them)
    "en": r"A-Za-z ,.!?'\u2019:;-",
    "zh": r"\u3000-\u303f\u4e00-\u9fff\uff01\uff0c\uff1a\uff1b\uff1f",
    "ru": r"\u0400-\u04ff ,.!?:;\u2014\u2026-",
    "uk": r"\u0400-\u04ff ,.!?:;\u2014\u2026'-",
    "ko": r"\uac00-\ud7af ,.!?~\u2026",
    "ja": r"\u3000-\u30ff\u4e00-\u9fff\uff01\uff0c\uff1f",
}
_NAME_CHARS = {"zh": r"\u4e00-\u9fff\u00b7", "ru": r"\u0400-\u04ff -", "uk": r"\u0400-\u04ff '-",
               "ko": r"\uac00-\ud7af ", "ja": r"\u30a0-\u30ff\u4e00-\u9fff"}  # a name in the request's script
_NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
    "一": 1, "两": 2, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9, "十": 10,
    "один": 1, "одного": 1, "два": 2, "двух": 2, "три": 3, "трёх": 3, "трех": 3, "четыре": 4, "четырёх": 4,
    "четырех": 4, "пять": 5, "пяти": 5, "шесть": 6, "шести": 6, "семь": 7, "восемь": 8,
}
_SHOT_WORDS = r"(?:shots?|scenes?|panels?|个?镜头|个?场景|幕|кадр\w*|сцен\w*|план\w*)"


def requested_shots(request: str) -> int | None:
    """The number of shots a request asks for ("in 4 shots", "four-shot", "四个镜头", "в четырёх кадрах")."""
    words = "|".join(sorted(map(re.escape, _NUMBER_WORDS), key=len, reverse=True))
    match = re.search(rf"(\d+|{words})\s*[-‑ ]?\s*{_SHOT_WORDS}", request, re.IGNORECASE)
    if not match:
        return None
    token = match.group(1).lower()
    n = int(token) if token.isdigit() else _NUMBER_WORDS[token]
    return max(1, min(n, 32))


@dataclass
class Stages:
    """What each stage answered: kept with the storyboard so a person can edit the outline and plan again."""
    request: str
    language: str
    shots: int
    outline: dict = field(default_factory=dict)
    cast: dict = field(default_factory=dict)
    dialogue: dict = field(default_factory=dict)
    bible: dict = field(default_factory=dict)  # Bible.to_json(): the characters and places the outline must reuse

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any, source: str = "the plan") -> "Stages":
        if not isinstance(data, dict) or not isinstance(data.get("outline"), dict) or \
                not isinstance(data.get("request"), str):
            raise PlanError(f"{source} is not a saved plan", [Problem("$", "expected request, outline, ...")])
        shots = len(data["outline"].get("beats") or []) or DEFAULT_SHOTS
        bible = Bible.from_json(data["bible"], f"{source}'s bible").to_json() if data.get("bible") else {}
        return cls(data["request"], data.get("language") or detect_language(data["request"]), shots,
                   data["outline"], bible=bible)


# ------------------------------------------------------------------------------------------ the stages' shapes

def outline_schema(shots: int, language: str = "en", bible: Bible | None = None, named: list[str] = ()) -> dict:
    """The outline's shape. With a ``bible``, its characters and places are picked by name from the bible's (their
    looks and times are the bible's own); else the model names and describes them. ``names`` (the request's own,
    :func:`.novel_text.request_names`) open the character list, each to be described: a small model cannot leave
    out or rename a character the request names."""
    chars = _NAME_CHARS.get(language)
    name = {"type": "string", "pattern": f"^[{chars}]{{1,12}}$"} if chars else _text(30)
    thing = {"type": "object", "additionalProperties": False, "required": ["name", "look"],
             "properties": {"name": name, "look": _text(100)}}
    place = {"type": "object", "additionalProperties": False, "required": ["name", "time"],
             "properties": {"name": _text(50), "time": {"enum": TIMES}}}
    most_people, most_places = 4, 3
    if bible and bible.characters:
        thing = _picked([c.name for c in bible.characters], thing, bible.open)
        most_people = most_people if bible.open else min(most_people, len(bible.characters))
    if bible and bible.places:
        place = _picked([p.name for p in bible.places], place, bible.open)
        most_places = most_places if bible.open else min(most_places, len(bible.places))
    people = {"type": "array", "minItems": 1, "maxItems": most_people, "items": thing}
    if named:  # exactly these, in order (llama.cpp's grammar holds a tuple, not a prefix followed by more)
        people = {"type": "array", "items": False, "minItems": len(named), "maxItems": len(named),
                  "prefixItems": [_named_item(n, bool(bible and bible.character(n))) for n in named]}
    return {"type": "object", "additionalProperties": False,
            "required": ["title", "style", "characters", "places", "beats"],
            "properties": {"title": _prose(language, 60), "style": _text(80),
                           "characters": people,
                           "places": {"type": "array", "minItems": 1, "maxItems": most_places, "items": place},
                           "beats": {"type": "array", "minItems": shots, "maxItems": shots,
                                     "items": _prose(language, 100)}}}


def _picked(names: list[str], described: dict, open_: bool) -> dict:
    """An outline item picked by name from the bible's ``names``; an open bible also takes a ``described`` new one."""
    known = {"type": "object", "additionalProperties": False, "required": ["name"],
             "properties": {"name": {"enum": names}}}
    return {"anyOf": [known, described]} if open_ else known


def _prose(language: str, most: int) -> dict:
    """Words of the request's script and its punctuation (no digits, brackets or ``=``: what a small model writes
    when it drifts into code), where the script is known; else any text."""
    chars = _LINE_CHARS.get(language)
    return {"type": "string", "pattern": f"^[{chars}]{{2,{most}}}$"} if chars else _text(most)


def _named_item(name: str, known: bool) -> dict:
    """One of the request's characters in the outline: by name alone when the bible knows them, else described."""
    if known:
        return {"type": "object", "additionalProperties": False, "required": ["name"],
                "properties": {"name": {"enum": [name]}}}
    return {"type": "object", "additionalProperties": False, "required": ["name", "look"],
            "properties": {"name": {"enum": [name]}, "look": _text(100)}}


def cast_schema(shots: int, names: list[str], places: list[str]) -> dict:
    shot = {"type": "object", "additionalProperties": False, "required": ["who", "place", "framing", "move"],
            "properties": {"who": {"type": "array", "minItems": 1, "maxItems": min(3, len(names)),
                                   "items": {"enum": names}},
                           "place": {"enum": places}, "framing": {"enum": _enum("shot")},
                           "move": {"enum": _enum("move")}}}
    return {"type": "object", "additionalProperties": False, "required": ["shots"],
            "properties": {"shots": {"type": "array", "minItems": shots, "maxItems": shots, "items": shot}}}


def dialogue_schema(casts: list[list[str]], language: str) -> dict:
    chars = _LINE_CHARS.get(language)
    text = {"type": "string", "pattern": f"^[{chars}]{{2,40}}$"} if chars else _text(70)
    emotions = list(storyboard_schema()["$defs"]["dialogue_line"]["properties"]["emotion"]["enum"])
    shots = []
    for cast in casts:
        line = {"type": "object", "additionalProperties": False, "required": ["who", "text", "emotion"],
                "properties": {"who": {"enum": cast}, "text": text, "emotion": {"enum": emotions}}}
        shots.append({"type": "array", "minItems": 1, "maxItems": 2, "items": line})
    return {"type": "object", "additionalProperties": False, "required": ["lines"],
            "properties": {"lines": {"type": "array", "prefixItems": shots, "items": False,
                                     "minItems": len(shots), "maxItems": len(shots)}}}


# ------------------------------------------------------------------------------------------ the prompts

# one worked example per stage (another story): a small model follows an example far better than a description
EXAMPLE_REQUEST = "A two-shot film: Ana, an old fisherman, catches a golden fish that talks."
EXAMPLE_OUTLINE = {"title": "The Golden Fish", "style": "watercolor, warm evening light",
                   "characters": [{"name": "Ana", "look": "old fisherman with a grey beard and a blue cap"},
                                  {"name": "Goldie", "look": "small shining golden fish"}],
                   "places": [{"name": "the sea shore", "time": "dusk"}],
                   "beats": ["Ana pulls his net out of the calm sea.",
                             "Ana holds the golden fish, which opens its mouth to speak."]}
EXAMPLE_CAST = {"shots": [{"who": ["Ana"], "place": "the sea shore", "framing": "wide", "move": "static"},
                          {"who": ["Ana", "Goldie"], "place": "the sea shore", "framing": "close_up",
                           "move": "zoom_in"}]}
EXAMPLE_LINES = {"lines": [[{"who": "Ana", "text": "Something heavy tonight!", "emotion": "happy"}],
                           [{"who": "Goldie", "text": "Let me go, and I will grant you a wish.", "emotion": "afraid"},
                            {"who": "Ana", "text": "A fish that talks?", "emotion": "surprised"}]]}


def _example(request: str, answer: dict) -> str:
    return f"Example. Request: {request}\nAnswer: {json.dumps(answer, ensure_ascii=False)}"


def outline_prompt(stages: Stages) -> str:
    if stages.bible:  # the characters and places are the series' own: picked by name, not described again
        example = dict(EXAMPLE_OUTLINE, characters=[{"name": c["name"]} for c in EXAMPLE_OUTLINE["characters"]],
                       places=[{"name": p["name"]} for p in EXAMPLE_OUTLINE["places"]])
        return (f"You plan short animated films. Plan the film the user asks for in exactly {stages.shots} beats, "
                "one per shot, in order: each beat is one sentence saying what we see. Give the film a title and a "
                "visual style for an image model; list the characters in it and the places it happens in, "
                + ("reusing those the user lists, by their names, and adding with how they look only those the "
                   "film needs that are not listed. " if stages.bible.get("open") else
                   "only from those the user lists, by their names. ") + "Answer with JSON only.\n"
                + _example(EXAMPLE_REQUEST + "\nCharacters: Ana; Goldie\nPlaces: the sea shore", example))
    return (f"You plan short animated films. Plan the film the user asks for in exactly {stages.shots} beats, one per "
            "shot, in order: each beat is one sentence saying what we see. Give the film a title and a visual style "
            "for an image model; list its characters, with the names the user gives them, and how each one looks; "
            "list its places. Answer with JSON only.\n" + _example(EXAMPLE_REQUEST, EXAMPLE_OUTLINE))


def outline_request(stages: Stages) -> str:
    """What the outline stage is asked: the request, and the bible's characters and places to pick from."""
    if not stages.bible:
        return stages.request
    bible = Bible.from_json(stages.bible)
    people = "; ".join(f"{c.name} ({c.description})" if c.description != c.name else c.name
                       for c in bible.characters)
    places = "; ".join(p.name for p in bible.places)
    return "\n".join([stages.request] + ([f"Characters: {people}"] if people else [])
                     + ([f"Places: {places}"] if places else []))


def cast_prompt(stages: Stages) -> str:
    return ("For each beat of the film the user gives, say which characters are in the shot, where it takes place, "
            "the camera framing and the camera move. Answer with JSON only.\n"
            + _example("the two beats of The Golden Fish", EXAMPLE_CAST))


def dialogue_prompt(stages: Stages) -> str:
    name = LANGUAGE_NAMES.get(stages.language, stages.language)
    return (f"Write what the characters say in each shot of the film the user gives: one or two short lines per "
            f"shot, in {name}, with the emotion of each line. Answer with JSON only.\n"
            + _example("the two shots of The Golden Fish", EXAMPLE_LINES))


def _beats_text(stages: Stages) -> str:
    outline = stages.outline
    bible = Bible.from_json(stages.bible) if stages.bible else Bible()

    def look(c: dict) -> str:
        known = bible.character(c.get("name", ""))
        return known.description if known else c.get("look", "")
    people = "; ".join(f"{c['name']}: {look(c)}" for c in outline.get("characters", []))
    beats = "\n".join(f"{i + 1}. {b}" for i, b in enumerate(outline.get("beats", [])))
    return f"Film: {outline.get('title', '')}\nCharacters: {people}\nBeats:\n{beats}"


def _ask(backend, system: str, user: str, schema: dict, seed: int, stage: str) -> dict:
    text = backend.complete_json(system, user, schema, seed=seed)
    try:
        reply = parse_json(text, error=PlanError)
    except PlanError as exc:
        raise PlanError(f"{backend.describe()} did not answer the {stage} stage with JSON ({exc.summary}); "
                        f"the reply began {text[:120]!r}", [Problem(f"{stage}, {p.where}", p.message)
                                                             for p in exc.problems]) from None
    if not isinstance(reply, dict):
        raise PlanError(f"{backend.describe()} answered the {stage} stage with JSON that is not an object",
                        [Problem(stage, f"got {text[:120]!r}")])
    return reply


# ------------------------------------------------------------------------------------------ planning

def run_stages(stages: Stages, backend, seed: int = 0) -> Stages:
    """Run the stages not answered yet (an edited outline is kept and the later stages follow it)."""
    if not stages.outline:
        bible = Bible.from_json(stages.bible) if stages.bible else None
        # a closed bible is the whole cast; else the names the request gives are (the bible's entries for those it has)
        names = [] if bible and not bible.open else request_names(stages.request)
        stages.outline = _ask(backend, outline_prompt(stages), outline_request(stages),
                              outline_schema(stages.shots, stages.language, bible, names[:MAX_NAMED]), seed,
                              "outline")
    outline = stages.outline
    names = list(dict.fromkeys(_clean(c.get("name"), 30) for c in outline.get("characters", []) if
                               isinstance(c, dict) and _clean(c.get("name"), 30)))
    places = list(dict.fromkeys(_clean(p.get("name"), 50) for p in outline.get("places", []) if
                                isinstance(p, dict) and _clean(p.get("name"), 50)))
    if not names or not places or not outline.get("beats"):
        raise PlanError("the outline names no character, place or beat",
                        [Problem("outline", "edit the plan's outline, or plan again with another seed")])
    stages.shots = len(outline["beats"])
    if not stages.cast:
        stages.cast = _ask(backend, cast_prompt(stages), _beats_text(stages),
                           cast_schema(stages.shots, names, places), seed, "shots")
    casts = [[w for w in shot.get("who", []) if w in names] or names[:1] for shot in stages.cast.get("shots", [])]
    if not stages.dialogue:
        stages.dialogue = _ask(backend, dialogue_prompt(stages), _beats_text(stages),
                               dialogue_schema(casts, stages.language), seed, "dialogue")
    return stages


def _seconds(lines: list[dict], language: str) -> float:
    """A shot as long as its lines take to say (about 4 CJK characters or 14 other characters a second)."""
    rate = 4.0 if language == "zh" else 14.0
    return round(min(8.0, max(2.5, 1.0 + sum(len(line["text"]) for line in lines) / rate)), 1)


def assemble(stages: Stages) -> dict:
    """The stages' answers in the one-shot planner's reply shape (for :func:`.planner.repair`)."""
    outline = stages.outline
    bible = Bible.from_json(stages.bible) if stages.bible else Bible()
    prompts = (outline_prompt(stages).split("Example.")[0], cast_prompt(stages).split("Example.")[0],
               dialogue_prompt(stages).split("Example.")[0])
    ids: dict[str, str] = {}
    characters = []
    for i, c in enumerate(c for c in outline.get("characters", []) if isinstance(c, dict)):
        name = _clean(c.get("name"), 30)
        known = bible.character(name)
        if name and name not in ids:
            ids[name] = known.id if known else f"c{i + 1}"
            look = known.description if known else _clean(c.get("look"))
            characters.append({"id": ids[name], "name": name, "description": look or name})
    places = {}
    scenes = []
    for i, p in enumerate(p for p in outline.get("places", []) if isinstance(p, dict)):
        name = _clean(p.get("name"), 50)
        known = bible.place(name)
        if name and name not in places:
            places[name] = known.id if known else f"p{i + 1}"
            time = known.time_of_day if known else p.get("time")
            scenes.append({"id": places[name], "location": name, "time_of_day": time or "day"})
    style = _clean(outline.get("style"))
    casts = stages.cast.get("shots", [])
    lines = stages.dialogue.get("lines", [])
    shots = []
    for i, beat in enumerate(outline.get("beats", [])):
        cast = casts[i] if i < len(casts) and isinstance(casts[i], dict) else {}
        said = [{"character": ids[l["who"]], "text": _clean(l.get("text")), "emotion": l.get("emotion", "neutral")}
                for l in (lines[i] if i < len(lines) and isinstance(lines[i], list) else [])
                if isinstance(l, dict) and l.get("who") in ids and _clean(l.get("text"))]
        shots.append({"id": f"shot{i + 1}", "scene": places.get(cast.get("place"), ""),
                      "characters": [ids[w] for w in cast.get("who", []) if w in ids],
                      "description": _clean(beat), "camera": cast.get("framing"), "move": cast.get("move"),
                      "duration": _seconds(said, stages.language), "dialogue": said,
                      "transition": "cut" if i == 0 else "dissolve"})
    return {"title": _clean(outline.get("title")) or "Untitled",
            "style": DEFAULT_STYLE if not style or is_copy(style, list(prompts), stages.request) else style,
            "characters": characters, "scenes": scenes, "shots": shots}


def _bible_entries(board: dict, bible: Bible) -> None:
    """The bible's own entries for the characters and places the storyboard uses (voice, wardrobe, age included),
    and its series."""
    for c in bible.characters:
        if c.id in board.get("characters", {}):
            board["characters"][c.id] = c.entry()
    for p in bible.places:
        if p.id in board.get("scenes", {}):
            board["scenes"][p.id] = p.entry()
    if bible.series:
        board["project"]["series"] = bible.series


def plan_in_stages(request: str, backend, seed: int = 0, shots: int | None = None, *,
                   checkpoint: str = DEFAULT_CHECKPOINT, stages: Stages | None = None,
                   bible: Bible | dict | None = None, language: str | None = None) -> tuple[dict, Stages]:
    """A storyboard v1 dict that validates, and the stages' answers. ``shots``: how many (else the number the
    request asks for, else :data:`DEFAULT_SHOTS`); ``stages``: a saved plan (its outline perhaps edited) to go on
    from; ``bible``: the series' characters and places (:class:`.bible.Bible` or its JSON), which the outline picks
    from by name and the storyboard carries whole, with their ids; ``language``: the lines' language (else told
    from the request). Raises :class:`PlanError` naming the stage that failed."""
    request = _clean(request, 4000)
    if stages is None:
        if not request:
            raise PlanError("nothing to plan", [Problem("request", "describe the film in a sentence or more")])
        count = shots or requested_shots(request) or DEFAULT_SHOTS
        stages = Stages(request, language or detect_language(request), max(1, min(int(count), MAX_SHOTS * 4)))
    if bible:
        stages.bible = Bible.from_json(bible).to_json()
    run_stages(stages, backend, seed)
    board = repair(assemble(stages), language=stages.language, seed=seed, checkpoint=checkpoint,
                   max_shots=stages.shots)
    drop_copies(board, [outline_prompt(stages), cast_prompt(stages), dialogue_prompt(stages)], stages.request,
                DEFAULT_STYLE)
    if stages.bible:
        _bible_entries(board, Bible.from_json(stages.bible))
    try:
        _validate(board, source=f"plan from {backend.describe()}")
    except StoryboardError as exc:
        raise PlanError(f"the stages of {backend.describe()} gave a storyboard that does not validate",
                        exc.problems[:MAX_PROBLEMS_SHOWN]) from None
    return board, stages


def stages_json(stages: Stages) -> str:
    return json.dumps(stages.to_json(), ensure_ascii=False, indent=2) + "\n"
