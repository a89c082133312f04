"""The spectral features the DTW aligner compares (:mod:`.dtw_align`): log mel energies and MFCCs with deltas,
standardised per utterance, on 25 ms Hann windows every 5 ms."""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy.fft import dct

FEATURE_RATE = 16000          # both signals are compared at this rate
HOP_SECONDS = 0.005           # 5 ms: boundaries land within half a hop of the path's choice
WINDOW_SECONDS = 0.025
N_FFT = 512
N_MELS = 40
N_CEPS = 13                   # c0 (log energy) .. c12
MEL_LOW_HZ, MEL_HIGH_HZ = 60.0, 7600.0
PRE_EMPHASIS = 0.97
FLOOR_DB = -60.0              # mel energies below the loudest frame's by more than this are clamped


@lru_cache(maxsize=4)
def _mel_filterbank(sample_rate: int, n_fft: int = N_FFT, n_mels: int = N_MELS) -> np.ndarray:
    """Triangular filters on the HTK mel scale, ``[n_mels, n_fft // 2 + 1]``."""
    def to_mel(hz):
        return 2595.0 * np.log10(1.0 + np.asarray(hz) / 700.0)

    def to_hz(mel):
        return 700.0 * (10.0 ** (np.asarray(mel) / 2595.0) - 1.0)

    edges = to_hz(np.linspace(to_mel(MEL_LOW_HZ), to_mel(min(MEL_HIGH_HZ, sample_rate / 2)), n_mels + 2))
    bins = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins[None, :] - lower) / (centre - lower)
    falling = (upper - bins[None, :]) / (upper - centre)
    return np.maximum(0.0, np.minimum(rising, falling))


def _frames(signal: np.ndarray, sample_rate: int) -> np.ndarray:
    """Hann-windowed frames, frame ``k`` centred on ``k * HOP_SECONDS`` (the signal is padded by half a window)."""
    win = int(round(WINDOW_SECONDS * sample_rate))
    hop = int(round(HOP_SECONDS * sample_rate))
    padded = np.pad(signal.astype(np.float64), (win // 2, win // 2 + hop))
    count = 1 + (len(signal) + hop - 1) // hop
    view = np.lib.stride_tricks.sliding_window_view(padded, win)[::hop][:count]
    return view * np.hanning(win + 2)[1:-1]


def log_mel(signal: np.ndarray, sample_rate: int) -> np.ndarray:
    """Log mel energies ``[frames, N_MELS]`` after pre-emphasis, floored ``FLOOR_DB`` under the loudest frame."""
    emphasised = np.append(signal[:1], signal[1:] - PRE_EMPHASIS * signal[:-1])
    power = np.abs(np.fft.rfft(_frames(emphasised, sample_rate), N_FFT)) ** 2
    mel = power @ _mel_filterbank(sample_rate).T
    floor = max(mel.sum(axis=1).max(), 1e-12) * 10 ** (FLOOR_DB / 10) / N_MELS
    return np.log(np.maximum(mel, floor))


def mfcc(signal: np.ndarray, sample_rate: int = FEATURE_RATE) -> np.ndarray:
    """MFCC c0..c12 plus their deltas, ``[frames, 26]``, each column standardised over the utterance."""
    return cepstra(log_mel(signal, sample_rate))


def cepstra(mel: np.ndarray) -> np.ndarray:
    """MFCC plus deltas from log mel energies, standardised per column over the utterance.

    Per-utterance normalisation (CMVN) removes what differs between two voices for the whole line
    (channel, loudness, much of the vocal tract length), leaving the movement DTW should follow.
    """
    ceps = dct(mel, type=2, norm="ortho", axis=1)[:, :N_CEPS]
    padded = np.pad(ceps, ((2, 2), (0, 0)), mode="edge")  # regression deltas over ±2 frames
    delta = (padded[3:-1] - padded[1:-3] + 2 * (padded[4:] - padded[:-4])) / 10.0
    feats = np.hstack([ceps, delta])
    feats -= feats.mean(axis=0)
    feats /= feats.std(axis=0) + 1e-8
    return feats
