"""Choosing the lip-sync engine: the ``rhubarb`` binary when it is installed, else the built-in aligner."""
from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from ..audio.clip import AudioClip, write_wav
from .cues import MouthCues, restrict_shapes
from .errors import LipSyncError

log = logging.getLogger(__name__)

ENGINES = ("auto", "rhubarb", "builtin")


def lipsync_audio(audio: AudioClip, text: str | None = None, engine: str = "auto", extended_shapes: str = "GHX",
                  work_dir: str | Path | None = None, sound_file: str = "") -> MouthCues:
    """Mouth cues for ``audio``. ``auto`` runs Rhubarb where ``RHUBARB_PATH`` or PATH has it, else the aligner."""
    if engine not in ENGINES:
        raise LipSyncError(f"unknown lip-sync engine {engine!r}; one of {', '.join(ENGINES)}")
    extended_shapes = "".join(s for s in extended_shapes.upper() if s in "GHX")
    from .rhubarb import rhubarb_available, run_rhubarb

    binary = rhubarb_available()
    if engine == "rhubarb" and binary is None:
        raise LipSyncError("the rhubarb binary was not found: set RHUBARB_PATH to it (or its folder), "
                           "put it on PATH, or choose the built-in engine")
    if binary is not None and engine in ("auto", "rhubarb"):
        with tempfile.TemporaryDirectory(dir=work_dir) as scratch:
            wav = write_wav(audio, Path(scratch) / "speech.wav")
            cues = run_rhubarb(wav, text, extended_shapes=extended_shapes)
        cues = MouthCues(tuple(restrict_shapes(cues.cues, extended_shapes)), cues.duration,
                         sound_file or cues.sound_file, "rhubarb", extended_shapes, cues.notes)
        return cues
    from .aligner import lipsync

    return lipsync(audio, text, extended_shapes, sound_file)
