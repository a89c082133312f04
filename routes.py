"""The pack's HTTP routes on ComfyUI's own server, under ``/animstudio/``, for the editor extension.

    POST /animstudio/validate      {"storyboard": {...}}                     → {"ok", "problems": [{where, message}]}
    POST /animstudio/compile       {"storyboard": {...}, "shape": "film"}     → {"ok", "api": {...}, "workflow": UI}
    POST /animstudio/characters    {"storyboard": {...}}                     → {"ok", "characters": [...]}
    GET  /animstudio/voices                                                  → {"ok", "engines", "espeak_voices"}
    GET  /animstudio/mouth_sets                                              → {"ok", "builtin", "folders"}
    POST /animstudio/tts_preview   {"text", "engine", "voice", "language"}   → {"ok", "audio": {filename, subfolder,
                                                                                type: "temp"}, "seconds", "cues"}
    POST /animstudio/camera_path   {"move", "width", "height", "seed"}       → {"ok", "aspect", "windows": [[l, t, r, b]]}
    GET  /animstudio/storyboards                                             → {"ok", "storyboards": [{folder, title}],
                                                                                "examples": [{name, title}]}
    POST /animstudio/storyboard_open    {"folder"}                           → {"ok", "folder", "storyboard"}
    POST /animstudio/storyboard_save    {"folder", "storyboard"}             → {"ok", "folder"}
    POST /animstudio/storyboard_example {"name"}                             → {"ok", "folder", "storyboard"}
    POST /animstudio/storyboard_unzip   {"file"} (a zip uploaded to input/)   → {"ok", "folder", "storyboard"}
    POST /animstudio/library_search {"query", "folder"?, "k"?, "kinds"?}    → {"ok", "library", "hits": [{score, kind,
                                                                                key, name, episode, text, data}]}

Storyboards live in the input folder as folders (``input/<folder>/storyboard.json``); validate and compile take
the storyboard's ``folder`` and read its paths from there (from the input folder itself when none is given).

A posted storyboard's files are looked up in ComfyUI's input folder and may not leave it. Every error is a
JSON answer ``{"ok": false, "error", "problems": [{"where", "message"}]}`` with a 4xx status. A body is read to
its end (however many pieces it arrives in) and parsed by the project's one JSON reader, which names the place
of anything it refuses (NaN, 1e400, 30-digit integers, deep nesting, bytes that are not UTF-8); a body over
:data:`MAX_BODY` bytes is 413, before it is read when its ``Content-Length`` says so, else as soon as it passes the
limit (chunked). Numbers are range-checked before any arithmetic. The handlers are plain functions over dicts
(:func:`handle`), so they are tested without a server; :func:`register` adds them to ComfyUI's routes.
"""
from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any, Callable

from .common.errors import AnimStudioError, Problem

log = logging.getLogger(__name__)

MAX_BODY = 1 << 20  # 1 MiB: a storyboard is text; panels are uploaded through ComfyUI's /upload/image
MAX_PREVIEW_CHARS = 500


class RouteError(AnimStudioError):
    status = 400


def _input_dir() -> Path:
    from .nodes.boundary import input_directory

    return input_directory()


def _board(body: dict):
    from .translator.storyboard import parse_storyboard
    from .translator.storyboard_library import storyboard_base

    data = body.get("storyboard")
    if not isinstance(data, dict):
        raise RouteError("the request needs a storyboard", [Problem("$.storyboard", "expected a storyboard object")])
    return parse_storyboard(data, base_dir=storyboard_base(_input_dir(), body.get("folder")), source="storyboard")


def validate(body: dict) -> dict:
    board = _board(body)
    from .nodes.film.camera import CAMERA_MOVES

    return {"ok": True, "problems": [], "shots": [s.id for s in board.shots],
            "characters": sorted(board.characters), "camera_moves": list(CAMERA_MOVES)}


def compile_workflow(body: dict) -> dict:
    from .translator.api_to_ui import api_to_ui
    from .translator.compile import compile_storyboard
    from .translator.embedded import object_info_from_classes, pack_node_classes

    board = _board(body)
    shape = body.get("shape", "film")
    if shape not in ("film", "per_shot"):
        raise RouteError("unknown shape", [Problem("$.shape", f"{shape!r}: use film or per_shot")])
    compiled = compile_storyboard(board, shape)
    _stage_uploads(compiled.graphs)
    info = _object_info() or object_info_from_classes(pack_node_classes())
    graphs = [{"name": g.name, "api": g.graph, "workflow": api_to_ui(g.graph, info, g.node_shots, g.name),
               "uploads": [u.name for u in g.uploads]} for g in compiled.graphs]
    return {"ok": True, "graphs": graphs, "api": graphs[0]["api"], "workflow": graphs[0]["workflow"]}


