"""Text-plus-audio alignment by DTW against espeak-ng speech, in eight languages, and its loudness fallback.

The target audio is spoken by *other* espeak-ng set-ups (variants, rate, pitch, background noise), so its
own phoneme events are the ground truth: the same text in the same language gives the same phoneme
sequence across set-ups (checked), and the aligned starts must fall within 40 ms of the true ones.
"""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("espeakng_loader")

from animstudio.nodes.audio.clip import AudioClip  # noqa: E402
from animstudio.nodes.audio.espeak import espeak_synthesize  # noqa: E402
from animstudio.nodes.lipsync import dtw_align, features  # noqa: E402
from animstudio.nodes.lipsync.cues import cue_problems  # noqa: E402
from animstudio.nodes.lipsync.errors import LipSyncError  # noqa: E402

SENTENCES = {
    "en": "The quick brown fox jumps over the lazy dog near the bank.",
    "cmn": "爸爸买了一本书，妈妈不忙。",
    "ru": "Мама мыла раму, а папа читал книгу.",
    "ko": "바보 같은 밤에 물을 마셔요.",
    "it": "Il piccolo bambino mangia una mela rossa.",
    "es": "El perro blanco come pan con miel.",
    "de": "Mein Bruder baut ein blaues Boot am Meer.",
    "fr": "Mon petit frère mange une pomme bien mûre.",
}
OTHER_SENTENCES = {  # what the audio does not say, in the same language
    "en": "Please call Stella and ask her to bring these things with her from the store.",
    "cmn": "今天天气很好，我们去公园吧。",
    "ru": "Сегодня хорошая погода, пойдём гулять.",
    "ko": "오늘은 날씨가 정말 좋네요.",
    "it": "Domani andiamo al mare con gli amici.",
    "es": "Mañana vamos a la playa con mis amigos.",
    "de": "Morgen fahren wir mit dem Zug nach Hamburg.",
    "fr": "Demain nous irons à la plage avec nos amis.",
}
# (espeak variant, rate factor, pitch semitones, white-noise SNR in dB or None)
SETUPS = [
    ("+f3", 1.0, 0.0, None), ("+m3", 1.0, 0.0, None), ("+klatt", 1.0, 0.0, None),
    ("", 1.25, 0.0, None), ("", 0.75, 0.0, None), ("", 1.0, 4.0, None), ("+f2", 1.1, -3.0, None),
    ("", 1.0, 0.0, 20.0), ("+f3", 0.8, 2.0, 25.0),
]


def speak(text: str, voice: str, rate=1.0, pitch=0.0, snr=None, seed=0):
    """Audio from one espeak set-up, with its own phoneme events (the ground truth)."""
    samples, sr, events, _ = espeak_synthesize(text, voice, rate, pitch)
    if snr is not None:
        noise = np.random.default_rng(seed).normal(0.0, 1.0, len(samples))
        samples = samples + (noise * np.sqrt(np.mean(samples ** 2) / 10 ** (snr / 10))).astype(np.float32)
    return AudioClip(samples, sr), events, sr


@pytest.mark.parametrize("language", list(SENTENCES))
def test_boundaries_within_40ms_for_other_voices(language):
    text = SENTENCES[language]
    base = dtw_align.espeak_voice_for(language)
    reference = [e.phoneme for e in espeak_synthesize(text, base)[2]]
    errors = []
    for variant, rate, pitch, snr in SETUPS:
        audio, events, sr = speak(text, base + variant, rate, pitch, snr)
        assert [e.phoneme for e in events] == reference, f"{variant} {rate} changed the phoneme sequence"
        phones = dtw_align.align_with_text(audio, text, language)
        assert [p.phone for p in phones] == reference
        starts = np.array([p.start for p in phones])
        assert np.all(np.diff(starts) >= 0) and starts[0] >= 0 and phones[-1].end == pytest.approx(audio.seconds)
        assert all(p.end >= p.start for p in phones)
        error = np.abs(starts - np.array([e.sample / sr for e in events]))
        errors.append(error)
        share = np.mean(error <= 0.040)
        assert share >= 0.8, f"{language} {variant or 'default'} rate {rate} pitch {pitch} snr {snr}: {share:.0%}"
    assert np.mean(np.concatenate(errors) <= 0.040) >= 0.9


