"""Lip-sync nodes: speech → mouth cues (Rhubarb's shapes), cues → files, cues + mouth set → a talking face.

``MOUTH_CUES`` carries a :class:`~.cues.MouthCues`. Thin shells over :mod:`.engine`, :mod:`.formats`,
:mod:`.visemes` and :mod:`.mouths`.
"""
from __future__ import annotations

import json
import logging
from dataclasses import replace

import numpy as np

from .. import boundary
from ..audio.clip import write_wav
from .engine import ENGINES, lipsync_audio
from .formats import FORMATS, write_cues
from .mouths import (MouthBox, box_from_mask, builtin_mouth_set, frame_count, load_mouth_folder,
                     mouth_set_from_batch, talking_frames)
from .locate import LOCATE, locate_rig
from .visemes import to_viseme_json

MOUTH_CUES = "MOUTH_CUES"
log = logging.getLogger(__name__)


class AnimStudioLipSync:
    DESCRIPTION = ("Times mouth shapes to speech in Rhubarb Lip Sync's shapes (A-F, extended G, H, X). Audio from "
                   "the TTS node carries the voice's own phone timings, used exactly, in any language. Otherwise: "
                   "English uses the rhubarb binary when RHUBARB_PATH or PATH has it, else the built-in aligner "
                   "(pocketsphinx, about 30x real time); other languages align the dialogue text with espeak-ng. "
                   "Give the dialogue text for better timing.")
    CATEGORY = "animstudio/lipsync"
    RETURN_TYPES = (MOUTH_CUES, "STRING")
    RETURN_NAMES = ("mouth_cues", "rhubarb_json")
    OUTPUT_TOOLTIPS = ("Mouth cues covering the whole audio.", "The cues in Rhubarb's JSON format.")
    FUNCTION = "lipsync"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "audio": ("AUDIO", {"tooltip": "Speech to lip-sync."}),
            "engine": (list(ENGINES), {"default": "auto", "tooltip": "auto: rhubarb if installed, else built-in."}),
            "extended_shapes": ("STRING", {"default": "GHX", "tooltip": "Which of the extended shapes G, H, X your "
                                                                         "mouth set has (Rhubarb's --extendedShapes)."}),
        }, "optional": {
            "dialogue_text": ("STRING", {"multiline": True, "default": "",
                                         "tooltip": "What is said: aligning to it beats recognising it."}),
            "language": ("STRING", {"default": "en",
                                    "tooltip": "Language spoken, as an espeak-ng code (en, cmn, ru, ko, it, es, de, "
                                               "fr, ...). Not needed for audio straight from the TTS node."}),
        }}

    def lipsync(self, audio, engine, extended_shapes, dialogue_text="", language="en"):
        carried = boundary.audio_phones(audio)
        phones, phone_set = carried if carried else (None, "ipa")
        cues = lipsync_audio(boundary.audio_from_comfy(audio), dialogue_text or None, engine, extended_shapes,
                             work_dir=boundary.temp_directory(), language=(language or "en").strip() or "en",
                             phones=phones, phone_set=phone_set)
        rhubarb = write_cues(cues, "json")
        # ui: the editor extension draws the cues as the node's timeline and plays the line under it
        # (js/animstudio.js); the WAV goes to ComfyUI's temp folder, as core's audio previews do
        preview = boundary.save_preview_audio(boundary.audio_from_comfy(audio))
        return {"ui": {"animstudio_cues": [json.loads(rhubarb)], "audio": [preview]}, "result": (cues, rhubarb)}


