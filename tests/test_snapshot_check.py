"""Compiled graphs against the node definitions recorded from a real ComfyUI 0.3.64 (tests/data), with the
pack's current definitions laid over the recorded ones (so the snapshot does not go stale as the pack grows)."""
from __future__ import annotations

from pathlib import Path

import pytest

from animstudio.cli import main
from animstudio.translator.compile import compile_storyboard
from animstudio.translator.embedded import EmbeddedEngine
from animstudio.translator.graph_check import graph_problems, load_object_info
from animstudio.translator.storyboard import load_storyboard
from conftest import EXAMPLE, write_storyboard

SNAPSHOT = Path(__file__).parent / "data" / "object_info_comfyui_0.3.64.json"


@pytest.fixture(scope="module")
def object_info():
    info = load_object_info(SNAPSHOT)
    assert len(info) > 450 and "KSampler" in info and "LoraLoader" in info
    info.update(EmbeddedEngine().pack_object_info())
    return info


def test_example_graphs_fit_real_comfyui(object_info):
    for shape in ("film", "per_shot"):
        for compiled in compile_storyboard(load_storyboard(EXAMPLE), shape).graphs:
            uploads = [u.name for u in compiled.uploads] + [
                f"animstudio/shots/{s}.mp4" for s in ("opening", "keeper-window", "ship-storm", "beam")]
            assert graph_problems(compiled.graph, object_info, compiled.node_shots, uploads) == [], compiled.name


def test_generated_shots_fit_real_comfyui_except_missing_models(tmp_path, object_info):
    board = load_storyboard(write_storyboard(tmp_path, {
        "version": 1, "project": {"title": "G", "checkpoint": "sd15.safetensors", "sampler": "euler_ancestral",
                                  "scheduler": "karras"},
        "characters": {"mara": {"description": "girl", "lora": {"file": "mara.safetensors", "weight": 0.7}}},
        "shots": [{"id": "s1", "description": "walks", "characters": ["mara"]}]}))
    compiled = compile_storyboard(board).graphs[0]
    problems = graph_problems(compiled.graph, object_info, compiled.node_shots)
    assert [p.where for p in problems] == ["node 'film:checkpoint' (CheckpointLoaderSimple)",
                                           "node 's1:lora-mara:lora' (AnimStudioCharacterLoRA, shot s1)"]
    assert "models/checkpoints" in problems[0].message and "sd15.safetensors" in problems[0].message
    assert "models/loras" in problems[1].message and "mara.safetensors" in problems[1].message


def test_unknown_sampler_is_caught_before_submitting(tmp_path, object_info, capsys):
    path = write_storyboard(tmp_path, {
        "version": 1, "project": {"title": "G", "checkpoint": "sd15.safetensors", "sampler": "eulr"},
        "shots": [{"id": "s1", "description": "walks"}]})
    import json

    (tmp_path / "info.json").write_text(json.dumps(object_info))
    assert main(["validate", str(path), "--object-info", str(tmp_path / "info.json")]) == 3
    err = capsys.readouterr().err
    assert "node 's1:sampler' (KSampler, shot s1): input 'sampler_name': 'eulr' is not one of" in err
