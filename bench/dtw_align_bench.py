"""Accuracy and speed of text-plus-audio alignment by DTW against espeak-ng, per language.

    python bench/dtw_align_bench.py [--repeat 3]

Each language's sentence is spoken by other espeak-ng set-ups (variants, whisper, ±25 % rate, pitch,
white noise at 20-25 dB SNR) and aligned from the audio plus the text; the set-up's own phoneme events
are the truth. Printed per language: the share of phoneme starts within 20/40/80 ms over all set-ups,
the worst set-up's share within 40 ms, the match statistic (confusion) for the right text and for
another sentence (the text check refuses above ``MISMATCH_CONFUSION``), and the real-time factor
(seconds of audio per second of wall time, whole pipeline with the reference synthesis; best of
``--repeat``).
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

from animstudio.nodes.audio.clip import AudioClip
from animstudio.nodes.audio.espeak import espeak_synthesize
from animstudio.nodes.lipsync import dtw_align

SENTENCES = {
    "en": ("The quick brown fox jumps over the lazy dog near the bank.",
           "Please call Stella and ask her to bring these things with her from the store."),
    "cmn": ("爸爸买了一本书，妈妈不忙。", "今天天气很好，我们去公园吧。"),
    "ru": ("Мама мыла раму, а папа читал книгу.", "Сегодня хорошая погода, пойдём гулять."),
    "ko": ("바보 같은 밤에 물을 마셔요.", "오늘은 날씨가 정말 좋네요."),
    "it": ("Il piccolo bambino mangia una mela rossa.", "Domani andiamo al mare con gli amici."),
    "es": ("El perro blanco come pan con miel.", "Mañana vamos a la playa con mis amigos."),
    "de": ("Mein Bruder baut ein blaues Boot am Meer.", "Morgen fahren wir mit dem Zug nach Hamburg."),
    "fr": ("Mon petit frère mange une pomme bien mûre.", "Demain nous irons à la plage avec nos amis."),
}
# (espeak variant, rate factor, pitch semitones, white-noise SNR dB or None)
SETUPS = [
    ("+f3", 1.0, 0.0, None), ("+m3", 1.0, 0.0, None), ("+klatt", 1.0, 0.0, None), ("+whisper", 1.0, 0.0, None),
    ("", 1.25, 0.0, None), ("", 0.75, 0.0, None), ("", 1.0, 4.0, None), ("+f2", 1.1, -3.0, None),
    ("", 1.0, 0.0, 20.0), ("+f3", 0.8, 2.0, 25.0), ("+m3", 1.25, 0.0, 20.0), ("+klatt", 0.75, -2.0, 20.0),
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"{len(SETUPS)} voice set-ups per language, {os.cpu_count()} cores, best of {args.repeat} for speed")
    print(f"{'lang':5} {'≤20ms':>6} {'≤40ms':>6} {'≤80ms':>6} {'worst≤40':>8} {'conf ok':>8} "
          f"{'conf bad':>8} {'RTF':>7}")
    all_errors, audio_total, time_total = [], 0.0, 0.0
    for language, (text, other) in SENTENCES.items():
        base = dtw_align.espeak_voice_for(language)
        errors, worst, matched, mismatched, clips = [], 1.0, [], [], []
        for variant, rate, pitch, snr in SETUPS:
            samples, sr, events, _ = espeak_synthesize(text, base + variant, rate, pitch)
            if snr is not None:
                samples = samples + rng.normal(0, np.sqrt(np.mean(samples ** 2) / 10 ** (snr / 10)),
                                               len(samples)).astype(np.float32)
            audio = AudioClip(samples, sr)
            clips.append(audio)
            result = dtw_align.align_result(audio, text, language)
            error = np.abs(np.array([p.start for p in result.phones]) - np.array([e.sample / sr for e in events]))
            errors.append(error)
            worst = min(worst, float(np.mean(error <= 0.040)))
            matched.append(result.confusion)
            mismatched.append(dtw_align.align_result(audio, other, language, check=False).confusion)
        seconds = sum(c.seconds for c in clips)
        best = np.inf
        for _ in range(args.repeat):
            started = time.perf_counter()
            for audio in clips:
                dtw_align.align_with_text(audio, text, language)
            best = min(best, time.perf_counter() - started)
        audio_total += seconds
        time_total += best
        error = np.concatenate(errors)
        all_errors.append(error)
        print(f"{language:5} {np.mean(error <= .02):6.1%} {np.mean(error <= .04):6.1%} {np.mean(error <= .08):6.1%} "
              f"{worst:8.1%} {max(matched):8.3f} {min(mismatched):8.3f} {seconds / best:6.1f}x")
    error = np.concatenate(all_errors)
    print(f"{'all':5} {np.mean(error <= .02):6.1%} {np.mean(error <= .04):6.1%} {np.mean(error <= .08):6.1%} "
          f"{'':8} {'':8} {'':8} {audio_total / time_total:6.1f}x")
    print(f"(conf ok: highest confusion for the right text; conf bad: lowest for another sentence; "
          f"refused above {dtw_align.MISMATCH_CONFUSION})")


if __name__ == "__main__":
    main()
