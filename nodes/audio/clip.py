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
    """A sound file (WAV, FLAC, OGG, … through libsndfile), else the first sound stream of any container PyAV opens
    (MP4, MOV, MKV, M4A, MP3, …). Raises FileNotFoundError for a missing file and ValueError for one that holds no
    sound it can read."""
    import soundfile

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(2, "file not found", str(path))
    try:
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, soundfile.SoundFileError):  # not a format libsndfile knows
        return read_audio_stream(path)
    return AudioClip(data.T, rate)


def read_audio_stream(path: str | Path) -> AudioClip:
    """The first sound stream of a container (a video file, M4A, MP3, …) through PyAV, decoded whole (sound is small
    next to frames). Raises ValueError when there is none or the file is not a media file."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise ValueError(f"{path}: the file has no sound stream")
            stream = container.streams.audio[0]
            chunks = [_planar(frame) for frame in container.decode(stream)]
            rate = stream.codec_context.sample_rate
    except av.error.FFmpegError as exc:
        raise ValueError(f"{path}: not a sound or video file PyAV can read ({exc.strerror or exc})") from None
    return AudioClip(np.concatenate(chunks, axis=1) if chunks else np.zeros((1, 0), np.float32), rate)


class StreamedAudio:
    """A media file's sound, read like an :class:`AudioClip` but decoded each time its ``samples`` are asked for and
    never held: a film joined from hundreds of shot videos keeps none of their sound between the moments the mix
    uses it (the mixer converts a clip's sound when the track reaches it and drops it once passed)."""

    def __init__(self, path: str | Path):
        clip = read_audio_stream(path)  # decoded once, for its exact length; not kept
        self.path, self.sample_rate, self.channels, self.frames = Path(path), clip.sample_rate, clip.channels, clip.frames

    @property
    def samples(self) -> np.ndarray:
        return read_audio_stream(self.path).samples[:, :self.frames]

    @property
    def seconds(self) -> float:
        return self.frames / self.sample_rate

    def mono(self) -> np.ndarray:
        return self.samples.mean(axis=0)


def _planar(frame) -> np.ndarray:
    """An audio frame as float32 ``[channels, samples]`` whatever its sample layout."""
    array = frame.to_ndarray()
    channels = len(frame.layout.channels)
    if not frame.format.is_planar:
        array = array.reshape(-1, channels).T
    if array.dtype.kind == "i":
        array = array.astype(np.float32) / float(np.iinfo(array.dtype).max)
    return array.astype(np.float32)


def write_wav(clip: AudioClip, path: str | Path, subtype: str = "PCM_16") -> Path:
    import soundfile

    soundfile.write(str(path), np.clip(clip.samples.T, -1.0, 1.0), clip.sample_rate, subtype=subtype, format="WAV")
    return Path(path)
