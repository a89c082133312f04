"""Characters that talk on the generation path, end to end (marker ``comfyui``): a storyboard with no panels at
all, two characters and dialogue, rendered on a real ComfyUI to a film, measured on its frames.

* Mara talks through Wan2.2-S2V, Otto through HuMo. Their two-speaker shot ``s1`` becomes shot / reverse shot:
  ``s1~mara`` then ``s1~otto``, each from its own generated close-up keyframe (the tiny SD1.5 stand-in) and lines.
* ``s2`` is a two-shot (``camera.shot: two_shot``): both stay in frame with 2D mouths. The random-weight keyframe
  has no face for the landmark model, so the first render goes on and says so for each character; the user then
  sets the mouths (as the sidebar's click on the keyframe writes them: ``$.shots[1].mouths``) and renders again.

What is measured, and what cannot be on random weights: the stand-ins have the real architectures but no
training, so their frames show no face and no lips. For S2V the test proves the speech drives the pictures: a
second render whose graph differs only in Mara's voice pitch gives other frames for Mara's close-up and the very
same file for Otto's. For 2D mouths it measures each mouth box on the film's frames: the speaker's mouth changes
while their line is said, the listener's stays closed.
"""
from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from animstudio.nodes.film.sidecars import parse_webvtt
from animstudio.translator.client import ComfyClient
from animstudio.translator.compile import compile_shot
from animstudio.translator.keyframes import shot_prompt
from animstudio.translator.render import ServerEngine, render
from animstudio.translator.storyboard import load_storyboard
from conftest import TINY_CHECKPOINT, write_storyboard
from fixtures import video_models
from fixtures.video_models import file_name

pytestmark = pytest.mark.comfyui

SIZE, FPS = 64, 8
MOUTHS = {"mara": {"x": 4, "y": 34, "width": 24, "height": 16}, "otto": {"x": 36, "y": 34, "width": 24, "height": 16}}


@pytest.fixture(scope="module", autouse=True)
def unload_video_models(comfy_server):
    yield
    ComfyClient(comfy_server.url).free()


def story(negative: str = "", mara_pitch: float = 0.0, mouths: dict | None = None) -> dict:
    # euler: one uni_pc step (S2V's default sampler) is order 0, and returns a latent the model has no say in
    common = {"text_encoder": file_name("umt5"), "vae": file_name("wan_vae"), "steps": 1, "cfg": 1.0,
              "sampler": "euler"}
    two_shot = {"id": "s2", "description": "at the table", "characters": ["mara", "otto"],
                "camera": {"shot": "two_shot"},
                "dialogue": [{"character": "mara", "text": "Come in."}, {"character": "otto", "text": "Thanks."}]}
    if mouths:
        two_shot["mouths"] = mouths
    return {
        "version": 1,
        "project": {"title": "Two talk", "width": SIZE, "height": SIZE, "fps": FPS, "style": "photo",
                    "checkpoint": TINY_CHECKPOINT, "steps": 1, "cfg": 1.0, "negative_prompt": negative,
                    "subtitles": {"burn": False, "files": "srt"},
                    "talk_models": {
                        "s2v": {**common, "unet": file_name("wan_s2v"), "audio_encoder": file_name("wav2vec2"),
                                "window_frames": 9},
                        "humo": {**common, "unet": file_name("wan_humo"), "audio_encoder": file_name("whisper")}}},
        "characters": {"mara": {"name": "Mara", "description": "a keeper", "talk": "s2v",
                                "voice": {"pitch": mara_pitch}},
                       "otto": {"name": "Otto", "description": "a sailor", "talk": "humo"}},
        "shots": [
            {"id": "s1", "description": "at the door", "characters": ["mara", "otto"],
             "dialogue": [{"character": "mara", "text": "Is it you?"}, {"character": "otto", "text": "Yes."}]},
            two_shot,
        ],
    }


def load(folder: Path, **changes):
    first = load_storyboard(write_storyboard(folder, story(**changes)))
    # the negative prompt is Mara's close-up prompt: core encodes that text once (the umt5 stand-in is full size)
    negative = shot_prompt(first, first.shot("s1~mara"))
    return load_storyboard(write_storyboard(folder, story(negative, **changes)))


