"""Choosing how to lip-sync, best source first.

1. **The voice's own phones** (``phones``): a TTS engine that reports what it spoke (espeak-ng, Piper with
   alignments) gives exact timings in any language, so they are used as they are: no recognition and
   no rhubarb (:mod:`.from_voice`).
2. **English**: the ``rhubarb`` binary when it is installed (``auto`` or ``rhubarb``), else the built-in
   pocketsphinx aligner, with the dialogue text when there is one.
3. **Other languages** (an espeak-ng code such as ``cmn``, ``ru``, ``fr``): pocketsphinx and Rhubarb only
   know English words, so with the text the DTW aligner (:mod:`.dtw_align`) carries espeak-ng's phones
   for that text onto the audio; without text, Rhubarb's language-independent phonetic recogniser when
   installed, else open/closed cues from loudness.
"""
from __future__ import annotations

import logging
import tempfile
from dataclasses import replace
from pathlib import Path

from ..audio.clip import AudioClip, write_wav
from .cues import MouthCues, restrict_shapes
from .errors import LipSyncError

log = logging.getLogger(__name__)

ENGINES = ("auto", "rhubarb", "builtin")


def is_english(language: str | None) -> bool:
    """True for ``en`` and its regional codes (``en-us``, ``en_GB``), and for no language at all."""
    return (language or "en").strip().lower().replace("_", "-").split("-")[0] in ("en", "")


def check_language(language: str) -> str:
    """The espeak-ng voice for ``language``; a :class:`LipSyncError` naming the languages it has when none."""
    from ..audio.engines import EspeakEngine
    from ..audio.tts import TTSError, VoiceSettings

    try:
        return EspeakEngine().resolve_voice(VoiceSettings(language=language))
    except TTSError as exc:
        raise LipSyncError(f"unsupported lip-sync language {language!r}: {exc}") from None


def _rhubarb(audio: AudioClip, text: str | None, extended_shapes: str, work_dir, sound_file: str,
             recognizer: str = "pocketSphinx") -> MouthCues:
    from .rhubarb import run_rhubarb

    with tempfile.TemporaryDirectory(dir=work_dir) as scratch:
        wav = write_wav(audio, Path(scratch) / "speech.wav")
        cues = run_rhubarb(wav, text, extended_shapes=extended_shapes, recognizer=recognizer)
    return MouthCues(tuple(restrict_shapes(cues.cues, extended_shapes)), cues.duration,
                     sound_file or cues.sound_file, "rhubarb", extended_shapes, cues.notes)


def _other_language(audio: AudioClip, text: str | None, language: str, engine: str, extended_shapes: str,
                    work_dir, sound_file: str, binary) -> MouthCues:
    check_language(language)
    if text and text.strip():
        try:
            from .dtw_align import align_with_text
        except ImportError as exc:
            raise LipSyncError(f"lip sync in {language!r} needs the text aligner (dtw_align), which could not be "
                               f"loaded: {exc}") from None
        from .from_voice import cues_from_phone_timings

        phones = align_with_text(audio, text, language)
        cues = cues_from_phone_timings(phones, audio.seconds, extended_shapes, sound_file, language)
        return replace(cues, engine="animstudio-dtw",
                       notes=(f"phones of the {language!r} text spoken by espeak-ng, carried onto the audio by "
                              "dynamic time warping",))
    if binary is not None and engine in ("auto", "rhubarb"):
        cues = _rhubarb(audio, None, extended_shapes, work_dir, sound_file, recognizer="phonetic")
        return replace(cues, notes=cues.notes + (f"language {language!r}: Rhubarb's phonetic recogniser, "
                                                 "no dialogue text",))
    from .dtw_align import energy_cues_without_text

    cues = energy_cues_without_text(audio)
    return MouthCues(tuple(restrict_shapes(cues.cues, extended_shapes)), cues.duration, sound_file, cues.engine,
                     extended_shapes, cues.notes + (f"language {language!r} without dialogue text: mouth opening "
                                                    "from loudness only; give the text for real mouth shapes",))


def lipsync_audio(audio: AudioClip, text: str | None = None, engine: str = "auto", extended_shapes: str = "GHX",
                  work_dir: str | Path | None = None, sound_file: str = "", language: str = "en",
                  phones=None, phone_set: str = "ipa") -> MouthCues:
    """Mouth cues for ``audio`` in the order of the module docstring.

    ``phones``: the voice's own timings (``PhoneTiming`` or ``(phone, start, end)``) in ``phone_set``;
    when given, ``engine`` and ``text`` are not needed. ``language``: an espeak-ng language code.
    """
    if engine not in ENGINES:
        raise LipSyncError(f"unknown lip-sync engine {engine!r}; one of {', '.join(ENGINES)}")
    extended_shapes = "".join(s for s in extended_shapes.upper() if s in "GHX")
    if phones:
        from .from_voice import cues_from_phone_timings

        log.debug("lip sync from %d phones the voice reported", len(phones))
        return cues_from_phone_timings(phones, audio.seconds, extended_shapes, sound_file, language, phone_set)
    from .rhubarb import rhubarb_available

    binary = rhubarb_available()
    if engine == "rhubarb" and binary is None:
        raise LipSyncError("the rhubarb binary was not found: set RHUBARB_PATH to it (or its folder), "
                           "put it on PATH, or choose the built-in engine")
    if not is_english(language):
        return _other_language(audio, text, language, engine, extended_shapes, work_dir, sound_file, binary)
    if binary is not None and engine in ("auto", "rhubarb"):
        return _rhubarb(audio, text, extended_shapes, work_dir, sound_file)
    from .aligner import lipsync

    return lipsync(audio, text, extended_shapes, sound_file)
