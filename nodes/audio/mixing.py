"""Audio utilities the pipeline and the compositor share: resample, join lines, fit, level, mix with ducking."""
from __future__ import annotations

import numpy as np

from .clip import AudioClip

DIALOGUE_LUFS = -18.0  # broadcast dialogue sits around -23..-16 LUFS; -18 reads well on laptops


def resample(clip: AudioClip, sample_rate: int) -> AudioClip:
    """``clip`` at ``sample_rate`` (soxr, high quality); unchanged if it already is."""
    if clip.sample_rate == sample_rate:
        return clip
    import soxr

    data = soxr.resample(clip.samples.T, clip.sample_rate, sample_rate, quality="HQ")
    return AudioClip(np.asarray(data, np.float32).reshape(-1, clip.channels).T, sample_rate)


def match_channels(clip: AudioClip, channels: int) -> AudioClip:
    if clip.channels == channels:
        return clip
    if clip.channels == 1:
        return AudioClip(np.repeat(clip.samples, channels, axis=0), clip.sample_rate)
    return AudioClip(np.repeat(clip.mono()[None], channels, axis=0), clip.sample_rate)


def pan(clip: AudioClip, position: float) -> AudioClip:
    """A clip placed in stereo at ``position`` (-1 left, 0 centre, 1 right): constant power (sine law), scaled so
    that the centre is the mono clip on both channels, as :func:`match_channels` puts an unpanned one."""
    theta = (float(np.clip(position, -1.0, 1.0)) + 1.0) * np.pi / 4
    mono = clip.mono() if clip.channels > 1 else clip.samples[0]
    gains = np.array([np.cos(theta), np.sin(theta)], np.float32)[:, None] * np.float32(np.sqrt(2.0))
    return AudioClip(mono[None, :] * gains, clip.sample_rate)


def conform(clips: list[AudioClip]) -> list[AudioClip]:
    """All clips at the first clip's sample rate and the largest channel count."""
    rate = clips[0].sample_rate
    channels = max(c.channels for c in clips)
    return [match_channels(resample(c, rate), channels) for c in clips]


def concatenate(clips: list[AudioClip], gap_seconds: float = 0.0, lead_seconds: float = 0.0) -> AudioClip:
    """Lines one after another with ``gap_seconds`` of silence between them (and ``lead_seconds`` before)."""
    if not clips:
        raise ValueError("nothing to join")
    clips = conform(clips)
    rate, channels = clips[0].sample_rate, clips[0].channels
    gap = np.zeros((channels, int(round(gap_seconds * rate))), np.float32)
    parts = [np.zeros((channels, int(round(lead_seconds * rate))), np.float32)]
    for i, clip in enumerate(clips):
        if i:
            parts.append(gap)
        parts.append(clip.samples)
    return AudioClip(np.concatenate(parts, axis=1), rate)


