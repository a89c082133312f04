"""The example workflows in the editor's UI format (`workflows/ui/`, for dragging into ComfyUI): each one is what
the translator makes today (so they never go stale), with a note on the model files it needs, and converts back to a
graph that fits ComfyUI 0.3.64 and the pack, but for model files a user supplies. Regenerate with
``python tests/test_ui_examples.py``."""
from __future__ import annotations

import json
import sys
from pathlib import Path


REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
UI_DIR = REPO / "workflows" / "ui"
SNAPSHOT = REPO / "tests" / "data" / "object_info_comfyui_0.3.64.json"


def definitions() -> dict:
    from animstudio.translator.embedded import EmbeddedEngine
    from animstudio.translator.graph_check import load_object_info

    info = load_object_info(SNAPSHOT)
    info.update(EmbeddedEngine().pack_object_info())
    return info


def examples() -> dict[str, dict]:
    """name → API graph: one per stage of the pipeline."""
    from animstudio.translator.compile import compile_keyframe, compile_storyboard
    from animstudio.translator.storyboard import parse_storyboard

    speak = {
        "tts": {"class_type": "AnimStudioTTS", "inputs": {"text": "Another quiet night. I hope.", "engine": "espeak",
                                                          "voice": "", "language": "en", "rate": 1.0, "pitch": 0.0,
                                                          "emotion": "neutral"}},
        "lipsync": {"class_type": "AnimStudioLipSync", "inputs": {"audio": ["tts", 0], "engine": "auto",
                                                                 "extended_shapes": "GHX", "dialogue_text": ["tts", 1]}},
        "cues": {"class_type": "AnimStudioSaveMouthCues", "inputs": {"mouth_cues": ["lipsync", 0], "format": "json",
                                                                    "filename_prefix": "animstudio/cues",
                                                                    "dat_frame_rate": 24}},
    }
    board = parse_storyboard({
        "version": 1,
        "project": {"title": "Keeper", "width": 512, "height": 288, "checkpoint": "sd15.safetensors", "steps": 20,
                    "style": "storybook illustration"},
        "characters": {"keeper": {"name": "Ada", "description": "an old lighthouse keeper with a grey knitted cap",
                                  "lora": {"file": "ada.safetensors", "weight": 0.8, "trigger_words": ["ada_v1"]},
                                  "voice": {"engine": "espeak"}}},
        "shots": [{"id": "keeper", "description": "the keeper looks out of the lamp-room window",
                   "characters": ["keeper"], "camera": {"shot": "medium", "move": "dolly_in"}, "duration": 3.0,
                   "dialogue": [{"character": "keeper", "text": "Another quiet night. I hope."}]}]}, base_dir=REPO)
    film = compile_storyboard(board).graphs[0]
    return {"speak-and-lipsync": (speak, None), "keyframe-with-character-lora":
            (compile_keyframe(board, board.shots[0]).graph, compile_keyframe(board, board.shots[0]).node_shots),
            "generated-shot-to-film": (film.graph, film.node_shots)}


# what the note says about the examples' model files beyond their folder
REMARKS = {
    "sd15.safetensors": "any Stable Diffusion 1.5 checkpoint: rename yours to sd15.safetensors, or choose yours in "
                        "the checkpoint loader",
    "ada.safetensors": "the character's LoRA (animstudio train-character makes one), or any SD 1.5 LoRA chosen in "
                       "the LoRA node",
}


def render_examples() -> dict[str, dict]:
    from animstudio.translator.api_to_ui import api_to_ui
    from animstudio.translator.ui_layout import add_note, model_note

    info = definitions()
    made = {}
    for name, (graph, shots) in examples().items():
        made[name] = api_to_ui(graph, info, shots, name)
        add_note(made[name], model_note(graph, REMARKS))
    return made


def test_examples_are_current_and_convert_to_graphs_that_fit():
    from animstudio.translator.graph_check import graph_problems
    from animstudio.translator.ui_to_api import ui_to_api

    info = definitions()
    made = render_examples()
    assert sorted(p.stem for p in UI_DIR.glob("*.json")) == sorted(made)
    for name, workflow in made.items():
        saved = json.loads((UI_DIR / f"{name}.json").read_text(encoding="utf-8"))
        assert saved == workflow, f"workflows/ui/{name}.json is stale: run python tests/test_ui_examples.py"
        graph = ui_to_api(saved, info)
        problems = [p for p in graph_problems(graph, info) if "model file" not in p.message]
        assert problems == [], (name, problems)
        assert len(graph) == len(saved["nodes"]) - 1  # the note is the editor's alone


def test_examples_are_laid_out_to_be_read():
    """Nothing covers anything, every node sits in its shot's group, titles say the role after the shot."""
    from animstudio.translator.ui_layout import outside_groups, overlaps

    for name, workflow in render_examples().items():
        assert overlaps(workflow) == [] and outside_groups(workflow) == [], name
        node_ids = workflow["extra"]["animstudio"]["node_ids"]
        titles = [n["title"] for n in workflow["nodes"] if str(n["id"]) in node_ids]
        assert len(set(titles)) == len(titles), name
        for node in workflow["nodes"]:
            if str(node["id"]) in node_ids:
                assert node["type"] not in node["title"], (name, node["title"])


def test_each_example_names_its_model_files_and_where_they_go():
    made = render_examples()
    notes = {name: [n for n in w["nodes"] if n["type"] == "Note"] for name, w in made.items()}
    assert all(len(found) == 1 for found in notes.values()), notes
    film = notes["generated-shot-to-film"][0]["widgets_values"][0]
    assert "sd15.safetensors → ComfyUI/models/checkpoints/" in film and "Stable Diffusion 1.5" in film
    assert "ada.safetensors → ComfyUI/models/loras/" in film
    assert "sd15.safetensors" in notes["keyframe-with-character-lora"][0]["widgets_values"][0]
    assert "none" in notes["speak-and-lipsync"][0]["widgets_values"][0]


if __name__ == "__main__":
    UI_DIR.mkdir(parents=True, exist_ok=True)
    for name, workflow in render_examples().items():
        (UI_DIR / f"{name}.json").write_text(json.dumps(workflow, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print("wrote", UI_DIR / f"{name}.json")
