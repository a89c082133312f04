"""Character sheets and keyframes edited from them, executed (marker ``comfyui``): the render pipeline runs the
translator's sheet and keyframe graphs for Flux Kontext and Qwen-Image-Edit-Plus in a real ComfyUI on random-weight
stand-ins (tests/fixtures/image_models.py; Qwen2.5-VL at full size, as core builds it whatever the file holds), and
the pictures come out at the planned size, one per character and one per shot; a changed reference picture changes
the sheet made from it and the keyframe edited from that sheet, and nothing else."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from animstudio.common.errors import GraphValidationError
from animstudio.translator.client import ComfyClient
from animstudio.translator.render import ServerEngine, render
from animstudio.translator.storyboard import load_storyboard
from comfy_env import comfyui_paths
from conftest import write_panel, write_storyboard
from fixtures import video_models
from fixtures.video_models import file_name

pytestmark = pytest.mark.comfyui

SIZE = 64  # Flux and Qwen-Image: 8x VAE, 2x2 patches
TINY_REFERENCE = 0.04  # megapixels: each sheet enters the DiT as a 200x200 picture (25x25 latent), not 1 MP


@pytest.fixture(scope="module")
def kontext_files(comfyui_base):
    _comfy, python = comfyui_paths()
    return video_models.ensure_video_models(comfyui_base, video_models.KONTEXT, python=python)


@pytest.fixture(scope="module")
def qwen_files(comfyui_base):
    _comfy, python = comfyui_paths()
    return video_models.ensure_video_models(comfyui_base, video_models.QWEN_EDIT, python=python)


@pytest.fixture(scope="module", autouse=True)
def unload_models(comfy_server):
    """The server is shared by the whole session: hand back the several GB these models hold when done."""
    yield
    ComfyClient(comfy_server.url).free()


KONTEXT = {"unet": file_name("flux_kontext"), "clip_l": file_name("clip_l"), "t5xxl": file_name("t5xxl"),
           "vae": file_name("flux_vae"), "steps": 2, "reference_megapixels": TINY_REFERENCE}
QWEN_EDIT = {"unet": file_name("qwen_image_edit"), "text_encoder": file_name("qwen_vl"), "vae": file_name("wan_vae"),
             "steps": 2, "cfg": 1.0, "reference_megapixels": TINY_REFERENCE}


def story(folder: Path, family: str, models: dict, characters: dict, shots: list) -> Path:
    return write_storyboard(folder, {
        "version": 1,
        "project": {"title": f"Sheets {family}", "width": SIZE, "height": SIZE, "fps": 8, "seed": 3,
                    "keyframe_model": family, "keyframe_models": {family: models}},
        "characters": characters, "shots": shots})


def picture(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.float32)


def test_kontext_sheets_and_keyframe_execute_and_follow_the_reference(comfy_server, kontext_files, tmp_path):
    folder = tmp_path / "story"
    write_panel(folder / "refs/mara.png", color=(220, 40, 40), size=(80, 120))
    write_panel(folder / "refs/otto.png", color=(40, 60, 220), size=(80, 120))
    path = story(folder, "kontext", KONTEXT, {
        "mara": {"name": "Mara", "description": "a keeper in a red coat", "reference_images": ["refs/mara.png"]},
        "otto": {"name": "Otto", "description": "a fisherman in blue", "reference_images": ["refs/otto.png"]},
    }, [{"id": "s1", "description": "Mara and Otto on the pier", "characters": ["mara", "otto"], "duration": 1.0}])
    engine = ServerEngine(ComfyClient(comfy_server.url))
    out = tmp_path / "out"
    report = render(load_storyboard(path), out, engine, "per_shot")
    assert report.sheets == {"mara": "sheets/mara.png", "otto": "sheets/otto.png"}
    sheets = {cid: picture(out / f) for cid, f in report.sheets.items()}
    keyframe = picture(out / report.shots["s1"].keyframe)
    for image in (*sheets.values(), keyframe):
        assert image.shape == (SIZE, SIZE, 3)
        assert np.isfinite(image).all() and image.std() > 1.0  # a picture, not a flat fill
    assert np.abs(sheets["mara"] - sheets["otto"]).mean() > 1.0  # made from different references
    assert report.film and (out / report.film).is_file()
    saved = json.loads((out / "render-report.json").read_text())
    assert saved["sheets"] == report.sheets

    # Mara's reference changes: her sheet and the keyframe edited from it change; Otto's sheet is reused as it was
    otto_key = (out / "sheets/otto.key").read_text()
    write_panel(folder / "refs/mara.png", color=(30, 200, 60), size=(80, 120))
    again = render(load_storyboard(path), out, engine, "per_shot")
    assert (out / "sheets/otto.key").read_text() == otto_key
    assert np.array_equal(picture(out / "sheets/otto.png"), sheets["otto"])
    # measured: the sheet moves by 1.9 grey levels (mean absolute, 0-255), the keyframe by 0.035: a random DiT of one
    # double and one single block passes a little of each reference on, and the keyframe is two such steps away from
    # the reference (its graph differs from the first only in Mara's sheet, and a graph run twice is byte-identical)
    assert np.abs(picture(out / "sheets/mara.png") - sheets["mara"]).mean() > 0.5
    assert np.abs(picture(out / again.shots["s1"].keyframe) - keyframe).mean() > 0.01


def test_qwen_edit_sheet_and_keyframe_execute(comfy_server, qwen_files, tmp_path):
    """Qwen2.5-VL (full size, 8.3 GB fp8) reads the reference pictures; one sheet made, one given by the user."""
    ComfyClient(comfy_server.url).free()  # the Kontext test's t5-xxl is held in fp16 on a CPU (9 GB)
    folder = tmp_path / "story"
    write_panel(folder / "refs/mara.png", color=(220, 40, 40), size=(80, 120))
    write_panel(folder / "refs/otto-sheet.png", color=(40, 60, 220), size=(192, 96))
    path = story(folder, "qwen_edit", QWEN_EDIT, {
        "mara": {"name": "Mara", "description": "a keeper", "reference_images": ["refs/mara.png"]},
        "otto": {"name": "Otto", "description": "a fisherman", "sheet": "refs/otto-sheet.png"},
    }, [{"id": "s1", "description": "on the pier", "characters": ["mara", "otto"], "duration": 1.0}])
    out = tmp_path / "out"
    report = render(load_storyboard(path), out, ServerEngine(ComfyClient(comfy_server.url)), "per_shot")
    assert report.sheets == {"mara": "sheets/mara.png", "otto": str(folder.resolve() / "refs/otto-sheet.png")}
    for image in (picture(out / "sheets/mara.png"), picture(out / report.shots["s1"].keyframe)):
        assert image.shape == (SIZE, SIZE, 3)
        assert np.isfinite(image).all() and image.std() > 1.0
    assert sorted(p.name for p in (out / "keyframes").glob("*.png")) == ["s1-attempt1.png", "s1.png"]


def test_a_keyframe_model_the_server_lacks_is_named_with_its_folder(comfy_server, kontext_files, tmp_path):
    folder = tmp_path / "story"
    write_panel(folder / "refs/mara.png")
    path = story(folder, "kontext", {**KONTEXT, "unet": "flux1-kontext-dev.safetensors"}, {
        "mara": {"description": "a keeper", "reference_images": ["refs/mara.png"]}},
        [{"id": "s1", "description": "the pier", "characters": ["mara"], "duration": 1.0}])
    out = tmp_path / "out"
    with pytest.raises(GraphValidationError) as caught:
        render(load_storyboard(path), out, ServerEngine(ComfyClient(comfy_server.url)), "per_shot")
    messages = [p.message for p in caught.value.problems]
    assert any("'flux1-kontext-dev.safetensors' not found" in m and "models/diffusion_models" in m
               for m in messages), messages
    assert json.loads((out / "render-report.json").read_text())["error"]
