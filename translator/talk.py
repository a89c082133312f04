"""Talking shots: a speaking character's picture driven by the shot's own dialogue through core ComfyUI's
audio-driven video nodes, Wan2.2-S2V (wav2vec2 features, 16 fps, windows chained in latent space) or HuMo (Whisper
features, 25 fps, one window), chosen per character or shot and by what the engine offers.

The storyboard model decides what may talk through a model (``talk_candidates``) and cuts multi-speaker shots into
close-ups (``with_close_ups``); here the engine's ``/object_info`` (nodes, and model files in the loaders' lists)
settles the family, and the subgraphs are built. The film's sound is always the pack's own dialogue audio: the
model only listens to it.
"""
from __future__ import annotations

import logging

from ..common.errors import GraphValidationError, Problem
from .keyframes import shot_prompt, shot_seed
from .storyboard_model import Shot, Storyboard
from .video_models import humo_length, s2v_windows
from .talk_plan import TALK_NAMES, shot_speakers, talk_candidates
from .templates import Graph, Link, instantiate

log = logging.getLogger(__name__)

# the node types each talking family needs from the server
TALK_NODES = {
    "s2v": ("UNETLoader", "ModelSamplingSD3", "CLIPLoader", "VAELoader", "AudioEncoderLoader", "AudioEncoderEncode",
            "WanSoundImageToVideo", "WanSoundImageToVideoExtend", "LatentConcat", "KSampler", "VAEDecode"),
    "humo": ("UNETLoader", "ModelSamplingSD3", "CLIPLoader", "VAELoader", "AudioEncoderLoader", "AudioEncoderEncode",
             "WanHuMoImageToVideo", "KSampler", "VAEDecode"),
}
# each model file of a family: the loader that reads it, its input, and the folder under ComfyUI's models/
TALK_FILES = {"unet": ("UNETLoader", "unet_name", "diffusion_models"),
              "text_encoder": ("CLIPLoader", "clip_name", "text_encoders"),
              "vae": ("VAELoader", "vae_name", "vae"),
              "audio_encoder": ("AudioEncoderLoader", "audio_encoder_name", "audio_encoders")}
TALK_SIZE_STEP = 16  # Wan's pixel grid


def _listed(object_info: dict, class_type: str, input_name: str) -> list | None:
    """The files a loader offers (its combo), or None when the definitions do not say."""
    spec = ((object_info.get(class_type) or {}).get("input") or {}).get("required", {}).get(input_name)
    if not isinstance(spec, (list, tuple)) or not spec:
        return None
    if isinstance(spec[0], (list, tuple)):
        return list(spec[0])
    options = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
    return list(options.get("options", [])) if spec[0] == "COMBO" else None


def engine_problems(board: Storyboard, family: str, object_info: dict) -> list[Problem]:
    """What the engine lacks for a family: node types, and model files (each named with its folder and the JSON
    path that names it)."""
    where = f"$.project.talk_models.{family}"
    missing = [node for node in TALK_NODES[family] if node not in object_info]
    if missing:
        return [Problem(where, f"the engine lacks the node(s) {', '.join(missing)} that {TALK_NAMES[family]} needs "
                               "(update ComfyUI: 0.3.64 has them)")]
    settings = getattr(board.project.talk_models, family)
    problems = []
    for field_name, (loader, input_name, folder) in TALK_FILES.items():
        name = getattr(settings, field_name)
        listed = _listed(object_info, loader, input_name)
        if listed is not None and name not in listed:
            problems.append(Problem(f"{where}.{field_name}", f"model file {name!r} not found: put it in ComfyUI's "
                                                             f"models/{folder} folder"))
    return problems


def fits(board: Storyboard, shot: Shot, family: str) -> bool:
    """Whether the shot's length is within what the family renders (S2V's window chain, HuMo's one window)."""
    settings = getattr(board.project.talk_models, family)
    seconds = board.shot_seconds(shot)
    if family == "s2v":
        return len(s2v_windows(settings, seconds)) <= settings.max_windows
    return humo_length(settings, seconds) <= settings.max_frames


