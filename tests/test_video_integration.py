"""Every video graph executed, not only shaped (marker ``comfyui``): the translator's Wan and LTX-Video motion
subgraphs, and hand-built Wan2.2-S2V (+ Extend) and HuMo graphs, run in a real ComfyUI on random-weight stand-ins
(tests/fixtures/video_models.py) and give frames of the planned count and size."""
from __future__ import annotations

import json
import math
import wave
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from animstudio.translator.client import ComfyClient
from animstudio.translator.compile import compile_shot
from animstudio.translator.motion import motion_length
from animstudio.translator.render import ServerEngine, render
from animstudio.translator.storyboard import load_storyboard
from comfy_env import comfyui_paths
from conftest import TINY_CHECKPOINT, write_panel, write_storyboard
from fixtures import video_models
from fixtures.video_models import file_name

pytestmark = pytest.mark.comfyui

SIZE = 64  # a multiple of Wan's 16 and LTX's 32
PROMPT = "waves"


@pytest.fixture(scope="module")
def wan_files(comfyui_base):
    _comfy, python = comfyui_paths()
    return video_models.ensure_video_models(comfyui_base, video_models.WAN_I2V, python=python)


@pytest.fixture(scope="module")
def wan21_files(comfyui_base):
    _comfy, python = comfyui_paths()
    return video_models.ensure_video_models(comfyui_base, video_models.WAN21_I2V, python=python)


@pytest.fixture(scope="module")
def phantom_files(comfyui_base):
    _comfy, python = comfyui_paths()
    return video_models.ensure_video_models(comfyui_base, video_models.PHANTOM, python=python)


@pytest.fixture(scope="module")
def ltx_files(comfyui_base):
    _comfy, python = comfyui_paths()
    return video_models.ensure_video_models(comfyui_base, video_models.LTX, python=python)


@pytest.fixture(scope="module", autouse=True)
def unload_video_models(comfy_server):
    """The server is shared by the whole session: hand back the several GB these models hold when done."""
    yield
    ComfyClient(comfy_server.url).free()


def motion_board(folder: Path, family: str, models: dict, seconds: float):
    write_panel(folder / "key.png", size=(SIZE, SIZE))
    return load_storyboard(write_storyboard(folder, {
        "version": 1,
        # the negative prompt is the motion prompt: core caches one encode for both (the text encoders are
        # full size and slow on a CPU), while the graph still has both CLIPTextEncode nodes
        "project": {"title": "Motion", "width": SIZE, "height": SIZE, "fps": 8, "checkpoint": TINY_CHECKPOINT,
                    "negative_prompt": PROMPT, "motion_models": {family: models}},
        "shots": [{"id": "s1", "description": "the sea", "keyframe": "key.png", "duration": seconds,
                   "motion": {"family": family, "prompt": PROMPT}}]}))


def saved_frames(client: ComfyClient, outputs: dict, node: str, dest: Path) -> list[np.ndarray]:
    files = [f for f in client.output_files(outputs) if f.node_id == node]
    return [np.asarray(Image.open(client.download(f, dest)).convert("RGB")) for f in files]


def decode(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(container.streams.video[0])]


def run_motion_frames(server, board, family: str, tmp_path: Path) -> list[np.ndarray]:
    """The shot's compiled graph run through the client, with a SaveImage on the motion subgraph's decoded frames;
    returns those frames."""
    client = ComfyClient(server.url)
    compiled = compile_shot(board, board.shot("s1"), object_info=client.object_info())
    graph = json.loads(compiled.to_json())
    decode_node = "s1:motion:decode"
    assert graph[decode_node]["class_type"] == "VAEDecode"
    graph["check:frames"] = {"class_type": "SaveImage", "inputs": {
        "images": [decode_node, 0], "filename_prefix": f"video-test/{family}"}}
    for upload in compiled.uploads:
        client.upload(upload.local_path, upload.subfolder, upload.filename)
    outputs = client.run(graph, {**compiled.node_shots, "check:frames": "s1"})
    return saved_frames(client, outputs, "check:frames", tmp_path / "frames")


def render_shot_video(server, board, tmp_path: Path) -> list[np.ndarray]:
    """The render pipeline (compile, check, upload, run, download, compose) on the board; the shot video's frames."""
    report = render(board, tmp_path / "out", ServerEngine(ComfyClient(server.url)), "per_shot")
    videos = [p for p in report.shots["s1"].files if p.endswith(".mp4")]
    assert report.shots["s1"].status == "rendered" and videos, report.shots["s1"]
    assert report.film
    return decode(tmp_path / "out" / videos[0])


