"""Audio nodes: speech from text, and the joins, fits, levels and mixes a soundtrack needs.

Every node speaks ComfyUI's core ``AUDIO`` (``{"waveform": [B, C, T], "sample_rate"}``), so they plug
into LoadAudio, SaveAudio and PreviewAudio. Thin shells over :mod:`.tts` and :mod:`.mixing`.
"""
from __future__ import annotations

import logging

from .. import boundary
from . import mixing
from .tts import EMOTIONS, VoiceSettings, engine_names, synthesize

log = logging.getLogger(__name__)

AUDIO_TIP = "Audio in ComfyUI's AUDIO format (from TTS, Load Audio, …)."


class AnimStudioTTS:
    DESCRIPTION = ("Speaks a line of dialogue. espeak-ng works everywhere with no model files; Piper, XTTS-v2, "
                   "GPT-SoVITS and OpenAI-compatible servers are used when you have them. Numbers and symbols "
                   "are read as words; long lines are split into sentences and joined without clicks.")
    CATEGORY = "animstudio/audio"
    RETURN_TYPES = ("AUDIO", "STRING")
    RETURN_NAMES = ("audio", "notes")
    OUTPUT_TOOLTIPS = ("The spoken line.", "What the engine could not honour (an emotion, a pitch shift), one per line.")
    FUNCTION = "speak"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "text": ("STRING", {"multiline": True, "default": "Hello there.", "tooltip": "The line to say."}),
            "engine": (engine_names(), {"default": "espeak", "tooltip": "Speech engine."}),
            "voice": ("STRING", {"default": "", "tooltip": "Engine voice: espeak voice, Piper .onnx file, reference WAV "
                                                           "(XTTS, GPT-SoVITS) or server voice name. Empty: the language's default."}),
            "language": ("STRING", {"default": "en", "tooltip": "Language code such as en, en-gb, fr, de."}),
            "rate": ("FLOAT", {"default": 1.0, "min": 0.25, "max": 4.0, "step": 0.05, "tooltip": "Speaking speed, 1 = normal."}),
            "pitch": ("FLOAT", {"default": 0.0, "min": -12.0, "max": 12.0, "step": 0.5, "tooltip": "Pitch shift in semitones."}),
            "emotion": (list(EMOTIONS), {"default": "neutral", "tooltip": "How the line is said, as far as the engine can."}),
        }, "optional": {
            "server_url": ("STRING", {"default": "", "tooltip": "For server engines (GPT-SoVITS, OpenAI-compatible)."}),
            "model": ("STRING", {"default": "", "tooltip": "Model name or folder, for engines that need one."}),
            "energy": ("FLOAT", {"default": 1.0, "min": 0.05, "max": 4.0, "step": 0.05,
                                 "tooltip": "The spoken sound's level, 1 = as the engine speaks it."}),
            "emotion_prosody": ("BOOLEAN", {"default": True, "tooltip": "On: the emotion's own rate, pitch and energy "
                                                                        "go on top of these. Off: rate, pitch and "
                                                                        "energy are the line's already (a storyboard's "
                                                                        "render works them out); the emotion still "
                                                                        "picks the engine's style."}),
        }}

    def speak(self, text, engine, voice, language, rate, pitch, emotion, server_url="", model="", energy=1.0,
              emotion_prosody=True):
        settings = VoiceSettings(engine, voice or None, language, rate, pitch, emotion, server_url or None, model or None,
                                 energy, bool(emotion_prosody))
        speech = synthesize(text, settings)
        for note in speech.notes:
            log.warning("%s: %s", engine, note)
        return (boundary.audio_to_comfy(speech.audio, speech.phones, speech.phone_set, speech.words),
                "\n".join(speech.notes))


class AnimStudioJoinAudio:
    DESCRIPTION = "Joins two pieces of audio with a gap of silence between them; chain it to build a shot's dialogue."
    CATEGORY = "animstudio/audio"
    RETURN_TYPES = ("AUDIO",)
    OUTPUT_TOOLTIPS = ("The first audio, the gap, then the second.",)
    FUNCTION = "join"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "first": ("AUDIO", {"tooltip": AUDIO_TIP}),
            "second": ("AUDIO", {"tooltip": AUDIO_TIP}),
            "gap_seconds": ("FLOAT", {"default": 0.35, "min": 0.0, "max": 30.0, "step": 0.05,
                                      "tooltip": "Silence between them."}),
        }}

    def join(self, first, second, gap_seconds):
        clips = [boundary.audio_from_comfy(first), boundary.audio_from_comfy(second)]
        return (boundary.audio_to_comfy(mixing.concatenate(clips, gap_seconds)),)