def _stage_uploads(graphs) -> None:
    """Put each file the graphs load where ComfyUI looks for it: ``input/<subfolder>/<content-hash name>``
    (the storyboard's panels, references, music already lie in the input folder; the graph names copies
    of them by content, so queuing the built graph finds them)."""
    import shutil

    from .common.paths import resolve_inside

    input_dir = _input_dir()
    for graph in graphs:
        for upload in graph.uploads:
            target = resolve_inside(input_dir, upload.name)
            if not target.is_file():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(upload.local_path, target)


def _object_info() -> dict | None:
    """Every node definition the running ComfyUI has, as ``/object_info`` gives them (None outside ComfyUI)."""
    try:
        import nodes as comfy_nodes  # ComfyUI's own module
    except ImportError:
        return None
    if not hasattr(comfy_nodes, "NODE_CLASS_MAPPINGS"):
        return None
    from .translator.comfy_worker import node_info

    info = {}
    for name in comfy_nodes.NODE_CLASS_MAPPINGS:
        try:
            info[name] = node_info(comfy_nodes, name)
        except Exception:  # noqa: BLE001 - one broken custom node must not break the route
            continue
    return info


def characters(body: dict) -> dict:
    board = _board(body)
    return {"ok": True, "characters": [
        {"id": c.id, "name": c.display_name, "description": c.description,
         "lora": c.lora.file if c.lora else None, "voice": {"engine": c.voice.engine, "name": c.voice.name},
         "mouth_shapes": c.mouth_shapes, "reference_images": [p.name for p in c.reference_images]}
        for c in board.characters.values()]}


def voices(_body: dict | None = None) -> dict:
    from .nodes.audio.espeak import list_voices
    from .nodes.audio.tts import engine_names

    return {"ok": True, "engines": engine_names(),
            "espeak_voices": [{"id": v.identifier, "name": v.name, "languages": list(v.languages)}
                              for v in list_voices()][:400]}


def mouth_sets(_body: dict | None = None) -> dict:
    from .translator.storyboard_model import BUILTIN_MOUTH_SETS

    folder = _input_dir() / "animstudio" / "mouths"
    found = sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
    return {"ok": True, "builtin": list(BUILTIN_MOUTH_SETS), "folders": found}


def tts_preview(body: dict) -> dict:
    from .nodes.audio.tts import TTSError, VoiceSettings, synthesize
    from .nodes.boundary import save_preview_audio
    from .nodes.lipsync.engine import lipsync_audio
    from .nodes.lipsync.errors import LipSyncError
    from .nodes.lipsync.formats import to_rhubarb_json

    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        raise RouteError("nothing to say", [Problem("$.text", "expected the line to speak")])
    if len(text) > MAX_PREVIEW_CHARS:
        raise RouteError("the line is too long for a preview",
                         [Problem("$.text", f"{len(text)} characters; a preview takes at most {MAX_PREVIEW_CHARS}")])
    fields = {k: body.get(k) for k in ("engine", "voice", "language")}
    for key, value in fields.items():
        if value is not None and not isinstance(value, str):
            raise RouteError("bad voice settings", [Problem(f"$.{key}", "expected a string")])
    voice = VoiceSettings(fields["engine"] or "espeak", fields["voice"], fields["language"] or "en")
    try:
        speech = synthesize(text, voice)
        cues = lipsync_audio(speech.audio, text, engine="builtin", language=voice.language, phones=speech.phones,
                             phone_set=speech.phone_set)
    except (TTSError, LipSyncError) as exc:
        raise RouteError("cannot preview the line", [Problem("$", str(exc))]) from None
    return {"ok": True, "audio": save_preview_audio(speech.audio),
            "seconds": round(speech.audio.seconds, 3), "cues": json.loads(to_rhubarb_json(cues))}


CAMERA_PREVIEW_SAMPLES = 48


MAX_SEED = (1 << 64) - 1  # ComfyUI's seeds are unsigned 64-bit