# The server keeps the outputs of the last graph only, and core pads every umt5 prompt to 512 tokens (minutes on a
# CPU): the graphs that encode the same prompt with umt5 run back to back, and the render pipeline (whose last
# graph, the compose one, loads no model) comes after them.

# 2 steps: the Wan template samples with uni_pc, whose single step (order 0) returns a latent the model has no say in
WAN22_MODELS = {"unet": file_name("wan_i2v"), "text_encoder": file_name("umt5"), "vae": file_name("wan_vae"),
                "steps": 2, "cfg": 1.0, "fps": 16, "max_frames": 9}


def test_wan_image_to_video_shot_executes(comfy_server, wan_files, tmp_path):
    """The translator's Wan subgraph (UNETLoader, ModelSamplingSD3, CLIPLoader type wan, VAELoader,
    CLIPTextEncode, WanImageToVideo, KSampler, VAEDecode) on the tiny Wan 2.2-layout i2v DiT."""
    board = motion_board(tmp_path / "story", "wan", WAN22_MODELS, seconds=0.5)
    planned = motion_length(0.5, 16, 4, 9)
    assert planned == 9
    frames = run_motion_frames(comfy_server, board, "wan", tmp_path)
    assert len(frames) == planned
    assert all(f.shape == (SIZE, SIZE, 3) for f in frames)
    assert len({f.tobytes() for f in frames}) > 1  # generated frames, not one picture repeated


def test_wan21_image_to_video_shot_with_clip_vision_executes(comfy_server, wan21_files, tmp_path):
    """The Wan 2.1 layout: the translator's CLIP vision subgraph (CLIPVisionLoader, CLIPVisionEncode on the random
    ViT-H) feeds WanImageToVideo's ``clip_vision_output`` into the DiT's image cross-attention."""
    models = {"unet": file_name("wan21_i2v"), "text_encoder": file_name("umt5"), "vae": file_name("wan_vae"),
              "clip_vision": file_name("clip_vision_h"), "steps": 2, "cfg": 1.0, "fps": 16, "max_frames": 5}
    board = motion_board(tmp_path / "story", "wan", models, seconds=0.5)
    planned = motion_length(0.5, 16, 4, 5)
    assert planned == 5
    frames = run_motion_frames(comfy_server, board, "wan21", tmp_path)
    assert len(frames) == planned and all(f.shape == (SIZE, SIZE, 3) for f in frames)


def test_phantom_shot_executes_with_the_characters_as_subjects(comfy_server, phantom_files, tmp_path):
    """The translator's Phantom family: WanPhantomSubjectToVideo on a Wan 2.1 t2v-layout DiT, the shot's character
    (her reference picture) and its keyframe batched as the subjects; the same umt5 prompt as the tests above, so
    the server's cache serves its encode. A changed subject picture changes the frames."""
    folder = tmp_path / "story"
    write_panel(folder / "key.png", size=(SIZE, SIZE))
    write_panel(folder / "mara.png", color=(220, 40, 40), size=(48, 80))
    models = {"unet": file_name("wan_t2v"), "text_encoder": file_name("umt5"), "vae": file_name("wan_vae"),
              "steps": 2, "cfg": 1.0, "fps": 16, "max_frames": 9}

    def board():
        return load_storyboard(write_storyboard(folder, {
            "version": 1,
            "project": {"title": "Phantom", "width": SIZE, "height": SIZE, "fps": 8, "negative_prompt": PROMPT,
                        "motion_models": {"phantom": models}},
            "characters": {"mara": {"description": "a keeper", "reference_images": ["mara.png"]}},
            "shots": [{"id": "s1", "description": "the sea", "keyframe": "key.png", "duration": 0.5,
                       "characters": ["mara"], "motion": {"family": "phantom", "prompt": PROMPT}}]}))

    graph = compile_shot(board(), board().shot("s1")).graph
    assert graph["s1:motion:phantom"]["inputs"]["images"] == ["s1:subject-keyframe:batch", 0]
    assert graph["s1:subject-keyframe:batch"]["inputs"]["image1"] == ["s1:subject-mara:image", 0]
    frames = run_motion_frames(comfy_server, board(), "phantom", tmp_path / "first")
    assert len(frames) == motion_length(0.5, 16, 4, 9) == 9
    assert all(f.shape == (SIZE, SIZE, 3) for f in frames)
    write_panel(folder / "mara.png", color=(30, 200, 60), size=(48, 80))
    again = run_motion_frames(comfy_server, board(), "phantom", tmp_path / "again")
    change = float(np.mean([np.abs(a.astype(np.float32) - b).mean() for a, b in zip(frames, again)]))
    assert change > 0.05, change


# ------------------------------------------------------------------------------------------ talking graphs


