"""API graph → editor workflow: structure the frontend's schema accepts, readable layout, and the way back."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

import animstudio
from animstudio.translator.api_to_ui import api_ids, api_to_ui, node_titles, node_widgets, ui_node_ids
from animstudio.translator.compile import compile_storyboard
from animstudio.translator.embedded import EmbeddedEngine
from animstudio.common.errors import GraphValidationError
from animstudio.translator.graph_check import is_link
from animstudio.translator.storyboard import load_storyboard, parse_storyboard
from animstudio.translator.ui_layout import IMAGE_PREVIEW_H, add_note, outside_groups, overlaps

from test_compile import GENERATED, board  # noqa: E402  (tests is a rootdir on sys.path, as for test_cloud_celery)

EXAMPLE = Path(animstudio.__file__).resolve().parent / "workflows" / "examples" / "lighthouse" / "storyboard.json"
OBJECT_INFO = Path(__file__).resolve().parent / "data" / "object_info_comfyui_0.3.64.json"
TITLE_H = 30


@pytest.fixture(scope="module")
def info():
    data = json.loads(OBJECT_INFO.read_text(encoding="utf-8"))
    data.update(EmbeddedEngine().pack_object_info())
    return data


def compiled_graphs(tmp_path_factory):
    """(name, CompiledGraph) for the example (both shapes) and the generated storyboard (both shapes)."""
    example = load_storyboard(EXAMPLE)
    generated = board(tmp_path_factory.mktemp("gen"), GENERATED)
    out = []
    for label, sb in (("example", example), ("generated", generated)):
        for shape in ("film", "per_shot"):
            for g in compile_storyboard(sb, shape).graphs:
                out.append((f"{label}/{shape}/{g.name}", g))
    return out


@pytest.fixture(scope="module")
def graphs(tmp_path_factory):
    return compiled_graphs(tmp_path_factory)


# --------------------------------------------------------------------------------------- a minimal inverse

def inverse(workflow: dict, object_info: dict) -> dict:
    """UI → API the way graphToPrompt reads a loaded workflow: widgets by ``node_widgets`` order, links by id.

    Only for these tests; ids come back as the API ids in ``extra.animstudio.node_ids``.
    """
    names = ui_node_ids(workflow)
    links = {link[0]: link for link in workflow["links"]}
    graph = {}
    for node in workflow["nodes"]:
        inputs = {}
        for (name, extra), value in zip(node_widgets(object_info[node["type"]]), node["widgets_values"]):
            if extra is None:
                inputs[name] = value
        for entry in node["inputs"]:
            if entry.get("link") is not None:
                link = links[entry["link"]]
                inputs[entry["name"]] = [names[link[1]], link[2]]
        graph[names[node["id"]]] = {"inputs": inputs, "class_type": node["type"]}
    return graph


def comparable(graph: dict, object_info: dict) -> dict:
    """``graph`` without ``_meta``, with unset widget inputs at their defaults, inputs in sorted order:
    what any UI → API conversion gives back, since the editor always sends every widget."""
    from animstudio.translator.api_to_ui import _default, _input_order, _widget_kind
    out = {}
    for nid, node in graph.items():
        inputs = dict(node.get("inputs") or {})
        for name, spec, _ in _input_order(object_info[node["class_type"]]):
            if name not in inputs and _widget_kind(spec) is not None:
                inputs[name] = _default(spec)
        out[nid] = {"class_type": node["class_type"], "inputs": dict(sorted(inputs.items()))}
    return out


# ------------------------------------------------------------------------------------------ structure

def rect(node):
    x, y = node["pos"]
    w, h = node["size"]
    return x, y - TITLE_H, x + w, y + h  # the title bar is drawn above pos


def check_structure(workflow: dict, graph: dict, node_shots: dict) -> None:
    nodes = {n["id"]: n for n in workflow["nodes"]}
    assert len(nodes) == len(workflow["nodes"]) == len(graph)
    assert all(isinstance(i, int) for i in nodes)
    assert workflow["last_node_id"] == max(nodes)
    assert workflow["version"] == 0.4
    link_ids = [link[0] for link in workflow["links"]]
    assert len(set(link_ids)) == len(link_ids)
    assert workflow["last_link_id"] == (max(link_ids) if link_ids else 0)
    assert len(workflow["links"]) == sum(is_link(v) for n in graph.values() for v in n["inputs"].values())

    for link_id, origin, origin_slot, target, target_slot, link_type in workflow["links"]:
        out = nodes[origin]["outputs"][origin_slot]
        inp = nodes[target]["inputs"][target_slot]
        assert link_id in out["links"] and out["slot_index"] == origin_slot
        assert inp["link"] == link_id
        assert link_type == out["type"]
        assert inp["type"] == link_type or "*" in (inp["type"], link_type)
    used = set(link_ids)
    for node in nodes.values():
        for inp in node["inputs"]:
            assert inp["link"] is None or inp["link"] in used
        for out in node["outputs"]:
            for link_id in out["links"] or []:
                link = next(l for l in workflow["links"] if l[0] == link_id)
                assert link[1] == node["id"]
        assert node["properties"]["Node name for S&R"] == node["type"]
        assert node["mode"] == 0 and node["flags"] == {}
        assert isinstance(node["widgets_values"], list)

    mapping = workflow["extra"]["animstudio"]["node_ids"]
    assert sorted(mapping.values()) == sorted(graph)
    assert {int(k) for k in mapping} == set(nodes)
    for ui, api in mapping.items():
        node = nodes[int(ui)]
        assert node["type"] == graph[api]["class_type"]
        assert node["title"].startswith(f"{node_shots.get(api) or 'film'} · ")

    # order: every node after the nodes it reads from
    for link in workflow["links"]:
        assert nodes[link[1]]["order"] < nodes[link[3]]["order"]

    rects = [rect(n) for n in nodes.values()]
    for i, a in enumerate(rects):
        for b in rects[i + 1:]:
            assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1], (a, b)

    groups = {g["title"]: g for g in workflow["groups"]}
    expected = {s if s is not None else "film" for s in (node_shots.get(n) for n in graph)}
    assert set(groups) == expected
    for ui, api in mapping.items():
        shot = node_shots.get(api)
        gx, gy, gw, gh = groups["film" if shot is None else shot]["bounding"]
        x0, y0, x1, y1 = rect(nodes[int(ui)])
        assert gx <= x0 and x1 <= gx + gw and gy <= y0 and y1 <= gy + gh
    boxes = [g["bounding"] for g in workflow["groups"]]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert a[1] + a[3] <= b[1] or b[1] + b[3] <= a[1]  # bands do not overlap
    assert overlaps(workflow) == [] and outside_groups(workflow) == []


def test_every_compiled_graph_is_a_valid_workflow(graphs, info):
    assert len(graphs) > 5
    for name, g in graphs:
        workflow = api_to_ui(g.graph, info, g.node_shots, title=name)
        check_structure(workflow, g.graph, g.node_shots)
        json.dumps(workflow, allow_nan=False)  # plain JSON, as the editor saves it


def test_matches_the_frontend_schema_shape(graphs, info):
    """The fields and types ``zComfyWorkflow`` (schema 0.4) requires, checked by hand."""
    _, g = graphs[0]
    workflow = api_to_ui(g.graph, info, g.node_shots)
    for key, kind in (("last_node_id", int), ("last_link_id", int), ("nodes", list), ("links", list),
                      ("groups", list), ("config", dict), ("extra", dict), ("version", float)):
        assert isinstance(workflow[key], kind), key
    for node in workflow["nodes"]:
        for key, kind in (("id", int), ("type", str), ("pos", list), ("size", list), ("flags", dict),
                          ("order", int), ("mode", int), ("inputs", list), ("outputs", list),
                          ("properties", dict), ("widgets_values", list)):
            assert isinstance(node[key], kind), (key, node)
        assert len(node["pos"]) == 2 and len(node["size"]) == 2 and min(node["size"]) > 0
        for inp in node["inputs"]:
            assert isinstance(inp["name"], str) and isinstance(inp["type"], str)
        for out in node["outputs"]:
            assert out["links"] is None or all(isinstance(i, int) for i in out["links"])
    for link in workflow["links"]:
        assert len(link) == 6 and all(isinstance(v, int) for v in link[:5]) and isinstance(link[5], str)
    for group in workflow["groups"]:
        assert isinstance(group["title"], str) and len(group["bounding"]) == 4
    ds = workflow["extra"]["ds"]
    assert isinstance(ds["scale"], (int, float)) and len(ds["offset"]) == 2


def test_sockets_first_then_widget_inputs_in_definition_order(info):
    graph = {
        "film:checkpoint": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "a.safetensors"}},
        "film:latent": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 512, "batch_size": 1}},
        "s1:pos": {"class_type": "CLIPTextEncode", "inputs": {"text": "sea", "clip": ["film:checkpoint", 1]}},
        "s1:seed": {"class_type": "PrimitiveInt", "inputs": {"value": 9}},
        "s1:sampler": {"class_type": "KSampler", "inputs": {
            "model": ["film:checkpoint", 0], "positive": ["s1:pos", 0], "negative": ["s1:pos", 0],
            "latent_image": ["film:latent", 0], "seed": ["s1:seed", 0], "steps": 20, "cfg": 7.0,
            "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0}},
    }
    shots = {"film:checkpoint": None, "film:latent": None, "s1:pos": "s1", "s1:seed": "s1", "s1:sampler": "s1"}
    workflow = api_to_ui(graph, info, shots)
    check_structure(workflow, graph, shots)
    ids = {v: int(k) for k, v in workflow["extra"]["animstudio"]["node_ids"].items()}
    sampler = next(n for n in workflow["nodes"] if n["id"] == ids["s1:sampler"])
    assert [i["name"] for i in sampler["inputs"]] == [
        "model", "positive", "negative", "latent_image", "seed", "steps", "cfg", "sampler_name", "scheduler", "denoise"]
    seed = sampler["inputs"][4]
    assert seed["widget"] == {"name": "seed"} and seed["link"] is not None  # a linked widget input
    assert "widget" not in sampler["inputs"][0]
    # one value per widget, linked or not; the seed's control widget follows it, set to keep the seed
    assert sampler["widgets_values"] == [0, "fixed", 20, 7.0, "euler", "normal", 1.0]
    primitive = next(n for n in workflow["nodes"] if n["id"] == ids["s1:seed"])
    assert primitive["widgets_values"] == [9, "fixed"]  # control_after_generate declared in its spec
    assert sampler["title"] == "s1 · keyframe sampler"
    assert inverse(workflow, info) == comparable(graph, info)


def test_seed_control_rule():
    int_spec = ["INT", {"default": 0}]
    assert node_widgets({"input": {"required": {"seed": int_spec}}}) == [("seed", None), ("seed", "control_after_generate")]
    assert node_widgets({"input": {"required": {"noise_seed": int_spec}}})[-1] == ("noise_seed", "control_after_generate")
    assert node_widgets({"input": {"required": {"steps": int_spec}}}) == [("steps", None)]
    off = ["INT", {"control_after_generate": False}]
    assert node_widgets({"input": {"required": {"seed": off}}}) == [("seed", None)]
    combo = [["a", "b"], {"control_after_generate": True}]
    assert node_widgets({"input": {"required": {"pick": combo}}}) == [
        ("pick", None), ("pick", "control_after_generate"), ("pick", "control_filter_list")]
    upload = [["x.png"], {"image_upload": True}]
    assert node_widgets({"input": {"required": {"image": upload}}}) == [("image", None), ("image", "upload")]
    forced = ["INT", {"forceInput": True}]
    assert node_widgets({"input": {"required": {"seed": forced}}}) == []


def test_input_order_beats_sorted_keys(info):
    # the recorded /object_info has sorted keys; input_order is the definition's order
    assert [name for name, _ in node_widgets(info["KSampler"])] == [
        "seed", "seed", "steps", "cfg", "sampler_name", "scheduler", "denoise"]


def test_internal_inverse_round_trips(graphs, info):
    for name, g in graphs:
        workflow = api_to_ui(g.graph, info, g.node_shots)
        assert inverse(workflow, info) == comparable(g.graph, info), name


def test_deterministic(graphs, info):
    _, g = graphs[0]
    a = api_to_ui(g.graph, info, g.node_shots)
    b = api_to_ui(copy.deepcopy(g.graph), info, dict(g.node_shots))
    assert json.dumps(a) == json.dumps(b)


def test_columns_follow_dependencies(graphs, info):
    for name, g in graphs:
        workflow = api_to_ui(g.graph, info, g.node_shots)
        nodes = {n["id"]: n for n in workflow["nodes"]}
        for link in workflow["links"]:
            assert nodes[link[1]]["pos"][0] < nodes[link[3]]["pos"][0], name


def test_without_node_shots_everything_is_film(info):
    graph = {"a": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}}}
    workflow = api_to_ui(graph, info)
    assert [g["title"] for g in workflow["groups"]] == ["film"]
    assert workflow["nodes"][0]["title"] == "film · a"
    # a titled graph with no shot at all (a single line, a keyframe alone) is no film: its title names it
    workflow = api_to_ui(graph, info, title="one-line")
    assert [g["title"] for g in workflow["groups"]] == ["one-line"]
    assert workflow["nodes"][0]["title"] == "one-line · a"
    assert outside_groups(workflow) == []


def test_bad_graphs_name_the_node(info):
    with pytest.raises(GraphValidationError) as err:
        api_to_ui({"s1:x": {"class_type": "NoSuchNode", "inputs": {}}}, info, {"s1:x": "s1"})
    assert "s1:x" in str(err.value) and "NoSuchNode" in str(err.value)
    with pytest.raises(GraphValidationError) as err:
        api_to_ui({"s1:pos": {"class_type": "CLIPTextEncode", "inputs": {"text": "a", "clip": ["gone", 1]}}}, info)
    assert "gone" in str(err.value)
    with pytest.raises(GraphValidationError) as err:
        api_to_ui({"n": {"class_type": "EmptyLatentImage", "inputs": {"widht": 3}}}, info)
    assert "widht" in str(err.value)


# ------------------------------------------------------------------------------------------ laid out to be read

@pytest.fixture(scope="module")
def lighthouse(info):
    """The bundled example as the editor panel builds it: its JSON parsed, compiled to one film graph."""
    data = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    compiled = compile_storyboard(parse_storyboard(data, base_dir=EXAMPLE.parent)).graphs[0]
    return compiled, api_to_ui(compiled.graph, info, compiled.node_shots, compiled.name)


def by_api_id(workflow: dict) -> dict:
    ids = workflow["extra"]["animstudio"]["node_ids"]
    return {ids[str(node["id"])]: node for node in workflow["nodes"] if str(node["id"]) in ids}


def test_example_nothing_covers_anything_and_every_node_is_in_its_group(lighthouse):
    compiled, workflow = lighthouse
    assert overlaps(workflow) == []
    assert outside_groups(workflow) == []
    check_structure(workflow, compiled.graph, compiled.node_shots)


def test_example_titles_say_the_role_after_the_shot(lighthouse):
    compiled, workflow = lighthouse
    nodes = by_api_id(workflow)
    for api, node in nodes.items():
        assert node["type"] not in node["title"], node["title"]
        assert node["title"].startswith(f"{compiled.node_shots.get(api) or 'film'} · "), node["title"]
    titles = [node["title"] for node in workflow["nodes"]]
    assert len(set(titles)) == len(titles)
    assert nodes["keeper-window:line-1:tts"]["title"] == "keeper-window · voice"
    assert nodes["opening:clip"]["title"] == "opening · shot clip"
    assert nodes["film:music"]["title"] == "film · music"
    assert nodes["film:save"]["title"] == "film · save film"


def plain_height(node: dict) -> int:
    """LGraphNode.computeSize's height for a node with one plain 20 px row per widget and nothing else."""
    rows = max(len([i for i in node["inputs"] if "widget" not in i]), len(node["outputs"]), 1)
    return rows * 20 + 24 * len(node["widgets_values"]) + 14


