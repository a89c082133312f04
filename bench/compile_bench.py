"""How long a 200-shot storyboard takes to validate and compile, against a baseline measured in the same run.

    python bench/compile_bench.py [--shots 200] [--repeat 5]

Baseline: one JSON round trip of the storyboard (parse + dump), the least any tool must do to read it.
Figures are the best of ``--repeat`` runs, in milliseconds.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from animstudio.translator.compile import compile_storyboard
from animstudio.translator.embedded import EmbeddedEngine
from animstudio.translator.graph_check import graph_problems
from animstudio.translator.storyboard import load_storyboard

MOVES = ["static", "zoom_in", "pan_left", "dolly_in", "shake"]


def make_storyboard(folder: Path, shots: int) -> Path:
    for i in range(4):
        Image.fromarray(np.full((90, 160, 3), 40 * i, np.uint8)).save(folder / f"panel{i}.png")
    characters = {f"c{i}": {"description": f"character {i}", "lora": {"file": f"c{i}.safetensors", "weight": 0.8,
                                                                       "trigger_words": [f"c{i}_v1"]}}
                  for i in range(6)}
    data = {
        "version": 1,
        "project": {"title": "Bench", "checkpoint": "model.safetensors", "seed": 1},
        "characters": characters,
        "scenes": {f"s{i}": {"location": f"place {i}"} for i in range(10)},
        "shots": [{
            "id": f"shot-{n:03d}", "scene": f"s{n % 10}", "description": f"action number {n}",
            "characters": [f"c{n % 6}", f"c{(n + 1) % 6}"], "camera": {"move": MOVES[n % len(MOVES)]},
            "duration": "fit_to_dialogue",
            "dialogue": [{"character": f"c{n % 6}", "text": "We have to reach the light before the storm."}],
            "transition": {"type": "dissolve" if n % 3 else "cut", "duration": 0.3},
            **({"keyframe": f"panel{n % 4}.png"} if n % 2 else {}),
        } for n in range(shots)],
    }
    path = folder / "storyboard.json"
    path.write_text(json.dumps(data))
    return path


def best_ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shots", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = make_storyboard(Path(tmp), args.shots)
        text = path.read_text()
        board = load_storyboard(path)
        film = compile_storyboard(board)
        pack_info = EmbeddedEngine().pack_object_info()
        figures = {
            "baseline: JSON round trip": best_ms(lambda: json.dumps(json.loads(text)), args.repeat),
            "load + validate storyboard": best_ms(lambda: load_storyboard(path), args.repeat),
            "compile film graph": best_ms(lambda: compile_storyboard(board), args.repeat),
            "compile per-shot graphs": best_ms(lambda: compile_storyboard(board, "per_shot"), args.repeat),
            "serialise film graph": best_ms(lambda: film.graphs[0].to_json(), args.repeat),
            "check graph (pack nodes only)": best_ms(lambda: graph_problems(film.graphs[0].graph, pack_info),
                                                     args.repeat),
        }
        total = figures["load + validate storyboard"] + figures["compile film graph"] + figures["serialise film graph"]
        base = figures["baseline: JSON round trip"]
        print(f"{args.shots} shots, {len(film.graphs[0].graph)} nodes in the film graph "
              f"(best of {args.repeat}):")
        for name, ms in figures.items():
            print(f"  {name:32} {ms:8.2f} ms  {ms / base:7.1f}x baseline")
        print(f"  {'storyboard file -> workflow JSON':32} {total:8.2f} ms  {total / base:7.1f}x baseline")


if __name__ == "__main__":
    main()