def frames_of(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24").astype(np.int16) for f in container.decode(video=0)]


def sound_of(path: Path) -> tuple[float, float]:
    """A file's sound: its length in seconds and its RMS level."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        chunks = [f.to_ndarray().astype(np.float64).reshape(-1, f.samples) for f in container.decode(stream)]
        rate = stream.rate
    samples = np.concatenate(chunks, axis=1)
    return samples.shape[1] / rate, float(np.sqrt(np.mean(samples ** 2)))


def region(frame: np.ndarray, box: dict) -> np.ndarray:
    return frame[box["y"]:box["y"] + box["height"], box["x"]:box["x"] + box["width"]]


def change(frames: list[np.ndarray], box: dict, start: float, end: float) -> float:
    """How much a mouth box changes over the frames shown from ``start`` to ``end`` seconds: the largest mean
    absolute difference (0-255) of the box from its first picture in that span."""
    span = [f for i, f in enumerate(frames) if start <= i / FPS < end]
    assert len(span) >= 2, (start, end)
    return max(float(np.abs(region(f, box) - region(span[0], box)).mean()) for f in span)


def test_a_storyboard_without_panels_talks_in_s2v_humo_and_2d_mouths(comfy_server, talk_files, tmp_path):
    engine = ServerEngine(ComfyClient(comfy_server.url))
    folder, out = tmp_path / "story", tmp_path / "out"
    board = load(folder)
    assert [s.id for s in board.shots] == ["s1~mara", "s1~otto", "s2"]  # shot / reverse shot, then the two-shot
    assert all(s.keyframe is None for s in board.shots)  # nothing drawn by hand: every keyframe is generated

    first = render(board, out, engine, "per_shot")
    assert {s: r.status for s, r in first.shots.items()} == {"s1~mara": "rendered", "s1~otto": "rendered",
                                                              "s2": "rendered"}
    for shot_id, families in (("s1~mara", ["WanSoundImageToVideo", "WanSoundImageToVideoExtend"]),
                              ("s1~otto", ["WanHuMoImageToVideo"]), ("s2", [])):
        graph = compile_shot(board, board.shot(shot_id), out / first.shots[shot_id].keyframe,
                             engine.object_info()).graph
        used = sorted({n["class_type"] for n in graph.values() if n["class_type"].startswith("Wan")})
        assert [c for c in used if c in families] == sorted(families) and len(used) == len(families), used
        spoken = [n["inputs"]["text"] for n in graph.values() if n["class_type"] == "AnimStudioTTS"]
        assert spoken == {"s1~mara": ["Is it you?"], "s1~otto": ["Yes."], "s2": ["Come in.", "Thanks."]}[shot_id]
    # the random-weight keyframe of the two-shot shows no face: the render went on and said so, per character
    assert [w.split(":")[1].strip() for w in first.shots["s2"].warnings] == ["Mara's mouth is not drawn",
                                                                             "Otto's mouth is not drawn"]
    assert not first.shots["s1~mara"].warnings and not first.shots["s1~otto"].warnings
    still = frames_of(out / "shots" / "s2.mp4")
    assert max(float(np.abs(f - still[0]).max()) for f in still) <= 12  # nothing drawn on it: a still

    film = out / first.film
    pictures = frames_of(film)
    shot_frames = {s: len(frames_of(out / "shots" / f"{s}.mp4")) for s in first.shots}
    assert len(pictures) == sum(shot_frames.values())  # cuts: the shots end to end
    assert all(p.shape == (SIZE, SIZE, 3) for p in pictures)
    seconds, loudness = sound_of(film)
    assert abs(seconds - len(pictures) / FPS) < 0.15 and loudness > 1e-3  # the pack's own speech
    keyframes = {s: (out / r.keyframe).read_bytes() for s, r in first.shots.items()}
    mara_cut = (out / "shots" / "s1~mara.mp4").read_bytes()
    otto_cut = (out / "shots" / "s1~otto.mp4").read_bytes()

    # Mara's voice pitched up (her graph differs from the first in that one input), and the two-shot's mouths set
    info, mara_key = engine.object_info(), out / first.shots["s1~mara"].keyframe
    old = compile_shot(board, board.shot("s1~mara"), mara_key, info).graph
    board = load(folder, mara_pitch=4.0, mouths=MOUTHS)
    new = compile_shot(board, board.shot("s1~mara"), mara_key, info).graph
    differ = sorted((node, key) for node in new for key in new[node]["inputs"]
                    if old[node]["inputs"][key] != new[node]["inputs"][key])
    assert differ == [("s1~mara:line-1:tts", "pitch")], differ
    second = render(board, out, engine, "per_shot")
    assert {s: r.status for s, r in second.shots.items()} == {"s1~mara": "rendered", "s1~otto": "cached",
                                                               "s2": "rendered"}
    assert {s: (out / r.keyframe).read_bytes() for s, r in second.shots.items()} == keyframes  # nothing lost
    assert (out / "shots" / "s1~otto.mp4").read_bytes() == otto_cut
    # S2V: other speech, other frames (of the same count): the audio reaches Mara's pictures
    before, after = frames_of_bytes(mara_cut, tmp_path / "before.mp4"), frames_of(out / "shots" / "s1~mara.mp4")
    assert len(before) == len(after)
    moved = float(np.mean([np.abs(a - b).mean() for a, b in zip(before, after)]))
    print("S2V frames, mean change from Mara's voice pitched up 4 semitones:", moved)
    assert moved > 2.0

    # 2D mouths: each speaker's box changes while they speak; the listener's stays closed
    assert second.shots["s2"].warnings == []
    frames = frames_of(out / "shots" / "s2.mp4")
    cues = parse_webvtt((out / "shots" / "s2.vtt").read_text())
    assert [c.speaker for c in cues] == ["Mara", "Otto"], cues
    mara_line, otto_line = cues
    speaking = {"mara": change(frames, MOUTHS["mara"], mara_line.start, mara_line.end),
                "otto": change(frames, MOUTHS["otto"], otto_line.start, otto_line.end)}
    listening = {"mara": change(frames, MOUTHS["mara"], otto_line.start, otto_line.end),
                 "otto": change(frames, MOUTHS["otto"], mara_line.start, mara_line.end)}
    print("mouth change while speaking", speaking, "while listening", listening)
    assert min(speaking.values()) > 6 and max(listening.values()) < 2, (speaking, listening)


def frames_of_bytes(data: bytes, path: Path) -> list[np.ndarray]:
    path.write_bytes(data)
    return frames_of(path)


def test_a_model_of_another_family_is_refused_by_file_and_json_path(comfy_server, comfyui_base, talk_files):
    """A HuMo file renamed so that its name gives nothing away, named as the S2V model: the pack's check after the
    loader stops the run with the file, the storyboard place that named it and what the file is (read from what
    core built from it); the right file passes through unchanged."""
    from animstudio.common.errors import AnimStudioError

    disguised = comfyui_base / "models" / "diffusion_models" / "talker-v3.safetensors"
    if not disguised.exists():
        disguised.symlink_to(video_models.cached_path("wan_humo"))

    def graph(unet: str) -> dict:
        return {"unet": {"class_type": "UNETLoader", "inputs": {"unet_name": unet, "weight_dtype": "default"}},
                "checked": {"class_type": "AnimStudioCheckModelFamily", "inputs": {
                    "model": ["unet", 0], "family": "s2v", "file": unet, "where": "$.project.talk_models.s2v.unet"}},
                "show": {"class_type": "PreviewAny", "inputs": {"source": ["checked", 0]}}}

    client = ComfyClient(comfy_server.url)
    with pytest.raises(AnimStudioError) as caught:
        client.run(graph("talker-v3.safetensors"), {"checked": "s1~mara"})
    (problem,) = caught.value.problems
    assert "s1~mara" in problem.where and "checked" in problem.where, problem.where
    assert ("$.project.talk_models.s2v.unet: talker-v3.safetensors is a HuMo model, not Wan2.2-S2V"
            in problem.message), problem.message
    assert "Traceback" not in str(caught.value)
    client.run(graph(file_name("wan_s2v")))  # the S2V file passes
