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
    kind: Literal["film", "keyframe", "shot", "compose"] = "film"
    depends_on: tuple[str, ...] = ()  # graphs whose outputs this one reads (a shot's keyframe, the shots)

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
                "name": g.name, "file": f"{g.name}.json", "shot": g.shot_id, "kind": g.kind,
                "depends_on": list(g.depends_on), "node_shots": g.node_shots,
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

KEYFRAME_SUBFOLDER = "animstudio/keyframes"
REFERENCE_SUBFOLDER = "animstudio/references"
CONTROL_SUBFOLDER = "animstudio/control"

# the node types each motion family needs from the server, the frame-count grid its latents use (length
# = step * k + 1) and the pixel grid of its width and height
MOTION_NODES = {"wan": ("UNETLoader", "ModelSamplingSD3", "WanImageToVideo"),
                "ltx": ("LTXVPreprocess", "LTXVImgToVideo", "LTXVConditioning", "LTXVScheduler", "SamplerCustom"),
                "animatediff": ("ADE_AnimateDiffLoaderGen1", "RepeatImageBatch", "VAEEncode")}
MOTION_FRAME_STEP = {"wan": 4, "ltx": 8, "animatediff": 1}
MOTION_SIZE_STEP = {"wan": 16, "ltx": 32, "animatediff": 8}
ANIMATEDIFF_DENOISE = 0.6  # enough for the motion module to move things, little enough to keep the keyframe


def keyframe_seed(board: Storyboard, shot: Shot, attempt: int = 0) -> int:
    """The seed of a keyframe attempt: the shot's seed first, then seeds derived from it for re-renders."""
    if attempt == 0:
        return shot_seed(board, shot)
    digest = hashlib.sha256(f"{shot_seed(board, shot)}:attempt-{attempt}".encode()).digest()
    return int.from_bytes(digest[:6], "big")


def motion_family(board: Storyboard, shot: Shot, object_info: dict | None = None) -> str:
    """The video family a shot's motion uses: the one it names, or (``auto``) the first of wan, ltx, animatediff
    that ``project.motion_models`` sets and whose nodes the engine offers (the first set, engine unknown)."""
    assert shot.motion is not None
    configured = board.project.motion_models.configured
    if shot.motion.family != "auto":
        return shot.motion.family
    if object_info is not None:
        for family in configured:
            if all(node in object_info for node in MOTION_NODES[family]):
                return family
        from ..common.errors import GraphValidationError, Problem

        raise GraphValidationError(
            f"shot {shot.id}: no motion family can run here",
            [Problem(f"{shot.json_path}.motion", "the engine lacks nodes of every configured family: "
                     + "; ".join(f"{f}: {', '.join(n for n in MOTION_NODES[f] if n not in object_info)}"
                                 for f in configured))])
    return configured[0]


