"""A request in plain words becomes a storyboard that validates.

The model answers in a small JSON shape (:func:`plan_schema`): a subset of storyboard v1 with no file
fields, lists instead of id-keyed maps, closed enums and bounded strings and arrays, so a grammar
compiled from it keeps even a tiny model inside it and its replies short. :func:`plan_storyboard` then
repairs what a schema cannot promise (sizes on the 8-pixel grid, durations > 0, unique shot ids, references
only to characters and scenes that exist), adds what the project needs (version, language, checkpoint)
and validates the result with the storyboard's own validator. A reply that still fails raises one
:class:`PlanError` naming the model and the first problems at their JSON paths.
"""
from __future__ import annotations

import json
import re
import tempfile
from typing import Any

from ..keyframes import shot_prompt
from ...common.errors import Problem, StoryboardError
from ...common.jsonio import check_data, parse_json
from ..schema_check import storyboard_schema
from ..storyboard import parse_storyboard
from ..storyboard_model import Storyboard
from .backends import PlanError
from .copies import drop_copies

DEFAULT_CHECKPOINT = "sd15.safetensors"
DEFAULT_NEGATIVE = ("blurry, low quality, jpeg artifacts, deformed, bad anatomy, extra limbs, extra fingers, "
                    "watermark, signature, text")
MAX_SHOTS = 8
MAX_PROBLEMS_SHOWN = 5
SIZE_RANGE = (64, 2048)   # within the schema's 64..4096; a planned film has no business being 4K
FPS_RANGE = (1, 60)
SECONDS_RANGE = (0.5, 60.0)
TRANSITION_SECONDS = 0.5

_ID = r"^[a-z][a-z0-9_]{0,23}$"
# printable text, no control characters; quotes and backslashes are left out so a grammar-bound
# string never needs an escape
_TEXT = r"^[^\x00-\x1f\x7f\"\\]{1,%d}$"
LANGUAGE_NAMES = {"en": "English", "zh": "Chinese", "ru": "Russian", "uk": "Ukrainian", "ko": "Korean",
                  "ja": "Japanese", "it": "Italian", "es": "Spanish", "fr": "French", "de": "German",
                  "pt": "Portuguese", "el": "Greek", "ar": "Arabic", "he": "Hebrew", "hi": "Hindi", "th": "Thai",
                  "ka": "Georgian", "hy": "Armenian"}
MOOD_WORDS = {"happy": "cheerful mood, smiling", "sad": "melancholy mood, sad expression",
              "angry": "tense mood, angry expression", "afraid": "fearful mood, frightened expression",
              "surprised": "surprised expression", "disgusted": "disgusted expression",
              "whisper": "quiet intimate mood", "shout": "dramatic intense mood"}


def _enum(name: str) -> list[str]:
    return list(storyboard_schema()["$defs"]["camera"]["properties"][name]["enum"])


def _text(max_len: int) -> dict:
    return {"type": "string", "pattern": _TEXT % max_len}