@pytest.mark.parametrize("language", list(SENTENCES))
def test_text_that_is_not_spoken_is_refused(language):
    audio, _, _ = speak(SENTENCES[language], dtw_align.espeak_voice_for(language) + "+m3", 0.9)
    matched = dtw_align.align_result(audio, SENTENCES[language], language)
    assert matched.confusion < dtw_align.MISMATCH_CONFUSION
    with pytest.raises(LipSyncError, match="does not match the audio.*confusion [0-9.]+"):
        dtw_align.align_with_text(audio, OTHER_SENTENCES[language], language)


def test_result_reports_match_statistics():
    audio, events, _ = speak(SENTENCES["de"], "gmw/de+klatt")
    result = dtw_align.align_result(audio, SENTENCES["de"], "de")
    assert result.voice.startswith("gmw/de")
    assert result.cost > 0 and 0 <= result.confusion < dtw_align.MISMATCH_CONFUSION
    assert result.audio_seconds == pytest.approx(audio.seconds) and result.reference_seconds > 0
    assert len(result.phones) == len(events)


def test_leading_pause_and_other_sample_rate():
    """Recorded speech starts after a pause and comes at 44.1 kHz stereo: the phones move with it."""
    from animstudio.nodes.audio.mixing import resample

    audio, events, sr = speak(SENTENCES["es"], "roa/es+m3", 0.9)
    padded = np.concatenate([np.zeros(int(0.8 * sr), np.float32), audio.mono()])
    stereo = resample(AudioClip(np.stack([padded, 0.7 * padded]), sr), 44100)
    phones = dtw_align.align_with_text(stereo, SENTENCES["es"], "es")
    truth = np.array([e.sample / sr for e in events]) + 0.8
    assert np.mean(np.abs(np.array([p.start for p in phones]) - truth) <= 0.040) >= 0.8


def test_unsupported_language_and_empty_input():
    audio, _, _ = speak(SENTENCES["en"], "gmw/en")
    with pytest.raises(LipSyncError, match="language 'xx'"):
        dtw_align.align_with_text(audio, "some words", "xx")
    with pytest.raises(LipSyncError, match="empty"):
        dtw_align.align_with_text(audio, "  ", "en")
    with pytest.raises(LipSyncError, match="silent"):
        dtw_align.align_with_text(AudioClip.silence(1.0, 16000), SENTENCES["en"], "en")


def test_mfcc_shapes_and_normalisation():
    rng = np.random.default_rng(1)
    feats = features.mfcc(rng.normal(0, 0.1, 16000).astype(np.float32))
    assert feats.shape == (1 + 16000 // 80, 2 * features.N_CEPS)  # one frame per 5 ms hop, centred
    assert np.allclose(feats.mean(axis=0), 0, atol=1e-6) and np.allclose(feats.std(axis=0), 1, atol=1e-3)


def test_dtw_recovers_a_known_warp():
    """A sequence against a time-stretched copy of itself: the path follows the stretch exactly."""
    rng = np.random.default_rng(2)
    reference = rng.normal(size=(200, 4))
    target = np.repeat(reference, 2, axis=0)  # every frame said twice as long
    path_i, path_j, cost = dtw_align.dtw(target, reference)
    assert cost == pytest.approx(0.0, abs=1e-6)
    assert np.array_equal(path_j, path_i // 2)


@pytest.mark.parametrize("noise", [0.0, 0.003])
def test_energy_fallback_covers_the_audio(noise):
    audio, _, sr = speak(SENTENCES["ko"], "ko")
    samples = np.concatenate([np.zeros(sr // 2, np.float32), audio.mono(), np.zeros(sr // 3, np.float32)])
    samples = samples + np.random.default_rng(3).normal(0, noise, len(samples)).astype(np.float32)
    clip = AudioClip(samples, sr)
    cues = dtw_align.energy_cues_without_text(clip)
    assert cue_problems(cues) == []
    assert cues.cues[0].start == 0 and cues.cues[-1].end == pytest.approx(clip.seconds)
    assert cues.duration == pytest.approx(clip.seconds)
    assert any("loudness only" in note for note in cues.notes)
    shapes = {c.shape for c in cues.cues}
    assert shapes <= {"A", "B", "C", "D", "X"} and {"B", "C", "D"} & shapes
    assert cues.shape_at(0.2) == "X" and cues.shape_at(clip.seconds - 0.1) == "X"  # the pauses rest
    assert all(c.seconds >= dtw_align.MIN_CUE_SECONDS - 1e-9 for c in cues.cues[1:-1])


def test_energy_fallback_on_silence_rests():
    cues = dtw_align.energy_cues_without_text(AudioClip.silence(1.0, 16000))
    assert [c.shape for c in cues.cues] == ["X"] and cue_problems(cues) == []
