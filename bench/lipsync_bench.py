"""Real-time factor of the built-in lip-sync aligner, against real time and against speech synthesis, in one run.

    python bench/lipsync_bench.py [--repeat 3]

Speech is made with espeak-ng (always installed). The real-time factor is seconds of audio per second
of wall time (higher is faster); the machine's cores are reported. Decoder start-up (loading the
acoustic model, once per process) is measured apart from the per-line figures.
"""
from __future__ import annotations

import argparse
import os
import time

from animstudio.nodes.audio.tts import VoiceSettings, synthesize
from animstudio.nodes.lipsync import aligner

LINES = [
    "Hold her steady! Look for the light.",
    "We have to reach the harbor before the storm breaks.",
    "The keeper climbed one hundred and twelve stairs every evening, and each night she lit the great lamp.",
    "Another quiet night. I hope.",
    "Nobody has sailed past these rocks since the old captain lost his ship in the fog.",
    "If the lamp goes out tonight, every boat on this coast is in danger.",
    "Bring the lantern, the rope and the blue box from the cellar, quickly!",
    "Do you hear that? Something is knocking on the door below.",
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    started = time.perf_counter()
    speeches = [synthesize(line, VoiceSettings()) for line in LINES]
    synth_seconds = time.perf_counter() - started
    audio_seconds = sum(s.audio.seconds for s in speeches)
    started = time.perf_counter()
    aligner.lipsync(speeches[0].audio, LINES[0])
    aligner.lipsync(speeches[0].audio)
    warmup = time.perf_counter() - started

    def best(fn) -> float:
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return min(times)

    forced = best(lambda: [aligner.lipsync(s.audio, line) for s, line in zip(speeches, LINES)])
    phonetic = best(lambda: [aligner.lipsync(s.audio) for s in speeches])
    methods = {aligner.lipsync(s.audio, line).engine for s, line in zip(speeches, LINES)}
    print(f"{len(LINES)} lines, {audio_seconds:.1f} s of speech, {os.cpu_count()} cores, best of {args.repeat}:")
    print(f"  espeak-ng synthesis (baseline)     {audio_seconds / synth_seconds:7.1f}x real time")
    print(f"  aligner with text ({', '.join(sorted(methods))}) {audio_seconds / forced:7.1f}x real time "
          f"({forced / synth_seconds:.1f}x the synthesis time)")
    print(f"  aligner without text (phonetic)    {audio_seconds / phonetic:7.1f}x real time "
          f"({phonetic / synth_seconds:.1f}x the synthesis time)")
    print(f"  first-use decoder start-up          {warmup:7.2f} s (once per process)")


if __name__ == "__main__":
    main()
