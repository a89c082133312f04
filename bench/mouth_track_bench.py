"""Mouths found, not measured: how close the found mouth is to a hand label, and how closely the box follows
a moving face.

Finding: dlib's 68-point landmarks (the ``faces`` extra) on photographs that ship in registry packages,
against mouth centres labelled by hand (the same labels as ``tests/test_mouth_finding.py``): scikit-image's
astronaut and matplotlib's Grace Hopper (real photographs), plus one stylized generated picture that ships
with ComfyUI (``comfyui_embedded_docs``' Canny example input: a cartoon fox girl), reported apart.

Tracking: the astronaut's head gliding (300 px across, a 60 px arc) and growing by 25 % over scikit-image's
coffee photograph, a known path; the box is followed with the pack's DIS optical flow from the true
first box; error = distance from the box centre to the true mouth centre on each frame.

    python bench/mouth_track_bench.py [--frames 48] [--repeat 3]
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from animstudio.nodes.lipsync import faces
from animstudio.nodes.lipsync.mouth_track import track_box
from animstudio.nodes.lipsync.mouths import MouthBox

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from fixtures.face_photos import ASTRONAUT_MOUTH, FOX_MOUTH, HOPPER_MOUTH, glide  # noqa: E402  (hand labels)


def photos() -> dict[str, tuple[np.ndarray, tuple[float, float], str]]:
    out = {}
    try:
        import skimage.data

        out["astronaut (scikit-image)"] = (skimage.data.astronaut()[..., :3], ASTRONAUT_MOUTH, "photo")
    except ImportError:
        print("scikit-image not installed: no astronaut")
    try:
        import matplotlib.cbook

        with Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg")) as img:
            out["grace_hopper (matplotlib)"] = (np.asarray(img.convert("RGB")), HOPPER_MOUTH, "photo")
    except ImportError:
        print("matplotlib not installed: no Grace Hopper")
    spec = importlib.util.find_spec("comfyui_embedded_docs")
    if spec and spec.origin:
        fox = Path(spec.origin).parent / "docs" / "Canny" / "asset" / "input.webp"
        if fox.is_file():
            with Image.open(fox) as img:
                out["fox girl (comfyui-embedded-docs, stylized)"] = (np.asarray(img.convert("RGB")), FOX_MOUTH,
                                                                      "stylized")
    return out


def moving_face(count: int, size=(640, 360)):
    import skimage.data

    head = skimage.data.astronaut()[40:240, 120:320]
    return glide(head, (ASTRONAUT_MOUTH[0] - 120, ASTRONAUT_MOUTH[1] - 40), cv2.resize(skimage.data.coffee(), size),
                 count)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    if faces.available():
        faces.find_mouths(np.zeros((64, 64, 3), np.uint8))  # load the model once, outside the timings
        errors = {"photo": [], "stylized": []}
        for name, (picture, label, kind) in photos().items():
            best = None
            for _ in range(args.repeat):
                start = time.perf_counter()
                found = faces.find_mouths(picture)
                took = time.perf_counter() - start
                best = took if best is None else min(best, took)
            if not found:
                print(f"finding  {name:45s} no face found")
                continue
            mouth = min(found, key=lambda m: np.hypot(m.centre[0] - label[0], m.centre[1] - label[1]))
            error = float(np.hypot(mouth.centre[0] - label[0], mouth.centre[1] - label[1]))
            errors[kind].append(error)
            print(f"finding  {name:45s} {picture.shape[1]}x{picture.shape[0]}  error {error:5.2f} px  "
                  f"box {mouth.box.width}x{mouth.box.height}  {best * 1000:6.1f} ms")
        for kind, values in errors.items():
            if values:
                print(f"finding  {kind:9s} mean error {np.mean(values):.2f} px, max {np.max(values):.2f} px "
                      f"({len(values)} picture(s))")
    else:
        print("finding: the 'faces' extra is not installed (pip install 'animstudio[faces]'); skipped")

    try:
        frames, truth = moving_face(args.frames)
    except ImportError:
        print("tracking: scikit-image not installed; skipped")
        return
    start_box = MouthBox(int(round(truth[0][0] - 35)), int(round(truth[0][1] - 23)), 70, 46)
    best = None
    for _ in range(args.repeat):
        start = time.perf_counter()
        track = track_box(frames, start_box, fps=24)
        took = time.perf_counter() - start
        best = took if best is None else min(best, took)
    errors = [float(np.hypot(b.x + b.width / 2 - x, b.y + b.height / 2 - y))
              for b, (x, y) in zip(track.boxes, truth) if b is not None]
    lost = f"lost at frame {track.lost_at}" if track.lost_at is not None else "never lost"
    print(f"tracking {len(frames)} frames 640x360, moving 300 px and growing 25 %: mean error {np.mean(errors):.2f} px, "
          f"max {np.max(errors):.2f} px, {lost}, {best / (len(frames) - 1) * 1000:.1f} ms per frame")


if __name__ == "__main__":
    main()