class AnimStudioFitAudio:
    DESCRIPTION = "Pads audio with silence (before and after) or cuts it, to an exact length: a shot's soundtrack."
    CATEGORY = "animstudio/audio"
    RETURN_TYPES = ("AUDIO",)
    OUTPUT_TOOLTIPS = ("The audio, exactly the requested length.",)
    FUNCTION = "fit"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "audio": ("AUDIO", {"tooltip": AUDIO_TIP}),
            "seconds": ("FLOAT", {"default": 3.0, "min": 0.01, "max": 3600.0, "step": 0.01, "tooltip": "Length wanted."}),
            "lead_seconds": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 60.0, "step": 0.05,
                                       "tooltip": "Silence before the audio starts."}),
        }}

    def fit(self, audio, seconds, lead_seconds):
        clip = mixing.concatenate([boundary.audio_from_comfy(audio)], lead_seconds=lead_seconds)
        return (boundary.audio_to_comfy(mixing.fit_length(clip, seconds)),)


class AnimStudioNormalizeLoudness:
    DESCRIPTION = "Levels audio to a loudness target (ITU-R BS.1770 LUFS) without clipping, so every line sits alike."
    CATEGORY = "animstudio/audio"
    RETURN_TYPES = ("AUDIO",)
    OUTPUT_TOOLTIPS = ("The levelled audio.",)
    FUNCTION = "normalize"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "audio": ("AUDIO", {"tooltip": AUDIO_TIP}),
            "target_lufs": ("FLOAT", {"default": mixing.DIALOGUE_LUFS, "min": -40.0, "max": -5.0, "step": 0.5,
                                      "tooltip": "Integrated loudness target; -18 suits dialogue, -23 broadcast."}),
        }}

    def normalize(self, audio, target_lufs):
        return (boundary.audio_to_comfy(mixing.normalize_loudness(boundary.audio_from_comfy(audio), target_lufs)),)


class AnimStudioMixMusic:
    DESCRIPTION = "Lays a music bed under dialogue and ducks it while anyone speaks, then lets it swell back."
    CATEGORY = "animstudio/audio"
    RETURN_TYPES = ("AUDIO",)
    OUTPUT_TOOLTIPS = ("Dialogue and music mixed, as long as the dialogue.",)
    FUNCTION = "mix"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "dialogue": ("AUDIO", {"tooltip": "The voices (sets the length of the mix)."}),
            "music": ("AUDIO", {"tooltip": "The music bed."}),
            "music_gain_db": ("FLOAT", {"default": -10.0, "min": -60.0, "max": 12.0, "step": 0.5,
                                        "tooltip": "Music level when nobody speaks."}),
            "duck_db": ("FLOAT", {"default": -12.0, "min": -60.0, "max": 0.0, "step": 0.5,
                                  "tooltip": "How much the music dips under speech."}),
        }}

    def mix(self, dialogue, music, music_gain_db, duck_db):
        mixed = mixing.mix_with_ducking(boundary.audio_from_comfy(dialogue), boundary.audio_from_comfy(music),
                                        music_gain_db, duck_db)
        return (boundary.audio_to_comfy(mixed),)


AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".opus", ".m4a", ".aiff")


class AnimStudioLoadAudio:
    DESCRIPTION = ("Loads a sound file (music bed, recorded line) from the input folder. Like core Load Audio, but it "
                   "also runs in Animation Studio's embedded engine without torch.")
    CATEGORY = "animstudio/audio"
    RETURN_TYPES = ("AUDIO",)
    OUTPUT_TOOLTIPS = ("The sound, in ComfyUI's AUDIO format.",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "audio": (boundary.list_input_files(AUDIO_SUFFIXES) or [""], {
                "audio_upload": True, "tooltip": "Sound file in the input folder (subfolders allowed)."}),
        }}

    @classmethod
    def IS_CHANGED(cls, audio):
        return boundary.input_file_hash(audio)

    @classmethod
    def VALIDATE_INPUTS(cls, audio):
        return boundary.input_file_problem(audio)

    def load(self, audio):
        from .clip import read_audio

        return (boundary.audio_to_comfy(read_audio(boundary.input_file(audio))),)


NODE_CLASS_MAPPINGS = {
    "AnimStudioLoadAudio": AnimStudioLoadAudio,
    "AnimStudioTTS": AnimStudioTTS,
    "AnimStudioJoinAudio": AnimStudioJoinAudio,
    "AnimStudioFitAudio": AnimStudioFitAudio,
    "AnimStudioNormalizeLoudness": AnimStudioNormalizeLoudness,
    "AnimStudioMixMusic": AnimStudioMixMusic,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "AnimStudioLoadAudio": "Load Audio (Animation Studio)",
    "AnimStudioTTS": "Text to Speech (Animation Studio)",
    "AnimStudioJoinAudio": "Join Audio",
    "AnimStudioFitAudio": "Fit Audio to Length",
    "AnimStudioNormalizeLoudness": "Normalize Loudness",
    "AnimStudioMixMusic": "Mix Music under Dialogue",
}
