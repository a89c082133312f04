"""Integration tier: a real ComfyUI with this pack linked in, a tiny random-weight SD1.5 checkpoint,
storyboards compiled, checked against the live ``/object_info``, run through the client, outputs on disk."""
from __future__ import annotations

import json
import urllib.request

import av
import numpy as np
import pytest
from PIL import Image

from animstudio.translator.client import ComfyClient
from animstudio.translator.compile import compile_storyboard
from animstudio.translator.embedded import EmbeddedEngine
from animstudio.common.errors import GraphValidationError, ServerError
from animstudio.translator.graph_check import graph_problems
from animstudio.translator.render import LocalEngine, ServerEngine, render
from animstudio.translator.storyboard import load_storyboard
from conftest import TINY_CHECKPOINT, write_panel, write_storyboard

pytestmark = pytest.mark.comfyui

PACK_NODES = {"AnimStudioLoadPanel", "AnimStudioShotClip", "AnimStudioLoadVideoClip", "AnimStudioAppendClip",
              "AnimStudioSaveFilm"}


def generated_storyboard(folder, width=64, height=64):
    write_panel(folder / "panels" / "p.png")
    return write_storyboard(folder, {
        "version": 1,
        "project": {"title": "Tiny Test", "width": width, "height": height, "fps": 8, "seed": 7,
                    "checkpoint": TINY_CHECKPOINT, "steps": 1, "cfg": 1.0, "style": "flat colours"},
        "characters": {"mara": {"description": "a girl with a red scarf"}},
        "shots": [
            {"id": "gen", "description": "mara waves", "characters": ["mara"], "duration": 1.0,
             "camera": {"move": "zoom_in"}},
            {"id": "panel", "description": "the sea", "duration": 1.0, "keyframe": "panels/p.png",
             "transition": {"type": "dissolve", "duration": 0.25}},
        ],
    })


def _upload(client, compiled):
    for upload in compiled.uploads:
        client.upload(upload.local_path, upload.subfolder, upload.filename)


def decode(path):
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
        return stream, frames


def test_pack_loads_without_import_errors(comfy_server):
    log = comfy_server.log()
    assert "IMPORT FAILED" not in log and "Cannot import" not in log, log[-2000:]
    with urllib.request.urlopen(comfy_server.url + "/object_info") as answer:
        info = json.load(answer)
    assert PACK_NODES <= set(info)
    for name in PACK_NODES:
        assert info[name]["category"].startswith("animstudio/")
        assert info[name]["description"]


def test_compiled_storyboard_validates_runs_and_downloads(comfy_server, tmp_path):
    board = load_storyboard(generated_storyboard(tmp_path / "story"))
    client = ComfyClient(comfy_server.url)
    compiled = compile_storyboard(board).graphs[0]
    assert graph_problems(compiled.graph, client.object_info(), compiled.node_shots,
                          [u.name for u in compiled.uploads]) == []
    report = render(board, tmp_path / "out", ServerEngine(client))
    film = tmp_path / "out" / report.film
    stream, frames = decode(film)
    assert (stream.codec_context.width, stream.codec_context.height) == (64, 64)
    assert len(frames) == 8 + 8 - 2  # two 1 s shots at 8 fps, a 0.25 s dissolve overlapping 2 frames
    keyframes = [p for p in report.outputs if "keyframes" in p]
    assert len(keyframes) == 1
    image = np.asarray(Image.open(tmp_path / "out" / keyframes[0]))
    assert image.shape == (64, 64, 3) and image.std() > 0
    assert report.shots["gen"].status == "rendered" and report.shots["gen"].files == keyframes
    saved = json.loads((tmp_path / "out" / "render-report.json").read_text())
    assert saved["film"] == report.film


def test_server_node_errors_are_mapped_to_shots(comfy_server, tmp_path):
    board = load_storyboard(generated_storyboard(tmp_path / "story"))
    compiled = compile_storyboard(board).graphs[0]
    graph = json.loads(compiled.to_json())
    graph["gen:latent"]["inputs"]["width"] = 3            # below EmptyLatentImage's minimum
    graph["gen:sampler"]["inputs"]["sampler_name"] = "no_such_sampler"
    client = ComfyClient(comfy_server.url)
    _upload(client, compiled)
    with pytest.raises(GraphValidationError) as caught:
        client.queue(graph, compiled.node_shots)
    places = {p.where for p in caught.value.problems}
    assert "node 'gen:latent' (EmptyLatentImage, shot gen)" in places
    assert "node 'gen:sampler' (KSampler, shot gen)" in places
    assert any("no_such_sampler" in p.message for p in caught.value.problems)


