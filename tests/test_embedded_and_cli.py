"""The embedded engine (pack-only graphs, no ComfyUI) and the CLI, end to end on real files."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import av
import pytest
import soundfile as sf

from animstudio.cli import main
from animstudio.translator.embedded import EmbeddedEngine
from animstudio.common.errors import EngineUnavailableError, ServerError
from animstudio.translator.storyboard_model import TimingSettings
from animstudio.translator.storyboard import load_storyboard
from conftest import EXAMPLE, check_example_film, odd_width_film, transition_room, write_panel, write_storyboard


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
    # the cut: each fit_to_dialogue shot exactly its speech plus the 0.5 s tail (not the compile-time estimate),
    # the others their duration, minus the dissolve's and the wipe's overlaps; subtitles and mouths while speaking
    board = load_storyboard(EXAMPLE)
    check_example_film(film, board)
    for shot in board.shots:
        if shot.duration == "fit_to_dialogue":  # each shot's own video: its lines, the gaps between, the tail
            spoken = sum(json.loads(p.read_text())["metadata"]["duration"]
                         for p in sorted((tmp_path / "outputs").rglob(f"{shot.id}-*.json")))
            planned = spoken + TimingSettings().line_gap * (len(shot.dialogue) - 1) + 0.5
            assert planned < board.shot_seconds(shot)  # the estimate was longer: the old rule let the mouth rest
            planned += transition_room(board, shot)  # and the lines keep clear of the transitions
            assert abs(frame_count(tmp_path / "shots" / f"{shot.id}.mp4") - planned * 12) <= 1, shot.id
    # each line's cues name the line's own sound, saved beside them (a separate medium for editors)
    for cue_file in (tmp_path / "outputs").rglob("*.json"):
        metadata = json.loads(cue_file.read_text())["metadata"]
        sound = cue_file.parent / metadata["soundFile"]
        assert sound.name == cue_file.with_suffix(".wav").name and sound.is_file()
        assert sf.info(str(sound)).duration == pytest.approx(metadata["duration"], abs=0.011)
    report = json.loads((tmp_path / "render-report.json").read_text())
    assert report["engine"] == "embedded" and {s["status"] for s in report["shots"].values()} == {"rendered"}
    # one copy of the film (with its sidecars): none left behind under outputs/
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.mp4")
                  if "shots" not in p.parts) == [result["film"]]
    assert all(film.with_suffix(kind).is_file() for kind in (".srt", ".vtt", ".ass"))
    assert not [p for kind in ("*.srt", "*.vtt", "*.ass") for p in (tmp_path / "outputs").rglob(kind)]
    assert result["film"] not in report["outputs"] and all((tmp_path / p).is_file() for p in report["outputs"])
    # lipsync reads the sound of a video file (the film's speech gives open mouths)
    assert main(["lipsync", str(film)]) == 0
    cues = json.loads(capsys.readouterr().out)
    assert cues["metadata"]["soundFile"] == str(film.resolve())
    assert {c["value"] for c in cues["mouthCues"]} - {"X", "A"}


def test_version_and_a_missing_or_video_sound_for_lipsync(tmp_path, capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.startswith("animstudio ")
    assert main(["lipsync", str(tmp_path / "missing.wav")]) == 2
    assert "missing.wav: file not found" in capsys.readouterr().err
    (tmp_path / "notes.txt").write_text("not a sound")
    assert main(["lipsync", str(tmp_path / "notes.txt")]) == 2
    assert "not a sound or video file" in capsys.readouterr().err


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
    assert {s["status"] for s in first["shots"].values()} == {"rendered"} and not first["up_to_date"]
    film = out / first["film"]
    made = {p: p.stat().st_mtime_ns for p in [film, *film.parent.glob(film.stem + ".*")]}
    # an unchanged re-run: every shot from the cache and the film kept as it is (no file written again, nothing
    # composed or encoded), and it says so; the report still carries the film's timeline and QC
    capsys.readouterr()
    assert main(["render", str(path), "-o", str(out)]) == 0
    assert "nothing changed: every shot and the film are up to date" in capsys.readouterr().out
    again = json.loads((out / "render-report.json").read_text())
    assert again["up_to_date"] and {s["status"] for s in again["shots"].values()} == {"cached"}
    assert not {"render", "compose", "upload", "download"} & set(again["stages"]), again["stages"]
    assert {p: p.stat().st_mtime_ns for p in made} == made
    assert again["timeline"] == first["timeline"] and again["qc"] == first["qc"] and again["film"] == first["film"]
    assert again["frames"] == {"encoded": 0, "copied": 0}
    # smart rendering: each shot encoded once; the film copies their frames and encodes only its transitions: the
    # fade up into the opening (0.75 s at 12 fps), the dissolve into the window and the wipe into the beam (0.5 s)
    fps = 12
    shot_frames = {e["shot"]: round((e["end"] - e["start"]) * fps) for e in first["timeline"]}
    transitions = 9 + 6 + 6
    film_frames = sum(shot_frames.values()) - 6 - 6
    assert first["frames"] == {"encoded": sum(shot_frames.values()) + transitions,
                               "copied": film_frames - transitions}, (first["frames"], shot_frames)
    data = json.loads(path.read_text())
    data["shots"][2]["dialogue"][0]["text"] = "Hold her steady! I see the light!"
    path.write_text(json.dumps(data))
    assert main(["render", str(path), "-o", str(out), "-q"]) == 0
    second = json.loads((out / "render-report.json").read_text())
    assert {k: v["status"] for k, v in second["shots"].items()} == {
        "opening": "cached", "keeper-window": "cached", "ship-storm": "rendered", "beam": "cached"}
    assert "I see the light" in (out / "the-last-lighthouse.srt").read_text() and not second["up_to_date"]
    assert film.stat().st_mtime_ns != made[film]  # re-composed
    # the edited shot is encoded again, and of the film only the wipe out of it: the other transitions are kept
    edited = {e["shot"]: round((e["end"] - e["start"]) * fps) for e in second["timeline"]}["ship-storm"]
    assert second["frames"]["encoded"] == edited + 6, second["frames"]
    assert "render" not in second["stages"] or second["stages"]["render"] < first["stages"]["render"]


def test_generate_without_a_checkpoint_is_one_clear_error(tmp_path, capsys):
    assert main(["render", str(EXAMPLE), "-o", str(tmp_path), "--generate"]) == 2
    assert "$.project.checkpoint: required (or pass --checkpoint NAME)" in capsys.readouterr().err


def test_progress_bars_show_in_a_terminal_even_one_of_unknown_size(tmp_path):
    """A pseudo-terminal nobody sized (0 x 0, as docker exec or some consoles give) used to hide every bar."""
    import os
    import pty

    def run(*extra) -> str:
        primary, secondary = pty.openpty()
        process = subprocess.Popen([sys.executable, "-m", "animstudio", "render", str(EXAMPLE), "-o",
                                    str(tmp_path / f"out{len(extra)}"), *extra],
                                   stdin=secondary, stdout=secondary, stderr=secondary, cwd=tmp_path)
        os.close(secondary)
        chunks = []
        while True:
            try:
                data = os.read(primary, 65536)
            except OSError:  # the child closed its side
                break
            if not data:
                break
            chunks.append(data)
        process.wait(timeout=300)
        os.close(primary)
        return b"".join(chunks).decode("utf-8", "replace")

    shown = run()
    assert "shots:" in shown and "4/4" in shown, shown[-2000:]


def test_no_line_is_heard_or_captioned_over_a_transition(tmp_path, capsys):
    """A dissolve into a shot whose line starts at once, and a wipe out of a shot whose line runs to its end: the
    lines wait for the transition in and end before the one out, the shots growing as needed; checked on the film's
    timeline (its subtitle sidecar) and on its decoded sound."""
    from animstudio.nodes.film.sidecars import parse_srt
    from animstudio.nodes.film.video_io import read_audio_track

    story = tmp_path / "story"
    for name, color in (("a.png", (200, 80, 40)), ("b.png", (40, 80, 200)), ("c.png", (40, 200, 80))):
        write_panel(story / name, color=color)
    data = {"version": 1, "project": {"title": "Room", "width": 96, "height": 64, "fps": 12},
            "characters": {"ada": {"description": "a keeper"}},
            "shots": [{"id": "a", "description": "a", "duration": 1.0, "keyframe": "a.png"},
                      {"id": "b", "description": "b", "duration": 1.0, "keyframe": "b.png",  # too short for both
                       "transition": {"type": "dissolve", "duration": 0.5},
                       "dialogue": [{"character": "ada", "text": "Look there."}]},
                      {"id": "c", "description": "c", "duration": 1.0, "keyframe": "c.png",
                       "transition": {"type": "wipe_left", "duration": 0.5}}]}
    out = tmp_path / "out"
    assert main(["render", str(write_storyboard(story, data)), "-o", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    timeline = {e["shot"]: (e["start"], e["end"]) for e in report["timeline"]}
    (cue,) = parse_srt((out / report["film"]).with_suffix(".srt").read_text())
    into_b = (timeline["b"][0], timeline["a"][1])   # the dissolve: a and b both on screen
    out_of_b = (timeline["c"][0], timeline["b"][1])  # the wipe
    assert into_b[1] - into_b[0] == pytest.approx(0.5, abs=0.01) and out_of_b[1] - out_of_b[0] == pytest.approx(0.5, abs=0.01)
    assert cue.start >= into_b[1] - 0.01 and cue.end <= out_of_b[0] + 0.01, (cue, timeline)
    sound = read_audio_track(out / report["film"])
    level = np.abs(sound.mono())
    rate = sound.sample_rate
    for start, end in (into_b, out_of_b):  # nothing said over either transition (the mastered fades aside)
        assert level[int(start * rate) + 10:int(end * rate) - 10].max() < 0.01, (start, end)
    assert level[int(cue.start * rate):int(cue.end * rate)].max() > 0.1  # and the line is there


def test_a_pause_between_speakers_across_a_cut(tmp_path, capsys):
    """Ada ends one shot, Ben starts the next after a hard cut: with ``timing.speaker_pause`` 1.2 s and a 0.3 s tail,
    Ben's line waits 0.9 s into his shot (the shot growing), so 1.2 s of silence separate them; Ada's own next line,
    in the shot after, does not wait. Measured on the sidecar's times and on the decoded sound."""
    from animstudio.nodes.film.sidecars import parse_webvtt
    from animstudio.nodes.film.video_io import read_audio_track

    story = tmp_path / "story"
    write_panel(story / "a.png")
    fit = {"description": "x", "duration": "fit_to_dialogue", "keyframe": "a.png"}
    data = {"version": 1, "project": {"title": "Turns", "width": 96, "height": 64, "fps": 12,
                                      "timing": {"tail": 0.3, "speaker_pause": 1.2}},
            "characters": {"ada": {"name": "Ada", "description": "a keeper"},
                           "ben": {"name": "Ben", "description": "a sailor", "voice": {"name": "en-us+m3"}}},
            "shots": [{"id": "a", **fit, "dialogue": [{"character": "ada", "text": "Look there."}]},
                      {"id": "b", **fit, "dialogue": [{"character": "ben", "text": "I see it."}]},
                      {"id": "c", **fit, "dialogue": [{"character": "ben", "text": "It is bright."}]}]}
    out = tmp_path / "out"
    assert main(["render", str(write_storyboard(story, data)), "-o", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    timeline = {e["shot"]: (e["start"], e["end"]) for e in report["timeline"]}
    ada, ben, ben_again = parse_webvtt((out / report["film"]).with_suffix(".vtt").read_text())
    assert ben.start - ada.end == pytest.approx(1.2, abs=1 / 12 + 0.01)   # the pause, to a frame
    assert ben.start - timeline["b"][0] == pytest.approx(0.9, abs=0.01)  # Ben's line waits into his shot
    assert ben_again.start == pytest.approx(timeline["c"][0], abs=0.01)  # the same speaker goes on at once
    sound = read_audio_track(out / report["film"])
    level, rate = np.abs(sound.mono()), sound.sample_rate
    assert level[int((ada.end + 0.05) * rate):int((ben.start - 0.05) * rate)].max() < 0.01
    assert level[int(ben.start * rate):int(ben.end * rate)].max() > 0.1


def test_captions_may_leave_out_the_speakers_name(tmp_path, capsys):
    story = tmp_path / "story"
    write_panel(story / "a.png")
    data = {"version": 1, "project": {"title": "Plain", "width": 96, "height": 64, "fps": 8,
                                      "subtitles": {"speaker": False}},
            "characters": {"ada": {"name": "Ada", "description": "a keeper"}},
            "shots": [{"id": "a", "description": "a", "duration": "fit_to_dialogue", "keyframe": "a.png",
                       "dialogue": [{"character": "ada", "text": "Look there."}]}]}
    out = tmp_path / "out"
    assert main(["render", str(write_storyboard(story, data)), "-o", str(out), "--json"]) == 0
    film = out / json.loads(capsys.readouterr().out)["film"]
    assert "\nLook there.\n" in film.with_suffix(".srt").read_text() and "Ada" not in film.with_suffix(".srt").read_text()
    assert "Ada" not in film.with_suffix(".vtt").read_text()


def test_each_graph_is_compiled_and_checked_once(tmp_path, monkeypatch):
    """A render compiles every shot's graph once (the storyboard's compile serves the shots whose inputs it knew)
    and the engine checks each graph once, before its files go up (its run trusts that check)."""
    from collections import Counter

    from animstudio.translator import compile as compile_module, graph_check, render as render_module
    from animstudio.translator.engines import LocalEngine
    from animstudio.translator.render import render

    compiled, checked = Counter(), Counter()
    original_compile, original_check = compile_module.compile_shot, graph_check.check_graph

    def counting_compile(board, shot, *args, **kwargs):
        compiled[shot.id] += 1
        return original_compile(board, shot, *args, **kwargs)

    def counting_check(graph, *args, **kwargs):
        checked[id(graph)] += 1
        return original_check(graph, *args, **kwargs)

    monkeypatch.setattr(compile_module, "compile_shot", counting_compile)
    monkeypatch.setattr(render_module, "compile_shot", counting_compile)
    monkeypatch.setattr(graph_check, "check_graph", counting_check)
    board = load_storyboard(EXAMPLE)
    with LocalEngine() as engine:
        report = render(board, tmp_path, engine, "per_shot")
    assert {s.status for s in report.shots.values()} == {"rendered"}
    assert compiled == {shot.id: 1 for shot in board.shots}
    # the shots; the film is composed from its cut here, not by running the compose graph
    assert len(checked) == len(board.shots) and set(checked.values()) == {1}


def test_render_into_a_relative_output_folder(tmp_path, monkeypatch):
    """`animstudio render story.json -o out`, as typed in a terminal: the film is composed inside `out/`."""
    monkeypatch.chdir(tmp_path)
    assert main(["render", str(EXAMPLE), "-o", "out", "-q"]) == 0
    report = json.loads((tmp_path / "out" / "render-report.json").read_text())
    assert report["film"] == "the-last-lighthouse.mp4" and (tmp_path / "out" / report["film"]).is_file()
