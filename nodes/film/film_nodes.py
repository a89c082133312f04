"""Film nodes: storyboard panels and keyframes become shot clips, clips become a cut, the cut an MP4.

Thin shells over :mod:`.clips`, :mod:`.cut`, :mod:`.frames` and :mod:`.video_io`. Clips and films travel between
nodes as lazy frame streams (``ANIMSTUDIO_CLIP``, ``ANIMSTUDIO_FILM``): nothing is decoded or drawn
until the save node streams the cut into the encoder, so a long film costs no more memory than a short one.
"""
from __future__ import annotations

import logging
import math

import numpy as np

from ...common.inputs import FONT_SUFFIXES
from ...common.paths import safe_filename
from .. import boundary
from .camera import CAMERA_MOVES
from .clips import TRANSITIONS, Film, Transition, clip_from_frames, video_clip
from .cut import finish_film
from .dialogue import shot_length
from .frames import load_rgb
from .editorial import EXPORT_CHOICES, parse_exports
from .sidecars import SUBTITLE_FILES
from .splice import parse_key_frames
from .subtitles import FontError, SubtitleStyle, system_font
from .video_io import CONTAINERS

log = logging.getLogger(__name__)

CLIP = "ANIMSTUDIO_CLIP"
FILM = "ANIMSTUDIO_FILM"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
VIDEO_SUFFIXES = (".mp4", ".webm", ".mov", ".mkv")


class AnimStudioLoadPanel:
    DESCRIPTION = ("Loads a storyboard panel or supplied keyframe from ComfyUI's input folder. Unlike Load Image it "
                   "also runs in Animation Studio's embedded engine without torch, so animatics render anywhere.")
    CATEGORY = "animstudio/film"
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("image",)
    OUTPUT_TOOLTIPS = ("The panel as an RGB image batch of one.",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "image": (boundary.list_input_files(IMAGE_SUFFIXES) or [""], {
                "image_upload": True,
                "tooltip": "Panel or keyframe image in the input folder (subfolders allowed)."}),
        }}

    @classmethod
    def IS_CHANGED(cls, image):
        return boundary.input_file_hash(image)

    @classmethod
    def VALIDATE_INPUTS(cls, image):
        return boundary.input_file_problem(image)

    def load(self, image):
        return (boundary.frames_to_image(load_rgb(boundary.input_file(image))),)