def test_execution_error_names_node_and_shot(comfy_server, tmp_path):
    board = load_storyboard(generated_storyboard(tmp_path / "story"))
    compiled = compile_storyboard(board).graphs[0]
    graph = json.loads(compiled.to_json())
    graph["panel:clip"]["inputs"]["width"] = 63   # passes validation, fails in the node (odd video size)
    client = ComfyClient(comfy_server.url)
    _upload(client, compiled)
    with pytest.raises(ServerError) as caught:
        client.run(graph, compiled.node_shots)
    assert any(p.where.startswith("node 'panel:clip' (AnimStudioShotClip, shot panel)") and "even" in p.message
               for p in caught.value.problems), caught.value.problems


def test_per_shot_render_on_server_resumes_from_cache(comfy_server, tmp_path):
    board = load_storyboard(generated_storyboard(tmp_path / "story"))
    engine = ServerEngine(ComfyClient(comfy_server.url))
    first = render(board, tmp_path / "out", engine, "per_shot")
    assert {s.status for s in first.shots.values()} == {"rendered"}
    _, frames = decode(tmp_path / "out" / first.film)
    assert len(frames) == 14
    again = render(board, tmp_path / "out", engine, "per_shot")
    assert {s.status for s in again.shots.values()} == {"cached"}
    assert len(decode(tmp_path / "out" / again.film)[1]) == 14


def test_embedded_engine_runs_core_nodes_through_comfyui(comfyui_base, tmp_path):
    board = load_storyboard(generated_storyboard(tmp_path / "story"))
    engine = LocalEngine(EmbeddedEngine(models_dir=comfyui_base / "models"))
    report = render(board, tmp_path / "out", engine)
    stream, frames = decode(tmp_path / "out" / report.film)
    assert len(frames) == 14 and stream.codec_context.width == 64
    assert any("keyframes" in p for p in report.outputs)


def test_embedded_engine_reports_comfyui_validation_errors(comfyui_base, tmp_path):
    board = load_storyboard(generated_storyboard(tmp_path / "story"))
    compiled = compile_storyboard(board).graphs[0]
    graph = json.loads(compiled.to_json())
    graph["film:checkpoint"]["inputs"]["ckpt_name"] = "missing.safetensors"
    engine = EmbeddedEngine(models_dir=comfyui_base / "models")
    _upload(engine, compiled)
    with pytest.raises(GraphValidationError) as caught:
        engine.run(graph, compiled.node_shots)
    assert any(p.where.startswith("node 'film:checkpoint' (CheckpointLoaderSimple") and "missing.safetensors" in p.message
               for p in caught.value.problems), caught.value.problems


def _heavy_graph(board_dir):
    """The tiny storyboard with many sampler steps, so there is time to act while it runs."""
    board = load_storyboard(generated_storyboard(board_dir))
    compiled = compile_storyboard(board).graphs[0]
    graph = json.loads(compiled.to_json())
    graph["gen:sampler"]["inputs"]["steps"] = 150
    return compiled, graph



def test_socket_drop_falls_back_to_polling_history(comfy_server, tmp_path):
    board = load_storyboard(generated_storyboard(tmp_path / "story"))
    compiled = compile_storyboard(board).graphs[0]
    client = ComfyClient(comfy_server.url)
    _upload(client, compiled)
    events = []

    def on_event(kind, data):
        events.append(kind)
        if kind == "executing" and client.socket is not None and client.socket.connected:
            client.socket.close()  # the connection drops mid-run

    outputs = client.run(compiled.graph, compiled.node_shots, on_event, poll_interval=0.2)
    assert events and "execution_success" not in events  # the end was learnt from /history
    files = client.output_files(outputs)
    assert {f.filename.rsplit(".", 1)[1] for f in files} == {"png", "mp4"}  # no dialogue: no subtitle files
    for item in files:
        assert client.download(item, tmp_path / "dl").stat().st_size > 0


def test_polling_only_client_runs_a_graph(comfy_server, tmp_path):
    board = load_storyboard(generated_storyboard(tmp_path / "story"))
    compiled = compile_storyboard(board).graphs[0]
    client = ComfyClient(comfy_server.url, use_websocket=False)
    _upload(client, compiled)
    outputs = client.run(compiled.graph, compiled.node_shots, poll_interval=0.2)
    assert any(f.filename.endswith(".mp4") for f in client.output_files(outputs))


def test_interrupt_stops_the_server_run(comfy_server, tmp_path):
    from animstudio.common.errors import RenderInterrupted

    compiled, graph = _heavy_graph(tmp_path / "story")
    client = ComfyClient(comfy_server.url)
    _upload(client, compiled)
    progress = []

    def on_event(kind, data):
        if kind == "progress":
            progress.append(data["value"])
            if len(progress) == 1:
                client.interrupt(data["prompt_id"])

    with pytest.raises(RenderInterrupted):
        client.run(graph, compiled.node_shots, on_event)
    assert progress and max(progress) < 150
    queue = client.get_json("/queue")
    assert queue["queue_running"] == [] and queue["queue_pending"] == []


