"""Checking API-format graphs against node definitions, as ComfyUI's validate_prompt would."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest

import animstudio
from animstudio.translator.compile import compile_storyboard
from animstudio.translator.embedded import EmbeddedEngine
from animstudio.common.errors import GraphValidationError
from animstudio.translator.graph_check import check_graph, find_cycle, graph_problems
from animstudio.translator.storyboard import load_storyboard

EXAMPLE = Path(animstudio.__file__).resolve().parent / "workflows" / "examples" / "lighthouse" / "storyboard.json"

# A few definitions in ComfyUI's /object_info layout.
INFO = {
    "Loader": {"input": {"required": {"config_name": [["a.yaml", "b.yaml"], {}]}},
               "output": ["MODEL", "CLIP"], "output_node": False},
    "Sampler": {"input": {
        "required": {"model": ["MODEL"], "steps": ["INT", {"default": 20, "min": 1, "max": 100}],
                     "cfg": ["FLOAT", {"default": 7.0, "min": 0.0, "max": 30.0}],
                     "sampler": ["COMBO", {"options": ["euler", "ddim"]}], "tiled": ["BOOLEAN", {"default": False}]},
        "optional": {"note": ["STRING", {"multiline": True}], "mask": ["MASK"],
                     "latent": ["LATENT", {"forceInput": True}]}},
        "output": ["LATENT"], "output_node": False},
    "Pass": {"input": {"required": {"latent": ["LATENT"]}}, "output": ["LATENT"], "output_node": False},
    "Anything": {"input": {"required": {"value": ["*"]}}, "output": ["*"], "output_node": False},
    "Saver": {"input": {"required": {"samples": ["LATENT,IMAGE"], "prefix": ["STRING", {"default": "out"}]}},
              "output": [], "output_node": True},
}
GOOD = {
    "n1": {"class_type": "Loader", "inputs": {"config_name": "a.yaml"}},
    "n2": {"class_type": "Sampler", "inputs": {"model": ["n1", 0], "steps": 20, "cfg": 7.5, "sampler": "ddim",
                                               "tiled": False, "hidden_extra": {"anything": 1}}},
    "n3": {"class_type": "Saver", "inputs": {"samples": ["n2", 0], "prefix": "film"}},
}
SHOTS = {"n1": None, "n2": "s1", "n3": "s2", "n4": "s1", "n5": "s1"}
PLACE = {"n1": "node 'n1' (Loader)", "n2": "node 'n2' (Sampler, shot s1)", "n3": "node 'n3' (Saver, shot s2)"}


def graph_with(*changes):
    g = copy.deepcopy(GOOD)
    for node, key, value in changes:
        if key is None:
            g[node] = value
        elif value is _DROP:
            del g[node]["inputs"][key]
        else:
            g[node]["inputs"][key] = value
    return g


_DROP = object()

CASES = [
    ("missing-required", [("n2", "steps", _DROP)], PLACE["n2"], "required input 'steps' is missing"),
    ("link-to-missing-node", [("n3", "samples", ["n9", 0])], PLACE["n3"], "links to node 'n9', which is not in the graph"),
    ("output-index-out-of-range", [("n3", "samples", ["n2", 1])], PLACE["n3"], "links to output 1 of 'n2', which has 1 output(s)"),
    ("type-mismatch", [("n2", "model", ["n1", 1])], PLACE["n2"], "input 'model': links a CLIP output of 'n1' into a MODEL input"),
    ("optional-link-mismatch", [("n2", "mask", ["n1", 0])], PLACE["n2"], "links a MODEL output of 'n1' into a MASK input"),
    ("value-for-a-link", [("n2", "model", "a.yaml")], PLACE["n2"], "expects a link from a MODEL output"),
    ("force-input-value", [("n2", "latent", "x")], PLACE["n2"], "input 'latent': must be linked from a LATENT output"),
    ("combo-not-allowed", [("n1", "config_name", "c.yaml")], PLACE["n1"],
     "'c.yaml' is not one of the allowed values (a.yaml, b.yaml)"),
    ("combo-options-style", [("n2", "sampler", "heun")], PLACE["n2"], "'heun' is not one of the allowed values (euler, ddim)"),
    ("int-below-min", [("n2", "steps", 0)], PLACE["n2"], "input 'steps': 0 is below the minimum 1"),
    ("int-above-max", [("n2", "steps", 101)], PLACE["n2"], "input 'steps': 101 is above the maximum 100"),
    ("int-not-integer", [("n2", "steps", 2.5)], PLACE["n2"], "input 'steps': expected an integer, got 2.5"),
    ("int-a-string", [("n2", "steps", "20")], PLACE["n2"], "expected an integer, got '20'"),
    ("int-a-boolean", [("n2", "steps", True)], PLACE["n2"], "expected an integer, got True"),
    ("float-a-string", [("n2", "cfg", "high")], PLACE["n2"], "input 'cfg': expected a number, got 'high'"),
    ("float-nan", [("n2", "cfg", float("nan"))], PLACE["n2"], "input 'cfg': expected a number, got nan"),
    ("float-above-max", [("n2", "cfg", 30.5)], PLACE["n2"], "input 'cfg': 30.5 is above the maximum 30.0"),
    ("string-a-number", [("n3", "prefix", 5)], PLACE["n3"], "input 'prefix': expected a string, got 5"),
    ("optional-string-a-number", [("n2", "note", 5)], PLACE["n2"], "input 'note': expected a string, got 5"),
    ("boolean-a-string", [("n2", "tiled", "yes")], PLACE["n2"], "input 'tiled': expected true or false, got 'yes'"),
    ("unknown-class", [("n2", None, {"class_type": "Sampelr", "inputs": {}})], "node 'n2' (Sampelr, shot s1)",
     "unknown node type 'Sampelr'"),
    ("no-class-type", [("n2", None, {"inputs": {}})], "node 'n2' (shot s1)", "has no class_type"),
]


def test_good_graph_passes():
    assert graph_problems(GOOD, INFO, SHOTS) == []
    check_graph(GOOD, INFO, SHOTS)  # does not raise
    ok = graph_with(("n2", "note", "hello"), ("n2", "steps", 100), ("n2", "cfg", 0), ("n2", "steps", 1.0),
                    ("n2", "latent", ["n2x", 0]), ("n2x", None, {"class_type": "Pass", "inputs": {"latent": ["n4", 0]}}),
                    ("n4", None, {"class_type": "Anything", "inputs": {"value": ["n1", 1]}}),
                    ("n3", "samples", ["n4", 0]))
    assert graph_problems(ok, INFO, SHOTS) == []  # '*' matches anything; 'LATENT,IMAGE' accepts LATENT


@pytest.mark.parametrize("changes, where, words", [pytest.param(*c[1:], id=c[0]) for c in CASES])
def test_one_problem_named_at_its_node(changes, where, words):
    problems = graph_problems(graph_with(*changes), INFO, SHOTS)
    assert [p.where for p in problems] == [where], problems
    assert words in problems[0].message
    with pytest.raises(GraphValidationError) as info:
        check_graph(graph_with(*changes), INFO, SHOTS, name="shot-s1")
    assert info.value.exit_code == 3 and info.value.problems == problems
    assert info.value.summary == "shot-s1: 1 problem(s) against the node definitions"


def test_where_without_node_shots():
    problems = graph_problems(graph_with(("n2", "steps", 0)), INFO)
    assert [p.where for p in problems] == ["node 'n2' (Sampler)"]


def test_combo_allowed_when_uploaded():
    g = graph_with(("n1", "config_name", "c.yaml"))
    assert graph_problems(g, INFO, SHOTS, uploads=["c.yaml"]) == []
    assert len(graph_problems(g, INFO, SHOTS, uploads=["d.yaml"])) == 1
    # uploads only widen combos of names, never other kinds of input
    assert len(graph_problems(graph_with(("n2", "steps", "c")), INFO, SHOTS, uploads=["c"])) == 1


def test_no_output_node():
    g = graph_with()
    del g["n3"]
    problems = graph_problems(g, INFO, SHOTS)
    assert [p.where for p in problems] == ["graph"] and "no output node" in problems[0].message
    assert [p.where for p in graph_problems({}, INFO)] == ["graph"]


def test_cycle():
    g = graph_with(("n4", None, {"class_type": "Pass", "inputs": {"latent": ["n5", 0]}}),
                   ("n5", None, {"class_type": "Pass", "inputs": {"latent": ["n4", 0]}}))
    assert find_cycle(g) in (["n4", "n5", "n4"], ["n5", "n4", "n5"])
    problems = graph_problems(g, INFO, SHOTS)
    assert len(problems) == 1 and "is part of a cycle: " in problems[0].message
    assert "n4 -> n5" in problems[0].message or "n5 -> n4" in problems[0].message
    assert problems[0].where in ("node 'n4' (Pass, shot s1)", "node 'n5' (Pass, shot s1)")


def test_self_loop_and_diamond():
    loop = graph_with(("n4", None, {"class_type": "Pass", "inputs": {"latent": ["n4", 0]}}))
    assert find_cycle(loop) == ["n4", "n4"]
    diamond = graph_with(("n4", None, {"class_type": "Pass", "inputs": {"latent": ["n2", 0]}}),
                         ("n5", None, {"class_type": "Pass", "inputs": {"latent": ["n2", 0]}}),
                         ("n6", None, {"class_type": "Anything", "inputs": {"value": ["n4", 0], "v2": ["n5", 0]}}),
                         ("n3", "samples", ["n6", 0]))
    assert find_cycle(diamond) is None and graph_problems(diamond, INFO) == []


def test_all_problems_listed_at_once():
    g = graph_with(("n1", "config_name", "zzz"), ("n2", "steps", 0), ("n2", "cfg", "x"), ("n2", "sampler", "heun"),
                   ("n3", "samples", ["n2", 3]), ("n3", "prefix", 1),
                   ("n4", None, {"class_type": "Nope", "inputs": {}}))
    problems = graph_problems(g, INFO, SHOTS)
    got = sorted((p.where, p.message.split(":")[0]) for p in problems)
    assert got == sorted([
        (PLACE["n1"], "input 'config_name'"), (PLACE["n2"], "input 'steps'"), (PLACE["n2"], "input 'cfg'"),
        (PLACE["n2"], "input 'sampler'"), (PLACE["n3"], "input 'samples'"), (PLACE["n3"], "input 'prefix'"),
        ("node 'n4' (Nope, shot s1)", "unknown node type 'Nope'")])
    with pytest.raises(GraphValidationError) as info:
        check_graph(g, INFO, SHOTS, name="film")
    assert len(info.value.problems) == 7 and "film: 7 problem(s)" in str(info.value)
    assert all(str(p) in str(info.value) for p in problems)


# ---------------------------------------------------------------- the pack's own definitions

@pytest.fixture(scope="module")
def pack_info():
    return EmbeddedEngine().pack_object_info()


def test_pack_definitions_have_the_expected_nodes(pack_info):
    assert {"AnimStudioLoadPanel", "AnimStudioShotClip", "AnimStudioLoadVideoClip", "AnimStudioAppendClip",
            "AnimStudioSaveFilm"} <= set(pack_info)
    assert sorted(n for n, d in pack_info.items() if d["output_node"]) == [
        "AnimStudioConsistencyScore", "AnimStudioSaveCharacterLoRA", "AnimStudioSaveFilm", "AnimStudioSaveMouthCues"]


def test_compiled_example_passes_with_its_uploads(pack_info):
    film = compile_storyboard(load_storyboard(EXAMPLE))
    g = film.graphs[0]
    assert graph_problems(g.graph, pack_info, g.node_shots, [u.name for u in g.uploads]) == []
    check_graph(g.graph, pack_info, g.node_shots, [u.name for u in g.uploads], name="film")
    # without them, each panel names a file the engine's input folder does not hold
    problems = graph_problems(g.graph, pack_info, g.node_shots)
    assert [p.where for p in problems] == [f"node '{s.id}:panel' (AnimStudioLoadPanel, shot {s.id})"
                                           for s in film.storyboard.shots] + ["node 'film:music' (AnimStudioLoadAudio)"]
    assert all("is not one of the allowed values" in p.message for p in problems)


def test_compiled_per_shot_example_passes(pack_info):
    film = compile_storyboard(load_storyboard(EXAMPLE), "per_shot")
    videos = [f"animstudio/shots/{s.id}.mp4" for s in film.storyboard.shots]
    for g in film.graphs:
        uploads = [u.name for u in g.uploads] + (videos if g.name == "compose" else [])
        assert graph_problems(g.graph, pack_info, g.node_shots, uploads) == [], g.name
    compose = film.graph("compose")
    assert len(graph_problems(compose.graph, pack_info, compose.node_shots)) == len(videos) + 1  # and the music


def test_broken_compiled_graph_names_shot_and_class(pack_info):
    g = compile_storyboard(load_storyboard(EXAMPLE)).graphs[0]
    graph = copy.deepcopy(g.graph)
    graph["opening:clip"]["inputs"]["camera_move"] = "zoom-in"
    graph["beam:clip"]["inputs"]["seconds"] = 0.0
    graph["ship-storm:append"]["inputs"]["transition"] = "fade"
    graph["keeper-window:append"]["inputs"]["film"] = ["opening:clip", 0]
    del graph["film:save"]["inputs"]["filename_prefix"]
    problems = graph_problems(graph, pack_info, g.node_shots, [u.name for u in g.uploads])
    assert sorted((p.where, p.message.split(":")[0]) for p in problems) == sorted([
        ("node 'opening:clip' (AnimStudioShotClip, shot opening)", "input 'camera_move'"),
        ("node 'beam:clip' (AnimStudioShotClip, shot beam)", "input 'seconds'"),
        ("node 'ship-storm:append' (AnimStudioAppendClip, shot ship-storm)", "input 'transition'"),
        ("node 'keeper-window:append' (AnimStudioAppendClip, shot keeper-window)", "input 'film'"),
        ("node 'film:save' (AnimStudioSaveFilm)", "required input 'filename_prefix' is missing")])
    assert any("links a ANIMSTUDIO_CLIP output of 'opening:clip' into a ANIMSTUDIO_FILM input" in p.message
               for p in problems)


def test_generated_graph_needs_core_nodes(tmp_path, pack_info):
    (tmp_path / "sb.json").write_text('{"version": 1, "project": {"title": "G", "checkpoint": "m.safetensors"},'
                                      ' "shots": [{"id": "g1", "description": "a boat"}]}')
    g = compile_storyboard(load_storyboard(tmp_path / "sb.json")).graphs[0]
    problems = graph_problems(g.graph, pack_info, g.node_shots)
    unknown = sorted(p.message.split("'")[1] for p in problems if p.message.startswith("unknown node type"))
    assert unknown == ["CLIPTextEncode", "CLIPTextEncode", "CheckpointLoaderSimple", "EmptyLatentImage",
                       "KSampler", "SaveImage", "VAEDecode"]
    assert "node 'g1:sampler' (KSampler, shot g1)" in [p.where for p in problems]