def plan_schema(max_shots: int = MAX_SHOTS) -> dict:
    """The JSON Schema the model answers in (also given to the grammar and to ``response_format``)."""
    defs = storyboard_schema()["$defs"]
    id_ = {"type": "string", "pattern": _ID}
    return {
        "type": "object", "additionalProperties": False,
        "required": ["title", "style", "characters", "scenes", "shots"],
        "properties": {
            "title": _text(60),
            "style": _text(80),
            "characters": {"type": "array", "minItems": 0, "maxItems": 3, "items": {
                "type": "object", "additionalProperties": False, "required": ["id", "name", "description"],
                "properties": {"id": id_, "name": _text(30), "description": _text(120)}}},
            "scenes": {"type": "array", "minItems": 0, "maxItems": 3, "items": {
                "type": "object", "additionalProperties": False, "required": ["id", "location", "time_of_day"],
                "properties": {"id": id_, "location": _text(60), "time_of_day": _text(20)}}},
            "shots": {"type": "array", "minItems": 1, "maxItems": max(1, int(max_shots)), "items": {
                "type": "object", "additionalProperties": False,
                "required": ["id", "scene", "characters", "description", "camera", "move", "duration", "dialogue",
                             "transition"],
                "properties": {
                    "id": id_, "scene": id_,
                    "characters": {"type": "array", "maxItems": 3, "items": id_},
                    "description": _text(160),
                    "camera": {"enum": _enum("shot")}, "move": {"enum": _enum("move")},
                    "duration": {"type": "number", "minimum": 0.5, "maximum": 60},
                    "dialogue": {"type": "array", "maxItems": 3, "items": {
                        "type": "object", "additionalProperties": False, "required": ["character", "text", "emotion"],
                        "properties": {"character": id_, "text": _text(160),
                                       "emotion": {"enum": list(defs["dialogue_line"]["properties"]["emotion"]["enum"])}}}},
                    "transition": {"enum": list(defs["transition"]["properties"]["type"]["enum"])},
                }}},
        }}


def detect_language(text: str) -> str:
    """zh when the request has CJK characters, ru for Cyrillic, else en."""
    if re.search(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]", text):
        return "zh"
    if re.search(r"[\u0400-\u04ff]", text):
        return "ru"
    return "en"


def system_prompt(language: str, max_shots: int) -> str:
    name = LANGUAGE_NAMES.get(language, language)
    return ("You write storyboards for short animated films. Answer with ONE JSON object and nothing else: "
            "title, style (visual style words for an image model), characters (id, name, short visual description), "
            "scenes (id, location, time_of_day), and shots in order (id, scene id, character ids, what we see, "
            "camera framing, camera move, duration in seconds, dialogue lines with character id, text and emotion, "
            "transition into the shot). Ids are lowercase letters, digits and underscores. "
            f"Use at most {max_shots} shots. Descriptions are in English; dialogue text is in {name}, "
            "the language of the request.")


# ------------------------------------------------------------------------------------------ repair

_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def _clean(value: Any, limit: int = 400) -> str:
    return _CONTROL.sub(" ", value).strip()[:limit] if isinstance(value, str) else ""


def _ident(value: Any, fallback: str) -> str:
    raw = re.sub(r"[^A-Za-z0-9_-]+", "_", _clean(value)).strip("_-")[:64]
    return raw if raw and raw[0].isalnum() else fallback