def test_ctrl_c_in_the_cli_interrupts_the_server_and_exits_130(comfy_server, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    story = tmp_path / "story"
    path = generated_storyboard(story)
    data = json.loads(path.read_text())
    data["project"]["steps"] = 150
    path.write_text(json.dumps(data))
    proc = subprocess.Popen([sys.executable, "-m", "animstudio", "render", str(path), "-o", str(tmp_path / "out"),
                             "--server", comfy_server.url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    client = ComfyClient(comfy_server.url)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not client.get_json("/queue")["queue_running"]:
        time.sleep(0.1)
    assert client.get_json("/queue")["queue_running"], "the render never started"
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and client.get_json("/queue")["queue_running"]:
        time.sleep(0.2)
    assert client.get_json("/queue")["queue_running"] == []
    report = json.loads((tmp_path / "out" / "render-report.json").read_text())
    assert report["error"]["error"] == "RenderInterrupted"


def test_voice_lipsync_and_talking_mouth_nodes_in_real_comfyui(comfy_server, tmp_path):
    """TTS → core SaveAudio, LipSync → SaveMouthCues, TalkingMouth over a core EmptyImage → core SaveImage."""
    import soundfile

    line = "Hold her steady! Look for the light."
    graph = {
        "tts": {"class_type": "AnimStudioTTS", "inputs": {
            "text": line, "engine": "espeak", "voice": "", "language": "en", "rate": 1.0, "pitch": 0.0,
            "emotion": "neutral"}},
        "save_audio": {"class_type": "SaveAudio", "inputs": {"audio": ["tts", 0], "filename_prefix": "it/line"}},
        "lipsync": {"class_type": "AnimStudioLipSync", "inputs": {
            "audio": ["tts", 0], "engine": "auto", "extended_shapes": "GHX", "dialogue_text": line}},
        "cues": {"class_type": "AnimStudioSaveMouthCues", "inputs": {
            "mouth_cues": ["lipsync", 0], "format": "json", "filename_prefix": "it/cues", "dat_frame_rate": 24}},
        "base": {"class_type": "EmptyImage", "inputs": {"width": 96, "height": 64, "batch_size": 1, "color": 0x506070}},
        "mouth": {"class_type": "AnimStudioTalkingMouth", "inputs": {
            "mouth_cues": ["lipsync", 0], "base": ["base", 0], "x": 32, "y": 16, "width": 32, "height": 32, "fps": 10}},
        "frames": {"class_type": "SaveImage", "inputs": {"images": ["mouth", 0], "filename_prefix": "it/mouth"}},
    }
    client = ComfyClient(comfy_server.url)
    outputs = client.run(graph)
    files = {item.node_id: [] for item in client.output_files(outputs)}
    for item in client.output_files(outputs):
        files[item.node_id].append(client.download(item, tmp_path))
    data, rate = soundfile.read(str(files["save_audio"][0]), dtype="float32", always_2d=True)
    seconds = len(data) / rate
    assert rate == 22050 and 1.2 < seconds < 4.0 and float(np.sqrt((data ** 2).mean())) > 0.02
    cues = json.loads(files["cues"][0].read_text())
    assert cues["mouthCues"][0]["start"] == 0 and cues["mouthCues"][-1]["end"] == pytest.approx(seconds, abs=0.011)
    assert {c["value"] for c in cues["mouthCues"]} <= set("ABCDEFGHX")
    frames = [np.asarray(Image.open(p)) for p in sorted(files["frames"])]
    assert len(frames) == int(np.ceil(cues["metadata"]["duration"] * 10 - 1e-9))
    assert all(np.array_equal(f[:, :32], frames[0][:, :32]) for f in frames)   # outside the box: the base
    assert len({f[16:48, 32:64].tobytes() for f in frames}) > 2                # inside: the mouth moves


def test_voiced_storyboard_renders_on_the_server(comfy_server, tmp_path):
    write_panel(tmp_path / "story" / "p.png")
    path = write_storyboard(tmp_path / "story", {
        "version": 1, "project": {"title": "Voiced", "width": 64, "height": 64, "fps": 8},
        "characters": {"ada": {"description": "keeper", "voice": {"engine": "espeak", "name": "en-gb"}}},
        "shots": [{"id": "talk", "description": "she speaks", "characters": ["ada"], "keyframe": "p.png",
                   "duration": "fit_to_dialogue",
                   "dialogue": [{"character": "ada", "text": "Another quiet night."},
                                {"character": "ada", "text": "I hope.", "emotion": "sad"}]}]})
    report = render(load_storyboard(path), tmp_path / "out", ServerEngine(ComfyClient(comfy_server.url)))
    with av.open(str(tmp_path / "out" / report.film)) as container:
        assert [s.type for s in container.streams] == ["video", "audio"]
    assert len([p for p in report.outputs if "/lipsync/" in p and p.endswith(".json")]) == 2


def test_bundled_example_renders_on_the_server(comfy_server, comfyui_base, tmp_path, capsys):
    """`animstudio render EXAMPLE --server URL`: the pack's nodes run inside ComfyUI, the film passes the same checks."""
    from animstudio.cli import main
    from conftest import EXAMPLE, check_example_film

    assert main(["render", str(EXAMPLE), "-o", str(tmp_path), "--server", comfy_server.url, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["engine"] == comfy_server.url and report["shape"] == "per_shot"
    check_example_film(tmp_path / report["film"], load_storyboard(EXAMPLE))
    assert (tmp_path / "the-last-lighthouse.srt").read_text().count("-->") == 2
    # the film was composed here from OUT/shots: no shot video went up to the server
    uploaded = comfyui_base / "input" / "animstudio" / "shots"
    assert not (uploaded.is_dir() and list(uploaded.iterdir())), list(uploaded.iterdir())
    assert not (tmp_path / "shots" / ".compose").exists()


def test_saved_film_plugs_into_core_video_nodes(comfy_server, tmp_path):
    """Save Film's VIDEO output feeds core Get Video Components; its frames and sound come back out."""
    import soundfile

    write_panel(tmp_path / "p.png")
    client = ComfyClient(comfy_server.url)
    name = client.upload(tmp_path / "p.png", "it", "p.png")
    graph = {
        "panel": {"class_type": "AnimStudioLoadPanel", "inputs": {"image": name}},
        "tts": {"class_type": "AnimStudioTTS", "inputs": {
            "text": "Look for the light.", "engine": "espeak", "voice": "", "language": "en", "rate": 1.0,
            "pitch": 0.0, "emotion": "neutral"}},
        "clip": {"class_type": "AnimStudioShotClip", "inputs": {
            "image": ["panel", 0], "seconds": 1.5, "width": 64, "height": 48, "fps": 8, "camera_move": "zoom_in",
            "seed": 0, "audio": ["tts", 0]}},
        "film": {"class_type": "AnimStudioAppendClip", "inputs": {"clip": ["clip", 0], "transition": "cut",
                                                                  "transition_seconds": 0.0}},
        "save": {"class_type": "AnimStudioSaveFilm", "inputs": {"film": ["film", 0], "filename_prefix": "it/vid"}},
        "parts": {"class_type": "GetVideoComponents", "inputs": {"video": ["save", 0]}},
        "frames": {"class_type": "SaveImage", "inputs": {"images": ["parts", 0], "filename_prefix": "it/parts"}},
        "sound": {"class_type": "SaveAudio", "inputs": {"audio": ["parts", 1], "filename_prefix": "it/parts"}},
    }
    outputs = client.run(graph)
    files = {}
    for item in client.output_files(outputs):
        files.setdefault(item.node_id, []).append(client.download(item, tmp_path / "dl"))
    assert len(files["frames"]) == 12
    data, rate = soundfile.read(str(files["sound"][0]), dtype="float32", always_2d=True)
    assert abs(len(data) / rate - 1.5) < 0.1 and float(np.sqrt((data ** 2).mean())) > 0.01


def test_bundled_example_generates_keyframes_on_the_server(comfy_server, tmp_path, capsys):
    """With a server and a checkpoint, the same command generates every keyframe instead of using the panels."""
    from animstudio.cli import main
    from conftest import EXAMPLE

    assert main(["render", str(EXAMPLE), "-o", str(tmp_path), "--server", comfy_server.url, "--generate",
                 "--checkpoint", TINY_CHECKPOINT, "--steps", "2", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    keyframes = [shot["keyframe"] for shot in report["shots"].values()]
    assert keyframes == [f"keyframes/{s}.png" for s in ("opening", "keeper-window", "ship-storm", "beam")]
    assert all(len(shot["attempts"]) == 1 and shot["attempts"][0]["score"] is None for shot in report["shots"].values())
    assert set(keyframes) <= set(report["outputs"])
    assert Image.open(tmp_path / keyframes[0]).size == (512, 288)
    with av.open(str(tmp_path / report["film"])) as container:
        assert [s.type for s in container.streams] == ["video", "audio"]
        assert container.streams.video[0].codec_context.width == 512
