"""The film's sound, produced a chunk at a time as the encoder asks for it: memory stays flat with length.

Each clip's sound sits at the time its clip starts in the cut (sounds overlapping in a transition
add, as in a mixer), at 48 kHz stereo; a music bed, when given, is ducked under dialogue by a streaming speech
gate and fades out with the film. A shot's own video clips levels above full scale softly; the film's sound is
mastered instead (:mod:`..audio.mastering`: a loudness target, a true-peak limiter, fades at its ends).
"""
from __future__ import annotations

import numpy as np

from ..audio.clip import AudioClip
from ..audio.mixing import SpeechGate, ducked_music_gain, match_channels, resample
from .clips import Film


SAMPLE_RATE, CHANNELS = 48000, 2  # broadcast and web delivery: 48 kHz stereo, dialogue in the centre
MUSIC_FADE_SECONDS = 2.0          # a music bed longer than the film fades out with it instead of being cut


class Soundtrack:
    def __init__(self, film: Film, music: AudioClip | None = None, music_gain_db: float = -14.0,
                 duck_db: float = -10.0, soft_clip: bool = True):
        starts = film.clip_starts()
        voiced = [(starts[i] / film.fps, c.audio) for i, c in enumerate(film.clips) if c.audio is not None]
        self.sample_rate, self.channels = SAMPLE_RATE, CHANNELS
        self.soft_clip = soft_clip  # off when a limiter masters the mix after
        self.frames = int(round(film.seconds * self.sample_rate))
        # each clip's sound is converted when the track reaches it and dropped once passed
        self.placed = [(int(round(start * self.sample_rate)), audio) for start, audio in voiced]
        self._ready: dict[int, np.ndarray] = {}
        self.music = match_channels(resample(music, self.sample_rate), self.channels).samples if music is not None else None
        if self.music is not None and self.music.shape[1] > self.frames:  # it goes on past the film: fade it out
            fade = min(self.frames, int(MUSIC_FADE_SECONDS * self.sample_rate))
            self.music = self.music[:, :self.frames].copy()
            self.music[:, self.frames - fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)[None, :]
        self.music_gain_db, self.duck_db = music_gain_db, duck_db
        self.gate = SpeechGate(self.sample_rate)
        self.position = 0

    @property
    def seconds(self) -> float:
        return self.frames / self.sample_rate

    def read(self, count: int) -> np.ndarray:
        """The next ``count`` samples ``[channels, count]`` (silence past the end); reads must be sequential."""
        start, end = self.position, self.position + count
        chunk = np.zeros((self.channels, count), np.float32)
        for index, (at, audio) in enumerate(self.placed):
            if at >= end or at + audio.seconds * self.sample_rate + 1 < start:
                self._ready.pop(index, None)
                continue
            samples = self._ready.get(index)
            if samples is None:
                samples = self._ready[index] = match_channels(resample(audio, self.sample_rate), self.channels).samples
            lo, hi = max(start, at), min(end, at + samples.shape[1])
            if lo < hi:
                chunk[:, lo - start:hi - start] += samples[:, lo - at:hi - at]
        if self.music is not None:
            amount = self.gate.process(chunk)
            lo, hi = start, min(end, self.music.shape[1])
            if lo < hi:
                gain = ducked_music_gain(amount[:hi - lo], self.music_gain_db, self.duck_db)
                chunk[:, :hi - lo] += self.music[:, lo:hi] * gain[None, :]
        self.position = end
        return soft_clip(chunk) if self.soft_clip else chunk

    def read_all(self) -> AudioClip:
        return AudioClip(self.read(self.frames), self.sample_rate)


def soft_clip(samples: np.ndarray, knee: float = 0.9) -> np.ndarray:
    """Leave everything below ``knee`` untouched; bend what is above smoothly towards ±1."""
    over = np.abs(samples) > knee
    if over.any():
        excess = np.abs(samples[over]) - knee
        samples[over] = np.sign(samples[over]) * (knee + (1 - knee) * np.tanh(excess / (1 - knee)))
    return samples
