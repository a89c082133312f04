"""Keyframe subgraphs: the shot's prompt and seed, each character's LoRA and IP-Adapter on the project's checkpoint,
ControlNet guidance, sampling (or, for a reference family, the edit from the character sheets of
:mod:`.reference_edit`), and the likeness score of each character with reference images."""
from __future__ import annotations

import hashlib
from pathlib import Path

from .reference_edit import edit_picture, edit_prompt, sheet_image
from .storyboard_model import Shot, Storyboard
from .templates import FILM_SCOPE, Graph, Link, Upload, content_upload, instantiate

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


KEYFRAME_SUBFOLDER = "animstudio/keyframes"
REFERENCE_SUBFOLDER = "animstudio/references"
CONTROL_SUBFOLDER = "animstudio/control"


def keyframe_seed(board: Storyboard, shot: Shot, attempt: int = 0) -> int:
    """The seed of a keyframe attempt: the shot's seed first, then seeds derived from it for re-renders."""
    if attempt == 0:
        return shot_seed(board, shot)
    digest = hashlib.sha256(f"{shot_seed(board, shot)}:attempt-{attempt}".encode()).digest()
    return int.from_bytes(digest[:6], "big")


def checkpoint_nodes(board: Storyboard, graph: Graph, node_shots: dict, shot_id: str | None,
                force: bool = False) -> dict[str, Link] | None:
    """The project's checkpoint, loaded once per graph; none when nothing is generated from it (no generated shot,
    or keyframes edited from character sheets by a reference family)."""
    if board.project.checkpoint is None or board.project.edits_keyframes or not (force or board.needs_generation):
        return None
    node = f"{FILM_SCOPE}:checkpoint"
    if node not in graph:
        instantiate("checkpoint", FILM_SCOPE, graph, node_shots, shot_id, {"checkpoint": board.project.checkpoint})
    return {"model": [node, 0], "clip": [node, 1], "vae": [node, 2]}


def reference_batch(board: Storyboard, shot: Shot, cid: str, graph: Graph, node_shots: dict,
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


def clip_vision_node(board: Storyboard, graph: Graph, node_shots: dict, shot_id: str | None) -> Link:
    node = f"{FILM_SCOPE}:clip-vision"
    if node not in graph:
        instantiate("clip_vision", FILM_SCOPE, graph, node_shots, shot_id, {"clip_vision": board.project.clip_vision})
    return [node, 0]


def keyframe_nodes(board: Storyboard, shot: Shot, graph: Graph, node_shots: dict, uploads: list[Upload],
                    checkpoint: dict[str, Link] | None, seed: int, score: bool = False,
                    sheets: dict[str, Path] | None = None) -> Link:
    """A generated keyframe, drawn by the checkpoint (:func:`checkpoint_keyframe_nodes`) or edited from the character
    sheets by a reference family (``sheets``: see :func:`.reference_edit.sheet_image`); with ``score``, each
    character's consistency score."""
    references: dict[str, Link] = {}
    if board.project.edits_keyframes:
        pictures = [sheet_image(board, cid, graph, node_shots, uploads, shot.id, sheets) for cid in shot.characters]
        image = edit_picture(board, shot.id, graph, node_shots, shot.id, edit_prompt(board, shot, shot_prompt(board, shot)),
                             pictures, seed, f"{KEYFRAME_SUBFOLDER}/{shot.id}")
    else:
        assert checkpoint is not None
        image = checkpoint_keyframe_nodes(board, shot, graph, node_shots, uploads, checkpoint, seed, references)
    if score:
        for cid in scored_characters(board, shot):
            if cid not in references:
                references[cid] = reference_batch(board, shot, cid, graph, node_shots, uploads)
            instantiate("consistency", f"{shot.id}:consistency-{cid}", graph, node_shots, shot.id,
                        {"threshold": board.project.consistency.threshold, "character": cid,
                         "method": board.project.consistency.method,
                         "face_threshold": board.project.consistency.face_threshold},
                        {"clip_vision": clip_vision_node(board, graph, node_shots, shot.id), "image": image,
                         "references": references[cid]})
    return image


def checkpoint_keyframe_nodes(board: Storyboard, shot: Shot, graph: Graph, node_shots: dict, uploads: list[Upload],
                              checkpoint: dict[str, Link], seed: int, references: dict[str, Link]) -> Link:
    """A keyframe drawn by the checkpoint: each character's LoRA and IP-Adapter (their reference batches added to
    ``references``), the prompts (guided by the shot's ControlNet image), sampling, decoding, saving."""
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
    for cid in shot.characters:
        character = board.characters[cid]
        if character.ip_adapter is None or not character.reference_images:
            continue
        references[cid] = reference_batch(board, shot, cid, graph, node_shots, uploads)
        adapter = character.ip_adapter
        model = instantiate("ipadapter", f"{shot.id}:ipadapter-{cid}", graph, node_shots, shot.id, {
            "file": adapter.file, "weight": adapter.weight, "start_at": adapter.start_at, "end_at": adapter.end_at,
            "character": character.display_name,
        }, {"model": model, "clip_vision": clip_vision_node(board, graph, node_shots, shot.id),
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
    return image


def scored_characters(board: Storyboard, shot: Shot) -> list[str]:
    """The shot's characters whose keyframe likeness is scored: those with reference images, when the project
    has a CLIP vision model and scoring on."""
    if not board.project.scores_consistency:
        return []
    return [cid for cid in shot.characters if board.characters[cid].reference_images]


def consistency_node(shot_id: str, character_id: str) -> str:
    return f"{shot_id}:consistency-{character_id}:score"
