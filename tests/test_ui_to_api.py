"""UI-format workflows → API format, checked against what ComfyUI_frontend 1.27.10's graphToPrompt emits.

The frontend source read is 1.27.10 (the ``comfyui-frontend-package`` ComfyUI 0.3.64 pins), taken from
the source maps shipped in that package. ``file:line`` comments cite it; ``[derived]`` marks an
expectation worked out by reading several places rather than one line.
"""
from __future__ import annotations

import copy
import json
import random
from pathlib import Path

import pytest

from animstudio.translator.embedded import EmbeddedEngine
from animstudio.translator.ui_to_api import (WorkflowFormatError, is_ui_workflow, process_dynamic_prompt,
                                             ui_to_api)

DATA = Path(__file__).resolve().parent / "data" / "object_info_comfyui_0.3.64.json"


@pytest.fixture(scope="module")
def info() -> dict:
    object_info = json.loads(DATA.read_text(encoding="utf-8"))
    object_info.update(EmbeddedEngine().pack_object_info())
    return object_info


def node(id, type, inputs=(), outputs=(), widgets_values=None, mode=0, title=None, order=0, pos=(0, 0)):
    """A node as the editor saves it (version 0.4)."""
    saved = {"id": id, "type": type, "pos": list(pos), "size": [315, 98], "flags": {}, "order": order,
             "mode": mode, "inputs": [dict(i) for i in inputs], "outputs": [dict(o) for o in outputs],
             "properties": {"Node name for S&R": type}}
    if widgets_values is not None:
        saved["widgets_values"] = widgets_values
    if title:
        saved["title"] = title
    return saved


def inp(name, type, link=None, widget=False):
    slot = {"name": name, "localized_name": name, "type": type, "link": link}
    if widget:
        slot["widget"] = {"name": name}
    return slot


def out(name, type, links=(), slot_index=None):
    slot = {"name": name, "localized_name": name, "type": type, "links": list(links)}
    if slot_index is not None:
        slot["slot_index"] = slot_index
    return slot


def txt2img() -> dict:
    """The frontend's default graph (scripts/defaultGraph.ts), as saved by the editor."""
    nodes = [
        node(3, "KSampler", [inp("model", "MODEL", 1), inp("positive", "CONDITIONING", 4),
                             inp("negative", "CONDITIONING", 6), inp("latent_image", "LATENT", 2),
                             inp("seed", "INT", None, True), inp("steps", "INT", None, True),
                             inp("cfg", "FLOAT", None, True), inp("sampler_name", "COMBO", None, True),
                             inp("scheduler", "COMBO", None, True), inp("denoise", "FLOAT", None, True)],
             [out("LATENT", "LATENT", [7], 0)],
             [156680208700286, "randomize", 20, 8, "euler", "normal", 1], order=4),
        node(4, "CheckpointLoaderSimple", [inp("ckpt_name", "COMBO", None, True)],
             [out("MODEL", "MODEL", [1], 0), out("CLIP", "CLIP", [3, 5], 1), out("VAE", "VAE", [8], 2)],
             ["v1-5-pruned-emaonly-fp16.safetensors"], order=0),
        node(5, "EmptyLatentImage", [inp("width", "INT", None, True), inp("height", "INT", None, True),
                                     inp("batch_size", "INT", None, True)],
             [out("LATENT", "LATENT", [2], 0)], [512, 512, 1], order=1),
        node(6, "CLIPTextEncode", [inp("clip", "CLIP", 3), inp("text", "STRING", None, True)],
             [out("CONDITIONING", "CONDITIONING", [4], 0)],
             ["beautiful scenery nature glass bottle landscape, , purple galaxy bottle,"], order=2),
        node(7, "CLIPTextEncode", [inp("clip", "CLIP", 5), inp("text", "STRING", None, True)],
             [out("CONDITIONING", "CONDITIONING", [6], 0)], ["text, watermark"], order=3),
        node(8, "VAEDecode", [inp("samples", "LATENT", 7), inp("vae", "VAE", 8)],
             [out("IMAGE", "IMAGE", [9], 0)], [], order=5),
        node(9, "SaveImage", [inp("images", "IMAGE", 9), inp("filename_prefix", "STRING", None, True)], [],
             ["ComfyUI"], order=6),
    ]
    links = [[1, 4, 0, 3, 0, "MODEL"], [2, 5, 0, 3, 3, "LATENT"], [3, 4, 1, 6, 0, "CLIP"],
             [4, 6, 0, 3, 1, "CONDITIONING"], [5, 4, 1, 7, 0, "CLIP"], [6, 7, 0, 3, 2, "CONDITIONING"],
             [7, 3, 0, 8, 0, "LATENT"], [8, 4, 2, 8, 1, "VAE"], [9, 8, 0, 9, 0, "IMAGE"]]
    return {"id": "8b6f4c2e-0000-4000-8000-000000000001", "revision": 0, "last_node_id": 9, "last_link_id": 9,
            "nodes": nodes, "links": links, "groups": [], "config": {},
            "extra": {"ds": {"scale": 1, "offset": [0, 0]}, "frontendVersion": "1.27.10"}, "version": 0.4}