def test_nodes_have_room_for_what_the_editor_adds(lighthouse):
    """Pictures (Load Panel at creation, Shot Clip after a run), the camera preview and timeline the pack's
    extension adds, core's audio player, and Save Film's video (as tall as the node is wide: a square film)."""
    from animstudio.translator.ui_layout import AUDIO_PLAYER_H, CAMERA_PREVIEW_H, TIMELINE_H, WIDGET_H

    _, workflow = lighthouse
    nodes = by_api_id(workflow)
    panel, clip, save = nodes["opening:panel"], nodes["opening:clip"], nodes["film:save"]
    assert panel["size"][1] == plain_height(panel) + IMAGE_PREVIEW_H
    assert clip["size"][1] == plain_height(clip) + IMAGE_PREVIEW_H + CAMERA_PREVIEW_H
    assert save["size"][1] == plain_height(save) + save["size"][0] + 4
    music = nodes["film:music"]
    assert music["size"][1] == plain_height(music) + AUDIO_PLAYER_H + WIDGET_H
    lipsync = nodes["keeper-window:line-1:lipsync"]
    assert lipsync["size"][1] >= plain_height(lipsync) + TIMELINE_H
    assert lipsync["size"][0] >= 400  # a multiline text box: the editor's own minimum width for one


def test_room_for_the_pack_widgets_follows_their_script():
    """The heights reserved for the widgets js/node_widgets.js adds are its own minimum heights (+4 px margin)."""
    import re

    from animstudio.translator.ui_layout import CAMERA_PREVIEW_H, TIMELINE_H

    script = (Path(animstudio.__file__).resolve().parent / "js" / "node_widgets.js").read_text(encoding="utf-8")
    heights = {name: int(h) for name, h in re.findall(r'addDOMWidget\("(\w+)".*?getMinHeight: \(\) => (\d+)', script, re.S)}
    assert heights["mouth_cue_timeline"] + 4 == TIMELINE_H
    assert heights["camera_preview"] + 4 == CAMERA_PREVIEW_H


