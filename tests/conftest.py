"""Shared fixtures. The integration tier (marker ``comfyui``) starts one real ComfyUI for the session,
and skips with the reason where none is installed (``COMFYUI_DIR`` or ``~/comfy/ComfyUI``)."""
from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from comfy_env import comfyui_paths, make_base_directory, start_comfyui

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "workflows" / "examples" / "lighthouse" / "storyboard.json"
TINY_CHECKPOINT = "tiny-sd15.safetensors"
SNAPSHOT = Path(__file__).parent / "data" / "object_info_comfyui_0.3.64.json"  # recorded from a real ComfyUI


def recorded_object_info() -> dict:
    """ComfyUI 0.3.64's node definitions as recorded, with the pack's own (live) ones."""
    from animstudio.translator.embedded import EmbeddedEngine
    from animstudio.translator.graph_check import load_object_info

    info = load_object_info(SNAPSHOT)
    info.update(EmbeddedEngine().pack_object_info())
    return info


def of_class(graph: dict, class_type: str) -> list[str]:
    """The ids of a graph's nodes of one class, sorted."""
    return sorted(k for k, v in graph.items() if v["class_type"] == class_type)


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


def odd_width_film(panel_name: str) -> dict:
    """A film graph of pack nodes that fails in its clip node (a width of 63 cannot be stored as 4:2:0)."""
    return {"s:panel": {"class_type": "AnimStudioLoadPanel", "inputs": {"image": panel_name}},
            "s:clip": {"class_type": "AnimStudioShotClip", "inputs": {
                "image": ["s:panel", 0], "seconds": 1.0, "width": 63, "height": 48, "fps": 8,
                "camera_move": "static", "seed": 0}},
            "s:append": {"class_type": "AnimStudioAppendClip", "inputs": {
                "clip": ["s:clip", 0], "transition": "cut", "transition_seconds": 0.0}},
            "film:save": {"class_type": "AnimStudioSaveFilm", "inputs": {"film": ["s:append", 0],
                                                                          "filename_prefix": "f"}}}


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
def clip_vision_name(comfyui_base):
    """The random-weight CLIP vision ViT-L/14 (built once per machine, cached outside the repo) linked into the
    server's models/clip_vision; ComfyUI lists model files when asked, so linking after start is fine."""
    from fixtures.clip_vision import CLIP_VISION_FILE, ensure_clip_vision

    _comfy_dir, comfy_python = comfyui_paths()
    cached = ensure_clip_vision(comfy_python)
    target = comfyui_base / "models" / "clip_vision" / CLIP_VISION_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        target.symlink_to(cached)
    return CLIP_VISION_FILE


@pytest.fixture(scope="session")
def talk_files(comfyui_base):
    """The talking models' random-weight stand-ins (S2V, HuMo, Wan VAE, umt5, wav2vec2, whisper), built once per
    machine by ComfyUI's own Python and linked into the server's models folders."""
    from fixtures import video_models

    _comfy, python = comfyui_paths()
    return video_models.ensure_video_models(comfyui_base, video_models.WAN_TALK, python=python)


@pytest.fixture(scope="session")
def comfy_server(comfyui_base):
    server = start_comfyui(comfyui_base)
    yield server
    server.stop()


def transition_room(board, shot) -> float:
    """The seconds of the transitions into and out of a shot (its lines keep clear of both)."""
    following = board.next_shot(shot)
    return shot.transition.seconds + (following.transition.seconds if following is not None else 0.0)


