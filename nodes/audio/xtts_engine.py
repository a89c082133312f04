"""Coqui XTTS-v2: zero-shot voice cloning from a few seconds of a reference recording, 17 languages.

Optional and heavy (torch + the ``coqui-tts`` package + a ~1.8 GB model), so everything is checked
before anything is imported, and everything missing is named in one error: the package, each model
file (``config.json``, ``model.pth``, ``vocab.json``) and the folder it belongs in, the reference WAV.
Nothing is downloaded. The model folder is ``VoiceSettings.model`` (a folder, or a subfolder name of
``models/tts/xtts``), else ComfyUI's ``models/tts/xtts`` (the folder itself or one subfolder holding
the files), else ``$ANIMSTUDIO_XTTS_MODEL``. ``VoiceSettings.voice`` is the reference WAV.

``rate`` is XTTS's ``speed``; pitch is not adjustable, and emotion comes from the reference recording
itself, so both are reported in ``Speech.notes`` rather than dropped silently.
"""
from __future__ import annotations

import importlib.util
import logging
import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from .clip import AudioClip
from .model_folders import comfy_model_dirs, default_model_dir
from .tts import Speech, TTSError, VoiceSettings

log = logging.getLogger(__name__)

MODEL_ENV = "ANIMSTUDIO_XTTS_MODEL"
MODEL_FILES = ("config.json", "model.pth", "vocab.json")
# the languages of the released XTTS-v2 checkpoint (its config.json "languages")
LANGUAGES = ("en", "es", "fr", "de", "it", "pt", "pl", "tr", "ru", "nl", "cs", "ar", "zh-cn", "hu", "ko", "ja", "hi")
SPEED_RANGE = (0.5, 2.0)


def xtts_language(language: str) -> str:
    """Our language code → XTTS's (``zh``/``zh-CN``/``cmn`` → ``zh-cn``); a TTSError when XTTS lacks it."""
    code = (language or "en").lower().replace("_", "-")
    base = code.split("-")[0]
    wanted = "zh-cn" if base in ("zh", "cmn") else base
    if wanted not in LANGUAGES:
        raise TTSError(f"XTTS-v2 does not speak {language!r}; its languages: {', '.join(LANGUAGES)}")
    return wanted


def model_candidates(model: str | None) -> list[Path]:
    """Folders that may hold the XTTS files, best first."""
    xtts_dirs = comfy_model_dirs("tts/xtts")
    if model:
        path = Path(model).expanduser()
        if path.is_absolute() or len(path.parts) > 1 or path.is_dir():
            return [path]
        return [folder / model for folder in xtts_dirs] or [path]
    found = []
    for folder in xtts_dirs:
        found.append(folder)
        if folder.is_dir():
            found += sorted(p for p in folder.iterdir() if p.is_dir() and (p / "config.json").is_file())
    if os.environ.get(MODEL_ENV):
        found.append(Path(os.environ[MODEL_ENV]).expanduser())
    return found


def find_model(model: str | None) -> tuple[Path | None, list[str]]:
    """The folder with all files, or (None, the problem in words)."""
    candidates = model_candidates(model)
    for folder in candidates:
        if all((folder / name).is_file() for name in MODEL_FILES):
            return folder, []
    partial = next((f for f in candidates if f.is_dir() and any((f / n).is_file() for n in MODEL_FILES)), None)
    if partial is not None:
        missing = [n for n in MODEL_FILES if not (partial / n).is_file()]
        return None, [f"the XTTS-v2 model files {', '.join(missing)} are missing from {partial}"]
    where = str(candidates[0]) if model and candidates else default_model_dir("tts/xtts")
    return None, [f"the XTTS-v2 model files {', '.join(MODEL_FILES)} are not in {where} "
                  f"(put the XTTS-v2 model there, or point ${MODEL_ENV} or the voice's model at its folder)"]


