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

import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .dialogue_graph import dialogue_nodes, mouth_rig_nodes, transition_room
from .emotion import shot_camera
from .keyframes import KEYFRAME_SUBFOLDER, checkpoint_nodes, keyframe_nodes, keyframe_seed, shot_seed
from ..common.errors import GraphValidationError, Problem
from .motion import continuity_nodes, motion_family, motion_nodes
from .reference_edit import sheet_nodes
from .schema_check import FIT_TO_DIALOGUE
from .storyboard_model import Shot, Storyboard
from .talk import talk_audio_seconds, talk_family, talk_nodes
from .templates import FILM_SCOPE, Graph, Link, Upload, content_upload, graph_json, instantiate

log = logging.getLogger(__name__)

PANEL_SUBFOLDER = "animstudio/panels"
SHOT_VIDEO_SUBFOLDER = "animstudio/shots"

@dataclass
class CompiledGraph:
    """One API-format graph plus what running it needs: the node → shot map and the files to upload."""

    name: str
    graph: Graph
    node_shots: dict[str, str | None]
    uploads: list[Upload] = field(default_factory=list)
    shot_id: str | None = None  # set for a per-shot graph
    kind: Literal["film", "sheet", "keyframe", "shot", "compose", "train"] = "film"
    depends_on: tuple[str, ...] = ()  # graphs whose outputs this one reads (sheets, a shot's keyframe, the shots)

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


def panel_upload(path: Path) -> Upload:
    return content_upload(path, PANEL_SUBFOLDER)


def shot_video_name(shot_id: str) -> str:
    return f"{SHOT_VIDEO_SUBFOLDER}/{shot_id}.mp4"


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()[:48] or "film"


# ------------------------------------------------------------------------------------------ compiling

def _shot_nodes(board: Storyboard, shot: Shot, graph: Graph, node_shots: dict, uploads: list[Upload],
                checkpoint: dict[str, Link] | None, film: Link | None, keyframe: Path | None = None,
                object_info: dict | None = None, start: Link | None = None,
                sheets: dict[str, Path] | None = None) -> Link:
    """Add one shot's picture, motion and clip nodes; returns the link to the film with this shot appended.

    The picture is the shot's panel, else ``keyframe`` (a keyframe already rendered and chosen), else generated
    here from the checkpoint."""
    panel = shot.keyframe or keyframe
    if panel is not None:
        image = instantiate("keyframe_panel", shot.id, graph, node_shots, shot.id,
                            {"panel": _upload_name(panel, uploads)})["image"]
    else:
        image = keyframe_nodes(board, shot, graph, node_shots, uploads, checkpoint, keyframe_seed(board, shot))
    return _shot_nodes_from_image(board, shot, graph, node_shots, uploads, image, object_info, film, start, sheets)


def _shot_nodes_from_image(board: Storyboard, shot: Shot, graph: Graph, node_shots: dict, uploads: list[Upload],
                           image: Link, object_info: dict | None, film: Link | None = None,
                           start: Link | None = None, sheets: dict[str, Path] | None = None) -> Link:
    """The shot's picture (talking through a video model, moving, or still), its sound and mouths, as a clip.

    A talking shot's frames come from the model, driven by the dialogue's sound; the clip's sound stays the
    dialogue's own (the pack's voices), its frames resampled from the model's rate to the film's."""
    family = talk_family(board, shot, object_info) if shot.dialogue else None
    rigs = None
    if family is None and shot.continuity == "previous":
        if start is None:
            raise GraphValidationError(f"shot {shot.id}: continuity needs the previous shot rendered first", [Problem(
                f"{shot.json_path}.continuity", "starts from the previous shot's last frame, which exists once that "
                "shot is rendered: render shot by shot (the default), not as one graph (--single-graph)")])
        image = continuity_nodes(board, shot, graph, node_shots, image, start)
    elif family is None and shot.motion is not None:
        image = motion_nodes(board, shot, graph, node_shots, image, object_info, uploads, sheets)
    dialogue = dialogue_nodes(board, shot, graph, node_shots)
    if family is not None:
        if shot.motion is not None:
            log.info("shot %s: its movement comes from %s; motion is not used", shot.id, family)
        audio = instantiate("talk_audio", f"{shot.id}:talk-audio", graph, node_shots, shot.id,
                            {"seconds": talk_audio_seconds(board, shot, family)}, {"dialogue": dialogue})["audio"]
        image = talk_nodes(board, shot, graph, node_shots, image, audio, family)
    else:
        rigs = mouth_rig_nodes(board, shot, graph, node_shots, uploads, image)
    lead, out = transition_room(board, shot, object_info) if family is None else (0.0, 0.0)
    camera = shot_camera(board, shot)  # the shot's own move, else its lines' emotion preset
    return instantiate("shot_clip", shot.id, graph, node_shots, shot.id, {
        **_clip_params(board, shot), "camera_move": camera.move, "seed": shot_seed(board, shot) % (1 << 32),
        "move_strength": camera.strength if camera.strength != 1.0 else None,
        "shot_id": shot.id, "fit_to_audio": shot.duration == FIT_TO_DIALOGUE,
        "frames_fps": _frames_fps(board, shot, family, object_info), "lead_seconds": lead, "out_seconds": out,
        "tail_seconds": board.project.timing.tail,
    }, {"image": image, "film": film, "dialogue": dialogue, "mouth_rigs": rigs})["film"]


