"""Talking shots (issue 16): Wan2.2-S2V with its Extend chain in latent space, HuMo, 2D mouths found on generated
pictures, the shot / reverse-shot cut of multi-speaker shots, the ``auto`` policy and the storyboard's refusals.
Fast: graphs are compiled and checked against the node definitions recorded from ComfyUI 0.3.64 plus the pack's
live ones; nothing runs."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest

from animstudio.common.errors import GraphValidationError, StoryboardError
from animstudio.translator.compile import compile_shot, compile_storyboard
from animstudio.translator.embedded import object_info_from_classes, pack_node_classes
from animstudio.translator.graph_check import graph_problems, load_object_info
from animstudio.translator.storyboard import load_storyboard
from animstudio.translator.video_models import humo_length, s2v_windows
from animstudio.translator.talk import TALK_FILES, TALK_NODES, talk_family, talk_frame_count
from conftest import SNAPSHOT, of_class, write_panel, write_storyboard

S2V = {"unet": "wan2.2_s2v_14B_fp8_scaled.safetensors", "text_encoder": "umt5_xxl_fp8_e4m3fn_scaled.safetensors",
       "vae": "wan_2.1_vae.safetensors", "audio_encoder": "wav2vec2_large_english_fp16.safetensors"}
HUMO = {"unet": "humo_17B_fp8_e4m3fn.safetensors", "text_encoder": "umt5_xxl_fp8_e4m3fn_scaled.safetensors",
        "vae": "wan_2.1_vae.safetensors", "audio_encoder": "whisper_large_v3_fp16.safetensors"}
LONG_LINE = " ".join(["the lamp must burn until the ship is home"] * 5)

STORY = {
    "version": 1,
    "project": {"title": "Talkers", "width": 320, "height": 184, "fps": 12, "style": "cinematic photo",
                "checkpoint": "sd15.safetensors", "negative_prompt": "blurry",
                "talk_models": {"s2v": S2V, "humo": HUMO}},
    "characters": {"mara": {"name": "Mara", "description": "a keeper", "talk": "s2v"},
                   "otto": {"description": "a sailor", "talk": "humo"},
                   "ben": {"description": "a crab", "talk": "mouths"}},
    "shots": [
        {"id": "s1", "description": "Mara speaks", "characters": ["mara"], "duration": 20.0, "keyframe": "p/s1.png",
         "dialogue": [{"character": "mara", "text": LONG_LINE}]},
        {"id": "s2", "description": "Otto answers", "characters": ["otto"], "duration": "fit_to_dialogue",
         "keyframe": "p/s2.png", "dialogue": [{"character": "otto", "text": "Aye."}]},
        {"id": "s3", "description": "they talk", "characters": ["mara", "otto"], "duration": 6.0,
         "keyframe": "p/s3.png", "transition": {"type": "dissolve", "duration": 0.5},
         "close_ups": {"mara": "p/mara.png", "otto": "p/otto.png"},
         "dialogue": [{"character": "mara", "text": "Is it you?"}, {"character": "otto", "text": "It is."},
                      {"character": "mara", "text": "Then come in."}]},
        {"id": "s4", "description": "both in frame", "characters": ["mara", "otto"], "keyframe": "p/s3.png",
         "camera": {"shot": "two_shot"}, "duration": "fit_to_dialogue",
         "dialogue": [{"character": "mara", "text": "Hello."}, {"character": "otto", "text": "Hi."}]},
        {"id": "s5", "description": "the crab speaks", "characters": ["otto", "ben"], "duration": 2.0,
         "dialogue": [{"character": "ben", "text": "Click."}]},
        {"id": "s6", "description": "a boxed mouth", "characters": ["ben"], "keyframe": "p/s1.png", "duration": 2.0,
         "mouths": {"ben": {"x": 10, "y": 10, "width": 20, "height": 16}},
         "dialogue": [{"character": "ben", "text": "Clack."}]},
    ],
}


def board(tmp_path: Path, data: dict = STORY):
    for name in ("p/s1.png", "p/s2.png", "p/s3.png", "p/mara.png", "p/otto.png"):
        write_panel(tmp_path / name)
    return load_storyboard(write_storyboard(tmp_path, data))


def changed(change) -> dict:
    data = copy.deepcopy(STORY)
    change(data)
    return data


@pytest.fixture(scope="module")
def object_info():
    """ComfyUI 0.3.64's recorded nodes, the pack's live ones, and loaders listing the storyboard's model files."""
    info = load_object_info(SNAPSHOT)
    info.update(object_info_from_classes(pack_node_classes()))
    for loader, input_name, _folder in TALK_FILES.values():
        names = sorted({S2V[k] for k in TALK_FILES} | {HUMO[k] for k in TALK_FILES})
        info[loader]["input"]["required"][input_name] = ["COMBO", {"multiselect": False, "options": names}]
    return info