def talk_family(board: Storyboard, shot: Shot, object_info: dict | None = None) -> str | None:
    """The family whose model makes this shot's picture talk, or None (2D mouths, or nobody speaks).

    Only a shot with one speaker talks through a model (a multi-speaker shot was cut into close-ups, or is a
    two-shot). A family the storyboard names must be available: the engine's gaps raise, naming the model file
    and its folder. ``auto`` takes the first configured family that the engine offers (nodes and model files)
    and that is long enough for the shot; none: 2D mouths."""
    speakers = shot_speakers(shot)
    if len(speakers) != 1 or shot.camera.shot == "two_shot":
        return None
    candidates = talk_candidates(board, shot, speakers[0])
    if not candidates:
        return None
    named = (shot.talk or board.characters[speakers[0]].talk) != "auto"
    if named:
        family = candidates[0]
        problems = engine_problems(board, family, object_info) if object_info is not None else []
        if problems:
            raise GraphValidationError(f"shot {shot.id}: {TALK_NAMES[family]} cannot run here", problems)
        return family
    for family in candidates:
        lacking = engine_problems(board, family, object_info) if object_info is not None else []
        if not fits(board, shot, family):
            log.info("shot %s: %s skipped: the shot is longer than it renders", shot.id, family)
        elif lacking:
            log.info("shot %s: %s skipped: %s", shot.id, family, "; ".join(p.message for p in lacking))
        else:
            return family
    return None


def talk_nodes(board: Storyboard, shot: Shot, graph: Graph, node_shots: dict, image: Link, audio: Link,
               family: str) -> Link:
    """The shot's talking frames: the keyframe ``image`` driven by the dialogue's ``audio`` (core AUDIO)."""
    settings = getattr(board.project.talk_models, family)
    project = board.project
    seconds = board.shot_seconds(shot)
    params = {"prompt": shot_prompt(board, shot), "negative_prompt": project.negative_prompt,
              "width": _snap_down(project.width), "height": _snap_down(project.height),
              "seed": shot_seed(board, shot), "unet": settings.unet,
              "unet_where": f"$.project.talk_models.{family}.unet", "text_encoder": settings.text_encoder,
              "vae": settings.vae, "audio_encoder": settings.audio_encoder, "shift": settings.shift,
              "steps": settings.steps, "cfg": settings.cfg, "sampler": settings.sampler,
              "scheduler": settings.scheduler}
    scope = f"{shot.id}:talk"
    if family == "humo":
        return instantiate("talk_humo", scope, graph, node_shots, shot.id,
                           {**params, "length": humo_length(settings, seconds)},
                           {"image": image, "audio": audio})["frames"]
    windows = s2v_windows(settings, seconds)
    first = instantiate("talk_s2v", scope, graph, node_shots, shot.id, {**params, "length": windows[0]},
                        {"image": image, "audio": audio})
    latent = first["latent"]
    for k, length in enumerate(windows[1:], start=2):
        latent = instantiate("talk_s2v_extend", f"{scope}-{k}", graph, node_shots, shot.id, {
            **params, "length": length, "seed": (params["seed"] + k - 1) % (1 << 64),
        }, {"positive": first["positive"], "negative": first["negative"], "vae": first["vae"],
            "model": first["model"], "audio_features": first["audio_features"], "image": image,
            "video_latent": latent})["latent"]
    return instantiate("talk_decode", scope, graph, node_shots, shot.id, {},
                       {"latent": latent, "vae": first["vae"]})["frames"]


def talk_frame_count(board: Storyboard, shot: Shot, family: str) -> int:
    """How many frames the talking subgraph makes for a shot (at the family's own rate)."""
    settings = getattr(board.project.talk_models, family)
    seconds = board.shot_seconds(shot)
    if family == "humo":
        return humo_length(settings, seconds)
    return sum((length - 1) // 4 + 1 for length in s2v_windows(settings, seconds)) * 4 - 3


def talk_audio_seconds(board: Storyboard, shot: Shot, family: str) -> float:
    """How long the sound the talking model listens to must be: the shot, or the frames the model makes when they
    reach past it (the 4k+1 grid rounds up), plus one latent frame (4 frames). S2V reads four sound frames per
    latent frame through every window of the chain, and core's Extend fails with a shape error when the sound ends
    inside the last window; the model hears silence after the last line."""
    settings = getattr(board.project.talk_models, family)
    frames = talk_frame_count(board, shot, family)
    if family == "s2v":  # 4 sound frames a latent frame: 4t, where the decoded chain is 4t - 3 frames
        frames += 3
    return round(max(board.shot_seconds(shot), (frames + 4) / settings.fps), 3)


def _snap_down(value: int) -> int:
    return max(TALK_SIZE_STEP, value - value % TALK_SIZE_STEP)