def _frames_fps(board: Storyboard, shot: Shot, talk: str | None, object_info: dict | None) -> float | None:
    """The rate a shot's frames are made at when a video model makes them (resampled to the film's by time);
    None for a still."""
    if talk is not None:
        return float(getattr(board.project.talk_models, talk).fps)
    if shot.continuity == "previous":
        return float(board.project.motion_models.wan.fps)
    if shot.motion is not None:
        return float(getattr(board.project.motion_models, motion_family(board, shot, object_info)).fps)
    return None


MUSIC_SUBFOLDER = "animstudio/music"
FONT_SUBFOLDER = "animstudio/fonts"
CONTINUITY_SUBFOLDER = "animstudio/continuity"  # where a per-shot graph reads the previous shot's last frame
FINAL_CRF = 18         # visually lossless H.264: the film's, and its shots' (the film copies their frames)


def _clip_params(board: Storyboard, shot: Shot) -> dict[str, Any]:
    return {"seconds": board.shot_seconds(shot), "width": board.project.width, "height": board.project.height,
            "fps": board.project.fps, "transition": shot.transition.type,
            "transition_seconds": shot.transition.duration}


def compile_storyboard(board: Storyboard, shape: Literal["film", "per_shot"] = "film",
                       object_info: dict | None = None) -> CompiledFilm:
    """Compile a validated storyboard into API-format graph(s).

    ``per_shot``: for a reference keyframe family, a ``sheet-<character>`` graph for each character in a generated
    shot without a sheet of their own; for each generated shot a ``keyframe-<id>`` graph (the keyframe, scored when
    the project scores likeness), then every shot's ``shot-<id>`` graph, then ``compose``. A generated shot's graph reads
    its keyframe as ``animstudio/keyframes/<id>.png`` (``depends_on`` names the graph that makes it); the
    renderer compiles it again with the keyframe it chose (:func:`compile_shot`). ``object_info`` (the
    engine's node definitions) picks the motion family of ``auto`` shots.
    """
    if shape == "film":
        graph: Graph = {}
        node_shots: dict[str, str | None] = {}
        uploads: list[Upload] = []
        checkpoint = checkpoint_nodes(board, graph, node_shots, None)
        film: Link | None = None
        for shot in board.shots:
            film = _shot_nodes(board, shot, graph, node_shots, uploads, checkpoint, film, object_info=object_info)
        _save(board, graph, node_shots, film, f"animstudio/{slug(board.project.title)}", uploads=uploads)
        return CompiledFilm("film", [CompiledGraph("film", graph, node_shots, _unique(uploads))], board)
    if shape != "per_shot":
        raise ValueError(f"unknown graph shape {shape!r}: use 'film' or 'per_shot'")
    graphs = [compile_sheet(board, cid) for cid in board.sheet_characters() if board.characters[cid].sheet is None]
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
            "video": name, "label": shot.id, **_clip_params(board, shot)}, {"film": film})["film"]
    _save(board, graph, node_shots, film, f"animstudio/{slug(board.project.title)}", uploads=uploads, compose=True)
    return CompiledGraph("compose", graph, node_shots, _unique(uploads), kind="compose",
                         depends_on=tuple(f"shot-{s.id}" for s in board.shots))


def compile_keyframe(board: Storyboard, shot: Shot, attempt: int = 0,
                     sheets: dict[str, Path] | None = None) -> CompiledGraph:
    """A generated shot's keyframe graph: attempt 0 uses the shot's seed, later attempts seeds derived from it.
    A reference family edits it from the sheets of the shot's characters: ``sheets`` (character id → the rendered
    sheet), else each named as its sheet graph saves it (``depends_on`` names that graph)."""
    graph: Graph = {}
    node_shots: dict[str, str | None] = {}
    uploads: list[Upload] = []
    checkpoint = checkpoint_nodes(board, graph, node_shots, shot.id, force=True)
    if checkpoint is None and not board.project.edits_keyframes:
        raise ValueError(f"shot {shot.id}: a generated keyframe needs project.checkpoint")
    sheets = dict(sheets or {})
    keyframe_nodes(board, shot, graph, node_shots, uploads, checkpoint, keyframe_seed(board, shot, attempt),
                   score=True, sheets=sheets)
    depends_on = tuple(f"sheet-{cid}" for cid in shot.characters if board.project.edits_keyframes
                       and board.characters[cid].sheet is None and cid not in sheets)
    return CompiledGraph(f"keyframe-{shot.id}", graph, node_shots, _unique(uploads), shot.id, kind="keyframe",
                         depends_on=depends_on)


