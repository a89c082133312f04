"""Storyboard → ComfyUI API graphs: structure, stable ids, seeds, uploads, determinism, and a golden graph."""
from __future__ import annotations

import copy
import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest
from PIL import Image

import animstudio
from animstudio.cli import main
from animstudio.translator.compile import compile_storyboard
from animstudio.translator.keyframes import shot_seed
from animstudio.translator.templates import graph_json
from animstudio.translator.storyboard import load_storyboard
from conftest import of_class

EXAMPLE = Path(animstudio.__file__).resolve().parent / "workflows" / "examples" / "lighthouse" / "storyboard.json"

GENERATED = {
    "version": 1,
    "project": {"title": "Two Friends", "width": 256, "height": 128, "fps": 8, "seed": 3, "style": "ink",
                "checkpoint": "tiny.safetensors", "negative_prompt": "blurry", "steps": 4, "cfg": 5.5},
    "characters": {
        "mara": {"name": "Mara", "description": "a girl", "lora": {"file": "mara.safetensors", "weight": 0.7,
                                                                   "trigger_words": ["mrx", "red coat"]}},
        "otto": {"description": "a dog", "lora": {"file": "otto.safetensors", "weight": -0.5, "trigger_words": ["ottodog"]}},
        "bob": {"description": "a crab"},
    },
    "scenes": {"pier": {"location": "a pier", "time_of_day": "dawn", "description": "fog"}},
    "shots": [
        {"id": "g1", "description": "they meet", "characters": ["otto", "bob", "mara"], "scene": "pier", "seed": 42},
        {"id": "p1", "description": "the sea", "keyframe": "panels/p1.png", "transition": {"type": "dissolve", "duration": 0.25}},
        {"id": "g2", "description": "Mara alone", "characters": ["mara"], "duration": 2.0,
         "transition": {"type": "wipe_left", "duration": 0.5}},
        {"id": "p2", "description": "the sea again", "keyframe": "panels/p1.png"},
    ],
}


def panel(folder: Path, name="p1.png", colour=(10, 80, 200)) -> bytes:
    (folder / "panels").mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (32, 18), colour).save(folder / "panels" / name)
    return (folder / "panels" / name).read_bytes()


def write_board(folder: Path, data: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "panels" / "p1.png").exists():
        panel(folder)
    path = folder / "storyboard.json"
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return path


def board(folder: Path, data: dict):
    return load_storyboard(write_board(folder, data))


def test_example_compiles():
    film = compile_storyboard(load_storyboard(EXAMPLE))
    assert film.shape == "film" and [g.name for g in film.graphs] == ["film"]
    g = film.graphs[0].graph
    assert of_class(g, "AnimStudioLoadPanel") == sorted(f"{s}:panel" for s in ("opening", "keeper-window", "ship-storm", "beam"))
    assert len(of_class(g, "AnimStudioShotClip")) == 4 and of_class(g, "AnimStudioSaveFilm") == ["film:save"]
    assert not of_class(g, "KSampler")  # every shot has its panel: nothing is generated
    assert g["film:save"]["inputs"] == {
        "film": ["beam:append", 0], "filename_prefix": "animstudio/the-last-lighthouse", "burn_subtitles": True,
        "subtitle_files": "srt+vtt+ass", "subtitle_size": 0, "subtitle_font": "", "subtitle_position": "bottom", "subtitle_speaker": True,
        "music": ["film:music", 0], "music_gain_db": -16.48, "duck_db": -10.0, "crf": 18, "loudness_lufs": -14.0,
        "key_frames": ""}
    assert g["film:music"]["class_type"] == "AnimStudioLoadAudio"
    assert g["keeper-window:clip"]["inputs"]["mouth_rigs"] == ["keeper-window:mouth-keeper:rig", 0]
    assert g["keeper-window:clip"]["inputs"]["dialogue"] == ["keeper-window:line-1:line", 0]
    assert g["opening:clip"]["inputs"]["camera_move"] == "zoom_in"
    assert g["beam:append"]["inputs"]["transition"] == "wipe_right"
    uploads = film.graphs[0].uploads
    assert [u.local_path.name for u in uploads] == ["01-lighthouse.png", "02-keeper.png", "03-ship.png", "04-beam.png",
                                                    "night-pad.ogg"]
    for u in uploads[:4]:
        assert u.subfolder == "animstudio/panels"
        assert u.filename == hashlib.sha256(u.local_path.read_bytes()).hexdigest()[:16] + "-" + u.local_path.name
        assert g[f"{film.storyboard.shots[uploads.index(u)].id}:panel"]["inputs"]["image"] == u.name
    assert uploads[4].subfolder == "animstudio/music" and g["film:music"]["inputs"]["audio"] == uploads[4].name


