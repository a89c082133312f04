"""Broadcast mastering of a streamed soundtrack: integrated loudness to a target (ITU-R BS.1770, measured in a first
pass over the mix, chunk by chunk), a true-peak ceiling (a look-ahead limiter on 4x-oversampled peaks), and fades at
the film's ends. Memory stays flat with the film's length: the measurement keeps one energy per 100 ms, the limiter
a few milliseconds of sound.

The K-weighting filters are pyloudnorm's own (its ``Meter``'s ``high_shelf`` and ``high_pass``), run with carried
state so the chunks join seamlessly; the gating follows BS.1770-4 as pyloudnorm implements it (400 ms blocks every
100 ms, the -70 LUFS absolute gate, the -10 LU relative gate), so the film measures what pyloudnorm measures on it.
"""
from __future__ import annotations

import functools

import numpy as np

STEP_SECONDS = 0.1       # BS.1770 blocks of 400 ms start every 100 ms (75 % overlap)
BLOCK_STEPS = 4
ABSOLUTE_GATE = -70.0
RELATIVE_GATE = -10.0
OVERSAMPLE = 4           # true peak: BS.1770 annex 2 estimates it at 4x the rate
LOOKAHEAD_SECONDS = 0.003  # the limiter's gain ramps down over this before a peak ...
HOLD_SECONDS = 0.005      # ... stays down this long after it, then ramps back up: fast, so it shaves the
                          # peaks of each pitch period instead of turning the voice down (a slow one, 10 ms and
                          # 40 ms, made the mix reach -14 LUFS by raising the music 13 dB under a held-down voice)
BLOCK = 16                # samples per limiter block
CHUNK = 4096              # samples the limiter works on at a time
PEAK_MARGIN_DB = 2.0      # below the ceiling, for what lossy coding adds to peaks (AAC added up to 1.1 dB
                          # to a hard-limited espeak voice)


class LoudnessMeter:
    """Integrated loudness of a signal fed in chunks ``[channels, n]`` (left/right weights 1, as for stereo)."""

    def __init__(self, sample_rate: int, channels: int):
        import pyloudnorm

        meter = pyloudnorm.Meter(sample_rate)
        self.filters = [(f.b, f.a, f.passband_gain) for f in (meter._filters["high_shelf"], meter._filters["high_pass"])]
        self.state = [np.zeros((channels, max(len(b), len(a)) - 1)) for b, a, _ in self.filters]
        self.step = int(round(STEP_SECONDS * sample_rate))
        self.partial = np.zeros(channels)   # the running sum of squares of the step being filled
        self.filled = 0
        self.steps: list[np.ndarray] = []   # per 100 ms step: each channel's sum of squares

    def feed(self, chunk: np.ndarray) -> None:
        from scipy.signal import lfilter

        x = np.asarray(chunk, np.float64)
        for k, (b, a, gain) in enumerate(self.filters):
            x, self.state[k] = lfilter(b, a, x, axis=1, zi=self.state[k])
            x = x * gain
        at = 0
        while at < x.shape[1]:
            take = min(self.step - self.filled, x.shape[1] - at)
            self.partial += np.square(x[:, at:at + take]).sum(axis=1)
            self.filled += take
            at += take
            if self.filled == self.step:
                self.steps.append(self.partial)
                self.partial, self.filled = np.zeros_like(self.partial), 0

    def integrated(self) -> float:
        """LUFS; -inf for silence or less than one 400 ms block."""
        if len(self.steps) < BLOCK_STEPS:
            return float("-inf")
        steps = np.array(self.steps)
        windows = np.lib.stride_tricks.sliding_window_view(steps, BLOCK_STEPS, axis=0).sum(axis=-1)
        z = windows / (BLOCK_STEPS * self.step)            # [blocks, channels]: mean square per block
        with np.errstate(divide="ignore"):
            loud = -0.691 + 10 * np.log10(z.sum(axis=1))
        kept = z[loud >= ABSOLUTE_GATE]
        if not len(kept):
            return float("-inf")
        relative = -0.691 + 10 * np.log10(kept.sum(axis=1).mean()) + RELATIVE_GATE
        kept = z[(loud >= ABSOLUTE_GATE) & (loud >= relative)]
        return float(-0.691 + 10 * np.log10(kept.mean(axis=0).sum()))