def test_columns_are_as_wide_as_their_widest_node(lighthouse):
    _, workflow = lighthouse
    columns: dict[int, int] = {}
    for node in workflow["nodes"]:
        columns[node["pos"][0]] = max(columns.get(node["pos"][0], 0), node["size"][0])
    lefts = sorted(columns)
    for left, right in zip(lefts, lefts[1:]):
        assert right - left - columns[left] == 80  # the gap, whatever the widest node


def test_titles_tell_apart_nodes_with_the_same_role(info):
    tts = {"class_type": "AnimStudioTTS", "inputs": {}}
    rig = {"class_type": "AnimStudioMouthRig", "inputs": {}}
    graph = {"s1:line-1:tts": tts, "s1:line-2:tts": tts, "s2:line-1:tts": tts, "s1:mouth-ada:rig": rig,
             "s1:mouth-bo:rig": rig, "s1:motion:sampler": {"class_type": "KSampler", "inputs": {}},
             "s1:sampler": {"class_type": "KSampler", "inputs": {}},
             "7": {"class_type": "KSampler", "inputs": {}, "_meta": {"title": "My sampler"}}}
    shots = {nid: nid.split(":")[0] for nid in graph if ":" in nid}
    assert node_titles(graph, info, shots) == {
        "s1:line-1:tts": "s1 · voice (line 1)", "s1:line-2:tts": "s1 · voice (line 2)", "s2:line-1:tts": "s2 · voice",
        "s1:mouth-ada:rig": "s1 · mouth rig (ada)", "s1:mouth-bo:rig": "s1 · mouth rig (bo)",
        "s1:motion:sampler": "s1 · motion sampler", "s1:sampler": "s1 · keyframe sampler", "7": "film · My sampler"}