def motion_length(seconds: float, fps: int, step: int, max_frames: int) -> int:
    """Frames to generate for a shot: its length at the model's rate, on the model's ``step * k + 1`` grid,
    at most ``max_frames`` (the clip then spreads them over the shot)."""
    wanted = max(1, round(seconds * fps))
    on_grid = step * math.ceil((wanted - 1) / step) + 1
    cap = step * ((max_frames - 1) // step) + 1
    return max(1, min(on_grid, cap))


def _snap_down(value: int, step: int) -> int:
    return max(step, value - value % step)


def _reference_batch(board: Storyboard, shot: Shot, cid: str, graph: Graph, node_shots: dict,
                     uploads: list[Upload]) -> Link:
    """A character's reference images loaded and batched once per graph (IP-Adapter and score share them)."""
    scope = f"{shot.id}:refs-{cid}"
    batch: Link | None = None
    for k, path in enumerate(board.characters[cid].reference_images):
        upload = content_upload(path, REFERENCE_SUBFOLDER)
        uploads.append(upload)
        image = instantiate("reference_image", f"{scope}-{k + 1}", graph, node_shots, shot.id,
                            {"image": upload.name})["image"]
        batch = image if batch is None else instantiate(
            "image_batch", f"{scope}-{k + 1}", graph, node_shots, shot.id, {}, {"first": batch, "second": image})["image"]
    assert batch is not None
    return batch


def _clip_vision(board: Storyboard, graph: Graph, node_shots: dict, shot_id: str | None) -> Link:
    node = f"{FILM_SCOPE}:clip-vision"
    if node not in graph:
        instantiate("clip_vision", FILM_SCOPE, graph, node_shots, shot_id, {"clip_vision": board.project.clip_vision})
    return [node, 0]


def _keyframe_nodes(board: Storyboard, shot: Shot, graph: Graph, node_shots: dict, uploads: list[Upload],
                    checkpoint: dict[str, Link], seed: int, score: bool = False) -> Link:
    """A generated keyframe: each character's LoRA and IP-Adapter on the checkpoint, the prompts (guided by the
    shot's ControlNet image), sampling, decoding, saving; with ``score``, each character's consistency score."""
    project = board.project
    model, clip, vae = checkpoint["model"], checkpoint["clip"], checkpoint["vae"]
    for cid in shot.characters:
        lora = board.characters[cid].lora
        if lora is None:
            continue
        scope = f"{shot.id}:lora-{cid}"
        instantiate("lora", scope, graph, node_shots, shot.id,
                    {"lora_name": lora.file, "strength": lora.weight, "character": board.characters[cid].display_name},
                    {"model": model, "clip": clip})
        model, clip = [f"{scope}:lora", 0], [f"{scope}:lora", 1]
    references: dict[str, Link] = {}
    for cid in shot.characters:
        character = board.characters[cid]
        if character.ip_adapter is None or not character.reference_images:
            continue
        references[cid] = _reference_batch(board, shot, cid, graph, node_shots, uploads)
        adapter = character.ip_adapter
        model = instantiate("ipadapter", f"{shot.id}:ipadapter-{cid}", graph, node_shots, shot.id, {
            "file": adapter.file, "weight": adapter.weight, "start_at": adapter.start_at, "end_at": adapter.end_at,
            "character": character.display_name,
        }, {"model": model, "clip_vision": _clip_vision(board, graph, node_shots, shot.id),
            "references": references[cid]})["model"]
    prompts = instantiate("keyframe_prompts", shot.id, graph, node_shots, shot.id,
                          {"prompt": shot_prompt(board, shot), "negative_prompt": project.negative_prompt},
                          {"clip": clip})
    if shot.control is not None:
        control = shot.control
        upload = content_upload(control.image, CONTROL_SUBFOLDER)
        uploads.append(upload)
        prompts = instantiate("controlnet", f"{shot.id}:control", graph, node_shots, shot.id, {
            "image": upload.name, "model": control.model, "strength": control.strength, "start_at": control.start_at,
            "end_at": control.end_at}, {"positive": prompts["positive"], "negative": prompts["negative"], "vae": vae})
    image = instantiate("keyframe_sample", shot.id, graph, node_shots, shot.id, {
        "width": project.width, "height": project.height, "seed": seed, "steps": project.steps, "cfg": project.cfg,
        "sampler": project.sampler, "scheduler": project.scheduler,
        "keyframe_prefix": f"{KEYFRAME_SUBFOLDER}/{shot.id}",
    }, {"model": model, "positive": prompts["positive"], "negative": prompts["negative"], "vae": vae})["image"]
    if score:
        for cid in scored_characters(board, shot):
            if cid not in references:
                references[cid] = _reference_batch(board, shot, cid, graph, node_shots, uploads)
            instantiate("consistency", f"{shot.id}:consistency-{cid}", graph, node_shots, shot.id,
                        {"threshold": project.consistency.threshold, "character": cid},
                        {"clip_vision": _clip_vision(board, graph, node_shots, shot.id), "image": image,
                         "references": references[cid]})
    return image


def scored_characters(board: Storyboard, shot: Shot) -> list[str]:
    """The shot's characters whose keyframe likeness is scored: those with reference images, when the project
    has a CLIP vision model and scoring on."""
    if not board.project.scores_consistency:
        return []
    return [cid for cid in shot.characters if board.characters[cid].reference_images]


def consistency_node(shot_id: str, character_id: str) -> str:
    return f"{shot_id}:consistency-{character_id}:score"


def _motion_nodes(board: Storyboard, shot: Shot, graph: Graph, node_shots: dict, image: Link,
                  object_info: dict | None) -> Link:
    """The shot's generated motion: an image-to-video subgraph of the family chosen; returns its frames."""
    family = motion_family(board, shot, object_info)
    settings = getattr(board.project.motion_models, family)
    project = board.project
    prompt = shot.motion.prompt or shot_prompt(board, shot)
    size_step = MOTION_SIZE_STEP[family]
    params = {"prompt": prompt, "negative_prompt": project.negative_prompt,
              "width": _snap_down(project.width, size_step), "height": _snap_down(project.height, size_step),
              "length": motion_length(board.shot_seconds(shot), settings.fps, MOTION_FRAME_STEP[family],
                                      settings.max_frames),
              "seed": shot_seed(board, shot)}
    scope = f"{shot.id}:motion"
    if family == "wan":
        vision = None
        if settings.clip_vision:
            vision = instantiate("clip_vision_encode", f"{shot.id}:motion-vision", graph, node_shots, shot.id,
                                 {"clip_vision": settings.clip_vision}, {"image": image})["output"]
        return instantiate("motion_wan", scope, graph, node_shots, shot.id, {
            **params, "unet": settings.unet, "text_encoder": settings.text_encoder, "vae": settings.vae,
            "shift": settings.shift, "steps": settings.steps, "cfg": settings.cfg,
        }, {"image": image, "clip_vision_output": vision})["frames"]
    if family == "ltx":
        return instantiate("motion_ltx", scope, graph, node_shots, shot.id, {
            **params, "checkpoint": settings.checkpoint, "text_encoder": settings.text_encoder,
            "steps": settings.steps, "cfg": settings.cfg, "fps": float(settings.fps), "strength": shot.motion.strength,
        }, {"image": image})["frames"]
    checkpoint = _checkpoint(board, graph, node_shots, shot.id, force=True)
    return instantiate("motion_animatediff", scope, graph, node_shots, shot.id, {
        **params, "motion_model": settings.motion_model, "beta_schedule": settings.beta_schedule,
        "steps": project.steps, "cfg": project.cfg, "sampler": project.sampler, "scheduler": project.scheduler,
        "denoise": ANIMATEDIFF_DENOISE,
    }, {"image": image, **checkpoint})["frames"]


def _shot_nodes(board: Storyboard, shot: Shot, graph: Graph, node_shots: dict, uploads: list[Upload],
                checkpoint: dict[str, Link] | None, film: Link | None, keyframe: Path | None = None,
                object_info: dict | None = None) -> Link:
    """Add one shot's picture, motion and clip nodes; returns the link to the film with this shot appended.

    The picture is the shot's panel, else ``keyframe`` (a keyframe already rendered and chosen), else generated
    here from the checkpoint."""
    panel = shot.keyframe or keyframe
    if panel is not None:
        upload = panel_upload(panel)
        uploads.append(upload)
        image = instantiate("keyframe_panel", shot.id, graph, node_shots, shot.id, {"panel": upload.name})["image"]
    else:
        assert checkpoint is not None
        image = _keyframe_nodes(board, shot, graph, node_shots, uploads, checkpoint, keyframe_seed(board, shot))
    return _shot_nodes_from_image(board, shot, graph, node_shots, uploads, image, object_info, film)


def _shot_nodes_from_image(board: Storyboard, shot: Shot, graph: Graph, node_shots: dict, uploads: list[Upload],
                           image: Link, object_info: dict | None, film: Link | None = None) -> Link:
    if shot.motion is not None:
        image = _motion_nodes(board, shot, graph, node_shots, image, object_info)
    return instantiate("shot_clip", shot.id, graph, node_shots, shot.id, {
        **_clip_params(board, shot), "camera_move": shot.camera.move, "seed": shot_seed(board, shot) % (1 << 32),
        "shot_id": shot.id, "fit_to_audio": shot.duration == FIT_TO_DIALOGUE,
    }, {"image": image, "film": film, "dialogue": _dialogue_nodes(board, shot, graph, node_shots),
        "mouth_rigs": _mouth_rig_nodes(board, shot, graph, node_shots, uploads)})["film"]


LINE_GAP_SECONDS = 0.35
MOUTH_SUBFOLDER = "animstudio/mouths"
MUSIC_SUBFOLDER = "animstudio/music"
FONT_SUBFOLDER = "animstudio/fonts"
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
        if character.mouth_files:
            files = mouth_set_uploads(character.mouth_files)
            uploads.extend(files)
            folder = files[0].subfolder
        rigs = instantiate("mouth_rig", f"{shot.id}:mouth-{cid}", graph, node_shots, shot.id, {
            "speaker": character.display_name, "x": box.x, "y": box.y, "width": box.width, "height": box.height,
            "mouth_folder": folder}, {"previous": rigs})["mouth_rigs"]
    return rigs


def mouth_set_uploads(files: tuple[Path, ...]) -> list[Upload]:
    """A mouth set's shape images (checked by the storyboard loader), uploaded together under a subfolder
    named by their content."""
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


def _checkpoint(board: Storyboard, graph: Graph, node_shots: dict, shot_id: str | None,
                force: bool = False) -> dict[str, Link] | None:
    """The project's checkpoint, loaded once per graph; none when nothing is generated from it."""
    if board.project.checkpoint is None or not (force or board.needs_generation):
        return None
    node = f"{FILM_SCOPE}:checkpoint"
    if node not in graph:
        instantiate("checkpoint", FILM_SCOPE, graph, node_shots, shot_id, {"checkpoint": board.project.checkpoint})
    return {"model": [node, 0], "clip": [node, 1], "vae": [node, 2]}


def compile_storyboard(board: Storyboard, shape: Literal["film", "per_shot"] = "film",
                       object_info: dict | None = None) -> CompiledFilm:
    """Compile a validated storyboard into API-format graph(s).

    ``per_shot``: for each generated shot a ``keyframe-<id>`` graph (the keyframe, scored when the project
    scores likeness), then every shot's ``shot-<id>`` graph, then ``compose``. A generated shot's graph reads
    its keyframe as ``animstudio/keyframes/<id>.png`` (``depends_on`` names the graph that makes it); the
    renderer compiles it again with the keyframe it chose (:func:`compile_shot`). ``object_info`` (the
    engine's node definitions) picks the motion family of ``auto`` shots.
    """
    if shape == "film":
        graph: Graph = {}
        node_shots: dict[str, str | None] = {}
        uploads: list[Upload] = []
        checkpoint = _checkpoint(board, graph, node_shots, None)
        film: Link | None = None
        for shot in board.shots:
            film = _shot_nodes(board, shot, graph, node_shots, uploads, checkpoint, film, object_info=object_info)
        _save(board, graph, node_shots, film, f"animstudio/{slug(board.project.title)}", uploads=uploads)
        return CompiledFilm("film", [CompiledGraph("film", graph, node_shots, _unique(uploads))], board)
    if shape != "per_shot":
        raise ValueError(f"unknown graph shape {shape!r}: use 'film' or 'per_shot'")
    graphs = []
    for shot in board.shots:
        if shot.keyframe is None:
            graphs.append(compile_keyframe(board, shot))
        graphs.append(compile_shot(board, shot, object_info=object_info))
    graphs.append(compile_compose(board))
    return CompiledFilm("per_shot", graphs, board)


def compile_compose(board: Storyboard, videos: dict[str, Path] | None = None) -> CompiledGraph:
    """The graph that joins the shots' videos into the film. With ``videos`` (shot id → rendered file) they are
    uploaded under names of their content; without, the graph names ``animstudio/shots/<id>.mp4``, which
    the shot graphs' outputs become."""
    graph: Graph = {}
    node_shots: dict[str, str | None] = {}
    uploads: list[Upload] = []
    film = None
    for shot in board.shots:
        if videos is not None:
            upload = content_upload(videos[shot.id], SHOT_VIDEO_SUBFOLDER)
            uploads.append(upload)
            name = upload.name
        else:
            name = shot_video_name(shot.id)
        film = instantiate("shot_from_video", shot.id, graph, node_shots, shot.id, {
            "video": name, **_clip_params(board, shot)}, {"film": film})["film"]
    _save(board, graph, node_shots, film, f"animstudio/{slug(board.project.title)}", uploads=uploads)
    return CompiledGraph("compose", graph, node_shots, _unique(uploads), kind="compose",
                         depends_on=tuple(f"shot-{s.id}" for s in board.shots))


def compile_keyframe(board: Storyboard, shot: Shot, attempt: int = 0) -> CompiledGraph:
    """A generated shot's keyframe graph: attempt 0 uses the shot's seed, later attempts seeds derived from it."""
    graph: Graph = {}
    node_shots: dict[str, str | None] = {}
    uploads: list[Upload] = []
    checkpoint = _checkpoint(board, graph, node_shots, shot.id, force=True)
    if checkpoint is None:
        raise ValueError(f"shot {shot.id}: a generated keyframe needs project.checkpoint")
    _keyframe_nodes(board, shot, graph, node_shots, uploads, checkpoint, keyframe_seed(board, shot, attempt),
                    score=True)
    return CompiledGraph(f"keyframe-{shot.id}", graph, node_shots, _unique(uploads), shot.id, kind="keyframe")


def compile_shot(board: Storyboard, shot: Shot, keyframe: Path | None = None,
                 object_info: dict | None = None) -> CompiledGraph:
    """One shot's graph, saving its video. A generated shot takes ``keyframe`` (the chosen render), or names
    the keyframe its keyframe graph will make."""
    graph: Graph = {}
    node_shots: dict[str, str | None] = {}
    uploads: list[Upload] = []
    depends_on: tuple[str, ...] = ()
    # each shot video starts with a plain cut: transitions are applied when the compose graph joins them
    cut = _as_cut(shot)
    if shot.keyframe is None and keyframe is None:
        depends_on = (f"keyframe-{shot.id}",)
        image = instantiate("keyframe_panel", shot.id, graph, node_shots, shot.id,
                            {"panel": f"{KEYFRAME_SUBFOLDER}/{shot.id}.png"})["image"]
        film = _shot_nodes_from_image(board, cut, graph, node_shots, uploads, image, object_info)
    else:
        film = _shot_nodes(board, cut, graph, node_shots, uploads, None, None, keyframe, object_info)
    _save(board, graph, node_shots, film, f"animstudio/shots/{shot.id}", shot.id)
    return CompiledGraph(f"shot-{shot.id}", graph, node_shots, _unique(uploads), shot.id, kind="shot",
                         depends_on=depends_on)


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
    font = subtitles.font
    if subtitles.font_file is not None:  # a font beside the storyboard travels with the graph, like a panel
        font = ""
        if uploads is not None:
            upload = content_upload(subtitles.font_file, FONT_SUBFOLDER)
            uploads.append(upload)
            font = upload.name
    instantiate("save_film", FILM_SCOPE, graph, node_shots, shot_id, {
        "filename_prefix": prefix,
        "burn_subtitles": subtitles.burn if shot_id is None else False,
        "subtitle_files": subtitles.files if shot_id is None else "srt",
        "subtitle_size": subtitles.size, "subtitle_font": font, "subtitle_position": subtitles.position,
        "music_gain_db": round(20 * math.log10(board.music[0].volume), 2) if board.music and board.music[0].volume > 0
        else -60.0,
        "crf": FINAL_CRF if shot_id is None else INTERMEDIATE_CRF,
    }, {"film": film, "music": music})


def _unique(uploads: list[Upload]) -> list[Upload]:
    seen: dict[str, Upload] = {}
    for upload in uploads:
        seen.setdefault(upload.name, upload)
    return list(seen.values())
