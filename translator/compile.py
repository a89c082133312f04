"""Storyboard → ComfyUI API-format graphs, built from the templates in ``workflows/templates``.

Node ids are ``<shot id>:<role>`` (``s1-02:sampler``) or ``film:<role>`` for nodes the whole film
shares, so they are stable when shots are added or moved, readable in ComfyUI's errors, and mapped
back to shots (``node_shots``). The same storyboard always compiles to byte-identical JSON: seeds
derive from the project seed and the shot id, uploads are named by content hash.

Two shapes:
* ``film``: one graph renders the whole film.
* ``per_shot``: one graph per shot (each saves that shot's video) plus a ``compose`` graph that
  joins the uploaded shot videos: the unit of batch and multi-endpoint rendering.
"""
from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from .storyboard import BUILTIN_MOUTH_SETS, FIT_TO_DIALOGUE, Shot, Storyboard

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "workflows" / "templates"
FILM_SCOPE = "film"
PANEL_SUBFOLDER = "animstudio/panels"
SHOT_VIDEO_SUBFOLDER = "animstudio/shots"

Graph = dict[str, dict[str, Any]]
Link = list  # [node_id, output_index]


@dataclass(frozen=True)
class Upload:
    """A local file the graph expects in the server's input folder as ``subfolder/filename``."""

    local_path: Path
    subfolder: str
    filename: str

    @property
    def name(self) -> str:
        """The name the graph uses for it (ComfyUI's ``subfolder/filename`` convention)."""
        return f"{self.subfolder}/{self.filename}" if self.subfolder else self.filename


@dataclass
class CompiledGraph:
    """One API-format graph plus what running it needs: the node → shot map and the files to upload."""

    name: str
    graph: Graph
    node_shots: dict[str, str | None]
    uploads: list[Upload] = field(default_factory=list)
    shot_id: str | None = None  # set for a per-shot graph

    def to_json(self) -> str:
        return graph_json(self.graph)


@dataclass
class CompiledFilm:
    shape: Literal["film", "per_shot"]
    graphs: list[CompiledGraph]
    storyboard: Storyboard

    def graph(self, name: str) -> CompiledGraph:
        return next(g for g in self.graphs if g.name == name)

    def manifest(self) -> dict:
        """What a runner needs besides the graphs: order, node → shot maps, uploads (paths relative to the storyboard)."""
        base = self.storyboard.base_dir
        return {
            "storyboard": self.storyboard.source,
            "shape": self.shape,
            "graphs": [{
                "name": g.name, "file": f"{g.name}.json", "shot": g.shot_id, "node_shots": g.node_shots,
                "uploads": [{"local": _relative(u.local_path, base), "subfolder": u.subfolder, "filename": u.filename}
                            for u in g.uploads],
            } for g in self.graphs],
        }


def _relative(path: Path, base: Path) -> str:
    try:
        return path.relative_to(base).as_posix()
    except ValueError:
        return str(path)


def graph_json(graph: Graph) -> str:
    """The canonical text of a graph: what `compile` writes and what determinism is judged on."""
    return json.dumps(graph, indent=2, ensure_ascii=False) + "\n"


# ------------------------------------------------------------------------------------------ templates

@lru_cache(maxsize=None)
def load_template(name: str) -> dict:
    return json.loads((TEMPLATES_DIR / f"{name}.json").read_text(encoding="utf-8"))


def _fill(value: Any, scope: str, params: dict[str, Any], links: dict[str, Link | None]) -> Any:
    if isinstance(value, str):
        if value.startswith("{") and value.endswith("}") and value[1:-1] in params:
            return params[value[1:-1]]
        if value.startswith("$"):
            return links[value[1:]]
        return value
    if isinstance(value, list) and len(value) == 2 and isinstance(value[0], str) and value[0].startswith("@"):
        return [f"{scope}:{value[0][1:]}", value[1]]
    return value