def write_line(path: Path, seconds: float, rate: int = 16000) -> Path:
    """A voiced-sounding test line: a 140 Hz buzz with harmonics, amplitude-modulated like syllables."""
    t = np.arange(int(seconds * rate)) / rate
    voice = sum(np.sin(2 * math.pi * 140 * k * t) / k for k in range(1, 6))
    signal = 0.3 * voice * (0.6 + 0.4 * np.sin(2 * math.pi * 4 * t))
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((np.clip(signal, -1, 1) * 32767).astype("<i2").tobytes())
    return path


def talk_common(unet: str, audio_encoder: str) -> dict:
    return {
        "unet": {"class_type": "UNETLoader", "inputs": {"unet_name": unet, "weight_dtype": "default"}},
        "model": {"class_type": "ModelSamplingSD3", "inputs": {"model": ["unet", 0], "shift": 8.0}},
        "te": {"class_type": "CLIPLoader", "inputs": {"clip_name": file_name("umt5"), "type": "wan"}},
        "vae": {"class_type": "VAELoader", "inputs": {"vae_name": file_name("wan_vae")}},
        "pos": {"class_type": "CLIPTextEncode", "inputs": {"text": PROMPT, "clip": ["te", 0]}},
        "neg": {"class_type": "CLIPTextEncode", "inputs": {"text": PROMPT, "clip": ["te", 0]}},
        "face": {"class_type": "LoadImage", "inputs": {"image": "video-test-face.png"}},
        "line": {"class_type": "LoadAudio", "inputs": {"audio": "video-test-line.wav"}},
        "audio-encoder": {"class_type": "AudioEncoderLoader", "inputs": {"audio_encoder_name": audio_encoder}},
        "encoded": {"class_type": "AudioEncoderEncode", "inputs": {"audio_encoder": ["audio-encoder", 0],
                                                                   "audio": ["line", 0]}},
    }


def sampler(cond: str, latent) -> dict:
    return {"class_type": "KSampler", "inputs": {
        "model": ["model", 0], "seed": 1, "steps": 1, "cfg": 1.0, "sampler_name": "euler", "scheduler": "simple",
        "positive": [cond, 0], "negative": [cond, 1], "latent_image": latent, "denoise": 1.0}}


@pytest.fixture(scope="module")
def talk_inputs(comfyui_base):
    write_panel(comfyui_base / "input" / "video-test-face.png", color=(200, 160, 120), size=(SIZE, SIZE))
    write_line(comfyui_base / "input" / "video-test-line.wav", seconds=1.5)


def run_graph(server, graph: dict, tmp_path: Path, save_from: list) -> list[np.ndarray]:
    graph = {**graph, "save": {"class_type": "SaveImage", "inputs": {"images": save_from,
                                                                     "filename_prefix": "video-test/talk"}}}
    client = ComfyClient(server.url)
    outputs = client.run(graph)
    return saved_frames(client, outputs, "save", tmp_path)


