"""ControlNet on a real ComfyUI (marker ``comfyui``): core's ControlNetLoader / ControlNetApplyAdvanced with a tiny
random-weight SD1.5 ControlNet built for the tiny checkpoint (``fixtures/controlnet_models.py``), and the
translator's ``control`` subgraph rendered end to end."""
from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from animstudio.translator.client import ComfyClient
from animstudio.translator.keyframes import keyframe_seed
from animstudio.common.errors import GraphValidationError
from animstudio.translator.render import ServerEngine, render
from animstudio.translator.storyboard import load_storyboard
from comfy_env import comfyui_paths
from conftest import TINY_CHECKPOINT, write_storyboard

pytestmark = pytest.mark.comfyui

CONTROLNET = "tiny-sd15-pose-controlnet.safetensors"


def write_pose(path: Path, size: int = 64) -> Path:
    """An OpenPose-like skeleton: coloured limbs and white joints on black, as a pose preprocessor draws them."""
    s = size / 64
    joints = {"head": (32, 10), "neck": (32, 20), "hip": (32, 40), "l_hand": (18, 32), "r_hand": (48, 14),
              "l_elbow": (22, 24), "r_elbow": (42, 18), "l_foot": (22, 60), "r_foot": (44, 60)}
    limbs = [("head", "neck", (255, 0, 0)), ("neck", "hip", (255, 170, 0)), ("neck", "l_elbow", (0, 255, 0)),
             ("l_elbow", "l_hand", (0, 255, 170)), ("neck", "r_elbow", (0, 85, 255)),
             ("r_elbow", "r_hand", (170, 0, 255)),
             ("hip", "l_foot", (255, 0, 170)), ("hip", "r_foot", (255, 255, 0))]
    image = Image.new("RGB", (size, size), (0, 0, 0))
    draw = ImageDraw.Draw(image)
    for a, b, color in limbs:
        (xa, ya), (xb, yb) = joints[a], joints[b]
        draw.line([(xa * s, ya * s), (xb * s, yb * s)], fill=color, width=max(2, int(3 * s)))
    for x, y in joints.values():
        draw.ellipse([x * s - 2, y * s - 2, x * s + 2, y * s + 2], fill=(255, 255, 255))
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


@pytest.fixture(scope="session")
def controlnet_name(comfyui_base):
    """The tiny SD1.5 ControlNet in the server's models/controlnet (ComfyUI lists the folder when asked, so building
    it after the server started is fine)."""
    _comfy_dir, comfy_python = comfyui_paths()
    script = str(Path(__file__).parent / "fixtures" / "controlnet_models.py")
    checkpoint = str(comfyui_base / "models" / "checkpoints" / TINY_CHECKPOINT)
    subprocess.run([comfy_python, script, str(comfyui_base / "models" / "controlnet" / CONTROLNET), checkpoint],
                   check=True, timeout=300)
    return CONTROLNET