def test_compile_is_deterministic():
    a = compile_storyboard(load_storyboard(EXAMPLE))
    b = compile_storyboard(load_storyboard(EXAMPLE))
    assert a.graphs[0].to_json() == b.graphs[0].to_json()
    assert json.loads(a.graphs[0].to_json()) == a.graphs[0].graph
    for x, y in zip(compile_storyboard(load_storyboard(EXAMPLE), "per_shot").graphs,
                    compile_storyboard(load_storyboard(EXAMPLE), "per_shot").graphs):
        assert x.name == y.name and x.to_json() == y.to_json()


def test_graph_does_not_depend_on_where_the_storyboard_lives(tmp_path):
    a = compile_storyboard(board(tmp_path / "one", GENERATED)).graphs[0].to_json()
    b = compile_storyboard(board(tmp_path / "elsewhere" / "two", GENERATED)).graphs[0].to_json()
    assert a == b and str(tmp_path) not in a


@pytest.mark.parametrize("per_shot", [False, True], ids=["film", "per_shot"])
def test_cli_compile_writes_identical_bytes_twice(tmp_path, capsys, per_shot):
    path = write_board(tmp_path / "board", GENERATED)
    outs = [tmp_path / n if per_shot else tmp_path / n / "film.json" for n in ("out1", "out2")]
    for out in outs:
        assert main(["compile", str(path), "-o", str(out)] + (["--per-shot"] if per_shot else [])) == 0
    assert "Traceback" not in capsys.readouterr().err
    roots = [o if per_shot else o.parent for o in outs]
    names = sorted(p.name for p in roots[0].iterdir())
    expected = (["compose.json", "keyframe-g1.json", "keyframe-g2.json", "manifest.json", "shot-g1.json",
                 "shot-g2.json", "shot-p1.json", "shot-p2.json"] if per_shot else ["film.json", "film.manifest.json"])
    assert names == expected == sorted(p.name for p in roots[1].iterdir())
    for name in names:
        assert (roots[0] / name).read_bytes() == (roots[1] / name).read_bytes(), name
    if not per_shot:
        film = compile_storyboard(load_storyboard(path)).graphs[0]
        assert outs[0].read_text(encoding="utf-8") == film.to_json()
        manifest = json.loads((roots[0] / "film.manifest.json").read_text())
        assert manifest["graphs"][0]["uploads"][0]["local"] == "panels/p1.png"


@pytest.mark.parametrize("source", ["example", "generated"])
def test_node_ids_and_node_shots(tmp_path, source):
    sb = load_storyboard(EXAMPLE) if source == "example" else board(tmp_path, GENERATED)
    shot_ids = {s.id for s in sb.shots}
    compiled = compile_storyboard(sb).graphs[0]
    assert set(compiled.node_shots) == set(compiled.graph)
    for node_id, shot in compiled.node_shots.items():
        scope, _, role = node_id.partition(":")
        assert re.fullmatch(r"[a-z]+(-[a-z0-9]+)*(:[a-z]+)?", role), node_id
        if scope == "film":
            assert shot is None
        else:
            assert scope in shot_ids and shot == scope
    for g in compile_storyboard(sb, "per_shot").graphs:
        assert set(g.node_shots) == set(g.graph)
        # in a shot's own graph the shared nodes (checkpoint, save) belong to that shot; in compose to none
        assert {g.node_shots[n] for n in g.graph if n.startswith("film:")} <= {g.shot_id}