def instantiate(template: str, scope: str, graph: Graph, node_shots: dict[str, str | None], shot_id: str | None,
                params: dict[str, Any] | None = None, links: dict[str, Link | None] | None = None) -> dict[str, Link]:
    """Add a template's nodes to ``graph`` under ``scope``; returns the template's named outputs as links.

    ``{name}`` values come from ``params``; ``$name`` inputs are links from outside the template, and
    an input whose link is ``None`` is left out (an optional input with nothing to connect).
    """
    spec = load_template(template)
    params, links = params or {}, links or {}
    for role, node in spec["nodes"].items():
        node_id = f"{scope}:{role}"
        inputs = {}
        for key, raw in node["inputs"].items():
            value = _fill(raw, scope, params, links)
            if value is not None:
                inputs[key] = value
        graph[node_id] = {"class_type": node["class_type"], "inputs": inputs}
        node_shots[node_id] = shot_id
    return {key: _fill(value, scope, params, links) for key, value in spec.items() if key not in ("nodes", "description")}


# ------------------------------------------------------------------------------------------ prompts

CAMERA_SHOT_WORDS = {
    "extreme_wide": "extreme wide shot", "wide": "wide shot", "full": "full shot", "medium": "medium shot",
    "medium_close": "medium close-up", "close_up": "close-up", "extreme_close_up": "extreme close-up",
    "over_the_shoulder": "over-the-shoulder shot", "two_shot": "two shot", "insert": "insert shot",
}


def shot_prompt(board: Storyboard, shot: Shot) -> str:
    """The positive prompt: style, framing, action, who is in it (trigger words first), where."""
    parts = [board.project.style, CAMERA_SHOT_WORDS[shot.camera.shot], shot.description]
    for cid in shot.characters:
        character = board.characters[cid]
        words = ", ".join(character.lora.trigger_words) if character.lora else ""
        parts.append(", ".join(p for p in (words, f"{character.display_name}: {character.description}") if p))
    if shot.scene:
        scene = board.scenes[shot.scene]
        parts += [scene.location or "", scene.time_of_day or "", scene.description]
    return ", ".join(p.strip() for p in parts if p and p.strip())


def shot_seed(board: Storyboard, shot: Shot) -> int:
    """The shot's own seed, else one derived from the project seed and the shot id (stable under reordering)."""
    if shot.seed is not None:
        return shot.seed
    digest = hashlib.sha256(f"{board.project.seed}:{shot.id}".encode()).digest()
    return int.from_bytes(digest[:6], "big")


