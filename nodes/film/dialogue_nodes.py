"""Dialogue nodes: spoken lines with their text, speaker and mouth cues, joined into a shot's dialogue.

``ANIMSTUDIO_DIALOGUE`` carries a :class:`~.dialogue.Dialogue`; Shot Clip turns it into the shot's sound,
its subtitles and, with mouth rigs, its moving mouths.
"""
from __future__ import annotations

from .. import boundary
from ..audio.words import words_for_text
from .dialogue import Dialogue, SpokenLine, dialogue_sound

DIALOGUE = "ANIMSTUDIO_DIALOGUE"


class AnimStudioDialogueLine:
    DESCRIPTION = ("One spoken line as dialogue: its audio, what is said (for subtitles), who says it (for the "
                   "mouth rig of that character) and, optionally, its mouth cues from Lip Sync.")
    CATEGORY = "animstudio/film"
    RETURN_TYPES = (DIALOGUE,)
    RETURN_NAMES = ("dialogue",)
    OUTPUT_TOOLTIPS = ("A dialogue of one line, starting at 0.",)
    FUNCTION = "line"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "audio": ("AUDIO", {"tooltip": "The spoken line."}),
            "text": ("STRING", {"multiline": True, "default": "", "tooltip": "What is said (the subtitle)."}),
            "speaker": ("STRING", {"default": "", "tooltip": "Who says it: matches a Mouth Rig's speaker; shown "
                                                             "before the subtitle."}),
        }, "optional": {
            "mouth_cues": ("MOUTH_CUES", {"tooltip": "The line's mouth cues, to animate the speaker's mouth."}),
            "mouth_openness": ("FLOAT", {"default": 1.0, "min": 0.1, "max": 3.0, "step": 0.05,
                                         "tooltip": "How wide the mouth opens while the line is said: the open "
                                                    "shapes' height × this (0.7 a sad murmur, 1.5 a shout)."}),
        }}

    def line(self, audio, text, speaker, mouth_cues=None, mouth_openness=1.0):
        words = words_for_text(text, boundary.audio_words(audio))
        return (Dialogue((SpokenLine(speaker, text, 0.0, boundary.audio_from_comfy(audio), mouth_cues, words,
                                     float(mouth_openness)),)),)


class AnimStudioJoinDialogue:
    DESCRIPTION = "Joins two dialogues: the second starts a pause after the first ends. Chain it for every line of a shot."
    CATEGORY = "animstudio/film"
    RETURN_TYPES = (DIALOGUE,)
    RETURN_NAMES = ("dialogue",)
    OUTPUT_TOOLTIPS = ("Both dialogues, one after the other.",)
    FUNCTION = "join"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "first": (DIALOGUE, {"tooltip": "What is said first."}),
            "second": (DIALOGUE, {"tooltip": "What follows."}),
            "gap_seconds": ("FLOAT", {"default": 0.35, "min": 0.0, "max": 30.0, "step": 0.05,
                                      "tooltip": "Pause between them."}),
        }}

    def join(self, first, second, gap_seconds):
        return (first.then(second, gap_seconds),)


class AnimStudioDialogueAudio:
    DESCRIPTION = ("A dialogue's sound as core AUDIO (every line at its time, silence between, mono): for nodes that "
                   "listen to speech, such as Audio Encoder Encode before Wan S2V or HuMo. The film keeps the "
                   "dialogue's own sound.")
    CATEGORY = "animstudio/film"
    RETURN_TYPES = ("AUDIO",)
    RETURN_NAMES = ("audio",)
    OUTPUT_TOOLTIPS = ("The dialogue's sound from its first moment.",)
    FUNCTION = "audio"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "dialogue": (DIALOGUE, {"tooltip": "The shot's dialogue (Dialogue Line / Join Dialogue)."}),
        }, "optional": {
            "min_seconds": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 600.0, "step": 0.05,
                                      "tooltip": "Pad with silence to at least this long (the shot's length)."}),
        }}

    def audio(self, dialogue, min_seconds=0.0):
        return (boundary.audio_to_comfy(dialogue_sound(dialogue, min_seconds)),)


NODE_CLASS_MAPPINGS = {
    "AnimStudioDialogueLine": AnimStudioDialogueLine,
    "AnimStudioJoinDialogue": AnimStudioJoinDialogue,
    "AnimStudioDialogueAudio": AnimStudioDialogueAudio,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "AnimStudioDialogueLine": "Dialogue Line",
    "AnimStudioJoinDialogue": "Join Dialogue",
    "AnimStudioDialogueAudio": "Dialogue to Audio",
}
