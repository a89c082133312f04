"""Keyframes edited from character sheets (``project.keyframe_model`` ``qwen_edit`` / ``kontext``): the sheet and
keyframe graphs the translator emits, how they fit the node definitions recorded from a real ComfyUI 0.3.64, and what
the storyboard check refuses. (They execute in a real ComfyUI in test_reference_keyframes_integration.py.)"""
from __future__ import annotations

import copy
from pathlib import Path

import pytest

from animstudio.common.errors import StoryboardError
from animstudio.translator.compile import compile_keyframe, compile_sheet, compile_shot, compile_storyboard
from animstudio.translator.graph_check import graph_problems
from animstudio.translator.storyboard import load_storyboard
from conftest import of_class, recorded_object_info, write_panel, write_storyboard

MODELS = {
    "qwen_edit": {"unet": "qwen_image_edit_2509.safetensors", "text_encoder": "qwen_2.5_vl_7b.safetensors",
                  "vae": "qwen_image_vae.safetensors", "steps": 8, "cfg": 1.0},
    "kontext": {"unet": "flux1-kontext-dev.safetensors", "clip_l": "clip_l.safetensors",
                "t5xxl": "t5xxl_fp8_e4m3fn.safetensors", "vae": "ae.safetensors", "guidance": 3.0,
                "reference_megapixels": 0.5},
}

STORY = {
    "version": 1,
    "project": {"title": "Sheets", "width": 320, "height": 184, "fps": 12, "seed": 7, "style": "storybook",
                "keyframe_model": "kontext", "keyframe_models": MODELS},
    "characters": {
        "mara": {"name": "Mara", "description": "a keeper in a red coat",
                 "reference_images": ["refs/mara-1.png", "refs/mara-2.png"]},
        "otto": {"name": "Otto", "description": "a fisherman", "sheet": "refs/otto-sheet.png"},
        "gull": {"description": "a gull", "reference_images": ["refs/gull.png"]},
    },
    "shots": [
        {"id": "s1", "description": "Mara and Otto on the pier", "characters": ["mara", "otto"]},
        {"id": "s2", "description": "Mara alone", "characters": ["mara"], "keyframe": "refs/panel.png"},
        {"id": "s3", "description": "the sea", "duration": 2.0},
    ],
}


def board(tmp_path: Path, data: dict = STORY):
    for name in ("refs/mara-1.png", "refs/mara-2.png", "refs/otto-sheet.png", "refs/gull.png", "refs/panel.png"):
        write_panel(tmp_path / name)
    return load_storyboard(write_storyboard(tmp_path, data))


def with_family(family: str) -> dict:
    data = copy.deepcopy(STORY)
    data["project"]["keyframe_model"] = family
    return data


@pytest.fixture(scope="module")
def object_info():
    return recorded_object_info()


def test_per_shot_plan_makes_each_missing_sheet_first(tmp_path):
    sb = board(tmp_path)
    assert sb.sheet_characters() == ("mara", "otto")  # the gull is in no generated shot; s2 has its own panel
    plan = compile_storyboard(sb, "per_shot")
    assert [g.name for g in plan.graphs] == ["sheet-mara", "keyframe-s1", "shot-s1", "shot-s2", "keyframe-s3",
                                             "shot-s3", "compose"]  # Otto brings his own sheet
    keyframe = plan.graph("keyframe-s1")
    assert keyframe.depends_on == ("sheet-mara",)
    loads = {keyframe.graph[n]["inputs"]["image"] for n in of_class(keyframe.graph, "LoadImage")}
    assert "animstudio/sheets/mara.png" in loads  # named as the sheet graph saves it
    assert any(name.startswith("animstudio/sheets/") and name.endswith("-otto-sheet.png") for name in loads)
    assert plan.graph("keyframe-s3").depends_on == ()