def upstream(graph: dict, node: str) -> set[str]:
    seen, todo = set(), [node]
    while todo:
        for value in graph[todo.pop()]["inputs"].values():
            if isinstance(value, list) and len(value) == 2 and value[0] in graph and value[0] not in seen:
                seen.add(value[0])
                todo.append(value[0])
    return seen


def test_s2v_extend_chain_stays_in_latent_space_with_the_keyframe_as_every_reference(tmp_path):
    sb = board(tmp_path)
    shot = sb.shot("s1")
    g = compile_shot(sb, shot).graph
    windows = s2v_windows(sb.project.talk_models.s2v, 20.0)
    assert len(windows) == 5  # 20 s at 16 fps = 320 frames: 81 latent frames over windows of at most 20
    assert all((n - 1) % 4 == 0 and n <= 77 for n in windows)
    assert of_class(g, "WanSoundImageToVideo") == ["s1:talk:s2v"]
    assert of_class(g, "WanSoundImageToVideoExtend") == [f"s1:talk-{k}:extend" for k in range(2, 6)]
    assert of_class(g, "VAEDecode") == ["s1:talk:decode"] and not of_class(g, "VAEEncode")
    assert g["s1:talk:s2v"]["inputs"]["ref_image"] == ["s1:panel", 0]
    assert g["s1:talk:s2v"]["inputs"]["length"] == windows[0]
    assert (g["s1:talk:s2v"]["inputs"]["width"], g["s1:talk:s2v"]["inputs"]["height"]) == (320, 176)
    previous = ["s1:talk:sampler", 0]
    for k, length in enumerate(windows[1:], start=2):
        extend = g[f"s1:talk-{k}:extend"]["inputs"]
        assert extend["ref_image"] == ["s1:panel", 0]  # the face is anchored to the keyframe in every window
        assert extend["video_latent"] == previous and extend["length"] == length
        assert extend["positive"] == ["s1:talk:positive", 0]  # plain prompts, not the last window's conditioning
        assert extend["audio_encoder_output"] == ["s1:talk:audio-features", 0]
        assert g[f"s1:talk-{k}:concat"]["inputs"] == {"samples1": previous, "samples2": [f"s1:talk-{k}:sampler", 0],
                                                      "dim": "t"}
        previous = [f"s1:talk-{k}:concat", 0]
    assert g["s1:talk:decode"]["inputs"]["samples"] == previous
    # latent to latent: nothing between the windows decodes or encodes pixels
    assert not {g[n]["class_type"] for n in upstream(g, "s1:talk:decode")} & {"VAEDecode", "VAEEncode"}
    seeds = [g[n]["inputs"]["seed"] for n in of_class(g, "KSampler")]
    assert len(set(seeds)) == 5
    assert talk_frame_count(sb, shot, "s2v") == 4 * 81 - 3 >= 20 * 16
    # the model listens to the dialogue; the film keeps the dialogue's own sound, the frames resampled from
    # the model's 16 fps to the film's 12 by time
    assert g["s1:talk:audio-features"]["inputs"]["audio"] == ["s1:talk-audio:audio", 0]
    # padded with silence past the chain's last window: 81 latent frames read 324 sound frames at 16 fps, plus one
    # latent frame's worth (core's Extend fails with a shape error when the sound ends inside its window)
    assert g["s1:talk-audio:audio"]["inputs"] == {"dialogue": ["s1:line-1:line", 0], "min_seconds": (324 + 4) / 16}
    assert g["s1:talk:audio-encoder"]["inputs"] == {"audio_encoder_name": S2V["audio_encoder"]}
    clip = g["s1:clip"]["inputs"]
    assert clip["image"] == ["s1:talk:decode", 0] and clip["fps"] == 12
    assert clip["dialogue"] == ["s1:line-1:line", 0] and "audio" not in clip and clip["frames_fps"] == 16.0
    assert "mouth_rigs" not in clip and not of_class(g, "AnimStudioMouthRig")