class AnimStudioShotClip:
    DESCRIPTION = ("Turns a keyframe into a shot: the picture fitted to the film's size and held for the shot's "
                   "length, with an eased camera move. A batch of several images plays as frames instead.")
    CATEGORY = "animstudio/film"
    RETURN_TYPES = (CLIP,)
    RETURN_NAMES = ("clip",)
    OUTPUT_TOOLTIPS = ("The shot as a lazy clip: frames are drawn only when the film is saved.",)
    FUNCTION = "make_clip"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "image": ("IMAGE", {"tooltip": "The shot's keyframe (one image), or its frames (a batch)."}),
            "seconds": ("FLOAT", {"default": 3.0, "min": 0.05, "max": 600.0, "step": 0.05,
                                  "tooltip": "How long the shot stays on screen."}),
            "width": ("INT", {"default": 512, "min": 16, "max": 8192, "step": 2,
                              "tooltip": "Film width in pixels (even)."}),
            "height": ("INT", {"default": 288, "min": 16, "max": 8192, "step": 2,
                               "tooltip": "Film height in pixels (even)."}),
            "fps": ("INT", {"default": 12, "min": 1, "max": 120, "tooltip": "Film frame rate."}),
            "camera_move": (list(CAMERA_MOVES), {"default": "static",
                                                 "tooltip": "Camera move over the still keyframe, eased in and out."}),
            "seed": ("INT", {"default": 0, "min": 0, "max": 0xFFFFFFFFFFFFFFFF,
                             "tooltip": "Seed for moves with randomness (shake)."}),
        }, "optional": {
            "label": ("STRING", {"default": "", "tooltip": "Name of the shot, shown in errors and reports."}),
            "audio": ("AUDIO", {"tooltip": "The shot's sound (its dialogue), starting with its first frame."}),
            "fit_to_audio": ("BOOLEAN", {"default": False, "tooltip": "Make the shot exactly as long as its "
                                                                      "audio plus tail_seconds (a storyboard's "
                                                                      "fit_to_dialogue), whatever 'seconds' says."}),
            "tail_seconds": ("FLOAT", {"default": 0.5, "min": 0.0, "max": 10.0, "step": 0.05,
                                       "tooltip": "Breath after the audio when fitting to it."}),
            "dialogue": ("ANIMSTUDIO_DIALOGUE", {"tooltip": "The shot's dialogue: its sound, subtitles and mouth "
                                                            "timing (used instead of audio)."}),
            "mouth_rigs": ("ANIMSTUDIO_MOUTH_RIGS", {"tooltip": "Where each character's mouth is on the keyframe; "
                                                                "their mouths then move with their lines."}),
            "frames_fps": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 240.0, "step": 0.001,
                                     "tooltip": "The rate a frame batch was made at (a video model's: Wan 16, HuMo "
                                                "25); its frames are resampled to the film's rate by time. 0: one "
                                                "frame per film frame."}),
            "lead_seconds": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 10.0, "step": 0.05,
                                       "tooltip": "The transition into this shot: the dialogue starts after it (no "
                                                  "line is heard, nor its subtitle shown, over the shot before)."}),
            "out_seconds": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 10.0, "step": 0.05,
                                      "tooltip": "The transition out of this shot: the dialogue ends before it; the "
                                                 "shot grows as needed."}),
            "move_strength": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 2.0, "step": 0.05,
                                        "tooltip": "How far the camera move goes: 1 its full travel, 0.5 a gentle "
                                                   "push-in or a subtle shake (a pan, tilt or shake goes at most 1)."}),
        }}

    def make_clip(self, image, seconds, width, height, fps, camera_move, seed, label="", audio=None,
                  fit_to_audio=False, tail_seconds=0.5, dialogue=None, mouth_rigs=None, frames_fps=0.0,
                  lead_seconds=0.0, out_seconds=0.0, move_strength=1.0):
        sound = boundary.audio_from_comfy(audio) if audio is not None else None
        spoken = dialogue.seconds if dialogue is not None else (sound.seconds if sound is not None else 0.0)
        # fitted: exactly the speech and its tail (the compile-time estimate was only a guess); the lines wait for
        # the transition into the shot and end before the one out of it
        seconds, start = shot_length(seconds, spoken, fit_to_audio, tail_seconds,
                                     lead_seconds if dialogue is not None else 0.0,
                                     out_seconds if dialogue is not None else 0.0)
        if dialogue is not None and start:
            dialogue = dialogue.shifted(start)
        if spoken and (fit_to_audio or start):  # whole frames, rounded up: the last word is never cut short
            seconds = math.ceil(seconds * fps - 1e-6) / fps
        warnings = []
        if spoken > seconds:  # (fitting to the audio never leaves it longer)
            warnings.append(f"shot {label or '?'}: its sound ({spoken:.2f} s) is longer than the shot "
                            f"({seconds:.2f} s) and is cut at the shot's end")
            log.warning("%s", warnings[-1])
        clip = clip_from_frames(boundary.image_to_frames(image), seconds, width, height, fps, camera_move, seed,
                                label, sound, dialogue, tuple(mouth_rigs or ()), frames_fps, float(move_strength))
        # ui.images: the editor shows the shot's first frame on the node, as it does for core previews, at the
        # film's own size (the editor prints the picture's size under it); ui.warnings: what a headless client
        # reports with the shot (a mouth not drawn, a track lost)
        first = next(iter(clip.frames()), None)
        thumbnails = [boundary.save_preview_image(first, width=first.shape[1])] if first is not None else []
        return {"ui": {"images": thumbnails, "warnings": warnings + list(clip.warnings)}, "result": (clip,)}


class AnimStudioCameraMove:
    DESCRIPTION = ("A camera move (Ken Burns): pan, tilt, zoom, push in or out, shake or hold over a still or a frame "
                   "sequence, eased in and out, for a length at a frame rate. Frames never show past the picture's edge.")
    CATEGORY = "animstudio/film"
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("frames",)
    OUTPUT_TOOLTIPS = ("seconds × fps frames of the move, at width × height.",)
    FUNCTION = "move"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "images": ("IMAGE", {"tooltip": "A still, or a sequence (its last frame is held if the move is longer)."}),
            "move": (list(CAMERA_MOVES), {"default": "zoom_in", "tooltip": "The camera move; static holds."}),
            "seconds": ("FLOAT", {"default": 3.0, "min": 0.05, "max": 600.0, "step": 0.05, "tooltip": "Length."}),
            "fps": ("INT", {"default": 12, "min": 1, "max": 120, "tooltip": "Frame rate."}),
            "width": ("INT", {"default": 512, "min": 16, "max": 8192, "step": 2, "tooltip": "Output width (even)."}),
            "height": ("INT", {"default": 288, "min": 16, "max": 8192, "step": 2, "tooltip": "Output height (even)."}),
            "seed": ("INT", {"default": 0, "min": 0, "max": 0xFFFFFFFFFFFFFFFF, "tooltip": "Seed for shake."}),
        }}

    def move(self, images, move, seconds, fps, width, height, seed):
        clip = clip_from_frames(boundary.image_to_frames(images), seconds, width, height, fps, move, seed)
        progress = boundary.Progress(clip.frame_count)
        frames = []
        for frame in clip.frames():
            boundary.check_interrupted()
            frames.append(frame)
            progress.update(1)
        return (boundary.frames_to_image(np.stack(frames)),)