def test_kontext_keyframe_chains_one_reference_latent_per_sheet(tmp_path, object_info):
    sb = board(tmp_path)
    sheets = {"mara": tmp_path / "refs/mara-1.png"}  # as the renderer passes the rendered sheet
    compiled = compile_keyframe(sb, sb.shot("s1"), 0, sheets)
    g = compiled.graph
    assert compiled.depends_on == ()
    assert of_class(g, "CheckpointLoaderSimple") == []
    assert g["film:kontext:clip"]["inputs"] == {"clip_name1": "clip_l.safetensors",
                                                "clip_name2": "t5xxl_fp8_e4m3fn.safetensors", "type": "flux"}
    assert of_class(g, "ReferenceLatent") == ["s1:ref-1:reference", "s1:ref-2:reference"]
    assert g["s1:ref-2:reference"]["inputs"]["conditioning"] == ["s1:ref-1:reference", 0]
    assert g["s1:ref-1:scale"]["inputs"]["megapixels"] == 0.5
    assert g["s1:guidance"]["inputs"] == {"conditioning": ["s1:ref-2:reference", 0], "guidance": 3.0}
    sampler = g["s1:sampler"]["inputs"]
    assert (sampler["cfg"], sampler["positive"], sampler["negative"]) == (1.0, ["s1:guidance", 0], ["s1:negative:zero", 0])
    assert g["s1:latent"]["class_type"] == "EmptySD3LatentImage"
    assert g["s1:keyframe"]["inputs"]["filename_prefix"] == "animstudio/keyframes/s1"
    prompt = g["s1:positive:prompt"]["inputs"]["text"]
    assert prompt.startswith("Picture 1 is Mara's character sheet, picture 2 is Otto's character sheet. ")
    problems = graph_problems(g, object_info, compiled.node_shots, [u.name for u in compiled.uploads])
    assert {p.message.split("model file '")[1].split("'")[0]: p.message.split("models/")[1].split(" ")[0]
            for p in problems} == {"flux1-kontext-dev.safetensors": "diffusion_models",
                                   "clip_l.safetensors": "text_encoders", "t5xxl_fp8_e4m3fn.safetensors": "text_encoders",
                                   "ae.safetensors": "vae"}


def test_qwen_edit_keyframe_reads_the_sheets_as_pictures(tmp_path, object_info):
    sb = board(tmp_path, with_family("qwen_edit"))
    compiled = compile_keyframe(sb, sb.shot("s1"), 0, {"mara": tmp_path / "refs/mara-1.png"})
    g = compiled.graph
    encode = g["s1:positive:prompt"]
    assert encode["class_type"] == "TextEncodeQwenImageEditPlus"
    assert set(encode["inputs"]) == {"clip", "prompt", "image1", "image2"}  # no vae: the latents are ours, sized
    assert g["film:qwen_edit:sampling"]["inputs"] == {"model": ["film:qwen_edit:unet", 0], "shift": 3.0}
    assert g["film:qwen_edit:clip"]["inputs"]["type"] == "qwen_image"
    assert g["s1:sampler"]["inputs"]["cfg"] == 1.0 and g["s1:sampler"]["inputs"]["steps"] == 8
    assert "s1:guidance" not in g
    problems = graph_problems(g, object_info, compiled.node_shots, [u.name for u in compiled.uploads])
    assert all("model file" in p.message for p in problems) and len(problems) == 3


def test_sheet_graph_edits_the_reference_pictures_into_three_views(tmp_path, object_info):
    sb = board(tmp_path, with_family("qwen_edit"))
    compiled = compile_sheet(sb, "mara")
    g = compiled.graph
    assert compiled.kind == "sheet" and compiled.shot_id is None
    assert [u.local_path.name for u in compiled.uploads] == ["mara-1.png", "mara-2.png"]
    assert set(g["sheet-mara:positive:prompt"]["inputs"]) == {"clip", "prompt", "image1", "image2"}
    assert "front view, three-quarter view and profile view" in g["sheet-mara:positive:prompt"]["inputs"]["prompt"]
    assert g["sheet-mara:keyframe"]["inputs"]["filename_prefix"] == "animstudio/sheets/mara"
    assert compile_sheet(sb, "mara").to_json() == compiled.to_json()  # deterministic
    problems = graph_problems(g, object_info, compiled.node_shots, [u.name for u in compiled.uploads])
    assert all("model file" in p.message for p in problems)


def test_film_shape_makes_the_sheets_inside_the_film_graph(tmp_path):
    sb = board(tmp_path)
    g = compile_storyboard(sb).graphs[0].graph
    assert of_class(g, "UNETLoader") == ["film:kontext:unet"]  # loaded once for sheets and keyframes
    assert g["s1:ref-1:scale"]["inputs"]["image"] == ["sheet-mara:decode", 0]
    assert g["sheet-mara:keyframe"]["class_type"] == "SaveImage"


