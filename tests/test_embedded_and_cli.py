"""The embedded engine (pack-only graphs, no ComfyUI) and the CLI, end to end on real files."""
from __future__ import annotations

import json
import subprocess
import sys

import av
import pytest

from animstudio.cli import main
from animstudio.translator.embedded import EmbeddedEngine
from animstudio.common.errors import EngineUnavailableError, ServerError
from conftest import EXAMPLE, odd_width_film, write_panel, write_storyboard


def frame_count(path):
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def test_cli_renders_the_bundled_example(tmp_path, capsys):
    assert main(["render", str(EXAMPLE), "-o", str(tmp_path), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    film = tmp_path / result["film"]
    with av.open(str(film)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (512, 288)
        assert float(stream.average_rate) == 12
    # 3.0 + 3.123 + 3.584 + 2.5 s at 12 fps, minus the dissolve's and the wipe's 6-frame overlaps
    assert frame_count(film) == 36 + 37 + 43 + 30 - 6 - 6
    report = json.loads((tmp_path / "render-report.json").read_text())
    assert report["engine"] == "embedded" and {s["status"] for s in report["shots"].values()} == {"rendered"}


def test_per_shot_render_reuses_unchanged_shots(tmp_path):
    story = tmp_path / "story"
    write_panel(story / "a.png"), write_panel(story / "b.png", color=(10, 200, 10))
    data = {"version": 1, "project": {"title": "Two", "width": 96, "height": 64, "fps": 8},
            "shots": [{"id": "a", "description": "a", "duration": 1.0, "keyframe": "a.png"},
                      {"id": "b", "description": "b", "duration": 1.0, "keyframe": "b.png",
                       "transition": {"type": "dissolve", "duration": 0.25}}]}
    path = write_storyboard(story, data)
    out = tmp_path / "out"
    assert main(["render", str(path), "-o", str(out), "--per-shot", "-q"]) == 0
    first = json.loads((out / "render-report.json").read_text())
    assert frame_count(out / first["film"]) == 14
    data["shots"][1]["duration"] = 2.0
    write_storyboard(story, data)
    assert main(["render", str(path), "-o", str(out), "--per-shot", "-q"]) == 0
    second = json.loads((out / "render-report.json").read_text())
    assert second["shots"]["a"]["status"] == "cached" and second["shots"]["b"]["status"] == "rendered"
    assert frame_count(out / second["film"]) == 8 + 16 - 2


def test_core_nodes_without_comfyui_fail_up_front(tmp_path, monkeypatch):
    monkeypatch.setenv("COMFYUI_DIR", str(tmp_path / "no-comfyui-here"))
    graph = {"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
             "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}}}
    with pytest.raises(EngineUnavailableError, match="EmptyImage, SaveImage.*COMFYUI_DIR"):
        EmbeddedEngine(work_dir=tmp_path / "w").run(graph)


def test_cli_exit_code_for_generated_shots_without_comfyui(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("COMFYUI_DIR", str(tmp_path / "none"))
    monkeypatch.delenv("COMFYUI_URL", raising=False)
    path = write_storyboard(tmp_path, {"version": 1, "project": {"title": "G", "checkpoint": "m.safetensors"},
                                       "shots": [{"id": "g", "description": "generated"}]})
    assert main(["render", str(path), "-o", str(tmp_path / "out")]) == 5
    err = capsys.readouterr().err
    assert "CheckpointLoaderSimple" in err and "Traceback" not in err


def test_node_failure_in_embedded_run_names_node_and_shot(tmp_path):
    panel = write_panel(tmp_path / "p.png")
    engine = EmbeddedEngine(work_dir=tmp_path / "w")
    name = engine.upload(panel, "x", "p.png")
    graph = odd_width_film(name)
    events = []
    with pytest.raises(ServerError) as caught:
        engine.run(graph, {"s:clip": "s"}, lambda kind, data: events.append(kind), uploads=[name])
    assert caught.value.problems[0].where == "node 's:clip' (AnimStudioShotClip, shot s)"
    assert "even" in caught.value.problems[0].message
    assert events[:3] == ["execution_start", "executing", "executing"] and "execution_error" in events


def test_panel_outside_input_folder_is_refused(tmp_path):
    engine = EmbeddedEngine(work_dir=tmp_path / "w")
    graph = {"p": {"class_type": "AnimStudioLoadPanel", "inputs": {"image": "../../etc/passwd"}},
             "c": {"class_type": "AnimStudioShotClip", "inputs": {
                 "image": ["p", 0], "seconds": 1.0, "width": 64, "height": 48, "fps": 8,
                 "camera_move": "static", "seed": 0}},
             "a": {"class_type": "AnimStudioAppendClip", "inputs": {"clip": ["c", 0], "transition": "cut",
                                                                   "transition_seconds": 0.0}},
             "s": {"class_type": "AnimStudioSaveFilm", "inputs": {"film": ["a", 0], "filename_prefix": "f"}}}
    with pytest.raises(Exception) as caught:
        engine.run(graph, uploads=["../../etc/passwd"])
    assert "leaves the input folder" in str(caught.value)


def test_cli_compile_writes_workflow_and_manifest(tmp_path, capsys):
    out = tmp_path / "film.json"
    assert main(["compile", str(EXAMPLE), "-o", str(out)]) == 0
    graph = json.loads(out.read_text())
    manifest = json.loads((tmp_path / "film.manifest.json").read_text())
    assert set(manifest["graphs"][0]["node_shots"]) == set(graph)
    assert len(manifest["graphs"][0]["uploads"]) == 5  # four panels and the music bed
    capsys.readouterr()
    assert main(["compile", str(EXAMPLE), "-o", str(tmp_path / "shots"), "--per-shot", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["nodes"] == sum(
        len(json.loads(p.read_text())) for p in (tmp_path / "shots").glob("*.json") if p.name != "manifest.json")
    assert sorted(p.name for p in (tmp_path / "shots").iterdir()) == [
        "compose.json", "manifest.json", "shot-beam.json", "shot-keeper-window.json", "shot-opening.json",
        "shot-ship-storm.json"]


def test_cli_unreachable_server_is_one_clear_message(tmp_path, capsys):
    from comfy_env import free_port

    url = f"http://127.0.0.1:{free_port()}"
    code = main(["render", str(EXAMPLE), "-o", str(tmp_path), "--server", url, "--timeout", "2"])
    err = capsys.readouterr().err
    assert code == 4 and f"cannot reach ComfyUI at {url}" in err and "Traceback" not in err


def test_cli_nodes_lists_pack_nodes_without_comfyui(capsys):
    assert main(["nodes", "--pack-only", "--json"]) == 0
    assert "AnimStudioSaveFilm" in json.loads(capsys.readouterr().out)


def test_module_entry_point_and_bad_json_exit_code(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"version": 1,,}')
    run = subprocess.run([sys.executable, "-m", "animstudio", "validate", str(bad)], capture_output=True, text=True)
    assert run.returncode == 2 and "line 1, column 15" in run.stderr and "Traceback" not in run.stderr


def test_editing_one_lines_dialogue_rerenders_only_that_shot(tmp_path, capsys):
    import shutil

    story = tmp_path / "story"
    shutil.copytree(EXAMPLE.parent, story)
    path = story / "storyboard.json"
    out = tmp_path / "out"
    assert main(["render", str(path), "-o", str(out), "-q"]) == 0
    first = json.loads((out / "render-report.json").read_text())
    assert {s["status"] for s in first["shots"].values()} == {"rendered"}
    data = json.loads(path.read_text())
    data["shots"][2]["dialogue"][0]["text"] = "Hold her steady! I see the light!"
    path.write_text(json.dumps(data))
    assert main(["render", str(path), "-o", str(out), "-q"]) == 0
    second = json.loads((out / "render-report.json").read_text())
    assert {k: v["status"] for k, v in second["shots"].items()} == {
        "opening": "cached", "keeper-window": "cached", "ship-storm": "rendered", "beam": "cached"}
    assert "I see the light" in (out / "the-last-lighthouse.srt").read_text()
    assert "render" not in second["stages"] or second["stages"]["render"] < first["stages"]["render"]


def test_generate_without_a_checkpoint_is_one_clear_error(tmp_path, capsys):
    assert main(["render", str(EXAMPLE), "-o", str(tmp_path), "--generate"]) == 2
    assert "$.project.checkpoint: required (or pass --checkpoint NAME)" in capsys.readouterr().err