def test_generated_shots_chain(tmp_path):
    sb = board(tmp_path, GENERATED)
    g = compile_storyboard(sb).graphs[0].graph
    assert of_class(g, "CheckpointLoaderSimple") == ["film:checkpoint"]
    assert g["film:checkpoint"]["inputs"] == {"ckpt_name": "tiny.safetensors"}
    # LoRAs chained in the shot's character order (otto, then mara); bob has none
    assert of_class(g, "AnimStudioCharacterLoRA") == ["g1:lora-mara:lora", "g1:lora-otto:lora", "g2:lora-mara:lora"]
    otto, mara = g["g1:lora-otto:lora"]["inputs"], g["g1:lora-mara:lora"]["inputs"]
    assert (otto["model"], otto["clip"]) == (["film:checkpoint", 0], ["film:checkpoint", 1])
    assert (mara["model"], mara["clip"]) == (["g1:lora-otto:lora", 0], ["g1:lora-otto:lora", 1])
    assert (otto["lora_name"], otto["strength_model"], otto["strength_clip"]) == ("otto.safetensors", -0.5, -0.5)
    assert mara["lora_name"] == "mara.safetensors" and mara["strength_model"] == 0.7
    for role in ("positive", "negative"):
        assert g[f"g1:{role}"]["class_type"] == "CLIPTextEncode"
        assert g[f"g1:{role}"]["inputs"]["clip"] == ["g1:lora-mara:lora", 1]
    text = g["g1:positive"]["inputs"]["text"]
    assert text.index("ottodog") < text.index("mrx, red coat") and "a crab" in text
    assert text == ("ink, medium shot, they meet, ottodog, otto: a dog, bob: a crab, mrx, red coat, Mara: a girl, "
                    "a pier, dawn, fog")
    assert g["g1:negative"]["inputs"]["text"] == "blurry"
    sampler = g["g1:sampler"]
    assert sampler["class_type"] == "KSampler" and sampler["inputs"]["model"] == ["g1:lora-mara:lora", 0]
    assert (sampler["inputs"]["positive"], sampler["inputs"]["negative"]) == (["g1:positive", 0], ["g1:negative", 0])
    assert g["g1:latent"]["inputs"] == {"width": 256, "height": 128, "batch_size": 1}
    assert g["g1:decode"] == {"class_type": "VAEDecode", "inputs": {"samples": ["g1:sampler", 0], "vae": ["film:checkpoint", 2]}}
    assert g["g1:keyframe"] == {"class_type": "SaveImage",
                                "inputs": {"images": ["g1:decode", 0], "filename_prefix": "animstudio/keyframes/g1"}}
    assert g["g1:clip"]["class_type"] == "AnimStudioShotClip" and g["g1:clip"]["inputs"]["image"] == ["g1:decode", 0]
    assert g["g1:append"]["class_type"] == "AnimStudioAppendClip"
    assert g["film:save"]["class_type"] == "AnimStudioSaveFilm"
    assert g["p1:clip"]["inputs"]["image"] == ["p1:panel", 0]  # a panel shot in the same film is not generated


def test_append_chain_in_shot_order(tmp_path):
    g = compile_storyboard(board(tmp_path, GENERATED)).graphs[0].graph
    order = ["g1", "p1", "g2", "p2"]
    assert "film" not in g["g1:append"]["inputs"]
    for before, after in zip(order, order[1:]):
        assert g[f"{after}:append"]["inputs"]["film"] == [f"{before}:append", 0]
        assert g[f"{after}:append"]["inputs"]["clip"] == [f"{after}:clip", 0]
    assert g["film:save"]["inputs"]["film"] == ["p2:append", 0]
    assert [(g[f"{s}:append"]["inputs"]["transition"], g[f"{s}:append"]["inputs"]["transition_seconds"])
            for s in order] == [("cut", 0.5), ("dissolve", 0.25), ("wipe_left", 0.5), ("cut", 0.5)]