# executionUtil.ts:128-139: every node gets {inputs, class_type, _meta: {title}}; title = saved title or
# the definition's display_name (litegraphService.ts:656, LGraphNode.configure ``if (!info.title)``).
TXT2IMG_API = {
    "3": {"inputs": {"seed": 156680208700286, "steps": 20, "cfg": 8, "sampler_name": "euler", "scheduler": "normal",
                     "denoise": 1, "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0],
                     "latent_image": ["5", 0]},
          "class_type": "KSampler", "_meta": {"title": "KSampler"}},
    "4": {"inputs": {"ckpt_name": "v1-5-pruned-emaonly-fp16.safetensors"}, "class_type": "CheckpointLoaderSimple",
          "_meta": {"title": "Load Checkpoint"}},
    "5": {"inputs": {"width": 512, "height": 512, "batch_size": 1}, "class_type": "EmptyLatentImage",
          "_meta": {"title": "Empty Latent Image"}},
    "6": {"inputs": {"text": "beautiful scenery nature glass bottle landscape, , purple galaxy bottle,",
                     "clip": ["4", 1]},
          "class_type": "CLIPTextEncode", "_meta": {"title": "CLIP Text Encode (Prompt)"}},
    "7": {"inputs": {"text": "text, watermark", "clip": ["4", 1]}, "class_type": "CLIPTextEncode",
          "_meta": {"title": "CLIP Text Encode (Prompt)"}},
    "8": {"inputs": {"samples": ["3", 0], "vae": ["4", 2]}, "class_type": "VAEDecode",
          "_meta": {"title": "VAE Decode"}},
    "9": {"inputs": {"filename_prefix": "ComfyUI", "images": ["8", 0]}, "class_type": "SaveImage",
          "_meta": {"title": "Save Image"}},
}


def _find(workflow: dict, node_id):
    return next(n for n in workflow["nodes"] if n["id"] == node_id)


def test_detects_ui_and_api_formats():
    assert is_ui_workflow(txt2img())
    assert not is_ui_workflow(TXT2IMG_API)
    assert not is_ui_workflow([])


def test_default_txt2img(info):
    # control_after_generate takes widgets_values[1] but is not sent: widgets.ts:120-128 (serialize: false)
    # and executionUtil.ts:89 (skips options.serialize === false); LGraphNode.ts:837-847 (values by position)
    api = ui_to_api(txt2img(), info)
    assert api == TXT2IMG_API
    # key order as the frontend builds it: widgets first, then links (executionUtil.ts:85-126)
    assert list(api["3"]["inputs"])[:6] == ["seed", "steps", "cfg", "sampler_name", "scheduler", "denoise"]