def test_humo_renders_one_window_at_25_fps(tmp_path):
    sb = board(tmp_path)
    shot = sb.shot("s2")
    g = compile_shot(sb, shot).graph
    humo = g["s2:talk:humo"]["inputs"]
    seconds = sb.shot_seconds(shot)
    assert humo["length"] == humo_length(sb.project.talk_models.humo, seconds)
    assert (humo["length"] - 1) % 4 == 0 and humo["length"] >= round(seconds * 25)
    assert humo["ref_image"] == ["s2:panel", 0] and humo["audio_encoder_output"] == ["s2:talk:audio-features", 0]
    assert g["s2:talk:audio-encoder"]["inputs"]["audio_encoder_name"] == HUMO["audio_encoder"]
    assert g["s2:clip"]["inputs"]["image"] == ["s2:talk:decode", 0]
    assert not of_class(g, "WanSoundImageToVideo")


@pytest.mark.parametrize("shot_id", ["s1", "s2", "s3~otto", "s4", "s5", "s6"])
def test_talking_graphs_fit_comfyui_0_3_64(tmp_path, object_info, shot_id):
    sb = board(tmp_path)
    compiled = compile_shot(sb, sb.shot(shot_id), keyframe=tmp_path / "p" / "s2.png", object_info=object_info)
    assert graph_problems(compiled.graph, object_info, compiled.node_shots, [u.name for u in compiled.uploads]) == []


def test_several_speakers_cut_between_their_close_ups(tmp_path):
    sb = board(tmp_path)
    assert [s.id for s in sb.shots] == ["s1", "s2", "s3~mara", "s3~otto", "s3~mara-2", "s4", "s5", "s6"]
    cuts = [sb.shot(i) for i in ("s3~mara", "s3~otto", "s3~mara-2")]
    assert [[line.text for line in s.dialogue] for s in cuts] == [["Is it you?"], ["It is."], ["Then come in."]]
    assert [s.characters for s in cuts] == [("mara",), ("otto",), ("mara",)]
    assert [s.keyframe.name for s in cuts] == ["mara.png", "otto.png", "mara.png"]
    assert {s.parent for s in cuts} == {"s3"} and {s.json_path for s in cuts} == {"$.shots[2]"}
    assert [s.transition.type for s in cuts] == ["dissolve", "cut", "cut"]
    assert round(sum(float(s.duration) for s in cuts), 3) == 6.0
    assert {s.camera.shot for s in cuts} == {"close_up"}
    g = compile_shot(sb, sb.shot("s3~otto")).graph
    assert of_class(g, "AnimStudioTTS") == ["s3~otto:line-1:tts"] and g["s3~otto:line-1:tts"]["inputs"]["text"] == "It is."
    assert g["s3~otto:talk:humo"]["inputs"]["ref_image"] == ["s3~otto:panel", 0]
    uploads = compile_shot(sb, sb.shot("s3~otto")).uploads
    assert [u.local_path.name for u in uploads] == ["otto.png"]
    assert of_class(compile_shot(sb, sb.shot("s3~mara-2")).graph, "WanSoundImageToVideo") == ["s3~mara-2:talk:s2v"]
    per_shot = compile_storyboard(sb, "per_shot")
    assert "shot-s3~otto" in [c.name for c in per_shot.graphs]


