"""Talking shots executed (marker ``comfyui``): the translator's own Wan2.2-S2V graph (a line longer than one
window, so WanSoundImageToVideoExtend chains in latent space) and HuMo graph, compiled from a storyboard, run in a
real ComfyUI on the random-weight stand-ins of tests/fixtures/video_models.py, with the pack's TTS speaking the
lines; then the film is rendered shot by shot and composed, and its mp4 is decoded."""
from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from animstudio.translator.client import ComfyClient
from animstudio.translator.compile import compile_shot
from animstudio.translator.keyframes import shot_prompt
from animstudio.translator.render import ServerEngine, render
from animstudio.translator.storyboard import load_storyboard
from animstudio.translator.storyboard_model import s2v_windows
from animstudio.translator.talk import talk_frame_count
from comfy_env import comfyui_paths
from conftest import write_panel, write_storyboard
from fixtures import video_models
from fixtures.video_models import file_name

pytestmark = pytest.mark.comfyui

SIZE = 64
FPS = 8
S2V_SECONDS, HUMO_SECONDS = 0.75, 0.5


@pytest.fixture(scope="module")
def talk_files(comfyui_base):
    _comfy, python = comfyui_paths()
    return video_models.ensure_video_models(comfyui_base, video_models.WAN_TALK, python=python)


def story(folder: Path, negative: str = "") -> dict:
    common = {"text_encoder": file_name("umt5"), "vae": file_name("wan_vae"), "steps": 1, "cfg": 1.0}
    return {
        "version": 1,
        "project": {"title": "Talk test", "width": SIZE, "height": SIZE, "fps": FPS, "style": "photo",
                    "negative_prompt": negative, "subtitles": {"burn": False, "files": "none"},
                    "talk_models": {
                        "s2v": {**common, "unet": file_name("wan_s2v"), "audio_encoder": file_name("wav2vec2"),
                                "window_frames": 5},
                        "humo": {**common, "unet": file_name("wan_humo"), "audio_encoder": file_name("whisper")}}},
        "characters": {"mara": {"name": "Mara", "description": "a keeper", "talk": "s2v"},
                       "otto": {"name": "Otto", "description": "a sailor", "talk": "humo"}},
        "shots": [
            {"id": "s1", "description": "Mara", "characters": ["mara"], "keyframe": "face.png",
             "duration": S2V_SECONDS, "dialogue": [{"character": "mara", "text": "Hi."}]},
            {"id": "s2", "description": "Otto", "characters": ["otto"], "keyframe": "face.png",
             "duration": HUMO_SECONDS, "dialogue": [{"character": "otto", "text": "Yo."}]},
        ],
    }


@pytest.fixture
def board(tmp_path):
    folder = tmp_path / "story"
    write_panel(folder / "face.png", color=(200, 160, 120), size=(SIZE, SIZE))
    first = load_storyboard(write_storyboard(folder, story(folder)))
    # the negative prompt is the first shot's prompt: core encodes that text once (the umt5 stand-in is full size)
    return load_storyboard(write_storyboard(folder, story(folder, shot_prompt(first, first.shot("s1")))))


def film_sound(path: Path) -> tuple[float, float]:
    """The film's sound track: its length in seconds and its RMS level."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        count, chunks = 0, []
        for frame in container.decode(stream):
            count += frame.samples
            chunks.append(frame.to_ndarray().astype(np.float64).reshape(-1))
        rate = stream.rate
    return count / rate, float(np.sqrt(np.mean(np.concatenate(chunks) ** 2)))


def run_talk_frames(client: ComfyClient, board, shot_id: str, dest: Path) -> list[np.ndarray]:
    """The shot's compiled graph as the renderer runs it, plus a SaveImage on the talking subgraph's frames."""
    compiled = compile_shot(board, board.shot(shot_id), object_info=client.object_info())
    graph = json.loads(compiled.to_json())
    graph["check:frames"] = {"class_type": "SaveImage", "inputs": {
        "images": [f"{shot_id}:talk:decode", 0], "filename_prefix": f"talk-test/{shot_id}"}}
    for upload in compiled.uploads:
        client.upload(upload.local_path, upload.subfolder, upload.filename)
    outputs = client.run(graph, {**compiled.node_shots, "check:frames": shot_id})
    files = [f for f in client.output_files(outputs) if f.node_id == "check:frames"]
    return [np.asarray(Image.open(client.download(f, dest)).convert("RGB")) for f in files]


def test_s2v_with_extend_and_humo_shots_execute_and_compose_with_the_pack_sound(comfy_server, talk_files, board,
                                                                                   tmp_path):
    client = ComfyClient(comfy_server.url)
    s1, s2 = board.shot("s1"), board.shot("s2")
    assert len(s2v_windows(board.project.talk_models.s2v, S2V_SECONDS)) == 2  # one Extend window
    compiled = compile_shot(board, s1).graph
    assert compiled["s1:talk-2:extend"]["inputs"]["video_latent"] == ["s1:talk:sampler", 0]

    frames = run_talk_frames(client, board, "s1", tmp_path / "s1")
    assert len(frames) == talk_frame_count(board, s1, "s2v") == 13  # 4 latent frames: 4 * 4 - 3
    assert all(f.shape == (SIZE, SIZE, 3) for f in frames)
    frames = run_talk_frames(client, board, "s2", tmp_path / "s2")
    assert len(frames) == talk_frame_count(board, s2, "humo") == 13  # 0.5 s at 25 fps on the 4k+1 grid
    assert all(f.shape == (SIZE, SIZE, 3) for f in frames)

    report = render(board, tmp_path / "out", ServerEngine(client), "per_shot")
    assert {report.shots[s].status for s in ("s1", "s2")} <= {"rendered", "cached"}, report.shots
    film = tmp_path / "out" / report.film
    with av.open(str(film)) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        assert (video.codec_context.width, video.codec_context.height) == (SIZE, SIZE)
        assert audio.codec_context.name == "aac"
        pictures = [f for f in container.decode(video)]
    assert len(pictures) == round(S2V_SECONDS * FPS) + round(HUMO_SECONDS * FPS)
    seconds, loudness = film_sound(film)
    assert abs(seconds - (S2V_SECONDS + HUMO_SECONDS)) < 0.15, seconds
    assert loudness > 1e-3  # the pack's own speech, not silence