def _whole_number(body: dict, key: str, default: int, low: int, high: int, summary: str) -> int:
    """``body[key]`` as a whole number in ``low..high``, checked before any arithmetic: JSON's ``true`` is no
    number, ``512.0`` is 512 but ``512.5`` is not whole, and infinities and NaN are refused, not converted."""
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RouteError(summary, [Problem(f"$.{key}", f"expected a whole number, got {type(value).__name__}")])
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            raise RouteError(summary, [Problem(f"$.{key}", f"expected a whole number, got {value!r}")])
        value = int(value)
    if not low <= value <= high:
        shown = str(value) if len(str(value)) <= 24 else f"a number of {len(str(value))} digits"
        raise RouteError(summary, [Problem(f"$.{key}", f"expected {low} to {high}, got {shown}")])
    return value


def camera_path(body: dict) -> dict:
    """The crop window of a camera move at evenly spaced moments, as fractions of the fitted picture: the
    editor animates it on nodes with a camera move, drawn by the same function that renders the frames."""
    from .nodes.film.camera import CAMERA_MOVES, crop_window

    move = body.get("move")
    if not isinstance(move, str) or move not in CAMERA_MOVES:
        raise RouteError("unknown camera move", [Problem("$.move", f"expected one of {', '.join(CAMERA_MOVES)}")])
    width = _whole_number(body, "width", 16, 1, 16384, "bad film size")
    height = _whole_number(body, "height", 16, 1, 16384, "bad film size")
    seed = _whole_number(body, "seed", 0, 0, MAX_SEED, "bad seed")
    windows = []
    for i in range(CAMERA_PREVIEW_SAMPLES):
        left, top, right, bottom = crop_window(move, i / (CAMERA_PREVIEW_SAMPLES - 1), (0.0, 0.0, width, height),
                                               seed, i)
        windows.append([round(left / width, 5), round(top / height, 5), round(right / width, 5),
                        round(bottom / height, 5)])
    return {"ok": True, "move": move, "aspect": width / height, "windows": windows}


def storyboards(_body: dict | None = None) -> dict:
    from .translator import storyboard_library as library

    return {"ok": True, "storyboards": library.list_storyboards(_input_dir()), "examples": library.examples()}


def _opened(folder: str) -> dict:
    from .translator.storyboard_library import open_storyboard

    return {"ok": True, "folder": folder, "storyboard": open_storyboard(_input_dir(), folder)}


def storyboard_open(body: dict) -> dict:
    return _opened(body.get("folder"))


def storyboard_save(body: dict) -> dict:
    from .translator.storyboard_library import save_storyboard

    save_storyboard(_input_dir(), body.get("folder"), body.get("storyboard"))
    return {"ok": True, "folder": body["folder"]}


def storyboard_example(body: dict) -> dict:
    from .translator.storyboard_library import install_example

    return _opened(install_example(_input_dir(), body.get("name")))


def storyboard_unzip(body: dict) -> dict:
    from .translator.storyboard_library import unpack_storyboard_zip

    return _opened(unpack_storyboard_zip(_input_dir(), body.get("file")))


def library_search(body: dict) -> dict:
    """Search the project library (``animstudio-library.db``) in the storyboard's folder, else in the input folder."""
    from .translator.library.store import DEFAULT_NAME, KINDS, Library
    from .translator.storyboard_library import storyboard_base

    query = body.get("query")
    if not isinstance(query, str) or not query.strip() or len(query) > MAX_PREVIEW_CHARS:
        raise RouteError("nothing to search for", [Problem("$.query", f"expected words to search for (at most "
                                                                     f"{MAX_PREVIEW_CHARS} characters)")])
    kinds = body.get("kinds") or []
    if not isinstance(kinds, list) or any(k not in KINDS for k in kinds):
        raise RouteError("unknown kinds", [Problem("$.kinds", f"expected a list of {', '.join(KINDS)}")])
    k = _whole_number(body, "k", 8, 1, 50, "how many hits?")
    root = _input_dir().resolve()
    places = [storyboard_base(root, body.get("folder")) / DEFAULT_NAME, root / DEFAULT_NAME]
    path = next((p for p in places if p.is_file()), None)
    if path is None:
        raise RouteError("no project library here", [Problem("$.folder", f"no {DEFAULT_NAME} in the storyboard's "
                                                                        "folder or the input folder (make one: "
                                                                        "animstudio library add STORYBOARD)")])
    with Library(path) as library:
        hits = library.search(query, k=k, kinds=kinds)
    return {"ok": True, "library": path.relative_to(root).as_posix(),
            "hits": [{"score": round(h.score, 4), **h.entry.to_json()} for h in hits]}