def test_two_shot_keeps_both_in_frame_with_found_mouths(tmp_path):
    sb = board(tmp_path)
    g = compile_shot(sb, sb.shot("s4")).graph
    assert not of_class(g, "WanSoundImageToVideo") and not of_class(g, "WanHuMoImageToVideo")
    mara, otto = g["s4:mouth-mara:rig"]["inputs"], g["s4:mouth-otto:rig"]["inputs"]
    assert (mara["locate"], mara["face_index"], mara["frames"]) == ("auto", 0, ["s4:panel", 0])
    assert (otto["locate"], otto["face_index"], otto["previous"]) == ("auto", 1, ["s4:mouth-mara:rig", 0])
    assert g["s4:clip"]["inputs"]["mouth_rigs"] == ["s4:mouth-otto:rig", 0]


def test_2d_mouths_are_found_on_generated_pictures_and_boxes_stay_as_they_were(tmp_path):
    sb = board(tmp_path)
    g = compile_storyboard(sb).graphs[0].graph
    ben = g["s5:mouth-ben:rig"]["inputs"]
    assert (ben["locate"], ben["face_index"], ben["frames"]) == ("auto", 1, ["s5:decode", 0])
    boxed = g["s6:mouth-ben:rig"]["inputs"]
    assert boxed == {"speaker": "ben", "x": 10, "y": 10, "width": 20, "height": 16, "mouth_folder": ""}


def test_auto_policy(tmp_path, object_info):
    def auto(change=lambda d: None):
        data = changed(lambda d: [c.update(talk="auto") for c in d["characters"].values()])
        change(data)
        return board(tmp_path, data)

    sb = auto()
    assert talk_family(sb, sb.shot("s1")) == "s2v"  # engine unknown: the first configured family
    assert talk_family(sb, sb.shot("s1"), object_info) == "s2v"
    assert talk_family(sb, sb.shot("s2"), object_info) == "s2v"
    without_s2v = {k: v for k, v in object_info.items() if k != "WanSoundImageToVideoExtend"}
    assert talk_family(sb, sb.shot("s2"), without_s2v) == "humo"
    assert talk_family(sb, sb.shot("s1"), without_s2v) is None  # 20 s is past HuMo's one window: 2D mouths
    bare = {k: v for k, v in without_s2v.items() if k != "WanHuMoImageToVideo"}
    assert talk_family(sb, sb.shot("s2"), bare) is None
    assert talk_family(sb, sb.shot("s2"), load_object_info(SNAPSHOT)) is None  # no model files on that server
    stylized = auto(lambda d: d["project"].update(style="anime, cel shading"))
    assert stylized.project.stylized and talk_family(stylized, stylized.shot("s2"), object_info) is None
    assert "s3" in [s.id for s in stylized.shots]  # no model speaks: one shot, 2D mouths
    forced = auto(lambda d: d["project"].update(style="storybook", talk_style="realistic"))
    assert talk_family(forced, forced.shot("s2")) == "s2v"
    override = auto(lambda d: d["shots"][1].update(talk="mouths"))
    assert talk_family(override, override.shot("s2"), object_info) is None


def test_a_named_family_the_engine_lacks_names_the_file_and_folder(tmp_path, object_info):
    sb = board(tmp_path)
    info = copy.deepcopy(object_info)
    info["AudioEncoderLoader"]["input"]["required"]["audio_encoder_name"][1]["options"] = []
    with pytest.raises(GraphValidationError) as caught:
        compile_shot(sb, sb.shot("s1"), object_info=info)
    (problem,) = caught.value.problems
    assert problem.where == "$.project.talk_models.s2v.audio_encoder"
    assert "wav2vec2_large_english_fp16.safetensors" in problem.message and "models/audio_encoders" in problem.message
    del info["WanSoundImageToVideoExtend"]
    with pytest.raises(GraphValidationError, match="WanSoundImageToVideoExtend"):
        compile_shot(sb, sb.shot("s1"), object_info=info)