def find_reference(voice: str | None) -> tuple[Path | None, list[str]]:
    if not voice:
        return None, ["no reference recording: set the voice to a WAV of the speaker (6-30 s of clean speech)"]
    from ..boundary import comfy_folder_paths, input_directory, input_file

    if comfy_folder_paths() is not None:  # a graph on a server names a recording in the input folder, nothing else
        try:
            candidates = [input_file(voice)]
        except ValueError:
            return None, [f"the reference recording {voice!r} must be a file in ComfyUI's input folder"]
    else:
        path = Path(voice).expanduser()
        candidates = [path]
        if not path.is_absolute():
            try:
                candidates.append(input_directory() / path)
            except RuntimeError:
                pass
    for candidate in candidates:
        if candidate.is_file():
            return candidate, []
    return None, [f"the reference recording {voice} does not exist (give a path, or a file in ComfyUI's input folder)"]


@lru_cache(maxsize=1)
def load_model(folder: str, device: str):
    """XTTS loaded once per process: a few seconds and ~2 GB, too much to repeat per sentence."""
    from TTS.tts.configs.xtts_config import XttsConfig
    from TTS.tts.models.xtts import Xtts

    log.info("loading XTTS-v2 from %s on %s", folder, device)
    config = XttsConfig()
    config.load_json(str(Path(folder, "config.json")))
    model = Xtts.init_from_config(config)
    model.load_checkpoint(config, checkpoint_dir=folder, vocab_path=str(Path(folder, "vocab.json")), eval=True)
    return model.to(device), config


@lru_cache(maxsize=16)
def conditioning(folder: str, device: str, reference: str, mtime: float):
    """The speaker's latents from the reference, once per recording (``mtime`` invalidates an edited file)."""
    model, config = load_model(folder, device)
    return model.get_conditioning_latents(audio_path=[reference], gpt_cond_len=config.gpt_cond_len,
                                          gpt_cond_chunk_len=config.gpt_cond_chunk_len,
                                          max_ref_length=config.max_ref_len, sound_norm_refs=config.sound_norm_refs)


class XTTSEngine:
    """Coqui XTTS-v2 cloning a reference WAV, locally (CUDA when available)."""

    name = "xtts"

    def speak(self, sentence: str, voice: VoiceSettings) -> Speech:
        language = xtts_language(voice.language)
        problems = []
        if importlib.util.find_spec("TTS") is None:
            problems.append("the coqui-tts package is not installed (pip install coqui-tts; it brings torch)")
        folder, missing = find_model(voice.model)
        reference, no_reference = find_reference(voice.voice)
        problems += missing + no_reference
        if problems:
            raise TTSError("XTTS cannot speak: " + "; ".join(problems) + "; nothing is downloaded automatically")
        try:
            import torch

            device = "cuda" if torch.cuda.is_available() else "cpu"
            model, config = load_model(str(folder), device)
            latent, embedding = conditioning(str(folder), device, str(reference), reference.stat().st_mtime)
            speed = min(max(float(voice.rate), SPEED_RANGE[0]), SPEED_RANGE[1])
            out = model.inference(sentence, language, latent, embedding, temperature=config.temperature,
                                  length_penalty=config.length_penalty, repetition_penalty=config.repetition_penalty,
                                  top_k=config.top_k, top_p=config.top_p, speed=speed)
        except (ImportError, RuntimeError, ValueError, AssertionError, OSError) as exc:
            raise TTSError(f"XTTS failed on {sentence[:60]!r}: {exc}") from None
        wav = np.asarray(out["wav"], np.float32).reshape(-1)
        rate = int(getattr(config.audio, "output_sample_rate", 24000))
        notes = []
        if speed != voice.rate:
            notes.append(f"XTTS speaks at rates {SPEED_RANGE[0]}..{SPEED_RANGE[1]}; rate {voice.rate} was clamped")
        if voice.pitch:
            notes.append(f"XTTS cannot shift pitch: the requested {voice.pitch:+g} semitones were not applied")
        if voice.emotion != "neutral":
            notes.append(f"XTTS takes its emotion from the reference recording: {voice.emotion!r} was "
                         "approximated by pace and energy only (use a reference spoken that way)")
        return Speech(AudioClip(np.clip(wav, -1, 1), rate), (), tuple(notes), sentence)
