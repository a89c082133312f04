"""The renderer's re-render loop on a real ComfyUI: a keyframe whose consistency score fails is generated again
with new seeds, every attempt and its score goes in the render report, the best attempt is kept (marker
``comfyui``; the tiny SD1.5 checkpoint and the random CLIP vision model built by the tests)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from animstudio.translator.client import ComfyClient
from animstudio.translator.keyframes import keyframe_seed
from animstudio.translator.render import ServerEngine, render
from animstudio.translator.storyboard import load_storyboard
from conftest import TINY_CHECKPOINT, write_panel, write_storyboard

pytestmark = pytest.mark.comfyui


def story(folder, clip_vision: str, threshold: float, attempts: int = 3):
    write_panel(folder / "refs" / "mara.png", color=(220, 40, 40), size=(64, 64))
    return load_storyboard(write_storyboard(folder, {
        "version": 1,
        "project": {"title": "Retry", "width": 64, "height": 64, "fps": 8, "checkpoint": TINY_CHECKPOINT,
                    "steps": 1, "cfg": 1.0, "clip_vision": clip_vision,
                    "consistency": {"threshold": threshold, "max_attempts": attempts}},
        "characters": {"mara": {"description": "a girl", "reference_images": ["refs/mara.png"]}},
        "shots": [{"id": "s1", "description": "mara waves", "characters": ["mara"], "duration": 0.5}]}))


def test_failing_keyframes_are_rendered_again_and_the_best_is_kept(comfy_server, clip_vision_name, tmp_path):
    engine = ServerEngine(ComfyClient(comfy_server.url))
    board = story(tmp_path / "strict", clip_vision_name, threshold=1.0, attempts=3)
    out = tmp_path / "out"
    report = render(board, out, engine, "per_shot")
    attempts = report.shots["s1"].attempts
    assert [a.attempt for a in attempts] == [1, 2, 3]  # a threshold no picture reaches: all N attempts
    assert [a.seed for a in attempts] == [keyframe_seed(board, board.shot("s1"), n) for n in range(3)]
    assert len({a.seed for a in attempts}) == 3
    assert all(not a.passed and 0.0 < a.score < 1.0 and a.scores == {"mara": a.score} for a in attempts)
    pictures = [np.asarray(Image.open(out / a.file)) for a in attempts]
    assert all(p.shape == (64, 64, 3) for p in pictures)
    assert not np.array_equal(pictures[0], pictures[1])  # a new seed, a new picture
    best = max(attempts, key=lambda a: a.score)
    assert (out / report.shots["s1"].keyframe).read_bytes() == (out / best.file).read_bytes()
    saved = json.loads((out / "render-report.json").read_text())
    assert [a["score"] for a in saved["shots"]["s1"]["attempts"]] == [a.score for a in attempts]
    assert saved["shots"]["s1"]["keyframe"] == "keyframes/s1.png" and report.film
    assert report.shots["s1"].status == "rendered"

    # the same storyboard again: the chosen keyframe and its attempts are reused, nothing is sampled
    again = render(board, out, engine, "per_shot")
    assert again.shots["s1"].status == "cached" and again.shots["s1"].attempts == attempts
    assert "keyframes" not in again.stages


def test_a_passing_keyframe_is_rendered_once(comfy_server, clip_vision_name, tmp_path):
    engine = ServerEngine(ComfyClient(comfy_server.url))
    report = render(story(tmp_path / "easy", clip_vision_name, threshold=0.0), tmp_path / "out", engine, "per_shot")
    attempts = report.shots["s1"].attempts
    assert len(attempts) == 1 and attempts[0].passed and attempts[0].attempt == 1


def test_motion_subgraphs_fit_the_live_servers_definitions(comfy_server, tmp_path):
    """Every video family this ComfyUI offers (core 0.3.64: Wan, LTX-Video and Wan Phantom; AnimateDiff-Evolved only
    when that pack is installed): the compiled motion subgraph passes the live /object_info but for the model files,
    which are named with the folder each belongs in."""
    from animstudio.translator.compile import compile_shot
    from animstudio.translator.motion import MOTION_NODES
    from animstudio.translator.graph_check import graph_problems

    info = ComfyClient(comfy_server.url).object_info()
    offered = [family for family, nodes in MOTION_NODES.items() if all(n in info for n in nodes)]
    assert {"wan", "ltx", "phantom"} <= set(offered)
    write_panel(tmp_path / "key.png", size=(64, 64))
    board = load_storyboard(write_storyboard(tmp_path, {
        "version": 1,
        "project": {"title": "Motion", "width": 64, "height": 64, "fps": 8, "checkpoint": TINY_CHECKPOINT,
                    "motion_models": {
                        "wan": {"unet": "wan-i2v.safetensors", "text_encoder": "umt5.safetensors",
                                "vae": "wan-vae.safetensors", "clip_vision": "clip-h.safetensors"},
                        "ltx": {"checkpoint": "ltxv.safetensors", "text_encoder": "t5xxl.safetensors"},
                        "animatediff": {"motion_model": "mm_sd15.ckpt"},
                        "phantom": {"unet": "phantom-wan.safetensors", "text_encoder": "umt5.safetensors",
                                    "vae": "wan-vae.safetensors"}}},
        "shots": [{"id": family, "description": "waves", "keyframe": "key.png", "duration": 1.0,
                   "motion": {"family": family}} for family in offered]}))
    for family in offered:
        compiled = compile_shot(board, board.shot(family), object_info=info)
        assert any(node["class_type"] in MOTION_NODES[family]
                   for node in compiled.graph.values())
        problems = graph_problems(compiled.graph, info, compiled.node_shots, [u.name for u in compiled.uploads])
        assert problems and all("model file" in p.message and "models/" in p.message for p in problems), problems


def test_storyboard_ip_adapter_steers_the_keyframe_and_weight_zero_is_none(comfy_server, comfyui_base,
                                                                           clip_vision_name, tmp_path):
    """A character's `ip_adapter` in the storyboard: the translator's IP-Adapter subgraph runs on the server;
    weight 0 renders the same keyframe as no adapter, bit for bit, and a weight changes it."""
    import subprocess
    from pathlib import Path

    from comfy_env import comfyui_paths

    _comfy_dir, comfy_python = comfyui_paths()
    name = "story-ip-tiny-sd15.safetensors"
    subprocess.run([comfy_python, str(Path(__file__).parent / "fixtures" / "ipadapter_models.py"), "standard",
                    str(comfyui_base / "models" / "ipadapter" / name),
                    str(comfyui_base / "models" / "checkpoints" / TINY_CHECKPOINT)], check=True, timeout=300)
    engine = ServerEngine(ComfyClient(comfy_server.url))
    pictures = {}
    for label, weight in (("none", None), ("zero", 0.0), ("on", 0.9)):
        folder = tmp_path / label
        write_panel(folder / "refs" / "mara.png", color=(220, 40, 40), size=(64, 64))
        character = {"description": "a girl", "reference_images": ["refs/mara.png"]}
        if weight is not None:
            character["ip_adapter"] = {"file": name, "weight": weight}
        board = load_storyboard(write_storyboard(folder, {
            "version": 1,
            "project": {"title": "IP", "width": 64, "height": 64, "fps": 8, "checkpoint": TINY_CHECKPOINT,
                        "steps": 1, "cfg": 2.0, "clip_vision": clip_vision_name, "consistency": {"enabled": False}},
            "characters": {"mara": character},
            "shots": [{"id": "s1", "description": "mara waves", "characters": ["mara"], "duration": 0.5}]}))
        report = render(board, folder / "out", engine, "per_shot")
        assert report.shots["s1"].attempts[0].score is None  # scoring switched off: one attempt, unscored
        pictures[label] = np.asarray(Image.open(folder / "out" / report.shots["s1"].keyframe).convert("RGB"))
    assert np.array_equal(pictures["zero"], pictures["none"])
    assert np.abs(pictures["on"].astype(int) - pictures["none"].astype(int)).mean() > 0.5


def test_embedded_engine_re_renders_too(comfyui_base, clip_vision_name, tmp_path):
    """The default engine (no server: ComfyUI's own execution code run headless) acts on the score the same way."""
    from animstudio.translator.embedded import EmbeddedEngine
    from animstudio.translator.render import LocalEngine

    engine = LocalEngine(EmbeddedEngine(models_dir=comfyui_base / "models"))
    report = render(story(tmp_path / "embedded", clip_vision_name, threshold=1.0, attempts=2), tmp_path / "out",
                    engine, "per_shot")
    attempts = report.shots["s1"].attempts
    assert [a.attempt for a in attempts] == [1, 2] and not any(a.passed for a in attempts)
    assert attempts[0].seed != attempts[1].seed and report.film


def test_server_frees_its_models_between_stages(comfy_server, caplog):
    """`POST /free` (what the renderer sends between the keyframe and motion stages) is accepted by ComfyUI."""
    import logging

    with caplog.at_level(logging.WARNING, logger="animstudio.translator.client"):
        ComfyClient(comfy_server.url).free()
    assert not caplog.records


class PlantingEngine(ServerEngine):
    """A real server whose keyframe graphs score a planted picture instead of the generated one: the random
    SD1.5 stand-in draws no face, so a face identity score needs a face put in front of the real consistency node
    (which runs as it would, with dlib's models)."""

    def __init__(self, client: ComfyClient, planted: str):
        super().__init__(client)
        self.planted = planted

    def run(self, graph, node_shots, on_event, uploads=()):
        graph = json.loads(json.dumps(graph))
        for node in graph.values():
            if node["class_type"] == "AnimStudioConsistencyScore":
                node["inputs"]["images"] = ["planted", 0]
        if any(n["class_type"] == "AnimStudioConsistencyScore" for n in graph.values()):
            graph["planted"] = {"class_type": "LoadImage", "inputs": {"image": self.planted}}
        return super().run(graph, node_shots, on_event, uploads)


def test_a_failing_face_score_renders_the_keyframe_again(comfy_server, clip_vision_name, tmp_path):
    """Mara's reference is Eileen Collins's photograph. A planted keyframe of Grace Hopper fails the face identity
    score although CLIP alone (threshold 0) would pass it: every attempt is made and each is decided by the face.
    A planted picture of Collins herself (turned, darker) passes at once."""
    import cv2

    from animstudio.nodes.lipsync.faces import available

    if not available():
        pytest.skip("the 'faces' extra is not installed (pip install 'animstudio[faces]')")
    skdata = pytest.importorskip("skimage.data", reason="the astronaut photograph ships with scikit-image")
    cbook = pytest.importorskip("matplotlib.cbook", reason="the Grace Hopper photograph ships with matplotlib")
    client = ComfyClient(comfy_server.url)
    collins = skdata.astronaut()[..., :3]
    turned = (cv2.warpAffine(collins, cv2.getRotationMatrix2D((256, 256), 8, 1.0), (512, 512)) * 0.7).astype(np.uint8)
    for name, picture in (("hopper", np.asarray(Image.open(cbook.get_sample_data("grace_hopper.jpg")).convert("RGB"))),
                          ("collins-turned", turned)):
        Image.fromarray(picture).save(tmp_path / f"planted-{name}.png")
        client.upload(tmp_path / f"planted-{name}.png", "", f"planted-{name}.png")
    folder = tmp_path / "story"
    (folder / "refs").mkdir(parents=True)
    Image.fromarray(collins).save(folder / "refs" / "mara.png")
    board = load_storyboard(write_storyboard(folder, {
        "version": 1,
        "project": {"title": "Faces", "width": 64, "height": 64, "fps": 8, "checkpoint": TINY_CHECKPOINT,
                    "steps": 1, "cfg": 1.0, "clip_vision": clip_vision_name,
                    "consistency": {"threshold": 0.0, "max_attempts": 3}},
        "characters": {"mara": {"description": "an astronaut", "reference_images": ["refs/mara.png"]}},
        "shots": [{"id": "s1", "description": "mara smiles", "characters": ["mara"], "duration": 0.5}]}))

    report = render(board, tmp_path / "fail", PlantingEngine(client, "planted-hopper.png"), "per_shot")
    attempts = report.shots["s1"].attempts
    assert [a.attempt for a in attempts] == [1, 2, 3] and not any(a.passed for a in attempts)
    assert all(a.methods == {"mara": "face"} and a.score < 0.4 for a in attempts), attempts
    saved = json.loads((tmp_path / "fail" / "render-report.json").read_text())
    assert saved["shots"]["s1"]["attempts"][0]["methods"] == {"mara": "face"}

    report = render(board, tmp_path / "pass", PlantingEngine(client, "planted-collins-turned.png"), "per_shot")
    (attempt,) = report.shots["s1"].attempts
    assert attempt.passed and attempt.methods == {"mara": "face"} and attempt.score > 0.6, attempt