class AnimStudioLoadVideoClip:
    DESCRIPTION = ("Loads a rendered shot (a video in the input folder) as a clip, decoded lazily. The compose "
                   "graph uses it to join shots rendered separately, on one machine or many.")
    CATEGORY = "animstudio/film"
    RETURN_TYPES = (CLIP,)
    RETURN_NAMES = ("clip",)
    OUTPUT_TOOLTIPS = ("The video as a lazy clip.",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "video": (boundary.list_input_files(VIDEO_SUFFIXES) or [""], {
                "video_upload": True, "tooltip": "Video file in the input folder (subfolders allowed)."}),
        }, "optional": {
            "label": ("STRING", {"default": "", "tooltip": "The clip's name in the film (a shot id); empty: the "
                                                          "file's name."}),
        }}

    @classmethod
    def IS_CHANGED(cls, video):
        return boundary.input_file_hash(video)

    @classmethod
    def VALIDATE_INPUTS(cls, video, label=""):
        return boundary.input_file_problem(video)

    def load(self, video, label=""):
        return (video_clip(boundary.input_file(video), label),)


class AnimStudioAppendClip:
    DESCRIPTION = "Adds a clip to the end of a film, joined by a transition. Chain one per shot to build the cut."
    CATEGORY = "animstudio/film"
    RETURN_TYPES = (FILM,)
    RETURN_NAMES = ("film",)
    OUTPUT_TOOLTIPS = ("The film with the clip appended.",)
    FUNCTION = "append"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "clip": (CLIP, {"tooltip": "The clip to add at the end."}),
            "transition": (list(TRANSITIONS), {"default": "cut",
                                               "tooltip": "How the film moves into this clip."}),
            "transition_seconds": ("FLOAT", {"default": 0.5, "min": 0.0, "max": 10.0, "step": 0.05,
                                             "tooltip": "Length of the transition (ignored for a cut)."}),
        }, "optional": {
            "film": (FILM, {"tooltip": "The film so far; leave empty to start a new film."}),
        }}

    def append(self, clip, transition, transition_seconds, film=None):
        return ((film or Film()).append(clip, Transition(transition, float(transition_seconds))),)


