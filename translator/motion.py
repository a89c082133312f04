"""Motion subgraphs: a shot's keyframe moved by an image-to-video family (Wan, LTX-Video, AnimateDiff), chosen by
what ``project.motion_models`` sets and what the engine's ``/object_info`` offers."""
from __future__ import annotations

import math
from pathlib import Path

from .keyframes import checkpoint_nodes, shot_prompt, shot_seed
from .storyboard_model import Shot, Storyboard
from .templates import Graph, Link, Upload, content_upload, instantiate
from .video_models import AUTO_MOTION_FAMILIES

# the node types each motion family needs from the server, the frame-count grid its latents use (length
# = step * k + 1) and the pixel grid of its width and height
MOTION_NODES = {"wan": ("UNETLoader", "ModelSamplingSD3", "WanImageToVideo"),
                "phantom": ("UNETLoader", "ModelSamplingSD3", "WanPhantomSubjectToVideo"),
                "ltx": ("LTXVPreprocess", "LTXVImgToVideo", "LTXVConditioning", "LTXVScheduler", "SamplerCustom"),
                "animatediff": ("ADE_AnimateDiffLoaderGen1", "RepeatImageBatch", "VAEEncode")}
MOTION_FRAME_STEP = {"wan": 4, "ltx": 8, "animatediff": 1, "phantom": 4}
MOTION_SIZE_STEP = {"wan": 16, "ltx": 32, "animatediff": 8, "phantom": 16}
ANIMATEDIFF_DENOISE = 0.6  # enough for the motion module to move things, little enough to keep the keyframe



def motion_family(board: Storyboard, shot: Shot, object_info: dict | None = None) -> str:
    """The video family a shot's motion uses: the one it names, or (``auto``) the first of wan, ltx, animatediff
    that ``project.motion_models`` sets and whose nodes the engine offers (the first set, engine unknown)."""
    assert shot.motion is not None
    configured = tuple(f for f in board.project.motion_models.configured if f in AUTO_MOTION_FAMILIES)
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


def motion_nodes(board: Storyboard, shot: Shot, graph: Graph, node_shots: dict, image: Link,
                 object_info: dict | None, uploads: list[Upload] | None = None,
                 sheets: dict[str, Path] | None = None) -> Link:
    """The shot's generated motion: an image-to-video subgraph of the family chosen; returns its frames."""
    family = motion_family(board, shot, object_info)
    settings = getattr(board.project.motion_models, family)
    project = board.project
    params = _motion_params(board, shot, family)
    scope = f"{shot.id}:motion"
    if family == "wan":
        vision = None
        if settings.clip_vision:
            vision = instantiate("clip_vision_encode", f"{shot.id}:motion-vision", graph, node_shots, shot.id,
                                 {"clip_vision": settings.clip_vision}, {"image": image})["output"]
        return instantiate("motion_wan", scope, graph, node_shots, shot.id, {**params, **_wan_params(board)},
                           {"image": image, "clip_vision_output": vision})["frames"]
    if family == "phantom":
        return phantom_nodes(board, shot, graph, node_shots, image, uploads, sheets)
    if family == "ltx":
        return instantiate("motion_ltx", scope, graph, node_shots, shot.id, {
            **params, "checkpoint": settings.checkpoint, "text_encoder": settings.text_encoder,
            "steps": settings.steps, "cfg": settings.cfg, "fps": float(settings.fps), "strength": shot.motion.strength,
        }, {"image": image})["frames"]
    checkpoint = checkpoint_nodes(board, graph, node_shots, shot.id, force=True)
    return instantiate("motion_animatediff", scope, graph, node_shots, shot.id, {
        **params, "motion_model": settings.motion_model, "beta_schedule": settings.beta_schedule,
        "steps": project.steps, "cfg": project.cfg, "sampler": project.sampler, "scheduler": project.scheduler,
        "denoise": ANIMATEDIFF_DENOISE,
    }, {"image": image, **checkpoint})["frames"]


def phantom_nodes(board: Storyboard, shot: Shot, graph: Graph, node_shots: dict, image: Link,
                  uploads: list[Upload] | None, sheets: dict[str, Path] | None = None) -> Link:
    """A Phantom shot: Wan Phantom text-to-video with the shot's characters (each by their own sheet, else the one
    rendered for them, ``sheets``, else their first reference picture) and its keyframe ``image`` (the staging) as
    subjects; returns its frames."""
    from .reference_edit import SHEET_SUBFOLDER

    subjects: Link | None = None
    for cid in shot.characters:
        character = board.characters[cid]
        picture = (character.sheet or (sheets or {}).get(cid)
                   or (character.reference_images[0] if character.reference_images else None))
        if picture is None:
            continue
        upload = content_upload(picture, SHEET_SUBFOLDER)
        if uploads is not None:
            uploads.append(upload)
        loaded = instantiate("reference_image", f"{shot.id}:subject-{cid}", graph, node_shots, shot.id,
                             {"image": upload.name})["image"]
        subjects = loaded if subjects is None else instantiate(
            "image_batch", f"{shot.id}:subject-{cid}", graph, node_shots, shot.id, {},
            {"first": subjects, "second": loaded})["image"]
    if subjects is not None:
        image = instantiate("image_batch", f"{shot.id}:subject-keyframe", graph, node_shots, shot.id, {},
                            {"first": subjects, "second": image})["image"]
    settings = board.project.motion_models.phantom
    return instantiate("motion_phantom", f"{shot.id}:motion", graph, node_shots, shot.id, {
        **_motion_params(board, shot, "phantom"), "unet": settings.unet,
        "unet_where": "$.project.motion_models.phantom.unet", "text_encoder": settings.text_encoder,
        "vae": settings.vae, "shift": settings.shift, "steps": settings.steps, "cfg": settings.cfg,
    }, {"subjects": image})["frames"]


def continuity_nodes(board: Storyboard, shot: Shot, graph: Graph, node_shots: dict, image: Link,
                     start: Link) -> Link:
    """A ``continuity: previous`` shot's motion: Wan first-last-frame video from ``start`` (the previous shot's
    last frame) to the shot's keyframe ``image``, so the cut does not jump; returns its frames."""
    return instantiate("motion_wan_flf", f"{shot.id}:motion", graph, node_shots, shot.id,
                       {**_motion_params(board, shot, "wan"), **_wan_params(board)},
                       {"image": image, "start": start})["frames"]


def _motion_params(board: Storyboard, shot: Shot, family: str) -> dict:
    settings = getattr(board.project.motion_models, family)
    project = board.project
    size_step = MOTION_SIZE_STEP[family]
    return {"prompt": (shot.motion.prompt if shot.motion else None) or shot_prompt(board, shot),
            "negative_prompt": project.negative_prompt,
            "width": _snap_down(project.width, size_step), "height": _snap_down(project.height, size_step),
            "length": motion_length(board.shot_seconds(shot), settings.fps, MOTION_FRAME_STEP[family],
                                    settings.max_frames),
            "seed": shot_seed(board, shot)}


def _wan_params(board: Storyboard) -> dict:
    settings = board.project.motion_models.wan
    return {"unet": settings.unet, "unet_where": "$.project.motion_models.wan.unet",
            "text_encoder": settings.text_encoder, "vae": settings.vae, "shift": settings.shift,
            "steps": settings.steps, "cfg": settings.cfg}
