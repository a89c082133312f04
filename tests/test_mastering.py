"""The film's sound, mastered: a streamed BS.1770 meter that agrees with pyloudnorm, a true-peak limiter that keeps
every peak under its ceiling, the loudness target reached on the decoded film (48 kHz stereo)."""
from __future__ import annotations

import json

import av
import numpy as np
import pyloudnorm
import pytest
from scipy.signal import resample_poly

from animstudio.cli import main
from animstudio.nodes.audio.mastering import LoudnessMeter, MasteredTrack, mastered
from conftest import EXAMPLE

RATE = 48000


class ArraySource:
    """A soundtrack-like source over an array: sequential reads, silence never asked for past the end."""

    def __init__(self, samples: np.ndarray):
        self.samples, self.sample_rate, self.channels = samples.astype(np.float32), RATE, samples.shape[0]
        self.position = 0

    @property
    def seconds(self) -> float:
        return self.samples.shape[1] / RATE

    def read(self, count: int) -> np.ndarray:
        out = self.samples[:, self.position:self.position + count]
        self.position += count
        return out


def speechlike(seconds: float, seed: int = 0) -> np.ndarray:
    """Syllable bursts of a harmonic buzz with sharp onsets, with pauses: a crest factor like speech's."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    buzz = sum(np.sin(2 * np.pi * 140 * k * t + rng.uniform(0, 6)) / k for k in range(1, 12))
    envelope = (np.sin(2 * np.pi * 3.7 * t) > 0.2) * np.abs(np.sin(2 * np.pi * 3.7 * t)) ** 0.3
    envelope *= (np.sin(2 * np.pi * 0.31 * t) > -0.6)  # pauses between phrases
    mono = 0.2 * buzz * envelope + 0.002 * rng.standard_normal(len(t))
    return np.stack([mono, 0.8 * mono])


def true_peak_db(samples: np.ndarray) -> float:
    return float(20 * np.log10(np.abs(resample_poly(samples, 4, 1, axis=-1)).max()))


@pytest.mark.parametrize("chunk", [4800, 1234])
def test_streamed_meter_agrees_with_pyloudnorm(chunk):
    signal = speechlike(12.0)
    meter = LoudnessMeter(RATE, 2)
    for at in range(0, signal.shape[1], chunk):
        meter.feed(signal[:, at:at + chunk])
    reference = pyloudnorm.Meter(RATE).integrated_loudness(signal.T)
    assert abs(meter.integrated() - reference) < 0.05, (meter.integrated(), reference)
    silent = LoudnessMeter(RATE, 2)
    silent.feed(np.zeros((2, RATE)))
    assert silent.integrated() == float("-inf")


@pytest.mark.parametrize("target", [-14.0, -23.0])
def test_mastering_reaches_the_target_under_the_ceiling(target):
    signal = speechlike(20.0, seed=1)
    before = pyloudnorm.Meter(RATE).integrated_loudness(signal.T)
    track = mastered(lambda: ArraySource(signal), target)
    out = np.concatenate([track.read(n) for n in [2000] * (signal.shape[1] // 2000)] +
                         [track.read(signal.shape[1] % 2000)], axis=1)
    assert out.shape == signal.shape
    after = pyloudnorm.Meter(RATE).integrated_loudness(out.T)
    assert abs(after - target) < 0.3, (before, after)
    assert true_peak_db(out) <= -1.0 - 0.3  # the ceiling, less the margin kept for the encoder
    assert np.abs(out[:, :48]).max() < np.abs(out[:, 4800:9600]).max() / 20  # faded in
    assert np.abs(out[:, -48:]).max() < 0.02  # and out


def test_the_limiter_only_works_where_a_peak_needs_it():
    quiet = 0.05 * np.sin(2 * np.pi * 220 * np.arange(RATE * 2) / RATE)[None, :].repeat(2, axis=0)
    loud = quiet.copy()
    loud[:, RATE:RATE + 480] *= 30  # a 10 ms spike to +3.5 dBFS in the middle
    out = MasteredTrack(ArraySource(loud), 0.0, -1.0, fade_in=0, fade_out=0).read(loud.shape[1])
    assert true_peak_db(out) <= -1.0
    assert np.allclose(out[:, :RATE // 2], loud[:, :RATE // 2], atol=1e-6)  # untouched far from the spike
    assert np.allclose(out[:, -RATE // 2:], loud[:, -RATE // 2:], atol=1e-6)


def test_the_example_film_is_mastered_48k_stereo(tmp_path, capsys):
    assert main(["render", str(EXAMPLE), "-o", str(tmp_path), "--json"]) == 0
    film = tmp_path / json.loads(capsys.readouterr().out)["film"]
    with av.open(str(film)) as container:
        stream = container.streams.audio[0]
        assert (stream.codec_context.sample_rate, stream.codec_context.channels) == (48000, 2)
        chunks = [frame.to_ndarray() for frame in container.decode(stream)]
    audio = np.concatenate(chunks, axis=1)  # fltp: [channels, samples]
    loudness = pyloudnorm.Meter(48000).integrated_loudness(audio.T)
    assert abs(loudness - (-14.0)) <= 0.5, loudness
    assert true_peak_db(audio) <= -1.0


def test_pan_keeps_power_and_puts_the_centre_on_both_channels():
    from animstudio.nodes.audio.clip import AudioClip
    from animstudio.nodes.audio.mixing import pan

    tone = AudioClip(np.sin(np.linspace(0, 200 * np.pi, 4800)).astype(np.float32) * 0.5, 48000)
    centre, left, right, half = (pan(tone, p).samples for p in (0.0, -1.0, 1.0, 0.5))
    assert np.allclose(centre, tone.samples[0][None].repeat(2, axis=0), atol=1e-6)
    assert np.abs(left[1]).max() < 1e-6 and np.abs(right[0]).max() < 1e-6
    for stereo in (centre, left, right, half):  # constant power: what one moves to a side the other loses
        assert np.sum(stereo ** 2) == pytest.approx(2 * np.sum(tone.samples ** 2), rel=1e-4)
    assert np.sum(half[1] ** 2) > 5 * np.sum(half[0] ** 2)


def test_two_speakers_are_heard_where_they_are_in_the_frame():
    """A two-shot: Ada's mouth on the left of the frame, Ben's on the right; each one's line leans to their side,
    a line without a rigged speaker stays centred."""
    from animstudio.nodes.audio.clip import AudioClip
    from animstudio.nodes.film.clips import still_clip
    from animstudio.nodes.film.dialogue import Dialogue, SpokenLine
    from animstudio.nodes.lipsync.mouths import MouthBox, MouthRig, builtin_mouth_set

    rate = 8000
    voice = AudioClip(np.sin(np.linspace(0, 400 * np.pi, rate)).astype(np.float32) * 0.3, rate)
    lines = Dialogue((SpokenLine("Ada", "One.", 0.0, voice), SpokenLine("Ben", "Two.", 1.5, voice),
                      SpokenLine("Cy", "Three.", 3.0, voice)))
    # the picture is wider than the film's frame: the crop decides what is left and right
    picture = np.zeros((90, 240, 3), np.uint8)
    mouths = builtin_mouth_set(32)
    rigs = (MouthRig("Ada", MouthBox(50, 50, 20, 10), mouths), MouthRig("Ben", MouthBox(170, 50, 20, 10), mouths))
    clip = still_clip(picture, 160, 90, 10, 4.0, dialogue=lines, rigs=rigs)
    samples = clip.audio.samples
    assert samples.shape[0] == 2

    def power(start, channel):
        return float(np.sum(samples[channel, int(start * rate):int((start + 1) * rate)] ** 2))

    # in the 160-px crop (x 40-200) Ada's mouth centre is at 20/160 (-0.75 × 0.5 = -0.375): L/R = tan² of the angle
    ada, ben = power(0.0, 0) / power(0.0, 1), power(1.5, 1) / power(1.5, 0)
    expected = (1 / np.tan((1 - 0.375) * np.pi / 4)) ** 2
    assert ada == pytest.approx(expected, rel=1e-3) and ben == pytest.approx(expected, rel=1e-3)
    assert power(3.0, 0) == pytest.approx(power(3.0, 1), rel=1e-6)