def test_muted_node_is_dropped_and_its_consumers_lose_the_input(info):
    workflow = txt2img()
    _find(workflow, 8)["mode"] = 2
    api = ui_to_api(workflow, info)
    expected = copy.deepcopy(TXT2IMG_API)
    del expected["8"]  # executionUtil.ts:78-83
    del expected["9"]["inputs"]["images"]  # executionUtil.ts:148-155 (inputs linked to nodes not emitted)
    assert api == expected


def _with_invert(mode: int) -> dict:
    """VAEDecode → ImageInvert (id 10) → SaveImage."""
    workflow = txt2img()
    workflow["nodes"].append(node(10, "ImageInvert", [inp("image", "IMAGE", 9)], [out("IMAGE", "IMAGE", [10], 0)],
                                  [], mode=mode, order=6))
    _find(workflow, 8)["outputs"][0]["links"] = [9]
    _find(workflow, 9)["inputs"][0]["link"] = 10
    workflow["links"][8] = [9, 8, 0, 10, 0, "IMAGE"]
    workflow["links"].append([10, 10, 0, 9, 0, "IMAGE"])
    workflow["last_node_id"], workflow["last_link_id"] = 10, 10
    return workflow


def test_bypassed_node_passes_its_image_through(info):
    # ExecutableNodeDTO.ts:270-284 and 336-352: a bypassed node's output n resolves to its input n of a
    # matching type; the node itself is not emitted (executionUtil.ts:78-83)
    api = ui_to_api(_with_invert(4), info)
    assert api == TXT2IMG_API


def test_active_node_between(info):
    api = ui_to_api(_with_invert(0), info)
    assert api["10"] == {"inputs": {"image": ["8", 0]}, "class_type": "ImageInvert",
                         "_meta": {"title": "Invert Image"}}
    assert api["9"]["inputs"]["images"] == ["10", 0]


def test_bypass_with_no_matching_input_drops_the_consumers_input(info):
    # ExecutableNodeDTO.ts:274-281: no input of the wanted type → unresolved → input left out
    workflow = txt2img()
    workflow["nodes"].append(node(10, "EmptyImage", [inp("width", "INT", None, True), inp("height", "INT", None, True),
                                                     inp("batch_size", "INT", None, True), inp("color", "INT", None, True)],
                                  [out("IMAGE", "IMAGE", [10], 0)], [512, 512, 1, 0], mode=4))
    _find(workflow, 9)["inputs"][0]["link"] = 10
    _find(workflow, 8)["outputs"][0]["links"] = []
    workflow["links"][8] = [10, 10, 0, 9, 0, "IMAGE"]
    api = ui_to_api(workflow, info)
    assert "images" not in api["9"]["inputs"] and "10" not in api


def _legacy_reroutes(workflow: dict) -> None:
    """Two legacy Reroute nodes between VAEDecode and SaveImage."""
    workflow["nodes"] += [
        {"id": 11, "type": "Reroute", "pos": [900, 200], "size": [75, 26], "flags": {}, "order": 6, "mode": 0,
         "inputs": [{"name": "", "type": "*", "link": 9}],
         "outputs": [{"name": "", "type": "IMAGE", "links": [10], "slot_index": 0}],
         "properties": {"showOutputText": False, "horizontal": False}},
        {"id": 12, "type": "Reroute", "pos": [1000, 200], "size": [75, 26], "flags": {}, "order": 7, "mode": 0,
         "inputs": [{"name": "", "type": "*", "link": 10}],
         "outputs": [{"name": "", "type": "IMAGE", "links": [11], "slot_index": 0}],
         "properties": {"showOutputText": False, "horizontal": False}},
    ]
    workflow["links"][8] = [9, 8, 0, 11, 0, "IMAGE"]
    workflow["links"] += [[10, 11, 0, 12, 0, "*"], [11, 12, 0, 9, 0, "IMAGE"]]
    _find(workflow, 9)["inputs"][0]["link"] = 11