class AnimStudioSaveMouthCues:
    DESCRIPTION = ("Writes mouth cues to the output folder in Rhubarb's JSON, TSV, DAT (Moho) or XML format, or as "
                   "Oculus visemes with ARKit blend-shape weights for 3D rigs.")
    CATEGORY = "animstudio/lipsync"
    RETURN_TYPES = ()
    OUTPUT_NODE = True
    FUNCTION = "save"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "mouth_cues": (MOUTH_CUES, {"tooltip": "Cues from Lip Sync."}),
            "format": (list(FORMATS) + ["visemes"], {"default": "json", "tooltip": "File format."}),
            "filename_prefix": ("STRING", {"default": "animstudio/lipsync",
                                           "tooltip": "File name prefix in the output folder; may include subfolders."}),
            "dat_frame_rate": ("INT", {"default": 24, "min": 1, "max": 120,
                                       "tooltip": "Frame rate of DAT (Moho) files."}),
        }, "optional": {
            "audio": ("AUDIO", {"tooltip": "The sound the cues were made from: saved beside them as a WAV of the same "
                                           "name, which the cues name as their soundFile (and an editor can import)."}),
        }}

    def save(self, mouth_cues, format, filename_prefix, dat_frame_rate, audio=None):
        suffix = "json" if format == "visemes" else format
        path, subfolder, name = boundary.next_output_path(filename_prefix, suffix)
        files = [{"filename": name, "subfolder": subfolder, "type": "output"}]
        if audio is not None:
            sound = write_wav(boundary.audio_from_comfy(audio), path.with_suffix(".wav"))
            mouth_cues = replace(mouth_cues, sound_file=sound.name)  # beside the cues: the pair moves together
            files.append({"filename": sound.name, "subfolder": subfolder, "type": "output"})
        if format == "visemes":
            path.write_text(to_viseme_json(mouth_cues), encoding="utf-8")
        elif format == "dat":
            write_cues(mouth_cues, path, frame_rate=dat_frame_rate)
        else:
            write_cues(mouth_cues, path)
        return {"ui": {"files": files}, "result": ()}


class AnimStudioTalkingMouth:
    DESCRIPTION = ("Animates a mouth: each frame at the given rate shows the mouth of the cue covering most of that "
                   "frame (a closed mouth shorter than a frame still gets one), composited into the mouth box of the "
                   "base frame (or frame sequence).")
    CATEGORY = "animstudio/lipsync"
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("frames",)
    OUTPUT_TOOLTIPS = ("One frame per 1/fps of the cues' duration (or of the base sequence, if longer).",)
    FUNCTION = "animate"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "mouth_cues": (MOUTH_CUES, {"tooltip": "Cues from Lip Sync."}),
            "base": ("IMAGE", {"tooltip": "The character: one frame, or a sequence (the last frame is held)."}),
            "x": ("INT", {"default": 0, "min": 0, "max": 16384, "tooltip": "Mouth box left edge, pixels."}),
            "y": ("INT", {"default": 0, "min": 0, "max": 16384, "tooltip": "Mouth box top edge, pixels."}),
            "width": ("INT", {"default": 64, "min": 1, "max": 16384, "tooltip": "Mouth box width, pixels."}),
            "height": ("INT", {"default": 64, "min": 1, "max": 16384, "tooltip": "Mouth box height, pixels."}),
            "fps": ("INT", {"default": 24, "min": 1, "max": 120, "tooltip": "Frame rate of the animation."}),
        }, "optional": {
            "mouth_images": ("IMAGE", {"tooltip": "Mouth shapes as a batch in order A, B, C, D, E, F[, G, H, X]."}),
            "mouth_masks": ("MASK", {"tooltip": "Alpha for mouth_images, same order."}),
            "mouth_folder": ("STRING", {"default": "", "tooltip": "Folder (inside the input folder) with A.png … X.png; "
                                                                "empty with no images: the built-in drawn set."}),
            "mouth_region": ("MASK", {"tooltip": "Where the mouth is on the base frame; when given, its bounding box "
                                                 "replaces x, y, width and height."}),
        }}

    def animate(self, mouth_cues, base, x, y, width, height, fps, mouth_images=None, mouth_masks=None,
                mouth_folder="", mouth_region=None):
        mouths = _mouth_set(mouth_images, mouth_masks, mouth_folder)
        frames = boundary.image_to_frames(base)
        box = MouthBox(x, y, width, height) if mouth_region is None else box_from_mask(boundary.mask_to_array(mouth_region))
        count = max(len(frames), frame_count(mouth_cues, fps))
        progress = boundary.Progress(count)
        out = []
        for frame in talking_frames(mouth_cues, mouths, list(frames), box, fps, count):
            boundary.check_interrupted()
            out.append(frame)
            progress.update(1)
        return (boundary.frames_to_image(np.stack(out)),)