@lru_cache(maxsize=4096)
def _file_digest(path: Path, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def content_upload(path: Path, subfolder: str) -> Upload:
    """A file uploaded under a content-hash name: stable, and two projects never overwrite each other."""
    stat = path.stat()
    digest = _file_digest(path, stat.st_size, stat.st_mtime_ns)
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", path.stem)[:40] or "file"
    return Upload(path, subfolder, f"{digest[:16]}-{stem}{path.suffix.lower()}")


def panel_upload(path: Path) -> Upload:
    return content_upload(path, PANEL_SUBFOLDER)


def shot_video_name(shot_id: str) -> str:
    return f"{SHOT_VIDEO_SUBFOLDER}/{shot_id}.mp4"


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()[:48] or "film"


# ------------------------------------------------------------------------------------------ compiling

def _shot_nodes(board: Storyboard, shot: Shot, graph: Graph, node_shots: dict, uploads: list[Upload],
                checkpoint: dict[str, Link] | None, film: Link | None) -> Link:
    """Add one shot's keyframe and clip nodes; returns the link to the film with this shot appended."""
    project = board.project
    if shot.keyframe is not None:
        upload = panel_upload(shot.keyframe)
        uploads.append(upload)
        image = instantiate("keyframe_panel", shot.id, graph, node_shots, shot.id, {"panel": upload.name})["image"]
    else:
        assert checkpoint is not None
        model, clip = checkpoint["model"], checkpoint["clip"]
        for cid in shot.characters:
            lora = board.characters[cid].lora
            if lora is None:
                continue
            scope = f"{shot.id}:lora-{cid}"
            instantiate("lora", scope, graph, node_shots, shot.id,
                        {"lora_name": lora.file, "strength": lora.weight, "character": board.characters[cid].display_name},
                        {"model": model, "clip": clip})
            model, clip = [f"{scope}:lora", 0], [f"{scope}:lora", 1]
        image = instantiate("keyframe_txt2img", shot.id, graph, node_shots, shot.id, {
            "prompt": shot_prompt(board, shot), "negative_prompt": project.negative_prompt,
            "width": project.width, "height": project.height, "seed": shot_seed(board, shot),
            "steps": project.steps, "cfg": project.cfg, "sampler": project.sampler, "scheduler": project.scheduler,
            "keyframe_prefix": f"animstudio/keyframes/{shot.id}",
        }, {"model": model, "clip": clip, "vae": checkpoint["vae"]})["image"]
    return instantiate("shot_clip", shot.id, graph, node_shots, shot.id, {
        **_clip_params(board, shot), "camera_move": shot.camera.move, "seed": shot_seed(board, shot) % (1 << 32),
        "shot_id": shot.id, "fit_to_audio": shot.duration == FIT_TO_DIALOGUE,
    }, {"image": image, "film": film, "dialogue": _dialogue_nodes(board, shot, graph, node_shots),
        "mouth_rigs": _mouth_rig_nodes(board, shot, graph, node_shots, uploads)})["film"]


LINE_GAP_SECONDS = 0.35
MOUTH_SUBFOLDER = "animstudio/mouths"
MUSIC_SUBFOLDER = "animstudio/music"
FINAL_CRF = 18         # visually lossless H.264
INTERMEDIATE_CRF = 10  # per-shot videos are encoded again when composed: keep generation loss invisible


def _dialogue_nodes(board: Storyboard, shot: Shot, graph: Graph, node_shots: dict) -> Link | None:
    """Each line spoken in its character's voice and lip-synced (cues saved); the lines joined into the shot's dialogue."""
    dialogue: Link | None = None
    for index, line in enumerate(shot.dialogue):
        character = board.characters[line.character]
        voice = character.voice
        spoken = instantiate("dialogue_line", f"{shot.id}:line-{index + 1}", graph, node_shots, shot.id, {
            "text": line.text, "engine": voice.engine, "voice": voice.name or "", "language": board.project.language,
            "rate": voice.rate, "pitch": voice.pitch, "emotion": line.emotion, "fps": board.project.fps,
            "cues_prefix": f"animstudio/lipsync/{shot.id}-{index + 1}-{line.character}",
            "speaker": character.display_name,
        })["dialogue"]
        if dialogue is None:
            dialogue = spoken
        else:
            dialogue = instantiate("join_dialogue", f"{shot.id}:dialogue-{index + 1}", graph, node_shots, shot.id,
                                   {"gap": LINE_GAP_SECONDS}, {"first": dialogue, "second": spoken})["dialogue"]
    return dialogue


def _mouth_rig_nodes(board: Storyboard, shot: Shot, graph: Graph, node_shots: dict,
                     uploads: list[Upload]) -> Link | None:
    """A mouth rig for every character the shot places a mouth box for, with that character's mouth set."""
    rigs: Link | None = None
    for cid, box in shot.mouths.items():
        character = board.characters[cid]
        folder = ""
        if character.mouth_shapes and character.mouth_shapes not in BUILTIN_MOUTH_SETS:
            files = mouth_set_uploads(board.base_dir / character.mouth_shapes)
            uploads.extend(files)
            folder = files[0].subfolder
        rigs = instantiate("mouth_rig", f"{shot.id}:mouth-{cid}", graph, node_shots, shot.id, {
            "speaker": character.display_name, "x": box.x, "y": box.y, "width": box.width, "height": box.height,
            "mouth_folder": folder}, {"previous": rigs})["mouth_rigs"]
    return rigs


def mouth_set_uploads(folder: Path) -> list[Upload]:
    """A mouth-set folder's shape images, uploaded together under a subfolder named by their content."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in (".png", ".webp", ".jpg", ".jpeg"))
    digest = hashlib.sha256()
    for path in files:
        stat = path.stat()
        digest.update(f"{path.name}:{_file_digest(path, stat.st_size, stat.st_mtime_ns)}".encode())
    subfolder = f"{MOUTH_SUBFOLDER}/{digest.hexdigest()[:16]}"
    return [Upload(path, subfolder, path.name) for path in files]


def _clip_params(board: Storyboard, shot: Shot) -> dict[str, Any]:
    return {"seconds": board.shot_seconds(shot), "width": board.project.width, "height": board.project.height,
            "fps": board.project.fps, "transition": shot.transition.type,
            "transition_seconds": shot.transition.duration}


def _checkpoint(board: Storyboard, graph: Graph, node_shots: dict, shot_id: str | None) -> dict[str, Link] | None:
    if board.project.checkpoint is None or not board.needs_generation:
        return None
    instantiate("checkpoint", FILM_SCOPE, graph, node_shots, shot_id, {"checkpoint": board.project.checkpoint})
    node = f"{FILM_SCOPE}:checkpoint"
    return {"model": [node, 0], "clip": [node, 1], "vae": [node, 2]}


def compile_storyboard(board: Storyboard, shape: Literal["film", "per_shot"] = "film") -> CompiledFilm:
    """Compile a validated storyboard into API-format graph(s)."""
    if shape == "film":
        graph: Graph = {}
        node_shots: dict[str, str | None] = {}
        uploads: list[Upload] = []
        checkpoint = _checkpoint(board, graph, node_shots, None)
        film: Link | None = None
        for shot in board.shots:
            film = _shot_nodes(board, shot, graph, node_shots, uploads, checkpoint, film)
        _save(board, graph, node_shots, film, f"animstudio/{slug(board.project.title)}", uploads=uploads)
        return CompiledFilm("film", [CompiledGraph("film", graph, node_shots, _unique(uploads))], board)
    if shape != "per_shot":
        raise ValueError(f"unknown graph shape {shape!r}: use 'film' or 'per_shot'")
    graphs = []
    for shot in board.shots:
        graph, node_shots, uploads = {}, {}, []
        checkpoint = _checkpoint(board, graph, node_shots, shot.id) if shot.keyframe is None else None
        # each shot video starts with a plain cut: transitions are applied when the compose graph joins them
        film = _shot_nodes(board, _as_cut(shot), graph, node_shots, uploads, checkpoint, None)
        _save(board, graph, node_shots, film, f"animstudio/shots/{shot.id}", shot.id)
        graphs.append(CompiledGraph(f"shot-{shot.id}", graph, node_shots, _unique(uploads), shot.id))
    graph, node_shots = {}, {}
    film = None
    for shot in board.shots:
        film = instantiate("shot_from_video", shot.id, graph, node_shots, shot.id, {
            "video": shot_video_name(shot.id), **_clip_params(board, shot)}, {"film": film})["film"]
    compose_uploads: list[Upload] = []
    _save(board, graph, node_shots, film, f"animstudio/{slug(board.project.title)}", uploads=compose_uploads)
    graphs.append(CompiledGraph("compose", graph, node_shots, compose_uploads))
    return CompiledFilm("per_shot", graphs, board)


def _as_cut(shot: Shot) -> Shot:
    from dataclasses import replace

    from .storyboard import Transition

    return replace(shot, transition=Transition("cut", shot.transition.duration))


def _save(board: Storyboard, graph: Graph, node_shots: dict, film: Link, prefix: str, shot_id: str | None = None,
          uploads: list[Upload] | None = None) -> None:
    """The save node. A per-shot graph (``shot_id``) writes plain video and an SRT beside it for the compose
    graph; the film graph burns captions, writes sidecars and lays the music bed as the storyboard asks."""
    subtitles = board.project.subtitles
    music = None
    if shot_id is None and board.music and uploads is not None:
        cue = board.music[0]
        upload = content_upload(cue.file, MUSIC_SUBFOLDER)
        uploads.append(upload)
        music = instantiate("music", FILM_SCOPE, graph, node_shots, None, {"music": upload.name})["audio"]
    instantiate("save_film", FILM_SCOPE, graph, node_shots, shot_id, {
        "filename_prefix": prefix,
        "burn_subtitles": subtitles.burn if shot_id is None else False,
        "subtitle_files": subtitles.files if shot_id is None else "srt",
        "subtitle_size": subtitles.size, "subtitle_font": subtitles.font, "subtitle_position": subtitles.position,
        "music_gain_db": round(20 * math.log10(board.music[0].volume), 2) if board.music and board.music[0].volume > 0
        else -60.0,
        "crf": FINAL_CRF if shot_id is None else INTERMEDIATE_CRF,
    }, {"film": film, "music": music})


def _unique(uploads: list[Upload]) -> list[Upload]:
    seen: dict[str, Upload] = {}
    for upload in uploads:
        seen.setdefault(upload.name, upload)
    return list(seen.values())