def test_legacy_reroute_chain(info):
    # extensions/core/rerouteNode.ts:250 (isVirtualNode); ExecutableNodeDTO.ts:290-292 (virtual: output n = input n)
    workflow = txt2img()
    _legacy_reroutes(workflow)
    assert ui_to_api(workflow, info) == TXT2IMG_API


def test_native_reroute_is_transparent(info):
    # Native reroutes live in extra.reroutes; the link keeps its real origin and only gains a parentId
    # (LLink.parentId), so resolution ignores them [derived: ExecutableNodeDTO.ts:170-240 reads origin_id only]
    workflow = txt2img()
    workflow["extra"]["reroutes"] = [{"id": 1, "pos": [1100, 300], "linkIds": [9]}]
    workflow["extra"]["linkExtensions"] = [{"id": 9, "parentId": 1}]
    assert ui_to_api(workflow, info) == TXT2IMG_API


def test_primitive_node_feeds_a_widget_input(info):
    # widgetInputs.ts:39-80: PrimitiveNode.applyToGraph copies widgets[0].value into the target widget;
    # the primitive is virtual (widgetInputs.ts:31) and has no inputs, so the link itself resolves to
    # nothing (ExecutableNodeDTO.ts:318-319) and the widget value is what is sent
    workflow = txt2img()
    workflow["nodes"].append(node(13, "PrimitiveNode", [], [
        {"name": "INT", "type": "INT", "links": [12], "slot_index": 0, "widget": {"name": "width"}}],
        [768, "fixed"], title="width"))
    _find(workflow, 5)["inputs"][0]["link"] = 12
    workflow["links"].append([12, 13, 0, 5, 0, "INT"])
    api = ui_to_api(workflow, info)
    expected = copy.deepcopy(TXT2IMG_API)
    expected["5"]["inputs"]["width"] = 768
    assert api == expected


def test_widget_input_linked_to_a_real_node_becomes_a_link(info):
    # executionUtil.ts:110-126: a resolved link overwrites the widget value under the same name
    workflow = txt2img()
    workflow["nodes"].append(node(14, "PrimitiveInt", [inp("value", "INT", None, True)],
                                  [out("INT", "INT", [12], 0)], [1234, "fixed"]))
    _find(workflow, 3)["inputs"][4]["link"] = 12
    workflow["links"].append([12, 14, 0, 3, 4, "INT"])
    api = ui_to_api(workflow, info)
    assert api["3"]["inputs"]["seed"] == ["14", 0]
    # PrimitiveInt's value has control_after_generate: its control slot is skipped too
    assert api["14"]["inputs"] == {"value": 1234}


def test_note_nodes_are_dropped(info):
    # extensions/core/noteNode.ts:35 and :73 (isVirtualNode); executionUtil.ts:78-83
    workflow = txt2img()
    workflow["nodes"] += [node(15, "Note", [], [], ["remember the seed"]),
                          node(16, "MarkdownNote", [], [], ["# notes"])]
    assert ui_to_api(workflow, info) == TXT2IMG_API


def test_missing_trailing_widget_values_take_the_defaults(info):
    # LGraphNode.ts:841-846: only as many widgets are set as there are values; the rest keep the defaults
    # the widget constructors gave them (useIntWidget.ts:57, useFloatWidget.ts:59, useComboWidget.ts:31-36)
    workflow = txt2img()
    _find(workflow, 3)["widgets_values"] = [5, "fixed", 30]
    del _find(workflow, 5)["widgets_values"]
    api = ui_to_api(workflow, info)
    assert api["3"]["inputs"] == {"seed": 5, "steps": 30, "cfg": 8.0, "sampler_name": "euler", "scheduler": "simple",
                                  "denoise": 1.0, "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0],
                                  "latent_image": ["5", 0]}
    assert api["5"]["inputs"] == {"width": 512, "height": 512, "batch_size": 1}


