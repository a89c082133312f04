"""Shared fixtures. The integration tier (marker ``comfyui``) starts one real ComfyUI for the session,
and skips with the reason where none is installed (``COMFYUI_DIR`` or ``~/comfy/ComfyUI``)."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from comfy_env import comfyui_paths, make_base_directory, start_comfyui

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "workflows" / "examples" / "lighthouse" / "storyboard.json"
TINY_CHECKPOINT = "tiny-sd15.safetensors"


def write_panel(path: Path, color=(200, 80, 40), size=(160, 90)) -> Path:
    """A real PNG with a gradient and a block, so frames differ from one another under camera moves."""
    w, h = size
    x = np.linspace(0, 255, w, dtype=np.float32)[None, :, None]
    y = np.linspace(0, 255, h, dtype=np.float32)[:, None, None]
    image = np.clip(np.concatenate([x + 0 * y, y + 0 * x, (x + y) / 2], axis=2) * 0.5
                    + np.array(color, np.float32) * 0.5, 0, 255).astype(np.uint8)
    image[h // 3: h // 2, w // 3: w // 2] = 255
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path)
    return path


def write_storyboard(folder: Path, data: dict, name: str = "storyboard.json") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(json.dumps(data, indent=2))
    return path


@pytest.fixture(scope="session")
def comfyui_base(tmp_path_factory):
    """A ComfyUI base directory with the tiny random-weight SD1.5 checkpoint in models/checkpoints."""
    if comfyui_paths() is None:
        pytest.skip("real ComfyUI not found at $COMFYUI_DIR or ~/comfy/ComfyUI (with its venv): "
                    "integration tier skipped")
    base = make_base_directory(tmp_path_factory.mktemp("comfy-base"))
    _comfy_dir, comfy_python = comfyui_paths()
    # built by ComfyUI's own Python: it has torch and safetensors, the test environment may not
    subprocess.run([comfy_python, str(Path(__file__).parent / "fixtures" / "tiny_models.py"),
                    str(base / "models" / "checkpoints" / TINY_CHECKPOINT)], check=True, timeout=300)
    return base


@pytest.fixture(scope="session")
def comfy_server(comfyui_base):
    server = start_comfyui(comfyui_base)
    yield server
    server.stop()
