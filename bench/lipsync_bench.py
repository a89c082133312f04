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
    cli_line(args.repeat)


CLI_BASELINE_SECONDS = 1.0  # `animstudio lipsync` on a one-second line before the decoders stopped loading models
                            # they never use (the word dictionary and trigram model: about 0.3 and 0.5 s)


def cli_line(repeat: int) -> None:
    """``animstudio lipsync LINE.wav`` on a one-second line, start to finish (a new process each time, as a user or
    a script runs it), without and with its text; goal: under 0.3 s."""
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    from animstudio.nodes.audio.clip import write_wav

    with tempfile.TemporaryDirectory() as folder:
        wav, text = Path(folder) / "line.wav", Path(folder) / "line.txt"
        speech = synthesize("Steady, keeper.", VoiceSettings())
        write_wav(speech.audio, wav)
        text.write_text("Steady, keeper.")
        for label, extra in (("without text", []), ("with its text", ["-d", str(text)])):
            times = []
            for _ in range(max(repeat, 3)):
                t0 = time.perf_counter()
                subprocess.run([sys.executable, "-m", "animstudio", "lipsync", str(wav), *extra], check=True,
                               stdout=subprocess.DEVNULL)
                times.append(time.perf_counter() - t0)
            print(f"  `animstudio lipsync` on a {speech.audio.seconds:.1f} s line, {label}: {min(times):.2f} s start "
                  f"to finish (goal < 0.3 s; before: about {CLI_BASELINE_SECONDS:.1f} s)")


if __name__ == "__main__":
    main()