@functools.lru_cache(maxsize=1)
def _oversampling_filter() -> np.ndarray:
    """The low-pass ``resample_poly`` designs for 4x (its default Kaiser window), designed once, not per chunk."""
    from scipy.signal import firwin

    return firwin(2 * 10 * OVERSAMPLE + 1, 1 / OVERSAMPLE, window=("kaiser", 5.0))


def true_peaks(x: np.ndarray) -> np.ndarray:
    """Per sample, the largest magnitude of the signal between it and the next, from 4x oversampling (all
    channels together)."""
    from scipy.signal import resample_poly

    up = np.abs(resample_poly(x, OVERSAMPLE, 1, axis=1, window=_oversampling_filter())).max(axis=0)
    return up[: x.shape[1] * OVERSAMPLE].reshape(-1, OVERSAMPLE).max(axis=1)


class MasteredTrack:
    """A soundtrack (``sample_rate``, ``channels``, sequential ``read(count)``, ``seconds``) levelled by ``gain_db``,
    kept under ``ceiling_db`` dBTP by a look-ahead limiter, faded in and out at its ends. Reads are sequential and
    return exactly what is asked (the limiter's look-ahead is read ahead of the output, not delayed).

    The limiter works on blocks of 16 samples: each block's required gain (ceiling over its true peak), the least of
    those over the next ``LOOKAHEAD`` and the last ``HOLD``, averaged over the last ``LOOKAHEAD`` (so the gain has
    ramped down when the peak arrives, and ramps back up after the hold), interpolated sample by sample. Every
    value averaged at a peak's block already includes that block's requirement, so no peak passes the ceiling."""

    def __init__(self, source, gain_db: float, ceiling_db: float = -1.0, fade_in: float = 0.05,
                 fade_out: float = 0.5):
        self.source = source
        self.sample_rate, self.channels = source.sample_rate, source.channels
        self.frames = int(round(source.seconds * self.sample_rate))
        self.gain = 10 ** (gain_db / 20)
        self.ceiling = 10 ** ((ceiling_db - PEAK_MARGIN_DB) / 20)
        self.ahead = max(1, int(round(LOOKAHEAD_SECONDS * self.sample_rate / BLOCK)))
        self.hold = max(1, int(round(HOLD_SECONDS * self.sample_rate / BLOCK)))
        self.fade_in = int(round(fade_in * self.sample_rate))
        self.fade_out = min(self.frames, int(round(fade_out * self.sample_rate)))
        self.pending = np.zeros((self.channels, 0), np.float32)  # levelled input read ahead of the output
        self.required = np.zeros(0)                              # per block of `pending`: its required gain
        self.past = np.ones(self.ahead + self.hold)              # required gains of the blocks just output
        self.ready = np.zeros((self.channels, 0), np.float32)    # limited output not yet read
        self.read_from_source = 0
        self.position = 0

    @property
    def seconds(self) -> float:
        return self.frames / self.sample_rate

    def _pull(self, count: int) -> None:
        """Read ``count`` (whole blocks) more samples of the source, silence past its end, levelled."""
        take = min(count, max(0, self.frames - self.read_from_source))
        chunk = (self.source.read(take) * self.gain).astype(np.float32) if take else \
            np.zeros((self.channels, 0), np.float32)
        if take < count:
            chunk = np.concatenate([chunk, np.zeros((self.channels, count - take), np.float32)], axis=1)
        self.read_from_source += take
        context = self.pending[:, -8:]  # a little of the previous chunk, for the resampler at the join
        peaks = true_peaks(np.concatenate([context, chunk], axis=1))[context.shape[1]:]
        blocks = peaks.reshape(-1, BLOCK).max(axis=1)
        self.pending = np.concatenate([self.pending, chunk], axis=1)
        self.required = np.concatenate([self.required, np.minimum(1.0, self.ceiling / np.maximum(blocks, 1e-9))])

    def _limit(self) -> None:
        """Move one chunk of limited sound from ``pending`` to ``ready``."""
        blocks = CHUNK // BLOCK
        short = blocks + self.ahead + 1 - len(self.required)
        if short > 0:
            self._pull(short * BLOCK)
        req = np.concatenate([self.past, self.required[:blocks + self.ahead + 1]])
        windows = np.lib.stride_tricks.sliding_window_view
        least = windows(req, self.hold + self.ahead + 1).min(axis=1)          # blocks B-ahead .. B+blocks
        gains = windows(least, self.ahead + 1).mean(axis=1)                   # blocks B .. B+blocks
        per_sample = np.interp(np.arange(blocks * BLOCK) / BLOCK, np.arange(blocks + 1), gains)
        out = self.pending[:, :blocks * BLOCK] * per_sample[None, :].astype(np.float32)
        self.past = req[blocks:blocks + self.ahead + self.hold]
        self.pending, self.required = self.pending[:, blocks * BLOCK:], self.required[blocks:]
        self.ready = np.concatenate([self.ready, out], axis=1)

    def read(self, count: int) -> np.ndarray:
        """The next ``count`` samples ``[channels, count]``."""
        while self.ready.shape[1] < count:
            self._limit()
        out, self.ready = self.ready[:, :count], self.ready[:, count:]
        self._fade(out)
        self.position += count
        return out

    def _fade(self, out: np.ndarray) -> None:
        index = np.arange(self.position, self.position + out.shape[1])
        ramp = np.ones(out.shape[1], np.float32)
        if self.fade_in:
            ramp = np.minimum(ramp, np.clip(index / self.fade_in, 0, 1))
        if self.fade_out:
            ramp = np.minimum(ramp, np.clip((self.frames - index) / self.fade_out, 0, 1))
        out *= ramp[None, :]