def test_seeds(tmp_path):
    sb = board(tmp_path / "a", GENERATED)
    g = compile_storyboard(sb).graphs[0].graph
    assert g["g1:sampler"]["inputs"]["seed"] == 42 and g["g1:clip"]["inputs"]["seed"] == 42
    derived = g["g2:sampler"]["inputs"]["seed"]
    assert isinstance(derived, int) and derived != 42 and 0 <= derived < 2 ** 48
    assert g["g2:clip"]["inputs"]["seed"] == derived % 2 ** 32
    assert len({shot_seed(sb, s) for s in sb.shots}) == 4
    inserted = copy.deepcopy(GENERATED)
    inserted["shots"].insert(0, {"id": "g0", "description": "before", "characters": ["bob"]})
    sb2 = board(tmp_path / "b", inserted)
    g2 = compile_storyboard(sb2).graphs[0].graph
    assert g2["g2:sampler"]["inputs"]["seed"] == derived
    assert g2["g0:sampler"]["inputs"]["seed"] not in (derived, 42)
    for node in ("g2:sampler", "g2:positive", "g2:clip", "p1:clip", "g1:lora-mara:lora"):
        assert g2[node] == g[node], node
    other = copy.deepcopy(GENERATED)
    other["project"]["seed"] = 4
    assert compile_storyboard(board(tmp_path / "c", other)).graphs[0].graph["g2:sampler"]["inputs"]["seed"] != derived


def test_per_shot_shape(tmp_path):
    sb = board(tmp_path, GENERATED)
    film = compile_storyboard(sb, "per_shot")
    assert film.shape == "per_shot"
    assert [g.name for g in film.graphs] == ["keyframe-g1", "shot-g1", "shot-p1", "keyframe-g2", "shot-g2", "shot-p2",
                                             "compose"]
    # a generated shot: its keyframe graph samples and saves the keyframe; its shot graph reads that keyframe
    for shot_id in ("g1", "g2"):
        keyframe = film.graph(f"keyframe-{shot_id}")
        assert keyframe.kind == "keyframe" and keyframe.shot_id == shot_id and keyframe.depends_on == ()
        assert of_class(keyframe.graph, "KSampler") == [f"{shot_id}:sampler"]
        assert keyframe.graph[f"{shot_id}:keyframe"]["inputs"]["filename_prefix"] == f"animstudio/keyframes/{shot_id}"
        assert not of_class(keyframe.graph, "AnimStudioSaveFilm")
        shot_graph = film.graph(f"shot-{shot_id}")
        assert shot_graph.depends_on == (f"keyframe-{shot_id}",) and not of_class(shot_graph.graph, "KSampler")
        assert shot_graph.graph[f"{shot_id}:panel"]["inputs"] == {"image": f"animstudio/keyframes/{shot_id}.png"}
    assert film.graph("compose").depends_on == tuple(f"shot-{s.id}" for s in sb.shots)
    # each shot is encoded once, at the film's quality, captions burned in, with fresh picture groups where its
    # transitions end and begin, so the compose copies its frames (smart rendering)
    fps = sb.project.fps
    for i, shot in enumerate(sb.shots):
        g = film.graph(f"shot-{shot.id}")
        assert g.shot_id == shot.id and g.kind == "shot"
        assert of_class(g.graph, "AnimStudioSaveFilm") == ["film:save"]
        head = round(shot.transition.seconds * fps) if i or shot.transition.type == "fade_black" else 0
        tail = round(sb.shots[i + 1].transition.seconds * fps) if i + 1 < len(sb.shots) else 0
        keys = ",".join(["0"] + ([str(head)] if head else []) + ([str(-tail)] if tail else []))
        assert g.graph["film:save"]["inputs"] == {
            "film": [f"{shot.id}:append", 0], "filename_prefix": f"animstudio/shots/{shot.id}",
            "burn_subtitles": True, "subtitle_files": "vtt", "subtitle_size": 0, "subtitle_font": "",
            "subtitle_position": "bottom", "subtitle_speaker": True, "music_gain_db": -60.0, "duck_db": -10.0, "crf": 18,
            "loudness_lufs": 0.0, "key_frames": keys}
        assert g.graph[f"{shot.id}:append"]["inputs"]["transition"] == "cut"
        assert "film" not in g.graph[f"{shot.id}:append"]["inputs"]
        assert {g.node_shots[n] for n in g.graph} == {shot.id}
        assert "film:checkpoint" not in g.graph
        assert [u.local_path for u in g.uploads] == ([shot.keyframe] if shot.keyframe else [])
    compose = film.graph("compose")
    assert compose.uploads == [] and compose.shot_id is None
    c = compose.graph
    assert of_class(c, "AnimStudioLoadVideoClip") == sorted(f"{s.id}:video" for s in sb.shots)
    assert not of_class(c, "AnimStudioShotClip") and not of_class(c, "KSampler")
    for i, shot in enumerate(sb.shots):
        assert c[f"{shot.id}:video"]["inputs"] == {"video": f"animstudio/shots/{shot.id}.mp4", "label": shot.id}
        append = c[f"{shot.id}:append"]["inputs"]
        assert append["clip"] == [f"{shot.id}:video", 0]
        assert (append["transition"], append["transition_seconds"]) == (shot.transition.type, shot.transition.duration)
        assert append.get("film") == ([f"{sb.shots[i - 1].id}:append", 0] if i else None)
    assert {k: v for k, v in c["film:save"]["inputs"].items() if k in ("film", "filename_prefix", "burn_subtitles")} == {
        "film": ["p2:append", 0], "filename_prefix": "animstudio/two-friends", "burn_subtitles": False}
    assert compose.node_shots["film:save"] is None and compose.node_shots["g2:video"] == "g2"
    with pytest.raises(ValueError, match="unknown graph shape"):
        compile_storyboard(sb, "batch")


