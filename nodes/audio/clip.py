"""Audio as the stages see it: float32 samples ``[channels, frames]`` in -1..1 and a sample rate.

ComfyUI's ``AUDIO`` is ``{"waveform": torch [B, C, T], "sample_rate": int}``; conversion happens only
in :mod:`animstudio.nodes.boundary`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class AudioClip:
    samples: np.ndarray  # float32 [channels, frames]
    sample_rate: int

    def __post_init__(self):
        samples = np.asarray(self.samples, dtype=np.float32)
        if samples.ndim == 1:
            samples = samples[None, :]
        if samples.ndim != 2:
            raise ValueError(f"audio samples must be [channels, frames], got shape {samples.shape}")
        if self.sample_rate <= 0:
            raise ValueError(f"sample rate must be positive, got {self.sample_rate}")
        object.__setattr__(self, "samples", samples)

    @property
    def channels(self) -> int:
        return self.samples.shape[0]

    @property
    def frames(self) -> int:
        return self.samples.shape[1]

    @property
    def seconds(self) -> float:
        return self.frames / self.sample_rate

    def mono(self) -> np.ndarray:
        """One channel, the mean of all: what aligners and loudness meters listen to."""
        return self.samples.mean(axis=0)

    @classmethod
    def silence(cls, seconds: float, sample_rate: int, channels: int = 1) -> "AudioClip":
        return cls(np.zeros((channels, int(round(seconds * sample_rate))), np.float32), sample_rate)


def read_audio(path: str | Path) -> AudioClip:
    """A sound file (WAV, FLAC, OGG, …) via soundfile (libsndfile)."""
    import soundfile

    data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    return AudioClip(data.T, rate)


def write_wav(clip: AudioClip, path: str | Path, subtype: str = "PCM_16") -> Path:
    import soundfile

    soundfile.write(str(path), np.clip(clip.samples.T, -1.0, 1.0), clip.sample_rate, subtype=subtype, format="WAV")
    return Path(path)