def test_empty_combo_without_a_value_is_left_out(info):
    # useComboWidget.ts:31-36: no default and no options → undefined, which JSON.stringify drops
    workflow = txt2img()
    del _find(workflow, 4)["widgets_values"]
    assert ui_to_api(workflow, info)["4"]["inputs"] == {}


def test_link_from_a_removed_node_is_dropped(info):
    # utils/linkFixer.ts:309-324 removes such a link from its target when the workflow is loaded
    workflow = txt2img()
    workflow["nodes"] = [n for n in workflow["nodes"] if n["id"] != 7]  # negative prompt deleted, link 6 left
    workflow["links"].append([12, 99, 0, 3, 4, "INT"])                  # seed linked from a node long gone
    _find(workflow, 3)["inputs"][4]["link"] = 12
    api = ui_to_api(workflow, info)
    expected = copy.deepcopy(TXT2IMG_API)
    del expected["7"]
    del expected["3"]["inputs"]["negative"]
    assert api == expected  # the seed widget's own value stays


def test_input_naming_a_link_that_does_not_exist_is_an_error(info):
    # ExecutableNodeDTO.ts:170-174 throws InvalidLinkError; here it is a WorkflowFormatError naming the place
    workflow = txt2img()
    _find(workflow, 8)["inputs"][1]["link"] = 77
    with pytest.raises(WorkflowFormatError) as caught:
        ui_to_api(workflow, info)
    assert "nodes[5].inputs[vae].link" in str(caught.value)


def test_load_image_upload_button_takes_a_slot_but_is_not_sent(info):
    # uploadImage.ts:36-50 adds required.upload (IMAGEUPLOAD) after the combo; its button widget has
    # serialize: false in options (useImageUploadWidget.ts:100-108) but takes a widgets_values slot
    workflow = txt2img()
    workflow["nodes"].append(node(17, "LoadImage", [inp("image", "COMBO", None, True), inp("upload", "IMAGEUPLOAD", None, True)],
                                  [out("IMAGE", "IMAGE", []), out("MASK", "MASK", [])], ["example.png", "image"]))
    assert ui_to_api(workflow, info)["17"] == {"inputs": {"image": "example.png"}, "class_type": "LoadImage",
                                               "_meta": {"title": "Load Image"}}


def test_dynamic_prompts_and_comments(info):
    # extensions/core/dynamicPrompts.ts:13-27 and utils/formatUtil.ts:125-185: text widgets with
    # dynamicPrompts: true lose C comments and pick one option of each {a|b}
    workflow = txt2img()
    _find(workflow, 6)["widgets_values"] = ["a {red|blue} house // draft\n/* old */at dusk \\{kept\\}"]
    api = ui_to_api(workflow, info, rng=random.Random(1))
    colour = "red" if random.Random(1).random() < 0.5 else "blue"
    assert api["6"]["inputs"]["text"] == f"a {colour} house \nat dusk {{kept}}"
    assert process_dynamic_prompt("no braces") == "no braces"


def test_array_widget_values_are_boxed(info):
    # executionUtil.ts:95-103: an array value is sent as {"__value__": [...]} so it is not read as a link
    workflow = txt2img()
    _find(workflow, 9)["widgets_values"] = [["a", "b"]]
    assert ui_to_api(workflow, info)["9"]["inputs"]["filename_prefix"] == {"__value__": ["a", "b"]}


SUBGRAPH_ID = "a7d3c9e1-1111-4222-8333-444455556666"


