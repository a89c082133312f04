"""Generated keyframes with every character aid (LoRA, IP-Adapter, ControlNet guide, consistency score) and
generated motion (Wan, LTX-Video, AnimateDiff-Evolved): what the translator emits, what the storyboard check
refuses, and how the graphs fit the node definitions recorded from a real ComfyUI 0.3.64."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest

from animstudio.translator.compile import compile_keyframe, compile_shot, compile_storyboard
from animstudio.translator.keyframes import consistency_node, keyframe_seed
from animstudio.translator.motion import MOTION_NODES, motion_family, motion_length
from animstudio.common.errors import GraphValidationError, StoryboardError
from animstudio.translator.graph_check import graph_problems
from animstudio.translator.storyboard import load_storyboard
from conftest import of_class, recorded_object_info, write_panel, write_storyboard

STORY = {
    "version": 1,
    "project": {"title": "Keepers", "width": 320, "height": 184, "fps": 12, "checkpoint": "sd15.safetensors",
                "steps": 6, "cfg": 5.0, "negative_prompt": "blurry", "clip_vision": "vit-l.safetensors",
                "consistency": {"threshold": 0.64, "max_attempts": 4},
                "motion_models": {
                    "wan": {"unet": "wan2.1_i2v_480p.safetensors", "text_encoder": "umt5_xxl.safetensors",
                            "vae": "wan_2.1_vae.safetensors", "clip_vision": "clip_vision_h.safetensors"},
                    "ltx": {"checkpoint": "ltx-video-2b.safetensors", "text_encoder": "t5xxl.safetensors"},
                    "animatediff": {"motion_model": "mm_sd_v15_v2.ckpt"}}},
    "characters": {
        "mara": {"name": "Mara", "description": "a keeper in a red coat",
                 "lora": {"file": "mara.safetensors", "weight": 0.8, "weight_range": [0.6, 1.0],
                          "trigger_words": ["mrx"]},
                 "reference_images": ["refs/mara-1.png", "refs/mara-2.png"],
                 "ip_adapter": {"file": "ip-adapter_sd15.safetensors", "weight": 0.6, "start_at": 0.1, "end_at": 0.9}},
        "otto": {"description": "a dog", "reference_images": ["refs/otto.png"]},
        "bob": {"description": "a crab"},
    },
    "shots": [
        {"id": "s1", "description": "Mara and Otto on the pier", "characters": ["mara", "otto", "bob"],
         "control": {"image": "control/pose.png", "model": "control_openpose.safetensors", "kind": "pose",
                     "strength": 0.8, "end_at": 0.7}},
        {"id": "s2", "description": "the sea moves", "duration": 2.0, "motion": {"family": "wan"}},
        {"id": "s3", "description": "waves", "duration": 2.0, "motion": {"family": "ltx", "prompt": "waves roll",
                                                                         "strength": 0.9}},
        {"id": "s4", "description": "Otto wags", "characters": ["otto"], "duration": 1.5,
         "motion": {"family": "animatediff"}},
    ],
}


def board(tmp_path: Path, data: dict = STORY):
    for name in ("refs/mara-1.png", "refs/mara-2.png", "refs/otto.png", "control/pose.png"):
        write_panel(tmp_path / name)
    return load_storyboard(write_storyboard(tmp_path, data))


@pytest.fixture(scope="module")
def object_info():
    return recorded_object_info()


def test_keyframe_graph_chains_lora_ipadapter_control_and_scores(tmp_path):
    sb = board(tmp_path)
    shot = sb.shot("s1")
    compiled = compile_keyframe(sb, shot)
    g = compiled.graph
    assert compiled.name == "keyframe-s1" and compiled.kind == "keyframe"
    # model: checkpoint -> mara's LoRA -> mara's IP-Adapter (otto has references but no adapter) -> sampler
    assert g["s1:lora-mara:lora"]["inputs"]["model"] == ["film:checkpoint", 0]
    adapter = g["s1:ipadapter-mara:ipadapter"]
    assert adapter["class_type"] == "AnimStudioIPAdapter"
    assert adapter["inputs"] == {"model": ["s1:lora-mara:lora", 0], "clip_vision": ["film:clip-vision", 0],
                                 "image": ["s1:refs-mara-2:batch", 0], "ipadapter_name": "ip-adapter_sd15.safetensors",
                                 "weight": 0.6, "start_at": 0.1, "end_at": 0.9, "character": "Mara"}
    assert of_class(g, "AnimStudioIPAdapter") == ["s1:ipadapter-mara:ipadapter"]
    assert g["s1:sampler"]["inputs"]["model"] == ["s1:ipadapter-mara:ipadapter", 0]
    # both reference images loaded once and batched; IP-Adapter and score share the batch
    assert g["s1:refs-mara-2:batch"]["inputs"] == {"image1": ["s1:refs-mara-1:image", 0],
                                                   "image2": ["s1:refs-mara-2:image", 0]}
    assert g["film:clip-vision"] == {"class_type": "CLIPVisionLoader", "inputs": {"clip_name": "vit-l.safetensors"}}
    # the ControlNet guide sits between the prompts and the sampler, with the checkpoint's VAE
    control = g["s1:control:apply"]["inputs"]
    assert (control["positive"], control["negative"]) == (["s1:positive", 0], ["s1:negative", 0])
    assert (control["strength"], control["start_percent"], control["end_percent"]) == (0.8, 0.0, 0.7)
    assert control["vae"] == ["film:checkpoint", 2] and control["image"] == ["s1:control:image", 0]
    assert g["s1:control:model"]["inputs"] == {"control_net_name": "control_openpose.safetensors"}
    assert g["s1:sampler"]["inputs"]["positive"] == ["s1:control:apply", 0]
    assert g["s1:sampler"]["inputs"]["negative"] == ["s1:control:apply", 1]
    # a score per character with references (mara, otto), none for bob; the shot's seed on attempt 0
    assert of_class(g, "AnimStudioConsistencyScore") == [consistency_node("s1", "mara"), consistency_node("s1", "otto")]
    score = g[consistency_node("s1", "mara")]["inputs"]
    assert score == {"clip_vision": ["film:clip-vision", 0], "images": ["s1:decode", 0],
                     "reference_images": ["s1:refs-mara-2:batch", 0], "threshold": 0.64, "character": "mara",
                     "method": "auto", "face_threshold": 0.4}
    assert g[consistency_node("s1", "otto")]["inputs"]["reference_images"] == ["s1:refs-otto-1:image", 0]
    assert g["s1:sampler"]["inputs"]["seed"] == keyframe_seed(sb, shot, 0)
    folders = sorted({u.subfolder for u in compiled.uploads})
    assert folders == ["animstudio/control", "animstudio/references"] and len(compiled.uploads) == 4
    assert all(compiled.node_shots[n] == "s1" for n in g)


def test_attempts_get_new_seeds_and_nothing_else_changes(tmp_path):
    sb = board(tmp_path)
    shot = sb.shot("s1")
    graphs = [compile_keyframe(sb, shot, attempt).graph for attempt in range(4)]
    seeds = [g["s1:sampler"]["inputs"]["seed"] for g in graphs]
    assert len(set(seeds)) == 4 and all(0 <= s < 2 ** 48 for s in seeds)
    assert seeds == [keyframe_seed(sb, shot, a) for a in range(4)]
    for g in graphs[1:]:
        g["s1:sampler"]["inputs"]["seed"] = seeds[0]
        assert g == graphs[0]
    assert compile_keyframe(sb, shot, 2).to_json() == compile_keyframe(sb, shot, 2).to_json()


def test_no_scores_without_a_clip_vision_model_or_when_switched_off(tmp_path):
    data = copy.deepcopy(STORY)
    data["project"]["consistency"] = {"enabled": False}
    g = compile_keyframe(board(tmp_path / "off", data), board(tmp_path / "off", data).shot("s1")).graph
    assert not of_class(g, "AnimStudioConsistencyScore") and of_class(g, "AnimStudioIPAdapter")
    data = copy.deepcopy(STORY)
    del data["project"]["consistency"], data["characters"]["mara"]["ip_adapter"], data["project"]["clip_vision"]
    sb = board(tmp_path / "none", data)
    g = compile_keyframe(sb, sb.shot("s1")).graph
    assert not of_class(g, "AnimStudioConsistencyScore") and not of_class(g, "CLIPVisionLoader")


def test_motion_subgraphs(tmp_path):
    sb = board(tmp_path)
    wan = compile_shot(sb, sb.shot("s2"), keyframe=tmp_path / "refs" / "otto.png").graph
    i2v = wan["s2:motion:i2v"]["inputs"]
    assert wan["s2:motion:i2v"]["class_type"] == "WanImageToVideo"
    assert (i2v["width"], i2v["height"]) == (320, 176)  # the film size on Wan's 16-pixel grid
    assert i2v["length"] == motion_length(2.0, 16, 4, 81) == 33  # 2 s at 16 fps, on the 4k+1 grid
    assert i2v["start_image"] == ["s2:panel", 0] and i2v["clip_vision_output"] == ["s2:motion-vision:encode", 0]
    assert wan["s2:motion-vision:clip-vision"]["inputs"] == {"clip_name": "clip_vision_h.safetensors"}
    assert wan["s2:motion:unet"]["inputs"]["unet_name"] == "wan2.1_i2v_480p.safetensors"
    assert wan["s2:motion:text-encoder"]["inputs"] == {"clip_name": "umt5_xxl.safetensors", "type": "wan"}
    assert wan["s2:clip"]["inputs"]["image"] == ["s2:motion:decode", 0]  # the frames play as the shot
    assert "film:checkpoint" not in wan  # the image model is not loaded with the video model

    ltx = compile_shot(sb, sb.shot("s3"), keyframe=tmp_path / "refs" / "otto.png").graph
    assert ltx["s3:motion:i2v"]["inputs"]["length"] == 49 and ltx["s3:motion:i2v"]["inputs"]["strength"] == 0.9
    assert (ltx["s3:motion:i2v"]["inputs"]["width"], ltx["s3:motion:i2v"]["inputs"]["height"]) == (320, 160)
    assert ltx["s3:motion:positive"]["inputs"]["text"] == "waves roll"
    assert ltx["s3:motion:conditioning"]["inputs"]["frame_rate"] == 24.0
    assert ltx["s3:clip"]["inputs"]["image"] == ["s3:motion:decode", 0]

    ad = compile_shot(sb, sb.shot("s4"), keyframe=tmp_path / "refs" / "otto.png").graph
    assert ad["s4:motion:motion-model"]["inputs"] == {"model": ["film:checkpoint", 0], "model_name": "mm_sd_v15_v2.ckpt",
                                                      "beta_schedule": "autoselect"}
    assert ad["s4:motion:repeat"]["inputs"]["amount"] == 12 and ad["s4:motion:sampler"]["inputs"]["denoise"] == 0.6

    assert motion_length(30.0, 16, 4, 81) == 81 and motion_length(0.01, 24, 8, 121) == 1
    assert motion_length(1.0, 24, 8, 50) == 25 and motion_length(3.0, 24, 8, 50) == 49  # 8k+1 grid, under the cap


def test_auto_family_follows_what_the_engine_offers(tmp_path, object_info):
    data = copy.deepcopy(STORY)
    data["shots"][1]["motion"] = {"family": "auto"}
    data["project"]["motion_models"] = {"animatediff": {"motion_model": "mm.ckpt"},
                                        "ltx": {"checkpoint": "ltx.safetensors", "text_encoder": "t5.safetensors"}}
    sb = board(tmp_path, data)
    # core ComfyUI 0.3.64 has LTX-Video but not AnimateDiff-Evolved: auto skips animatediff
    assert motion_family(sb, sb.shot("s2"), object_info) == "ltx"
    assert motion_family(sb, sb.shot("s2")) == "ltx"  # engine unknown: the first configured of wan, ltx, animatediff
    without = {k: v for k, v in object_info.items() if k not in MOTION_NODES["ltx"]}
    with pytest.raises(GraphValidationError) as caught:
        motion_family(sb, sb.shot("s2"), without)
    assert caught.value.problems[0].where == "$.shots[1].motion"
    assert "ADE_AnimateDiffLoaderGen1" in caught.value.problems[0].message


@pytest.mark.parametrize("family, shot_id", [("wan", "s2"), ("ltx", "s3")])
def test_core_motion_graphs_fit_comfyui_0_3_64_except_model_files(tmp_path, object_info, family, shot_id):
    sb = board(tmp_path)
    compiled = compile_shot(sb, sb.shot(shot_id), keyframe=tmp_path / "refs" / "otto.png")
    assert all(node in object_info for node in MOTION_NODES[family])
    problems = graph_problems(compiled.graph, object_info, compiled.node_shots, [u.name for u in compiled.uploads])
    assert problems, "the model files are not on a recorded server"
    for problem in problems:  # every problem is a model file, named with the folder it belongs in
        assert "model file" in problem.message and "models/" in problem.message, problem
    folders = {p.message.split("models/")[1].split(" ")[0] for p in problems}
    assert folders == ({"diffusion_models", "text_encoders", "vae", "clip_vision"} if family == "wan"
                       else {"checkpoints", "text_encoders"})


def test_keyframe_graph_fits_comfyui_except_model_files(tmp_path, object_info):
    sb = board(tmp_path)
    compiled = compile_keyframe(sb, sb.shot("s1"))
    problems = graph_problems(compiled.graph, object_info, compiled.node_shots, [u.name for u in compiled.uploads])
    wrong = [p for p in problems if "model file" not in p.message]
    assert wrong == []
    named = {p.message.split("model file '")[1].split("'")[0]: p.message.split("models/")[1].split(" ")[0] for p in problems}
    assert named == {"sd15.safetensors": "checkpoints", "mara.safetensors": "loras", "vit-l.safetensors": "clip_vision",
                     "ip-adapter_sd15.safetensors": "ipadapter", "control_openpose.safetensors": "controlnet"}


def test_film_shape_inlines_keyframes_and_motion(tmp_path):
    sb = board(tmp_path)
    g = compile_storyboard(sb).graphs[0].graph
    assert of_class(g, "CheckpointLoaderSimple") == ["film:checkpoint", "s3:motion:checkpoint"]
    assert g["s2:motion:i2v"]["inputs"]["start_image"] == ["s2:decode", 0]
    assert not of_class(g, "AnimStudioConsistencyScore")  # re-rendering needs the per-shot shape
    per_shot = compile_storyboard(sb, "per_shot")
    assert [c.name for c in per_shot.graphs] == ["keyframe-s1", "shot-s1", "keyframe-s2", "shot-s2", "keyframe-s3",
                                                 "shot-s3", "keyframe-s4", "shot-s4", "compose"]


@pytest.mark.parametrize("change, where, words", [
    (lambda d: d["characters"]["mara"]["lora"].update(weight=1.2), "$.characters.mara.lora.weight",
     "outside the LoRA's recommended range [0.6, 1.0]"),
    (lambda d: d["characters"]["mara"]["lora"].update(weight_range=[1.0, 0.5]), "$.characters.mara.lora.weight_range",
     "low is above high"),
    (lambda d: d["characters"]["mara"].pop("reference_images"), "$.characters.mara.ip_adapter", "needs reference_images"),
    (lambda d: d["project"].pop("clip_vision"), "$.project.clip_vision", "required"),
    (lambda d: d["characters"]["mara"]["ip_adapter"].update(start_at=0.95), "$.characters.mara.ip_adapter.start_at",
     "after end_at"),
    (lambda d: d["project"].pop("motion_models"), "$.shots[1].motion", "needs project.motion_models"),
    (lambda d: d["project"]["motion_models"].pop("wan"), "$.shots[1].motion.family", "'wan' has no models"),
    (lambda d: d["shots"][0]["control"].update(image="control/missing.png"), "$.shots[0].control.image", "missing.png"),
    (lambda d: d["shots"][0]["control"].update(image="../../etc/passwd.png"), "$.shots[0].control.image", "leaves"),
    (lambda d: d["shots"][2]["motion"].update(family="sora"), "$.shots[2].motion.family", "sora"),
    (lambda d: d["project"]["consistency"].update(max_attempts=0), "$.project.consistency.max_attempts", "0"),
    (lambda d: d["project"]["motion_models"]["wan"].pop("vae"), "$.project.motion_models.wan", "vae"),
])
def test_storyboard_check_names_the_place(tmp_path, change, where, words):
    data = copy.deepcopy(STORY)
    change(data)
    with pytest.raises(StoryboardError) as caught:
        board(tmp_path, data)
    places = {p.where: p.message for p in caught.value.problems}
    assert where in places, caught.value.problems
    assert words in places[where]


# ------------------------------------------------------------------------------ scene continuity

def continuity_board(tmp_path: Path, change=lambda d: None):
    data = copy.deepcopy(STORY)
    data["scenes"] = {"pier": {"description": "a pier at dusk"}}
    for shot in data["shots"][:3]:
        shot["scene"] = "pier"
    data["shots"][2] = {"id": "s3", "description": "the sea", "scene": "pier", "keyframe": "control/pose.png",
                        "duration": 1.0, "continuity": "previous"}
    change(data)
    return board(tmp_path, data)


def test_a_continuing_shot_moves_from_the_previous_last_frame_to_its_keyframe(tmp_path, object_info):
    sb = continuity_board(tmp_path)
    shot = sb.shot("s3")
    last = write_panel(tmp_path / "out" / "continuity" / "s3.png", color=(10, 20, 30))
    compiled = compile_shot(sb, shot, object_info=object_info, start_frame=last)
    g = compiled.graph
    (flf,) = of_class(g, "WanFirstLastFrameToVideo")
    assert g[flf]["inputs"]["start_image"] == ["s3:start:panel", 0] and g[flf]["inputs"]["end_image"] == ["s3:panel", 0]
    uploads = {u.local_path.name: u.name for u in compiled.uploads}
    assert g["s3:start:panel"]["inputs"]["image"] == uploads["s3.png"]  # the last frame, named by its content
    assert not of_class(g, "WanImageToVideo")
    assert g["s3:motion:checked"]["inputs"]["family"] == "wan_i2v"
    assert g["s3:motion:i2v"]["inputs"]["length"] == motion_length(1.0, 16, 4, 81)
    assert g["s3:clip"]["inputs"]["image"] == ["s3:motion:decode", 0] and g["s3:clip"]["inputs"]["frames_fps"] == 16.0
    problems = graph_problems(g, object_info, compiled.node_shots, [u.name for u in compiled.uploads])
    assert problems and all("model file" in p.message for p in problems)  # fits 0.3.64 but for the model files
    # compiled ahead of the render: the frame is named where the renderer will put it, after the shot before
    ahead = compile_shot(sb, shot, object_info=object_info)
    assert ahead.graph["s3:start:panel"]["inputs"]["image"] == "animstudio/continuity/s3.png"
    assert ahead.depends_on == ("shot-s2",)
    # one graph for the whole film cannot read a frame not yet rendered
    with pytest.raises(GraphValidationError) as caught:
        compile_storyboard(sb, "film", object_info)
    assert caught.value.problems[0].where == "$.shots[2].continuity"
    assert "--single-graph" in caught.value.problems[0].message


@pytest.mark.parametrize("change, where, words", [
    (lambda d: d["shots"][0].update(continuity="previous"), "$.shots[0].continuity", "first shot"),
    (lambda d: d["shots"][1].update(scene=None) or d["shots"][1].pop("scene"), "$.shots[2].continuity",
     "another scene"),
    (lambda d: d["project"]["motion_models"].pop("wan") and d["shots"].pop(1), "$.shots[1].continuity",
     "project.motion_models.wan"),
    (lambda d: d["shots"][2].update(continuity="next"), "$.shots[2].continuity", "next"),
])
def test_continuity_problems_name_the_place(tmp_path, change, where, words):
    with pytest.raises(StoryboardError) as caught:
        continuity_board(tmp_path, change)
    problems = [p for p in caught.value.problems if p.where == where]
    assert problems and words in problems[0].message, caught.value.problems