def test_the_checkpoint_family_is_unchanged(tmp_path):
    data = copy.deepcopy(STORY)
    data["project"].update(keyframe_model="checkpoint", checkpoint="sd15.safetensors")
    plan = compile_storyboard(board(tmp_path, data), "per_shot")
    assert [g.name for g in plan.graphs][:2] == ["keyframe-s1", "shot-s1"]
    assert of_class(plan.graph("keyframe-s1").graph, "ReferenceLatent") == []


@pytest.mark.parametrize("change, where, words", [
    (lambda d: d["project"]["keyframe_models"].pop("kontext"), "$.project.keyframe_models.kontext",
     "keyframe_model is 'kontext'"),
    (lambda d: d["characters"]["mara"].pop("reference_images"), "$.characters.mara.reference_images",
     "no picture to make a sheet from"),
    (lambda d: d["characters"]["otto"].update(sheet="refs/missing.png"), "$.characters.otto.sheet", "missing.png"),
    (lambda d: d["characters"]["otto"].update(sheet="refs/broken.png"), "$.characters.otto.sheet",
     "not a readable image"),
    (lambda d: d["characters"]["otto"].update(sheet="../outside.png"), "$.characters.otto.sheet", "leaves"),
    (lambda d: d["shots"][0].update(control={"image": "refs/gull.png", "model": "cn.safetensors"}),
     "$.shots[0].control", "cannot use it"),
    (lambda d: d["project"].update(keyframe_model="midjourney"), "$.project.keyframe_model", "midjourney"),
    (lambda d: d["project"]["keyframe_models"]["kontext"].pop("t5xxl"), "$.project.keyframe_models.kontext", "t5xxl"),
])
def test_storyboard_check_names_the_place(tmp_path, change, where, words):
    (tmp_path / "refs").mkdir(parents=True, exist_ok=True)
    (tmp_path / "refs/broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    data = copy.deepcopy(STORY)
    change(data)
    with pytest.raises(StoryboardError) as caught:
        board(tmp_path, data)
    places = {p.where: p.message for p in caught.value.problems}
    assert where in places, caught.value.problems
    assert words in places[where]


def test_qwen_edit_refuses_a_shot_with_more_sheets_than_it_reads(tmp_path):
    data = with_family("qwen_edit")
    data["characters"]["gull"]["name"] = "Gull"
    data["characters"]["ann"] = {"description": "a girl", "reference_images": ["refs/gull.png"]}
    data["shots"][0]["characters"] = ["mara", "otto", "gull", "ann"]
    with pytest.raises(StoryboardError) as caught:
        board(tmp_path, data)
    assert [(p.where, "at most 3" in p.message) for p in caught.value.problems] == [("$.shots[0].characters", True)]


def test_phantom_takes_each_characters_sheet_as_a_subject(tmp_path):
    data = copy.deepcopy(STORY)
    data["project"]["motion_models"] = {"phantom": {"unet": "phantom_wan_14B.safetensors",
                                                   "text_encoder": "umt5_xxl.safetensors", "vae": "wan_2.1_vae.safetensors"}}
    data["shots"][1]["motion"] = {"family": "phantom"}
    data["shots"][1]["characters"] = ["mara", "otto", "gull"]
    sb = board(tmp_path, data)
    rendered = tmp_path / "out/sheets/mara.png"
    write_panel(rendered)
    g = compile_shot(sb, sb.shot("s2"), sheets={"mara": rendered}).graph
    subjects = {n.split(":")[1]: g[n]["inputs"]["image"] for n in of_class(g, "LoadImage")}
    # Mara: the sheet rendered for her; Otto: his own; the gull (no sheet anywhere): its first reference picture
    assert subjects["subject-mara"].endswith("-mara.png") and subjects["subject-otto"].endswith("-otto-sheet.png")
    assert subjects["subject-gull"].endswith("-gull.png")
    assert g["s2:motion:phantom"]["inputs"]["images"] == ["s2:subject-keyframe:batch", 0]
    assert g["s2:subject-keyframe:batch"]["inputs"]["image2"] == ["s2:panel", 0]  # the keyframe, last
    assert g["s2:motion:checked"]["inputs"]["family"] == "wan_t2v"
    without = compile_shot(sb, sb.shot("s2")).graph  # no rendered sheet: Mara by her first reference picture
    assert without["s2:subject-mara:image"]["inputs"]["image"].endswith("-mara-1.png")