def test_panel_uploads_content_hash_and_dedupe(tmp_path):
    data = copy.deepcopy(GENERATED)
    data["shots"][2]["keyframe"] = "panels/copy.png"
    data["shots"].append({"id": "p3", "description": "red", "keyframe": "panels/red.png"})
    content = panel(tmp_path, "p1.png")
    shutil.copyfile(tmp_path / "panels" / "p1.png", tmp_path / "panels" / "copy.png")
    red = panel(tmp_path, "red.png", (220, 0, 0))
    film = compile_storyboard(board(tmp_path, data)).graphs[0]
    digest = hashlib.sha256(content).hexdigest()[:16]
    names = [u.name for u in film.uploads]  # p1 and p2 share one file: uploaded once
    assert names == [f"animstudio/panels/{digest}-p1.png", f"animstudio/panels/{digest}-copy.png",
                     f"animstudio/panels/{hashlib.sha256(red).hexdigest()[:16]}-red.png"]
    assert film.graph["p1:panel"]["inputs"]["image"] == film.graph["p2:panel"]["inputs"]["image"] == names[0]
    Image.new("RGB", (32, 18), (0, 255, 0)).save(tmp_path / "panels" / "p1.png")  # new content, new name
    changed = compile_storyboard(load_storyboard(tmp_path / "storyboard.json")).graphs[0]
    assert changed.uploads[0].name != names[0] and changed.uploads[0].name.endswith("-p1.png")