def check_example_film(film_path, board):
    """The checks the bundled example's film must pass wherever it was rendered (embedded or on a server):
    H.264 at the storyboard's size and rate, AAC sound, the timeline's length within one frame, subtitles
    drawn while someone speaks, and the keeper's mouth changing while she speaks."""
    import av

    from animstudio.nodes.audio.tts import VoiceSettings, synthesize
    from animstudio.translator.storyboard_model import TimingSettings

    project = board.project
    with av.open(str(film_path)) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        assert video.codec_context.name == "h264" and audio.codec_context.name == "aac"
        assert (video.codec_context.width, video.codec_context.height) == (project.width, project.height)
        assert float(video.average_rate) == project.fps
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video)]
    # the timeline: each shot's length (fit_to_dialogue shots: exactly their real speech plus the 0.5 s tail, not
    # the compile-time estimate, plus the transitions into and out of them, which their lines keep clear of), minus
    # the frames that dissolves and wipes overlap
    lengths = []
    for shot in board.shots:
        seconds = board.shot_seconds(shot)
        if shot.duration == "fit_to_dialogue":
            spoken = [synthesize(line.text, VoiceSettings(
                board.characters[line.character].voice.engine, board.characters[line.character].voice.name,
                project.language, board.characters[line.character].voice.rate,
                board.characters[line.character].voice.pitch, line.emotion)).audio.seconds for line in shot.dialogue]
            seconds = sum(spoken) + TimingSettings().line_gap * (len(spoken) - 1) + 0.5 + transition_room(board, shot)
        fitted = shot.duration == "fit_to_dialogue"  # a fitted shot is rounded up to whole frames
        lengths.append(max(1, math.ceil(seconds * project.fps - 1e-6) if fitted else int(round(seconds * project.fps))))
    overlaps = sum(min(int(round(s.transition.duration * project.fps)), lengths[i - 1] - 1, lengths[i] - 1)
                   for i, s in enumerate(board.shots) if i and s.transition.type in ("dissolve", "wipe_left", "wipe_right"))
    assert abs(len(frames) - (sum(lengths) - overlaps)) <= 1
    # subtitles: the caption band holds white text while the keeper speaks (second shot), not during the first shot
    keeper_start = lengths[0]
    band = slice(int(project.height * 0.8), project.height)
    speaking = frames[keeper_start + 3]
    silent = frames[3]
    assert (speaking[band] > 240).all(axis=2).sum() > 50
    assert (silent[band] > 240).all(axis=2).sum() < 10
    # the keeper's mouth changes while she speaks: the mouth area differs across her shot's frames
    box = board.shots[1].mouths["keeper"]
    scale = project.height / 360  # the panel is 640x360, fitted to the film's size
    ys = slice(int(box.y * scale), int((box.y + box.height) * scale))
    xs = slice(int(box.x * scale) + 4, int((box.x + box.width) * scale) - 4)
    mouths = {frames[i][ys, xs].tobytes() for i in range(keeper_start + 1, keeper_start + int(1.5 * project.fps))}
    assert len(mouths) > 3
    check_karaoke(film_path, board)
    return frames


def check_karaoke(film_path, board):
    """The film's WebVTT and ASS sidecars time each word as the voice said it: every line's words, on the cue's
    clock, are the voice's own word timings (to the millisecond WebVTT keeps, the centisecond ASS keeps)."""
    import re

    import pysubs2

    from animstudio.nodes.audio.tts import VoiceSettings, synthesize
    from animstudio.nodes.audio.words import words_for_text
    from animstudio.nodes.film.sidecars import parse_webvtt

    lines = [line for shot in board.shots for line in shot.dialogue]
    expected = []
    for line in lines:
        voice = board.characters[line.character].voice
        speech = synthesize(line.text, VoiceSettings(voice.engine, voice.name, board.line_language(line), voice.rate,
                                                     voice.pitch, line.emotion))
        expected.append(words_for_text(line.text, speech.words))
    cues = parse_webvtt(film_path.with_suffix(".vtt").read_text(encoding="utf-8"))
    assert [c.text for c in cues] == [line.text for line in lines]
    events = pysubs2.load(str(film_path.with_suffix(".ass"))).events
    assert len(events) == len(cues)
    for cue, event, words in zip(cues, events, expected):
        assert len(words) >= 2 and [w.word for w in cue.words] == [w.word for w in words]
        # WebVTT marks each word's start: on the cue's clock, where the voice said it
        assert [round(w.start - cue.start, 2) for w in cue.words[1:]] == pytest.approx(
            [round(w.start, 2) for w in words[1:]], abs=0.011)
        # ASS: each \\kf sweep starts at its word's start, silences before words as plain \\k
        at, starts = event.start, []
        for kind, centis, text in re.findall(r"\{\\(kf?)(\d+)\}([^{]*)", event.text):
            if kind == "kf":
                starts.append(at)
            at += int(centis) * 10
        assert starts == pytest.approx([cue.start * 1000 + w.start * 1000 for w in words], abs=15)
