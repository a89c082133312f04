"""Frame interpolation nodes: more frames per second from an image batch or a clip.

Thin shells over :mod:`.interpolation`. The image node converts ComfyUI's ``IMAGE`` at the boundary
and streams the batch through the engine frame by frame; the clip node wraps the clip lazily, so its
frames are only made when the film is saved.
"""
from __future__ import annotations

import os

import numpy as np

from .. import boundary
from .interpolation import DEFAULT_SCENE_THRESHOLD, ENGINES, interpolate_clip, interpolate_frames

CLIP = "ANIMSTUDIO_CLIP"
AUTO_MODEL = "auto"


def _engine_inputs() -> dict:
    return {
        "factor": ("INT", {"default": 2, "min": 1, "max": 16,
                           "tooltip": "Frame-rate multiplier: factor-1 new frames between each pair of frames."}),
        "engine": (list(ENGINES), {"default": "flow", "tooltip": (
            "flow: optical flow (OpenCV), no model needed, runs anywhere. rife: the RIFE v4.x network, sharper "
            "on large motion; needs its weights in models/rife and runs on the GPU.")}),
        "scene_threshold": ("FLOAT", {"default": DEFAULT_SCENE_THRESHOLD, "min": 0.0, "max": 1.0, "step": 0.01,
                                      "tooltip": ("How different two frames must be to count as a cut (0..1). "
                                                  "Cuts are never blended: the new frames repeat the frame before "
                                                  "the cut. 1 turns detection off.")}),
    }


def _model_input() -> dict:
    from .rife_weights import list_rife_models

    return {"rife_model": ([AUTO_MODEL] + list_rife_models(), {
        "default": AUTO_MODEL,
        "tooltip": "RIFE weights in models/rife (rife engine only); auto: flownet.pkl, $ANIMSTUDIO_RIFE_MODEL, "
                   "or the only file there."})}


def _model_name(rife_model: str) -> str:
    """The file name to look up in models/rife ("" for auto); a graph may not point outside that folder."""
    if rife_model in ("", AUTO_MODEL):
        return ""
    if rife_model != os.path.basename(rife_model) or rife_model in (".", ".."):
        raise ValueError(f"rife_model {rife_model!r} must be a file name in models/rife, not a path")
    return rife_model


class AnimStudioInterpolateFrames:
    DESCRIPTION = ("Raises the frame rate of an image batch by a whole factor, making new frames between each pair "
                   "by optical flow or RIFE. Scene cuts are detected and never blended. Shows progress and stops "
                   "on Cancel.")
    CATEGORY = "animstudio/film"
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("images",)
    OUTPUT_TOOLTIPS = ("The frames with the new ones between: (count-1)·factor+1 frames, the originals unchanged.",)
    FUNCTION = "interpolate"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"images": ("IMAGE", {"tooltip": "The frames, in order (a batch of two or more)."}),
                             **_engine_inputs()},
                "optional": _model_input()}

    def interpolate(self, images, factor, engine, scene_threshold, rife_model=AUTO_MODEL):
        frames = boundary.image_to_frames(images)
        count = len(frames)
        total = (count - 1) * int(factor) + 1 if count else 0
        progress = boundary.Progress(total)

        def source():
            for frame in frames:
                boundary.check_interrupted()
                yield frame

        out = np.empty((total,) + frames.shape[1:], np.uint8)
        made = 0
        for frame in interpolate_frames(source(), factor, engine, scene_threshold,
                                        rife_model=_model_name(rife_model)):
            out[made] = frame
            made += 1
            progress.update(1)
        return (boundary.frames_to_image(out[:made]),)


class AnimStudioInterpolateClip:
    DESCRIPTION = ("Multiplies a clip's frame rate by a whole factor, keeping its length, sound and subtitles. Lazy: "
                   "the new frames are made (by optical flow or RIFE) only while the film is saved, streaming.")
    CATEGORY = "animstudio/film"
    RETURN_TYPES = (CLIP,)
    RETURN_NAMES = ("clip",)
    OUTPUT_TOOLTIPS = ("The clip at factor× the frame rate. Every clip in a film needs the same rate.",)
    FUNCTION = "interpolate"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"clip": (CLIP, {"tooltip": "The clip to smooth."}), **_engine_inputs()},
                "optional": _model_input()}

    def interpolate(self, clip, factor, engine, scene_threshold, rife_model=AUTO_MODEL):
        if engine == "rife":  # fail now, not halfway through saving the film
            from .rife_weights import find_rife_weights

            find_rife_weights(_model_name(rife_model))
        return (interpolate_clip(clip, factor, engine, scene_threshold, rife_model=_model_name(rife_model)),)


NODE_CLASS_MAPPINGS = {
    "AnimStudioInterpolateFrames": AnimStudioInterpolateFrames,
    "AnimStudioInterpolateClip": AnimStudioInterpolateClip,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "AnimStudioInterpolateFrames": "Interpolate Frames (Animation Studio)",
    "AnimStudioInterpolateClip": "Interpolate Clip",
}