def _with_subgraph() -> dict:
    """The positive prompt packed into a subgraph: inputs clip (socket) and text (promoted widget)."""
    workflow = txt2img()
    workflow["nodes"] = [n for n in workflow["nodes"] if n["id"] != 6]
    workflow["nodes"].append(node(20, SUBGRAPH_ID, [inp("clip", "CLIP", 3), inp("text", "STRING", None, True)],
                                  [out("CONDITIONING", "CONDITIONING", [4], 0)], ["a castle at dawn"],
                                  title="Prompt"))
    workflow["links"][2] = [3, 4, 1, 20, 0, "CLIP"]
    workflow["links"][3] = [4, 20, 0, 3, 1, "CONDITIONING"]
    workflow["definitions"] = {"subgraphs": [{
        "id": SUBGRAPH_ID, "version": 1, "state": {"lastGroupId": 0, "lastNodeId": 2, "lastLinkId": 3,
                                                   "lastRerouteId": 0},
        "revision": 0, "config": {}, "name": "Prompt",
        "inputNode": {"id": -10, "bounding": [0, 0, 120, 80]}, "outputNode": {"id": -20, "bounding": [600, 0, 120, 60]},
        "inputs": [{"id": "i-clip", "name": "clip", "type": "CLIP", "linkIds": [1], "pos": [100, 20]},
                   {"id": "i-text", "name": "text", "type": "STRING", "linkIds": [2], "pos": [100, 40]}],
        "outputs": [{"id": "o-cond", "name": "CONDITIONING", "type": "CONDITIONING", "linkIds": [3], "pos": [620, 20]}],
        "widgets": [],
        "nodes": [
            node(1, "CLIPTextEncode", [inp("clip", "CLIP", 1), inp("text", "STRING", 2, True)],
                 [out("CONDITIONING", "CONDITIONING", [3], 0)], ["inner text, replaced by the promoted widget"]),
            node(2, "Note", [], [], ["inside"]),
        ],
        "links": [{"id": 1, "origin_id": -10, "origin_slot": 0, "target_id": 1, "target_slot": 0, "type": "CLIP"},
                  {"id": 2, "origin_id": -10, "origin_slot": 1, "target_id": 1, "target_slot": 1, "type": "STRING"},
                  {"id": 3, "origin_id": 1, "origin_slot": 0, "target_id": -20, "target_slot": 0,
                   "type": "CONDITIONING"}],
        "groups": [], "extra": {}}]}
    return workflow


def test_subgraph_instance_is_flattened(info):
    # ExecutableNodeDTO.ts:113 (id = instance path + inner id joined by ':'), SubgraphNode.ts:44 (the
    # instance is virtual), ExecutableNodeDTO.ts:179-217 (an inner input from the subgraph's input node
    # continues outside, or takes the promoted widget's value), ExecutableNodeDTO.ts:373-415 (an output of
    # the instance resolves to the inner node); promoted widget values: SubgraphNode.ts:268-313 [derived]
    api = ui_to_api(_with_subgraph(), info)
    expected = copy.deepcopy(TXT2IMG_API)
    del expected["6"]
    expected["20:1"] = {"inputs": {"text": "a castle at dawn", "clip": ["4", 1]}, "class_type": "CLIPTextEncode",
                        "_meta": {"title": "CLIP Text Encode (Prompt)"}}
    expected["3"]["inputs"]["positive"] = ["20:1", 0]
    assert api == expected


def test_subgraph_promoted_widget_without_instance_value_keeps_the_inner_value(info):
    workflow = _with_subgraph()
    del _find(workflow, 20)["widgets_values"]
    api = ui_to_api(workflow, info)
    assert api["20:1"]["inputs"]["text"] == "inner text, replaced by the promoted widget"


def _subgraph_instance_inputs_reversed(workflow: dict) -> None:
    instance = _find(workflow, 20)
    instance["inputs"] = instance["inputs"][::-1]


def test_subgraph_instance_inputs_follow_the_subgraphs_order(info):
    # litegraphService.ts ComfyNode.configure rebuilds the saved inputs in the subgraph's input order, so a
    # link from the subgraph's input slot n reaches the instance's input n whatever order the file keeps
    workflow = _with_subgraph()
    _subgraph_instance_inputs_reversed(workflow)
    api = ui_to_api(workflow, info)
    assert api["20:1"]["inputs"] == {"text": "a castle at dawn", "clip": ["4", 1]}