def measure(make_source, chunk_seconds: float = 1.0) -> float:
    """The integrated loudness of a fresh source from ``make_source()``, read to its end in chunks."""
    source = make_source()
    meter = LoudnessMeter(source.sample_rate, source.channels)
    total = int(round(source.seconds * source.sample_rate))
    step = int(chunk_seconds * source.sample_rate)
    for at in range(0, total, step):
        meter.feed(source.read(min(step, total - at)))
    return meter.integrated()


def mastered(make_source, target_lufs: float | None, ceiling_db: float = -1.0, corrections: int = 6):
    """``make_source()`` levelled to ``target_lufs`` (None: as mixed) under ``ceiling_db`` dBTP, faded at its
    ends. The mix is measured, then the limited result: the limiter takes level off where it works, the more the
    louder it is pushed, so the gain is searched for (loudness only grows with gain): steps of at most 6 dB up from
    the plain level, then the secant inside the bracket found, ``corrections`` measurements at most; each reads a
    fresh source."""
    if target_lufs is None:
        return MasteredTrack(make_source(), 0.0, ceiling_db)
    measured = measure(make_source)
    if not np.isfinite(measured):
        return MasteredTrack(make_source(), 0.0, ceiling_db)

    def limited(gain: float) -> float:
        return measure(lambda: MasteredTrack(make_source(), gain, ceiling_db))

    low, high = (0.0, measured), None  # (gain, loudness) below and above the target
    gain = target_lufs - measured
    for _ in range(corrections):
        result = limited(gain)
        if not np.isfinite(result) or abs(result - target_lufs) < 0.05:
            break
        if result < target_lufs:
            slope = (result - low[1]) / (gain - low[0]) if gain != low[0] else 1.0
            low = (gain, result)
        else:
            high = (gain, result)
        if high is None:  # still below: step up by what the last step earned per decibel, at most 6 dB
            gain += min(6.0, (target_lufs - result) / min(1.0, max(0.25, slope)))
        else:  # bracketed: the secant between the two sides
            gain = low[0] + (target_lufs - low[1]) * (high[0] - low[0]) / max(1e-6, high[1] - low[1])
    return MasteredTrack(make_source(), gain, ceiling_db)