def test_the_checks_find_what_is_wrong(lighthouse):
    _, workflow = lighthouse
    moved = copy.deepcopy(workflow)
    nodes = by_api_id(moved)
    panel, other = nodes["opening:panel"], nodes["keeper-window:panel"]
    other["pos"] = [panel["pos"][0] + 10, panel["pos"][1] + 10]
    assert tuple(sorted((panel["id"], other["id"]))) in {tuple(sorted(pair)) for pair in overlaps(moved)}
    assert outside_groups(moved) == [other["id"]]


def test_a_note_covers_nothing_and_stays_in_the_editor(lighthouse, info):
    from animstudio.translator.ui_to_api import ui_to_api

    _, workflow = lighthouse
    noted = copy.deepcopy(workflow)
    note = add_note(noted, "Model files: none.")
    assert note["type"] == "Note" and note["widgets_values"] == ["Model files: none."]
    assert noted["last_node_id"] == note["id"] == workflow["last_node_id"] + 1
    assert overlaps(noted) == [] and outside_groups(noted) == []
    x0, x1 = note["pos"][0], note["pos"][0] + note["size"][0]
    assert all(x1 <= g["bounding"][0] or g["bounding"][0] + g["bounding"][2] <= x0 for g in noted["groups"])
    assert ui_to_api(noted, info) == ui_to_api(workflow, info)