def test_golden_film_graph(tmp_path):
    data = {
        "version": 1,
        "project": {"title": "Golden Test", "width": 256, "height": 128, "fps": 8, "seed": 99, "style": "ink",
                    "checkpoint": "tiny.safetensors", "negative_prompt": "blurry", "steps": 4, "cfg": 5.5},
        "characters": {"mara": {"name": "Mara", "description": "a girl",
                                "lora": {"file": "mara.safetensors", "weight": 0.7, "trigger_words": ["mrx"]}}},
        "scenes": {"pier": {"location": "a pier", "time_of_day": "dawn", "description": "fog"}},
        "shots": [
            {"id": "a", "description": "the sea", "keyframe": "panels/p1.png", "duration": 2.0, "camera": {"move": "zoom_in"}},
            {"id": "b", "description": "Mara waves", "characters": ["mara"], "scene": "pier", "seed": 5, "duration": 2.5,
             "camera": {"shot": "close_up"}, "transition": {"type": "dissolve", "duration": 0.5}},
        ],
    }
    content = panel(tmp_path)
    compiled = compile_storyboard(board(tmp_path, data)).graphs[0]
    upload = f"animstudio/panels/{hashlib.sha256(content).hexdigest()[:16]}-p1.png"
    clip = {"width": 256, "height": 128, "fps": 8}
    expected = {
        "film:checkpoint": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "tiny.safetensors"}},
        "a:panel": {"class_type": "AnimStudioLoadPanel", "inputs": {"image": upload}},
        "a:clip": {"class_type": "AnimStudioShotClip", "inputs": {
            "image": ["a:panel", 0], "seconds": 2.0, **clip, "camera_move": "zoom_in", "seed": 3588789938, "label": "a",
            "fit_to_audio": False, "tail_seconds": 0.5, "lead_seconds": 0.0, "out_seconds": 0.5}},
        "a:append": {"class_type": "AnimStudioAppendClip", "inputs": {
            "clip": ["a:clip", 0], "transition": "cut", "transition_seconds": 0.5}},
        "b:lora-mara:lora": {"class_type": "AnimStudioCharacterLoRA", "inputs": {
            "model": ["film:checkpoint", 0], "clip": ["film:checkpoint", 1], "lora_name": "mara.safetensors",
            "strength_model": 0.7, "strength_clip": 0.7, "character": "Mara"}},
        "b:positive": {"class_type": "CLIPTextEncode", "inputs": {
            "text": "ink, close-up, Mara waves, mrx, Mara: a girl, a pier, dawn, fog", "clip": ["b:lora-mara:lora", 1]}},
        "b:negative": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["b:lora-mara:lora", 1]}},
        "b:latent": {"class_type": "EmptyLatentImage", "inputs": {"width": 256, "height": 128, "batch_size": 1}},
        "b:sampler": {"class_type": "KSampler", "inputs": {
            "model": ["b:lora-mara:lora", 0], "seed": 5, "steps": 4, "cfg": 5.5, "sampler_name": "euler",
            "scheduler": "normal", "positive": ["b:positive", 0], "negative": ["b:negative", 0],
            "latent_image": ["b:latent", 0], "denoise": 1.0}},
        "b:decode": {"class_type": "VAEDecode", "inputs": {"samples": ["b:sampler", 0], "vae": ["film:checkpoint", 2]}},
        "b:keyframe": {"class_type": "SaveImage", "inputs": {
            "images": ["b:decode", 0], "filename_prefix": "animstudio/keyframes/b"}},
        "b:clip": {"class_type": "AnimStudioShotClip", "inputs": {
            "image": ["b:decode", 0], "seconds": 2.5, **clip, "camera_move": "static", "seed": 5, "label": "b",
            "fit_to_audio": False, "tail_seconds": 0.5, "lead_seconds": 0.5, "out_seconds": 0.0}},
        "b:append": {"class_type": "AnimStudioAppendClip", "inputs": {
            "clip": ["b:clip", 0], "transition": "dissolve", "transition_seconds": 0.5, "film": ["a:append", 0]}},
        "film:save": {"class_type": "AnimStudioSaveFilm", "inputs": {
            "film": ["b:append", 0], "filename_prefix": "animstudio/golden-test", "burn_subtitles": True,
            "subtitle_files": "srt+vtt+ass", "subtitle_size": 0, "subtitle_font": "", "subtitle_position": "bottom", "subtitle_speaker": True,
            "music_gain_db": -60.0, "duck_db": -10.0, "crf": 18, "loudness_lufs": -14.0, "key_frames": ""}},
    }
    assert compiled.graph == expected
    assert compiled.to_json() == graph_json(expected)  # same node and key order, byte for byte
    assert compiled.node_shots == {k: (None if k.startswith("film:") else k.split(":")[0]) for k in expected}
    assert [u.name for u in compiled.uploads] == [upload]
