"""Talking shots executed (marker ``comfyui``): the translator's own Wan2.2-S2V graph (a line longer than one
window, so WanSoundImageToVideoExtend chains in latent space) and HuMo graph, compiled from a storyboard, run in a
real ComfyUI on the random-weight stand-ins of tests/fixtures/video_models.py, with the pack's TTS speaking the
lines, and give the frames the plan counts. The film these shots make, end to end from a storyboard without panels,
is test_talk_film_integration.py's."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from animstudio.translator.client import ComfyClient
from animstudio.translator.compile import compile_shot
from animstudio.translator.keyframes import shot_prompt
from animstudio.translator.storyboard import load_storyboard
from animstudio.translator.video_models import s2v_windows
from animstudio.translator.talk import talk_frame_count
from conftest import write_panel, write_storyboard
from fixtures.video_models import file_name

pytestmark = pytest.mark.comfyui

SIZE = 64
FPS = 8
S2V_SECONDS, HUMO_SECONDS = 0.75, 0.5
LONG_LINE = ("The lamp has burned on this rock for ninety years, and every night I climb the stairs to trim the wick, "
             "wind the clock and watch the water. Ships pass far out, their lights like sparks, and none of them "
             "knows my name. Still, I keep the light, because one night a captain will need it, and I will be here.")


def story(folder: Path, negative: str = "", window_frames: int = 5, seconds: float = S2V_SECONDS,
          line: str = "Hi.") -> dict:
    # euler: one uni_pc step (S2V's default sampler) is order 0, and returns a latent the model has no say in
    common = {"text_encoder": file_name("umt5"), "vae": file_name("wan_vae"), "steps": 1, "cfg": 1.0,
              "sampler": "euler"}
    return {
        "version": 1,
        "project": {"title": "Talk test", "width": SIZE, "height": SIZE, "fps": FPS, "style": "photo",
                    "negative_prompt": negative, "subtitles": {"burn": False, "files": "none"},
                    "talk_models": {
                        "s2v": {**common, "unet": file_name("wan_s2v"), "audio_encoder": file_name("wav2vec2"),
                                "window_frames": window_frames},
                        "humo": {**common, "unet": file_name("wan_humo"), "audio_encoder": file_name("whisper")}}},
        "characters": {"mara": {"name": "Mara", "description": "a keeper", "talk": "s2v"},
                       "otto": {"name": "Otto", "description": "a sailor", "talk": "humo"}},
        "shots": [
            {"id": "s1", "description": "Mara", "characters": ["mara"], "keyframe": "face.png",
             "duration": seconds, "dialogue": [{"character": "mara", "text": line}]},
            {"id": "s2", "description": "Otto", "characters": ["otto"], "keyframe": "face.png",
             "duration": HUMO_SECONDS, "dialogue": [{"character": "otto", "text": "Yo."}]},
        ],
    }


def make_board(folder: Path, **changes):
    write_panel(folder / "face.png", color=(200, 160, 120), size=(SIZE, SIZE))
    first = load_storyboard(write_storyboard(folder, story(folder, **changes)))
    # the negative prompt is the first shot's prompt: core encodes that text once (the umt5 stand-in is full size)
    return load_storyboard(write_storyboard(folder, story(folder, shot_prompt(first, first.shot("s1")), **changes)))


@pytest.fixture
def board(tmp_path):
    return make_board(tmp_path / "story")


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


def test_s2v_with_extend_and_humo_shots_execute_with_the_planned_frames(comfy_server, talk_files, board, tmp_path):
    client = ComfyClient(comfy_server.url)
    s1, s2 = board.shot("s1"), board.shot("s2")
    assert len(s2v_windows(board.project.talk_models.s2v, S2V_SECONDS)) == 2  # one Extend window
    compiled = compile_shot(board, s1).graph
    assert compiled["s1:talk-2:extend"]["inputs"]["video_latent"] == ["s1:talk:sampler", 0]

    frames = run_talk_frames(client, board, "s1", tmp_path / "s1")
    assert len(frames) == talk_frame_count(board, s1, "s2v") == 13  # 4 latent frames: 4 * 4 - 3
    assert all(f.shape == (SIZE, SIZE, 3) for f in frames)

    # a 20-second line at S2V's default window of 77 frames: five windows chained in latent space (the same prompt
    # as s1, run right after it, so core's cache serves the umt5 encode)
    long = make_board(tmp_path / "long", window_frames=77, seconds=20.0, line=LONG_LINE)
    windows = s2v_windows(long.project.talk_models.s2v, 20.0)
    assert len(windows) == 5 and sum((w - 1) // 4 + 1 for w in windows) == 81
    assert sum(1 for n in compile_shot(long, long.shot("s1")).graph.values()
               if n["class_type"] == "WanSoundImageToVideoExtend") == 4
    frames = run_talk_frames(client, long, "s1", tmp_path / "long-frames")
    assert len(frames) == talk_frame_count(long, long.shot("s1"), "s2v") == 321 >= 20 * 16
    assert all(f.shape == (SIZE, SIZE, 3) for f in frames)

    frames = run_talk_frames(client, board, "s2", tmp_path / "s2")
    assert len(frames) == talk_frame_count(board, s2, "humo") == 13  # 0.5 s at 25 fps on the 4k+1 grid
    assert all(f.shape == (SIZE, SIZE, 3) for f in frames)
