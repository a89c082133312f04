"""A character's own LoRA trained as a job (marker ``comfyui``): ``animstudio train-character`` builds the graph on
core's Train LoRA and the pack's Save Character LoRA, runs it on a real ComfyUI with the tiny SD1.5 checkpoint, and
registers the LoRA in the storyboard; the file loads back through the pack's Character LoRA node with every key
applied, and the next render's keyframe graph loads it."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from safetensors import safe_open

from animstudio.cli import main
from animstudio.translator.client import ComfyClient
from animstudio.translator.compile import compile_keyframe
from animstudio.translator.storyboard import load_storyboard
from conftest import TINY_CHECKPOINT, write_panel, write_storyboard

pytestmark = pytest.mark.comfyui


def story(folder: Path) -> Path:
    write_panel(folder / "refs/mara-1.png", color=(220, 40, 40), size=(96, 64))
    write_panel(folder / "refs/mara-2.png", color=(200, 60, 60), size=(64, 96))
    return write_storyboard(folder, {
        "version": 1,
        "project": {"title": "Train", "width": 64, "height": 64, "fps": 8, "checkpoint": TINY_CHECKPOINT, "steps": 1},
        "characters": {"mara": {"name": "Mara", "description": "a keeper in a red coat",
                                "reference_images": ["refs/mara-1.png", "refs/mara-2.png"]},
                       "otto": {"description": "a fisherman"}},
        "shots": [{"id": "s1", "description": "Mara on the pier", "characters": ["mara"], "duration": 1.0}]})


def test_train_character_saves_registers_and_loads_back_with_every_key(comfy_server, comfyui_base, tmp_path, capsys):
    path = story(tmp_path / "story")
    code = main(["train-character", str(path), "mara", "--server", comfy_server.url, "--steps", "2", "--rank", "4",
                 "--training-dtype", "fp32", "--json", "-o", str(tmp_path / "out")])
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and result["ok"], result
    name = result["lora"]
    assert name.startswith("animstudio/mara-") and name.endswith(".safetensors")
    assert (result["pictures"], result["steps"], result["trigger_word"]) == (2, 2, "mara_char")
    assert result["registered_at"] == "$.characters.mara.lora"

    # the file on the server's loras folder, and the copy that came back, hold the same LoRA
    served = comfyui_base / "models" / "loras" / name
    copy = Path(result["copy"])
    with safe_open(str(served), "pt") as a, safe_open(str(copy), "pt") as b:
        keys = sorted(a.keys())
        assert keys == sorted(b.keys())
        assert a.metadata()["training_steps"] == "2"
    assert any(k.endswith(".lora_up.weight") or k.endswith(".lora_B.weight") for k in keys), keys[:4]
    assert any("input_blocks" in k or "output_blocks" in k or "middle_block" in k for k in keys)

    # registered in the storyboard: the next render's keyframe graph loads it through the Character LoRA node
    board = load_storyboard(path)
    assert board.characters["mara"].lora.file == name and board.characters["mara"].lora.trigger_words == ("mara_char",)
    keyframe = compile_keyframe(board, board.shot("s1")).graph
    assert keyframe["s1:lora-mara:lora"]["inputs"]["lora_name"] == name
    assert "mara_char" in keyframe["s1:positive"]["inputs"]["text"]

    # loads back with zero keys left unapplied: the Character LoRA node's report, shown by core's PreviewAny
    client = ComfyClient(comfy_server.url)
    outputs = client.run({
        "ckpt": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": TINY_CHECKPOINT}},
        "lora": {"class_type": "AnimStudioCharacterLoRA", "inputs": {
            "model": ["ckpt", 0], "clip": ["ckpt", 1], "lora_name": name, "strength_model": 1.0,
            "strength_clip": 1.0, "character": "Mara"}},
        "show": {"class_type": "PreviewAny", "inputs": {"source": ["lora", 2]}},
    }, {})
    assert outputs["show"]["text"] == [""], outputs["show"]


def test_train_character_refuses_what_it_cannot_train_by_place(comfy_server, tmp_path, capsys):
    path = story(tmp_path / "story")
    assert main(["train-character", str(path), "otto", "--server", comfy_server.url, "--json"]) == 2
    problems = json.loads(capsys.readouterr().out)["problems"]
    assert problems[0]["where"] == "$.characters.otto.reference_images"
    assert main(["train-character", str(path), "nobody", "--server", comfy_server.url, "--json"]) == 2
    problems = json.loads(capsys.readouterr().out)["problems"]
    assert problems[0]["where"] == "$.characters" and "nobody" in problems[0]["message"]
    assert json.loads(path.read_text())["characters"]["mara"].get("lora") is None  # nothing written


def test_train_character_as_a_batch_job_on_the_pool(comfy_server, comfyui_base, tmp_path, capsys):
    path = story(tmp_path / "story")
    pool = tmp_path / "pool.yaml"
    pool.write_text(f"endpoints: [{{name: local, url: '{comfy_server.url}'}}]\n")
    out = tmp_path / "batch"
    code = main(["batch", str(path), "--pool", str(pool), "-o", str(out), "--train", "mara", "--train-steps", "2",
                 "--train-dtype", "fp32", "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert code == 0 and summary["ok"], summary
    assert summary["jobs"] == {"completed": 1}
    name = summary["loras"]["train/mara"]
    assert name.startswith("animstudio/mara-") and (comfyui_base / "models" / "loras" / name).is_file()
    assert load_storyboard(path).characters["mara"].lora.file == name
    assert sorted(p.name for p in (out / "train" / "loras").iterdir()) == [name.split("/")[1]]