HANDLERS: dict[tuple[str, str], Callable[[dict], dict]] = {
    ("POST", "validate"): validate, ("POST", "compile"): compile_workflow, ("POST", "characters"): characters,
    ("GET", "voices"): voices, ("GET", "mouth_sets"): mouth_sets, ("POST", "tts_preview"): tts_preview,
    ("POST", "camera_path"): camera_path, ("GET", "storyboards"): storyboards,
    ("POST", "storyboard_open"): storyboard_open, ("POST", "storyboard_save"): storyboard_save,
    ("POST", "storyboard_example"): storyboard_example, ("POST", "storyboard_unzip"): storyboard_unzip,
    ("POST", "library_search"): library_search,
}


def handle(method: str, name: str, body: Any) -> tuple[int, dict]:
    """Run one route on a parsed body; returns (HTTP status, JSON answer). Never raises: input the routes
    cannot take is a 4xx naming its JSON path; anything else is a bug, logged, and a 500."""
    from .common.jsonio import check_data

    handler = HANDLERS.get((method, name))
    if handler is None:
        return 404, {"ok": False, "error": f"no route {method} /animstudio/{name}", "problems": []}
    if method == "POST" and not isinstance(body, dict):
        return 400, {"ok": False, "error": "the body must be a JSON object", "problems": [{"where": "$", "message":
                                                                                        "expected an object"}]}
    try:
        # a body that did not come through parse_json (a caller's dict) meets the same rules: no inf, NaN,
        # 100-digit integers or lone surrogates reach a handler's arithmetic
        check_data(body, "the body", error=RouteError)
        return 200, handler(body if isinstance(body, dict) else {})
    except AnimStudioError as exc:
        return error_answer(exc)
    except Exception:  # a bug: logged with its traceback here, a clean answer there
        log.exception("animstudio route %s %s failed", method, name)
        return 500, {"ok": False, "error": "internal error in the animstudio pack (see ComfyUI's log)", "problems": []}


READ_CHUNK = 64 << 10


def _too_large() -> tuple[int, dict]:
    return 413, {"ok": False, "error": f"the body is over {MAX_BODY} bytes",
                 "problems": [{"where": "$", "message": f"too large: a body takes at most {MAX_BODY} bytes"}]}


async def read_body(request) -> bytes | None:
    """The whole body, read to its end (with or without ``Content-Length``, chunked or not), or None as soon as
    it passes :data:`MAX_BODY`. ``StreamReader.read(n)`` answers with what has arrived so far, so one read is not
    the body: a large one comes in many pieces."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        return None
    pieces: list[bytes] = []
    size = 0
    while True:
        piece = await request.content.read(READ_CHUNK)
        if not piece:  # the end of the body
            return b"".join(pieces)
        size += len(piece)
        if size > MAX_BODY:
            return None
        pieces.append(piece)


def parse_body(raw: bytes) -> Any:
    """The body as JSON through the project's one reader (None when empty); a refusal is a :class:`RouteError`
    naming the place: the JSON path of a value it will not take, or the line and column where the text breaks."""
    from .common.jsonio import parse_json

    if not raw.strip():
        return None
    try:
        return parse_json(raw, error=RouteError, max_bytes=MAX_BODY)
    except RouteError as exc:
        syntax = not any(p.where.startswith("$") for p in exc.problems)
        raise RouteError("the body is not JSON" if syntax else f"the body: {exc.summary}", exc.problems) from None


def error_answer(exc: AnimStudioError) -> tuple[int, dict]:
    return getattr(exc, "status", 400), {"ok": False, "error": exc.summary,
                                         "problems": [{"where": p.where, "message": p.message} for p in exc.problems]}


def register(prompt_server) -> None:
    """Add the routes to ComfyUI's server (``PromptServer.instance.routes``), once per server even when the
    pack is imported under two names (its folder's and the installed package's)."""
    from aiohttp import web

    if getattr(prompt_server, "_animstudio_routes", False):
        return
    prompt_server._animstudio_routes = True

    async def dispatch(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        body: Any = None
        if request.method == "POST":
            raw = await read_body(request)
            if raw is None:
                status, answer = _too_large()
                return web.json_response(answer, status=status)
            try:
                body = parse_body(raw)
            except RouteError as exc:
                status, answer = error_answer(exc)
                return web.json_response(answer, status=status)
        status, answer = handle(request.method, name, body)
        return web.json_response(answer, status=status)

    prompt_server.routes.get("/animstudio/{name}")(dispatch)
    prompt_server.routes.post("/animstudio/{name}")(dispatch)