def compile_sheet(board: Storyboard, cid: str) -> CompiledGraph:
    """A character's sheet graph (reference families): made by the edit model from their reference pictures,
    saved as ``animstudio/sheets/<cid>``."""
    graph: Graph = {}
    node_shots: dict[str, str | None] = {}
    uploads: list[Upload] = []
    sheet_nodes(board, cid, graph, node_shots, uploads)
    return CompiledGraph(f"sheet-{cid}", graph, node_shots, _unique(uploads), kind="sheet")


def compile_shot(board: Storyboard, shot: Shot, keyframe: Path | None = None,
                 object_info: dict | None = None, start_frame: Path | None = None,
                 sheets: dict[str, Path] | None = None) -> CompiledGraph:
    """One shot's graph, saving its video. A generated shot takes ``keyframe`` (the chosen render), or names
    the keyframe its keyframe graph will make; a ``continuity: previous`` shot takes ``start_frame`` (the previous
    shot's last frame), or names it as the renderer will upload it; a Phantom shot takes its characters' rendered
    ``sheets`` as subjects."""
    graph: Graph = {}
    node_shots: dict[str, str | None] = {}
    uploads: list[Upload] = []
    depends_on: tuple[str, ...] = ()
    # each shot video starts with a plain cut: transitions are applied when the compose graph joins them
    cut = _as_cut(shot)
    start = None
    if shot.continuity == "previous":
        if start_frame is None:
            depends_on += (f"shot-{board.previous_shot(shot).id}",)
        name = _upload_name(start_frame, uploads) if start_frame else f"{CONTINUITY_SUBFOLDER}/{shot.id}.png"
        start = instantiate("keyframe_panel", f"{shot.id}:start", graph, node_shots, shot.id, {"panel": name})["image"]
    if shot.keyframe is None and keyframe is None:
        depends_on += (f"keyframe-{shot.id}",)
        image = instantiate("keyframe_panel", shot.id, graph, node_shots, shot.id,
                            {"panel": f"{KEYFRAME_SUBFOLDER}/{shot.id}.png"})["image"]
        film = _shot_nodes_from_image(board, cut, graph, node_shots, uploads, image, object_info, start=start,
                                      sheets=sheets)
    else:
        film = _shot_nodes(board, cut, graph, node_shots, uploads, None, None, keyframe, object_info, start, sheets)
    _save(board, graph, node_shots, film, f"animstudio/shots/{shot.id}", shot.id)
    return CompiledGraph(f"shot-{shot.id}", graph, node_shots, _unique(uploads), shot.id, kind="shot",
                         depends_on=depends_on)


def _upload_name(path: Path, uploads: list[Upload]) -> str:
    """A picture uploaded as a panel (named by its content), added to ``uploads``; its name in the input folder."""
    upload = panel_upload(path)
    uploads.append(upload)
    return upload.name


def _as_cut(shot: Shot) -> Shot:
    from dataclasses import replace

    from .storyboard_model import Transition

    return replace(shot, transition=Transition("cut", shot.transition.duration))


def shot_key_frames(board: Storyboard, shot: Shot) -> str:
    """Where a shot's video starts fresh picture groups, so the film is joined from it by stream copy (smart
    rendering): its first frame, the first one after its incoming transition (or fade) and, counted from its end,
    the first one its outgoing transition changes (where that stretch is decoded from)."""
    fps = board.project.fps
    index = board.shots.index(shot)
    own = board.shot(shot.id).transition
    head = int(round(own.seconds * fps)) if index > 0 or own.type == "fade_black" else 0
    following = board.next_shot(shot)
    tail = int(round(following.transition.seconds * fps)) if following is not None else 0
    return ",".join(["0"] + ([str(head)] if head else []) + ([str(-tail)] if tail else []))


def _save(board: Storyboard, graph: Graph, node_shots: dict, film: Link, prefix: str, shot_id: str | None = None,
          uploads: list[Upload] | None = None, compose: bool = False) -> None:
    """The save node. A per-shot graph (``shot_id``) writes its video encoded to be joined, at the film's quality,
    captions burned in when the film has them, and a WebVTT beside it for the compose graph; the film graph (and
    the compose graph, whose shots already carry their captions) writes sidecars, lays the music bed and masters
    the sound as the storyboard asks."""
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
        "burn_subtitles": subtitles.burn and not compose,
        "subtitle_files": subtitles.files if shot_id is None else "vtt",
        "subtitle_size": subtitles.size, "subtitle_font": font, "subtitle_position": subtitles.position,
        "subtitle_speaker": subtitles.speaker,
        "music_gain_db": music_gain_db(board),
        "crf": FINAL_CRF,
        "loudness": board.project.loudness if shot_id is None else 0.0,  # the film is mastered, not its shots
        "key_frames": shot_key_frames(board, board.shot(shot_id)) if shot_id is not None else "",
    }, {"film": film, "music": music})


def music_gain_db(board: Storyboard) -> float:
    """The music bed's level (its ``volume`` in decibels; -60 for none or silent)."""
    volume = board.music[0].volume if board.music else 0.0
    return round(20 * math.log10(volume), 2) if volume > 0 else -60.0


def _unique(uploads: list[Upload]) -> list[Upload]:
    seen: dict[str, Upload] = {}
    for upload in uploads:
        seen.setdefault(upload.name, upload)
    return list(seen.values())