def control_graph(control_image: str | None, strength: float = 1.0, prefix: str = "cn-test") -> dict:
    """Checkpoint -> text encode -> (ControlNet applied to both prompts) -> 1-step KSampler -> decode -> SaveImage."""
    graph = {
        "ckpt": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": TINY_CHECKPOINT}},
        "pos": {"class_type": "CLIPTextEncode", "inputs": {"text": "a girl waving, full body", "clip": ["ckpt", 1]}},
        "neg": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["ckpt", 1]}},
    }
    positive, negative = ["pos", 0], ["neg", 0]
    if control_image is not None:
        graph.update({
            "cn_image": {"class_type": "LoadImage", "inputs": {"image": control_image}},
            "cn_model": {"class_type": "ControlNetLoader", "inputs": {"control_net_name": CONTROLNET}},
            "cn_apply": {"class_type": "ControlNetApplyAdvanced", "inputs": {
                "positive": positive, "negative": negative, "control_net": ["cn_model", 0], "image": ["cn_image", 0],
                "strength": strength, "start_percent": 0.0, "end_percent": 1.0, "vae": ["ckpt", 2]}},
        })
        positive, negative = ["cn_apply", 0], ["cn_apply", 1]
    graph.update({
        "latent": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "sampler": {"class_type": "KSampler", "inputs": {
            "model": ["ckpt", 0], "positive": positive, "negative": negative, "latent_image": ["latent", 0],
            "seed": 7, "steps": 1, "cfg": 1.0, "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0}},
        "decode": {"class_type": "VAEDecode", "inputs": {"samples": ["sampler", 0], "vae": ["ckpt", 2]}},
        "save": {"class_type": "SaveImage", "inputs": {"images": ["decode", 0], "filename_prefix": prefix}},
    })
    return graph


def run_graph(client: ComfyClient, graph: dict, dest: Path) -> np.ndarray:
    outputs = client.run(graph)
    images = [f for f in client.output_files(outputs) if f.node_id == "save"]
    assert len(images) == 1
    return np.asarray(Image.open(client.download(images[0], dest)).convert("RGB")).astype(np.float64)


def test_controlnet_changes_the_picture_and_strength_zero_does_nothing(comfy_server, controlnet_name, tmp_path):
    client = ComfyClient(comfy_server.url)
    assert controlnet_name in client.object_info()["ControlNetLoader"]["input"]["required"]["control_net_name"][0]
    pose = client.upload(write_pose(tmp_path / "pose.png"), "cn-test")
    blank = Image.new("RGB", (64, 64), (0, 0, 0))
    blank.save(tmp_path / "blank.png")
    blank = client.upload(tmp_path / "blank.png", "cn-test")

    without = run_graph(client, control_graph(None, prefix="cn-none"), tmp_path / "none")
    guided = run_graph(client, control_graph(pose, 1.0, "cn-pose"), tmp_path / "pose")
    assert without.shape == guided.shape == (64, 64, 3)
    assert np.abs(guided - without).mean() > 0.5
    # the loader found every weight it needs in the file (ComfyUI warns about missing ones in its log)
    assert "missing controlnet keys" not in comfy_server.log()

    # the picture follows the control image, not only the ControlNet's presence
    other = run_graph(client, control_graph(blank, 1.0, "cn-blank"), tmp_path / "blank")
    assert np.abs(guided - other).mean() > 0.5

    # core's ControlNetApplyAdvanced returns the conditioning untouched at strength 0: the same picture as without
    at_zero = run_graph(client, control_graph(pose, 0.0, "cn-zero"), tmp_path / "zero")
    assert np.array_equal(at_zero, without)


def story(folder: Path, control: dict | None):
    write_pose(folder / "control" / "pose.png")
    shot = {"id": "s1", "description": "mara waves", "duration": 0.5}
    if control is not None:
        shot["control"] = control
    return load_storyboard(write_storyboard(folder, {
        "version": 1,
        "project": {"title": "Control", "width": 64, "height": 64, "fps": 8, "checkpoint": TINY_CHECKPOINT,
                    "steps": 1, "cfg": 1.0},
        "shots": [shot]}))


def test_a_shot_with_control_renders_a_different_keyframe(comfy_server, controlnet_name, tmp_path):
    engine = ServerEngine(ComfyClient(comfy_server.url))
    guided_board = story(tmp_path / "guided", {"image": "control/pose.png", "model": controlnet_name, "kind": "pose",
                                               "strength": 1.0})
    plain_board = story(tmp_path / "plain", None)
    # the same seed either way: any difference comes from the ControlNet
    assert keyframe_seed(guided_board, guided_board.shot("s1")) == keyframe_seed(plain_board, plain_board.shot("s1"))

    guided = render(guided_board, tmp_path / "out-guided", engine, "per_shot")
    plain = render(plain_board, tmp_path / "out-plain", engine, "per_shot")
    assert guided.shots["s1"].status == plain.shots["s1"].status == "rendered"
    assert guided.film and plain.film
    pictures = [np.asarray(Image.open(out / report.shots["s1"].keyframe).convert("RGB")).astype(np.float64)
                for out, report in ((tmp_path / "out-guided", guided), (tmp_path / "out-plain", plain))]
    assert pictures[0].shape == pictures[1].shape == (64, 64, 3)
    assert np.abs(pictures[0] - pictures[1]).mean() > 0.5


def test_a_missing_control_model_is_refused_before_anything_runs(comfy_server, controlnet_name, tmp_path):
    engine = ServerEngine(ComfyClient(comfy_server.url))
    board = story(tmp_path / "missing", {"image": "control/pose.png", "model": "no-such-controlnet.safetensors",
                                         "kind": "pose"})
    with pytest.raises(GraphValidationError) as caught:
        render(board, tmp_path / "out", engine, "per_shot")
    problems = [str(p) for p in caught.value.problems if "'s1:control:model'" in p.where]
    assert len(problems) == 1, caught.value.problems
    assert "no-such-controlnet.safetensors" in problems[0] and "models/controlnet" in problems[0]
    assert not list((tmp_path / "out").rglob("*.png"))  # nothing was sampled