def _mouth_set(mouth_images, mouth_masks, mouth_folder: str):
    if mouth_images is not None:
        masks = boundary.mask_to_array(mouth_masks) if mouth_masks is not None else None
        return mouth_set_from_batch(boundary.image_to_frames(mouth_images), masks)
    if mouth_folder:
        return load_mouth_folder(boundary.input_file(mouth_folder))
    return builtin_mouth_set()


MOUTH_RIGS = "ANIMSTUDIO_MOUTH_RIGS"
#: x, y, width, height as the node's defaults: with locate auto and no face, a box still at these was not set.


class AnimStudioMouthRig:
    DESCRIPTION = ("Where a character's mouth is on a keyframe, and which mouth set to draw there. Chain rigs for "
                   "several characters; Shot Clip then animates each from that character's lines. With locate "
                   "'auto' the mouth is found on the first of frames by dlib's 68-point face landmarks (the "
                   "'faces' extra); through a moving shot (several frames) the box follows the face by optical "
                   "flow, and the mouth is hidden, with a warning, where the track is lost.")
    CATEGORY = "animstudio/lipsync"
    RETURN_TYPES = (MOUTH_RIGS,)
    RETURN_NAMES = ("mouth_rigs",)
    OUTPUT_TOOLTIPS = ("The rigs so far, this one included.",)
    FUNCTION = "rig"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "speaker": ("STRING", {"default": "", "tooltip": "The character, as named in Dialogue Line."}),
            "x": ("INT", {"default": 0, "min": 0, "max": 16384, "tooltip": "Mouth box left edge, keyframe pixels."}),
            "y": ("INT", {"default": 0, "min": 0, "max": 16384, "tooltip": "Mouth box top edge, keyframe pixels."}),
            "width": ("INT", {"default": 64, "min": 1, "max": 16384, "tooltip": "Mouth box width, keyframe pixels."}),
            "height": ("INT", {"default": 64, "min": 1, "max": 16384, "tooltip": "Mouth box height, keyframe pixels."}),
        }, "optional": {
            "mouth_folder": ("STRING", {"default": "", "tooltip": "Folder (inside the input folder) with A.png … X.png; "
                                                                "empty: the built-in drawn set."}),
            "mouth_images": ("IMAGE", {"tooltip": "Mouth shapes as a batch in order A, B, C, D, E, F[, G, H, X]."}),
            "mouth_masks": ("MASK", {"tooltip": "Alpha for mouth_images, same order."}),
            "previous": (MOUTH_RIGS, {"tooltip": "Rigs of other characters in the same shot."}),
            "frames": ("IMAGE", {"tooltip": "The shot's keyframe, or its frames (a moving shot): with several, the "
                                            "mouth box follows the face from frame to frame."}),
            "locate": (LOCATE, {"default": "box", "tooltip": "box: x, y, width, height. auto: find the mouth on the "
                                                             "first of frames (needs the 'faces' extra); when no face "
                                                             "is found, x, y, width, height if set (not 0, 0, 64, 64), "
                                                             "else the mouth is not drawn."}),
            "face_index": ("INT", {"default": 0, "min": 0, "max": 64,
                                   "tooltip": "Which face, counted from the left (0 = leftmost), with locate auto."}),
        }}

    def rig(self, speaker, x, y, width, height, mouth_folder="", mouth_images=None, mouth_masks=None, previous=None,
            frames=None, locate="box", face_index=0):
        mouths = _mouth_set(mouth_images, mouth_masks, mouth_folder)
        rig = locate_rig(speaker, MouthBox(x, y, width, height), mouths,
                         boundary.image_to_frames(frames) if frames is not None else None, locate, face_index)
        return (tuple(previous or ()) + (rig,),)


NODE_CLASS_MAPPINGS = {
    "AnimStudioMouthRig": AnimStudioMouthRig,
    "AnimStudioLipSync": AnimStudioLipSync,
    "AnimStudioSaveMouthCues": AnimStudioSaveMouthCues,
    "AnimStudioTalkingMouth": AnimStudioTalkingMouth,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "AnimStudioMouthRig": "Mouth Rig",
    "AnimStudioLipSync": "Lip Sync (Rhubarb shapes)",
    "AnimStudioSaveMouthCues": "Save Mouth Cues",
    "AnimStudioTalkingMouth": "Talking Mouth",
}