@pytest.mark.parametrize("change, where, words", [
    (lambda d: d["project"]["talk_models"].pop("s2v"), "$.project.talk_models.s2v", "$.characters.mara.talk asks"),
    (lambda d: d["project"].pop("talk_models"), "$.project.talk_models.humo", "asks for humo"),
    (lambda d: d["project"]["talk_models"]["s2v"].update(unet="wan2.2_humo_14B.safetensors"),
     "$.project.talk_models.s2v.unet", "looks like a Wan humo model"),
    (lambda d: d["project"]["talk_models"]["s2v"].update(unet="wan2.2_i2v_low_noise_14B.safetensors"),
     "$.project.talk_models.s2v.unet", "not Wan2.2-S2V"),
    (lambda d: d["project"]["talk_models"]["humo"].update(audio_encoder="wav2vec2_large.safetensors"),
     "$.project.talk_models.humo.audio_encoder", "HuMo reads whisper"),
    (lambda d: d["project"]["talk_models"]["s2v"].update(window_frames=78),
     "$.project.talk_models.s2v.window_frames", "4k+1"),
    (lambda d: d["project"]["talk_models"]["s2v"].update(max_windows=2), "$.shots[0].dialogue",
     "shot 's1' lasts about 20.0 s"),
    (lambda d: d["shots"][1].update(duration=8.0), "$.shots[1].dialogue", "HuMo frames at 25 fps"),
    (lambda d: (d["shots"][2].pop("close_ups"), d["project"].pop("checkpoint"), d["shots"].pop(4)),
     "$.shots[2].close_ups.mara", "give a panel of 'mara'"),
    (lambda d: d["shots"][2]["close_ups"].update(eve="p/s1.png"), "$.shots[2].close_ups.eve", "unknown character"),
    (lambda d: d["shots"][2]["close_ups"].update(mara="p/missing.png"), "$.shots[2].close_ups.mara", "missing.png"),
    (lambda d: d["characters"]["mara"].update(talk="lips"), "$.characters.mara.talk", "lips"),
])
def test_bad_talk_input_is_named_by_json_path(tmp_path, change, where, words):
    with pytest.raises(StoryboardError) as caught:
        board(tmp_path, changed(change))
    problems = [p for p in caught.value.problems if p.where == where]
    assert problems and words in problems[0].message, caught.value.problems


def test_talk_nodes_are_core_comfyui_0_3_64_nodes():
    recorded = load_object_info(SNAPSHOT)
    for family, nodes in TALK_NODES.items():
        assert all(node in recorded for node in nodes), family


def test_dialogue_audio_is_the_joined_lines_padded_to_the_shot():
    import numpy as np

    from animstudio.nodes.audio.clip import AudioClip
    from animstudio.nodes.film.dialogue import Dialogue, SpokenLine, dialogue_sound

    tone = AudioClip(np.full((1, 8000), 0.5, np.float32), 16000)
    dialogue = Dialogue((SpokenLine("Mara", "a", 0.0, tone),)).then(Dialogue((SpokenLine("Otto", "b", 0.0, tone),)), 0.25)
    sound = dialogue_sound(dialogue, min_seconds=2.0)
    assert sound.sample_rate == 16000 and sound.channels == 1 and sound.frames == 32000
    assert sound.samples[0, 100] == 0.5 and sound.samples[0, 8000 + 2000] == 0.0  # the pause between the lines
    assert sound.samples[0, 12000 + 100] == 0.5 and sound.samples[0, 30000] == 0.0
    assert dialogue_sound(Dialogue()).frames >= 1


def test_frames_made_at_a_models_rate_are_shown_by_time():
    """16 fps frames from a video model in a 12 fps film: film frame i shows source frame floor(i * 16 / 12), so a
    second of frames lasts a second and the lips keep time with the sound; 0 keeps one frame per film frame."""
    import numpy as np

    from animstudio.nodes.film.clips import sequence_clip

    frames = [np.full((16, 16, 3), 10 * k, np.uint8) for k in range(17)]
    shown = [int(f[0, 0, 0]) // 10 for f in sequence_clip(frames, 16, 16, 12, 1.0, source_fps=16).make_frames()]
    assert shown == [i * 16 // 12 for i in range(12)] == [0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14]
    plain = [int(f[0, 0, 0]) // 10 for f in sequence_clip(frames, 16, 16, 12, 1.0).make_frames()]
    assert plain == list(range(12))
    slow = [int(f[0, 0, 0]) // 10 for f in sequence_clip(frames[:4], 16, 16, 12, 1.0, source_fps=8).make_frames()]
    assert slow == [0, 0, 1, 2, 2, 3, 3, 3, 3, 3, 3, 3]  # the last frame is held once the batch runs out