def fit_length(clip: AudioClip, seconds: float) -> AudioClip:
    """Pad with silence or cut (with a short fade) to exactly ``seconds``."""
    frames = int(round(seconds * clip.sample_rate))
    if frames >= clip.frames:
        return AudioClip(np.pad(clip.samples, ((0, 0), (0, frames - clip.frames))), clip.sample_rate)
    out = clip.samples[:, :frames].copy()
    fade = min(frames, int(0.01 * clip.sample_rate))
    if fade:
        out[:, -fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
    return AudioClip(out, clip.sample_rate)


def loudness(clip: AudioClip) -> float:
    """Integrated loudness in LUFS (ITU-R BS.1770 via pyloudnorm); -inf for silence or very short clips."""
    import pyloudnorm

    meter = pyloudnorm.Meter(clip.sample_rate)
    if clip.seconds < 0.4:  # BS.1770 gates on 400 ms blocks
        padded = fit_length(clip, 0.41)
        return float(meter.integrated_loudness(padded.samples.T))
    return float(meter.integrated_loudness(clip.samples.T))


def normalize_loudness(clip: AudioClip, target_lufs: float = DIALOGUE_LUFS, peak_limit: float = 0.98) -> AudioClip:
    """Level ``clip`` to ``target_lufs``, never letting a peak pass ``peak_limit``. Silence stays silence."""
    current = loudness(clip)
    if not np.isfinite(current):
        return clip
    gain = 10 ** ((target_lufs - current) / 20)
    peak = float(np.abs(clip.samples).max()) * gain
    if peak > peak_limit:
        gain *= peak_limit / peak
    return AudioClip(clip.samples * gain, clip.sample_rate)


class SpeechGate:
    """0..1 per sample: 1 where someone speaks (a 10 ms block peaks above ``threshold``), eased in over
    ``attack`` and out over ``release`` seconds, so music dips and swells instead of pumping.

    Stateful, so a soundtrack can be gated a chunk at a time (streaming) with the same result as at once.
    """

    def __init__(self, rate: int, threshold: float = 0.02, attack: float = 0.05, release: float = 0.3):
        self.block = max(1, int(rate * 0.01))
        self.threshold = threshold
        self.up = float(np.exp(-0.01 / max(attack, 1e-3)))
        self.down = float(np.exp(-0.01 / max(release, 1e-3)))
        self.level = 0.0
        self.pending = np.zeros(0, np.float32)  # samples of a block not yet complete

    def process(self, samples: np.ndarray) -> np.ndarray:
        """Gate values for ``samples`` (``[C, n]`` or ``[n]``); blocks straddling chunk edges are handled."""
        peaks = np.abs(samples).max(axis=0) if samples.ndim == 2 else np.abs(samples)
        data = np.concatenate([self.pending, peaks.astype(np.float32)])
        whole = len(data) // self.block
        out = np.empty(len(peaks), np.float32)
        levels = np.empty(whole, np.float32)  # each block is gated by the level reached before it (causal)
        current = self.level
        for i, on in enumerate(data[:whole * self.block].reshape(whole, self.block).max(axis=1) > self.threshold):
            levels[i] = current
            coeff = self.up if on else self.down
            current = coeff * current + (1 - coeff) * float(on)
        per_sample = np.repeat(levels, self.block)
        tail = len(data) - whole * self.block
        per_sample = np.concatenate([per_sample, np.full(tail, current, np.float32)])
        out[:] = per_sample[len(self.pending):][:len(peaks)]
        self.level = current
        self.pending = data[whole * self.block:]
        return out


def ducked_music_gain(amount: np.ndarray, music_gain_db: float, duck_db: float) -> np.ndarray:
    return (10 ** ((music_gain_db + duck_db * amount) / 20)).astype(np.float32)


def mix_with_ducking(dialogue: AudioClip, music: AudioClip, music_gain_db: float = -10.0,
                     duck_db: float = -12.0, threshold: float = 0.02, attack: float = 0.05,
                     release: float = 0.3) -> AudioClip:
    """Dialogue over a music bed that dips by ``duck_db`` while anyone speaks, then comes back up.

    The result is as long as the dialogue; the music is cut or padded with silence to fit.
    """
    dialogue, music = conform([dialogue, music])
    music = fit_length(music, dialogue.seconds)
    amount = SpeechGate(dialogue.sample_rate, threshold, attack, release).process(dialogue.samples)
    mixed = dialogue.samples + music.samples * ducked_music_gain(amount, music_gain_db, duck_db)[None, :]
    peak = float(np.abs(mixed).max())
    if peak > 0.98:
        mixed *= 0.98 / peak
    return AudioClip(mixed.astype(np.float32), dialogue.sample_rate)


def place(clips: list[tuple[float, AudioClip]], seconds: float, sample_rate: int, channels: int = 1) -> AudioClip:
    """A track of ``seconds`` with each clip summed in at its start time (overlaps add, as in a mixer)."""
    track = np.zeros((channels, int(round(seconds * sample_rate))), np.float32)
    for start, clip in clips:
        clip = match_channels(resample(clip, sample_rate), channels)
        at = int(round(start * sample_rate))
        if at >= track.shape[1]:
            continue
        end = min(track.shape[1], at + clip.frames)
        track[:, at:end] += clip.samples[:, :end - at]
    return AudioClip(track, sample_rate)