def _extra_input_naming_a_missing_widget(workflow: dict) -> None:
    sampler = _find(workflow, 3)
    sampler["inputs"].append({"name": "sampling", "type": "COMBO", "widget": {"name": "sampling"}, "link": 12})
    _find(workflow, 5)["outputs"][0]["links"].append(12)
    workflow["links"].append([12, 5, 0, 3, 10, "COMBO"])


def test_extra_input_naming_a_missing_widget_is_removed(info):
    # Comfy.WidgetInputs onGraphConfigured (widgetInputs.ts:524-541) removes it with its link
    workflow = txt2img()
    _extra_input_naming_a_missing_widget(workflow)
    assert ui_to_api(workflow, info) == TXT2IMG_API


def test_bypassed_subgraph_instance_passes_its_matching_input(info):
    # ExecutableNodeDTO.ts:270: bypass is checked before the subgraph is entered; the instance has no
    # CONDITIONING input, so the sampler's positive input goes
    workflow = _with_subgraph()
    _find(workflow, 20)["mode"] = 4
    api = ui_to_api(workflow, info)
    assert "positive" not in api["3"]["inputs"]


@pytest.mark.parametrize("mutate, where", [
    (lambda w: _find(w, 3).__setitem__("widgets_values", "oops"), "nodes[0].widgets_values"),
    (lambda w: _find(w, 4).__setitem__("type", "NoSuchNode"), "nodes[1].type"),
    (lambda w: w["links"].__setitem__(0, [1, 4]), "links[0]"),
    (lambda w: w["nodes"].__setitem__(2, {"type": "EmptyLatentImage"}), "nodes[2]"),
])
def test_malformed_workflows_name_the_place(info, mutate, where):
    workflow = txt2img()
    mutate(workflow)
    with pytest.raises(WorkflowFormatError) as caught:
        ui_to_api(workflow, info)
    assert any(p.where == where for p in caught.value.problems), caught.value


def test_api_format_is_refused(info):
    with pytest.raises(WorkflowFormatError):
        ui_to_api(TXT2IMG_API, info)


def test_widgets_the_frontend_adds_for_remote_combos_recorders_and_3d_previews():
    """As frontend 1.27.10 builds them (and the reference test checks in the real editor): a remote combo with a
    refresh button gains an unsaved auto-refresh toggle and a "refresh" button whose value goes in the prompt; a
    recorder's input is '' until something is recorded; Preview3D gains a viewer widget "image" that sends ''."""
    info = {
        "LoadImageOutput": {"name": "LoadImageOutput", "display_name": "Load Image (from Outputs)", "output": ["IMAGE"],
                            "input": {"required": {"image": [["a.png [output]"], {
                                "image_upload": True, "remote": {"route": "/internal/files/output",
                                                                 "refresh_button": True}}]}}},
        "RecordAudio": {"name": "RecordAudio", "display_name": "Record Audio", "output": ["AUDIO"],
                        "input": {"required": {"audio": ["AUDIO_RECORD", {}]}}},
        "Preview3D": {"name": "Preview3D", "display_name": "Preview 3D", "output": [],
                      "input": {"required": {"model_file": ["STRING", {"default": ""}]}}},
    }
    workflow = {"nodes": [node(1, "LoadImageOutput", [], [out("IMAGE", "IMAGE", [])],
                               ["b.png [output]", False, "refresh", "image"]),
                          node(2, "RecordAudio", [], [out("AUDIO", "AUDIO", [])], ["kept.wav", ""]),
                          node(3, "Preview3D", [inp("model_file", "STRING", None, True)], [], ["m.glb", "x"])],
                "links": [], "version": 0.4}
    api = ui_to_api(workflow, info)
    assert api["1"]["inputs"] == {"image": "b.png [output]", "refresh": "refresh"}
    assert api["2"]["inputs"] == {"audio": ""}
    assert api["3"]["inputs"] == {"model_file": "m.glb", "image": ""}