def _number(value: Any, low: float, high: float, default: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        return default
    return float(min(max(value, low), high))


def _size(value: Any, default: int) -> int:
    n = int(_number(value, *SIZE_RANGE, default=default))
    return max(SIZE_RANGE[0], min(SIZE_RANGE[1], round(n / 8) * 8))


def _items(value: Any) -> list[dict]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _unique(wanted: str, taken: set[str]) -> str:
    name, n = wanted, 2
    while name in taken:
        name, n = f"{wanted[:58]}_{n}", n + 1
    taken.add(name)
    return name


def repair(reply: dict, *, language: str, seed: int, checkpoint: str, width: int | None = None,
           height: int | None = None, fps: int | None = None, max_shots: int = MAX_SHOTS) -> dict:
    """The model's reply (:func:`plan_schema` shape, possibly off) → a storyboard v1 dict."""
    reply = reply if isinstance(reply, dict) else {}
    project = {"title": _clean(reply.get("title"), 120) or "Untitled",
               "width": _size(width if width is not None else reply.get("width"), 512),
               "height": _size(height if height is not None else reply.get("height"), 288),
               "fps": int(_number(fps if fps is not None else reply.get("fps"), *FPS_RANGE, default=12)),
               "style": _clean(reply.get("style")), "seed": int(seed) & 0xFFFFFFFFFFFFFFFF,
               "language": language, "checkpoint": checkpoint, "negative_prompt": DEFAULT_NEGATIVE}
    characters: dict[str, dict] = {}
    for i, raw in enumerate(_items(reply.get("characters"))):
        cid = _unique(_ident(raw.get("id"), f"char{i + 1}"), set(characters))
        name = _clean(raw.get("name"), 80)
        entry = {"description": _clean(raw.get("description")) or name or cid}
        if name:
            entry["name"] = name
        characters[cid] = entry
    scenes: dict[str, dict] = {}
    for i, raw in enumerate(_items(reply.get("scenes"))):
        sid = _unique(_ident(raw.get("id"), f"scene{i + 1}"), set(scenes))
        scenes[sid] = {k: v for k in ("description", "location", "time_of_day") if (v := _clean(raw.get(k)))}
    shots, taken = [], set()
    for i, raw in enumerate(_items(reply.get("shots"))[:max_shots]):
        sid = _unique(_ident(raw.get("id"), f"shot{i + 1}"), taken)
        shot: dict[str, Any] = {"id": sid, "description": _clean(raw.get("description")) or f"shot {i + 1}"}
        scene = _ident(raw.get("scene"), "")
        if scene in scenes:
            shot["scene"] = scene
        raw_cast = raw.get("characters") if isinstance(raw.get("characters"), list) else []
        cast = [c for c in dict.fromkeys(_ident(c, "") for c in raw_cast) if c in characters]
        if cast:
            shot["characters"] = cast
        camera_enum, move_enum = _enum("shot"), _enum("move")
        camera = raw.get("camera") if isinstance(raw.get("camera"), dict) else {"shot": raw.get("camera"),
                                                                                   "move": raw.get("move")}
        shot["camera"] = {"shot": camera.get("shot") if camera.get("shot") in camera_enum else "medium",
                          "move": camera.get("move") if camera.get("move") in move_enum else "static"}
        seconds = round(_number(raw.get("duration"), *SECONDS_RANGE, default=3.0), 3)
        shot["duration"] = seconds
        emotions = storyboard_schema()["$defs"]["dialogue_line"]["properties"]["emotion"]["enum"]
        lines = []
        for line in _items(raw.get("dialogue")):
            who, text = _ident(line.get("character"), ""), _clean(line.get("text"))
            if who in characters and text:
                lines.append({"character": who, "text": text,
                              "emotion": line.get("emotion") if line.get("emotion") in emotions else "neutral"})
        if lines:
            shot["dialogue"] = lines
        kind = raw.get("transition")
        kind = kind.get("type") if isinstance(kind, dict) else kind
        types = storyboard_schema()["$defs"]["transition"]["properties"]["type"]["enum"]
        if kind not in types or (not shots and kind not in ("cut", "fade_black")):
            kind = "cut"
        shot["transition"] = ({"type": "cut"} if kind == "cut"
                              else {"type": kind, "duration": min(TRANSITION_SECONDS, round(seconds / 2, 3))})
        shots.append(shot)
    board: dict[str, Any] = {"version": 1, "project": project}
    if characters:
        board["characters"] = characters
    if scenes:
        board["scenes"] = scenes
    board["shots"] = shots
    return board


# ------------------------------------------------------------------------------------------ planning

def _validate(board: dict, source: str) -> Storyboard:
    with tempfile.TemporaryDirectory(prefix="animstudio-plan-") as tmp:
        return parse_storyboard(board, base_dir=tmp, source=source)


def plan_storyboard(request: str, backend, seed: int = 0, shots_hint: int | None = None, *,
                    checkpoint: str = DEFAULT_CHECKPOINT, width: int | None = None, height: int | None = None,
                    fps: int | None = None) -> dict:
    """Ask ``backend`` (:class:`LlamaCppBackend` or :class:`OpenAICompatibleBackend`) for a storyboard.

    Returns a storyboard v1 dict that passes the schema and :func:`parse_storyboard` (shots are generated
    from ``checkpoint``; there are no file fields). ``shots_hint`` caps the number of shots (default
    :data:`MAX_SHOTS`). Raises :class:`PlanError` when the backend fails or its reply cannot be repaired.
    """
    request = _clean(request, 4000)
    if not request:
        raise PlanError("nothing to plan", [Problem("request", "describe the film in a sentence or more")])
    max_shots = max(1, min(int(shots_hint or MAX_SHOTS), 32))
    language = detect_language(request)
    schema = plan_schema(max_shots)
    text = backend.complete_json(system_prompt(language, max_shots), request, schema, seed=seed)
    who = backend.describe()
    try:
        reply = parse_json(text, error=PlanError)
    except PlanError as exc:
        raise PlanError(f"{who} did not answer with JSON ({exc.summary}); the reply began {text[:120]!r}",
                        [Problem(f"reply, {p.where}", p.message) for p in exc.problems]) from None
    if not isinstance(reply, dict):
        raise PlanError(f"{who} answered with JSON that is not an object", [Problem("$", f"got {text[:120]!r}")])
    board = repair(reply, language=language, seed=seed, checkpoint=checkpoint, width=width, height=height, fps=fps,
                   max_shots=max_shots)
    drop_copies(board, [system_prompt(language, max_shots)], request)
    try:
        _validate(board, source=f"plan from {who}")
    except StoryboardError as exc:
        raise PlanError(f"{who} answered with a storyboard that does not validate "
                        f"({len(exc.problems)} problem{'s' if len(exc.problems) != 1 else ''})",
                        exc.problems[:MAX_PROBLEMS_SHOWN]) from None
    return board


# ------------------------------------------------------------------------------------------ prompts

_FILE_FIELDS = {"keyframe", "mouths"}


def _prompt_board(data: dict) -> Storyboard:
    """A storyboard dict validated for prompting only: file fields (irrelevant to prompts) are set aside."""
    data = json.loads(json.dumps(check_data(data, "the storyboard", error=PlanError)))
    if not isinstance(data, dict):
        raise PlanError("the storyboard is not a JSON object", [Problem("$", "expected an object")])
    data.pop("music", None)
    project = data.get("project") if isinstance(data.get("project"), dict) else None
    if project is not None:
        project.setdefault("checkpoint", DEFAULT_CHECKPOINT)
    for character in (data.get("characters") or {}).values() if isinstance(data.get("characters"), dict) else ():
        if isinstance(character, dict):
            character.pop("reference_images", None)
            character.pop("mouth_shapes", None)
    for shot in data.get("shots") or [] if isinstance(data.get("shots"), list) else ():
        if isinstance(shot, dict):
            for key in _FILE_FIELDS:
                shot.pop(key, None)
    try:
        return _validate(data, source="<storyboard>")
    except StoryboardError as exc:
        raise PlanError(exc.summary, exc.problems[:MAX_PROBLEMS_SHOWN]) from None


def shot_prompts(storyboard: Storyboard | dict | str, shot_id: str) -> tuple[str, str]:
    """(positive, negative) image prompts for one shot: the compiler's prompt plus the mood of its lines."""
    if isinstance(storyboard, str):
        storyboard = parse_json(storyboard, "the storyboard", error=PlanError)
    board = storyboard if isinstance(storyboard, Storyboard) else _prompt_board(storyboard)
    shot = next((s for s in board.shots if s.id == shot_id), None)
    if shot is None:
        raise PlanError(f"no shot {shot_id!r} in the storyboard",
                        [Problem("shot_id", "known: " + ", ".join(s.id for s in board.shots[:12]))])
    moods = [MOOD_WORDS[e] for e in dict.fromkeys(line.emotion for line in shot.dialogue) if e in MOOD_WORDS]
    positive = ", ".join(p for p in [shot_prompt(board, shot), *moods] if p)
    negatives = [board.project.negative_prompt.strip(), DEFAULT_NEGATIVE]
    negative = ", ".join(dict.fromkeys(w.strip() for n in negatives for w in n.split(",") if w.strip()))
    return positive, negative