def test_s2v_with_extend_executes(comfy_server, talk_files, talk_inputs, tmp_path):
    """Wan2.2-S2V: UNETLoader on the tiny S2V DiT, the wav2vec2 large audio encoder, WanSoundImageToVideo for the
    first window and WanSoundImageToVideoExtend for the next (the line is longer than one window), the two
    sampled windows joined in latent space (LatentConcat on t) and decoded once."""
    window = 5  # frames per window: 2 latent frames
    graph = {
        **talk_common(file_name("wan_s2v"), file_name("wav2vec2")),
        "s2v": {"class_type": "WanSoundImageToVideo", "inputs": {
            "positive": ["pos", 0], "negative": ["neg", 0], "vae": ["vae", 0], "width": SIZE, "height": SIZE,
            "length": window, "batch_size": 1, "audio_encoder_output": ["encoded", 0], "ref_image": ["face", 0]}},
        "first": sampler("s2v", ["s2v", 2]),
        "extend": {"class_type": "WanSoundImageToVideoExtend", "inputs": {
            "positive": ["pos", 0], "negative": ["neg", 0], "vae": ["vae", 0], "length": window,
            "video_latent": ["first", 0], "audio_encoder_output": ["encoded", 0], "ref_image": ["face", 0]}},
        "second": sampler("extend", ["extend", 2]),
        "joined": {"class_type": "LatentConcat", "inputs": {"samples1": ["first", 0], "samples2": ["second", 0],
                                                            "dim": "t"}},
        "decode": {"class_type": "VAEDecode", "inputs": {"samples": ["joined", 0], "vae": ["vae", 0]}},
    }
    frames = run_graph(comfy_server, graph, tmp_path, ["decode", 0])
    latent_frames = 2 * ((window - 1) // 4 + 1)
    assert len(frames) == 4 * (latent_frames - 1) + 1  # 13: Wan's VAE turns t latent frames into 4t - 3
    assert all(f.shape == (SIZE, SIZE, 3) for f in frames)


def test_humo_executes(comfy_server, talk_files, talk_inputs, tmp_path):
    """HuMo: UNETLoader on the tiny HuMo DiT, the whisper large v3 audio encoder, WanHuMoImageToVideo with the
    reference face, KSampler, VAEDecode."""
    length = 9
    graph = {
        **talk_common(file_name("wan_humo"), file_name("whisper")),
        "humo": {"class_type": "WanHuMoImageToVideo", "inputs": {
            "positive": ["pos", 0], "negative": ["neg", 0], "vae": ["vae", 0], "width": SIZE, "height": SIZE,
            "length": length, "batch_size": 1, "audio_encoder_output": ["encoded", 0], "ref_image": ["face", 0]}},
        "sampled": sampler("humo", ["humo", 2]),
        "decode": {"class_type": "VAEDecode", "inputs": {"samples": ["sampled", 0], "vae": ["vae", 0]}},
    }
    frames = run_graph(comfy_server, graph, tmp_path, ["decode", 0])
    assert len(frames) == length
    assert all(f.shape == (SIZE, SIZE, 3) for f in frames)


def test_wan_shot_renders_through_the_pipeline(comfy_server, wan_files, tmp_path):
    """A Wan shot through `render` (per shot): its video is the shot's length at the film's rate and size. Then a
    shot with ``continuity: previous``: the translator's first-last-frame subgraph (WanFirstLastFrameToVideo from
    the last frame of the shot before to its own keyframe) runs right after it (the same prompt: the umt5 encode
    is served from the server's cache)."""
    folder = tmp_path / "continuity"
    write_panel(folder / "key.png", size=(SIZE, SIZE))
    write_panel(folder / "end.png", color=(30, 60, 200), size=(SIZE, SIZE))
    board = load_storyboard(write_storyboard(folder, {
        "version": 1,
        "project": {"title": "Continuity", "width": SIZE, "height": SIZE, "fps": 8, "negative_prompt": PROMPT,
                    "motion_models": {"wan": WAN22_MODELS}},
        "shots": [{"id": "s1", "description": "the sea", "keyframe": "key.png", "duration": 0.5,
                   "motion": {"family": "wan", "prompt": PROMPT}},
                  {"id": "s2", "description": "the sea", "keyframe": "end.png", "duration": 0.5,
                   "continuity": "previous", "motion": {"family": "wan", "prompt": PROMPT}}]}))
    out = tmp_path / "continuity-out"
    report = render(board, out, ServerEngine(ComfyClient(comfy_server.url)), "per_shot")
    assert {s: r.status for s, r in report.shots.items()} == {"s1": "rendered", "s2": "rendered"}
    video = decode(out / "shots" / "s1.mp4")
    assert len(video) == round(0.5 * 8) and all(f.shape == (SIZE, SIZE, 3) for f in video)
    start = np.asarray(Image.open(out / "continuity" / "s2.png").convert("RGB"))
    assert np.array_equal(start, decode(out / "shots" / "s1.mp4")[-1])  # s1's last frame, as decoded
    second = decode(out / "shots" / "s2.mp4")
    assert len(second) == round(0.5 * 8) and all(f.shape == (SIZE, SIZE, 3) for f in second)
    assert len(decode(out / report.film)) == 2 * round(0.5 * 8)


# LTX last: its T5 takes umt5's place in the server's cache, which the Wan tests above share
def test_ltx_image_to_video_shot_executes(comfy_server, ltx_files, tmp_path):
    """The translator's LTX-Video subgraph (CheckpointLoaderSimple, CLIPLoader type ltxv, LTXVPreprocess,
    LTXVImgToVideo, LTXVConditioning, LTXVScheduler, SamplerCustom, VAEDecode) on the tiny LTX checkpoint."""
    models = {"checkpoint": file_name("ltx_checkpoint"), "text_encoder": file_name("t5xxl"),
              "steps": 1, "cfg": 1.0, "fps": 24, "max_frames": 9}
    ComfyClient(comfy_server.url).free()  # umt5 and the audio encoders are done with: free their memory first
    board = motion_board(tmp_path / "story", "ltx", models, seconds=0.5)
    planned = motion_length(0.5, 24, 8, 9)
    assert planned == 9
    frames = run_motion_frames(comfy_server, board, "ltx", tmp_path)
    assert len(frames) == planned
    assert all(f.shape == (SIZE, SIZE, 3) for f in frames)
    video = render_shot_video(comfy_server, board, tmp_path)  # the T5 encode is cached from the run above
    assert len(video) == round(0.5 * 8) and all(f.shape == (SIZE, SIZE, 3) for f in video)