# ------------------------------------------------------------------------------------------ round trip

def test_round_trip_through_ui_to_api(graphs, info):
    """``ui_to_api(api_to_ui(g))`` is ``g`` again, ids mapped back through ``extra.animstudio.node_ids``,
    ``_meta`` ignored, and unset widget inputs at their defaults (the editor always sends every widget)."""
    module = pytest.importorskip("animstudio.translator.ui_to_api",
                                 reason="translator/ui_to_api.py is not written yet")
    for name, g in graphs:
        workflow = api_to_ui(g.graph, info, g.node_shots)
        prompt = module.ui_to_api(workflow, info)
        if set(prompt) != set(g.graph):
            prompt = api_ids(prompt, workflow)
        assert comparable(prompt, info) == comparable(with_player_widgets(g.graph), info), name


def with_player_widgets(graph: dict) -> dict:
    """``graph`` as the editor sends it: the audio player that its extensions add to audio loaders (``audioUI``,
    sent empty, ignored by ComfyUI) included."""
    from animstudio.translator.ui_to_api import AUDIO_UI_TYPES, PACK_AUDIO_UI_TYPES

    return {nid: {**node, "inputs": {**node["inputs"], "audioUI": ""}}
            if node["class_type"] in AUDIO_UI_TYPES | PACK_AUDIO_UI_TYPES else node for nid, node in graph.items()}