class AnimStudioSaveFilm:
    DESCRIPTION = ("Renders a film to an H.264 + AAC MP4 in the output folder, streaming frames to the encoder so "
                   "memory stays flat however long the film is: dialogue at its times, an optional music bed ducked "
                   "under it, subtitles burned in and/or written as SRT/WebVTT. Shows progress and stops on Cancel.")
    CATEGORY = "animstudio/film"
    RETURN_TYPES = ("VIDEO",)
    RETURN_NAMES = ("video",)
    OUTPUT_TOOLTIPS = ("The saved film as ComfyUI's VIDEO, for core video nodes (Save Video, Get Video Components).",)
    OUTPUT_NODE = True
    FUNCTION = "save"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "film": (FILM, {"tooltip": "The film to render."}),
            "filename_prefix": ("STRING", {"default": "animstudio/film",
                                           "tooltip": "File name prefix in the output folder; may include subfolders."}),
        }, "optional": {
            "burn_subtitles": ("BOOLEAN", {"default": False, "tooltip": "Draw the dialogue's subtitles on the frames."}),
            "subtitle_files": (list(SUBTITLE_FILES), {"default": "none", "tooltip": "Subtitle sidecar files next to "
                                                      "the film: SRT; WebVTT with a timestamp before each word; ASS "
                                                      "with karaoke tags that light each word as it is said."}),
            "subtitle_size": ("INT", {"default": 0, "min": 0, "max": 400,
                                      "tooltip": "Caption height in pixels; 0 = 5.5% of the frame height."}),
            "subtitle_font": ("STRING", {"default": "", "tooltip": "Caption font: a family from this machine's font "
                                                                   "list (\"DejaVu Sans\") or a .ttf/.otf/.ttc file in the "
                                                                   "input folder; empty = one that covers the text (CJK "
                                                                   "included)."}),
            "subtitle_position": (["bottom", "top"], {"default": "bottom", "tooltip": "Where captions sit."}),
            "subtitle_speaker": ("BOOLEAN", {"default": True, "tooltip": "Start each caption (burned in and in the "
                                                                         "sidecar files) with the speaker's name."}),
            "music": ("AUDIO", {"tooltip": "A music bed under the whole film (cut or padded to its length)."}),
            "music_gain_db": ("FLOAT", {"default": -14.0, "min": -60.0, "max": 12.0, "step": 0.5,
                                        "tooltip": "Music level when nobody speaks."}),
            "duck_db": ("FLOAT", {"default": -10.0, "min": -60.0, "max": 0.0, "step": 0.5,
                                  "tooltip": "How much the music dips under dialogue."}),
            "crf": ("INT", {"default": 18, "min": 0, "max": 51, "tooltip": "H.264 quality: lower is better and "
                                                                          "larger; 18 looks lossless, 10 for intermediates."}),
            "loudness_lufs": ("FLOAT", {"default": -14.0, "min": -40.0, "max": 0.0, "step": 0.5,
                                        "tooltip": "Master the sound to this integrated loudness (ITU-R BS.1770) under "
                                                   "a -1 dBTP true-peak ceiling, faded in and out at the ends: -14 "
                                                   "for the web, -16 for podcasts and mobile, -23 for EBU R128 "
                                                   "broadcast. 0 leaves the mix as it is (a shot's intermediate "
                                                   "video)."}),
            "export": (list(EXPORT_CHOICES), {"default": "none", "tooltip": "The cut for editors, beside the film: "
                                              "FCPXML (Final Cut Pro), FCP 7 XML (Premiere, Resolve), CMX 3600 EDL, "
                                              "OTIO; each shot is its stretch of this film, cut where it starts."}),
            "key_frames": ("STRING", {"default": "", "tooltip": "For a shot video a film will be joined from: frame "
                                      "numbers (comma-separated; negative ones count from the end) where a fresh "
                                      "picture group starts, and no B-frames, so the film copies this video's frames "
                                      "instead of encoding them again. Empty: an ordinary encode."}),
            "format": (list(CONTAINERS), {"default": "mp4", "tooltip": "mp4: H.264 + AAC, plays everywhere; webm: "
                                                                        "VP9 + Opus; mov: ProRes 422 HQ for editing."}),
        }}

    def save(self, film, filename_prefix, burn_subtitles=False, subtitle_files="none", subtitle_size=0,
             subtitle_font="", subtitle_position="bottom", music=None, music_gain_db=-14.0, duck_db=-10.0, crf=18,
             format="mp4", loudness_lufs=-14.0, subtitle_speaker=True, export="none", key_frames=""):
        path, subfolder, name = boundary.next_output_path(filename_prefix, format)
        style = SubtitleStyle(font=_font_file(subtitle_font), size=subtitle_size, position=subtitle_position)
        music_clip = boundary.audio_from_comfy(music) if music is not None else None
        done = finish_film(film, path, style, burn_subtitles, subtitle_files, subtitle_speaker, music_clip,
                           music_gain_db, duck_db, crf, loudness_lufs or None, parse_key_frames(key_frames),
                           boundary.temp_directory() / "animstudio-segments" / safe_filename(filename_prefix),
                           parse_exports(export))
        files = [{"filename": f.name, "subfolder": subfolder, "type": "output"} for f in done.files]
        # ui.timeline: each shot's time on screen and its lines', for the client's QC and exports; ui.frames: how
        # many frames were encoded and how many copied from shots encoded before (smart rendering)
        return {"ui": {"images": files[:1], "animated": (True,), "files": files[1:], "timeline": done.timeline,
                       "frames": [{"encoded": done.frames.encoded, "copied": done.frames.copied}]},
                "result": (boundary.video_output(path),)}


def _font_file(name: str) -> str:
    """A caption font named by a graph: a file inside the input folder, or a family of the font list; never a
    path elsewhere on this machine."""
    if not name:
        return ""
    if name.lower().endswith(FONT_SUFFIXES):
        path = boundary.input_file(name)
        if not path.is_file():
            raise FontError(f"subtitle font {name!r} not found in the input folder")
        return str(path)
    return system_font(name)


NODE_CLASS_MAPPINGS = {
    "AnimStudioLoadPanel": AnimStudioLoadPanel,
    "AnimStudioShotClip": AnimStudioShotClip,
    "AnimStudioCameraMove": AnimStudioCameraMove,
    "AnimStudioLoadVideoClip": AnimStudioLoadVideoClip,
    "AnimStudioAppendClip": AnimStudioAppendClip,
    "AnimStudioSaveFilm": AnimStudioSaveFilm,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "AnimStudioLoadPanel": "Load Panel (Animation Studio)",
    "AnimStudioShotClip": "Shot Clip from Keyframe",
    "AnimStudioCameraMove": "Camera Move",
    "AnimStudioLoadVideoClip": "Load Video Clip",
    "AnimStudioAppendClip": "Append Clip to Film",
    "AnimStudioSaveFilm": "Save Film (MP4)",
}
