"""Integration tier: ``ui_to_api`` checked against the real thing. A real ComfyUI (0.3.64, serving frontend
1.27.10) with this pack; its own editor driven headless by Playwright with the system Chromium. For each
workflow the page runs ``app.loadGraphData(workflow)`` then ``(await app.graphToPrompt()).output``, and that
must equal ``ui_to_api(workflow, object_info)`` with the live server's ``/object_info``.

Workflows: every template of the ``comfyui-workflow-templates`` packages whose node types the server knows,
the hand-written cases of ``test_ui_to_api.py``, and ``workflows/ui/*.json``.

Dynamic prompts (``{a|b}``) pick with ``Math.random``: it is pinned to 0 around ``graphToPrompt`` and
``ui_to_api`` gets an rng that also answers 0, so both pick the first option. ``graphToPrompt`` does not run
``control_after_generate`` (the frontend does that after queueing), so saved seeds are compared as they are.
"""
from __future__ import annotations

import copy
import importlib.util
import json
import os
from pathlib import Path

import pytest

from animstudio.translator.client import ComfyClient
from animstudio.translator.ui_to_api import ui_to_api

pytestmark = pytest.mark.comfyui

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
VIRTUAL_TYPES = {"Note", "Reroute", "PrimitiveNode", "MarkdownNote"}
# templates left out on purpose, with the reason: {file name: why}
EXCLUDED_TEMPLATES: dict[str, str] = {}
# known, still unported differences (listed, printed, and kept from growing): nodes inside subgraphs whose
# widgets are promoted to the instance; the frontend assigns the instance's widgets_values to promoted widgets
# in a different order than ui_to_api, shifting values (frontend: steps=<seed>, cfg=<steps>, ...)
# templates known to differ, with the reason (none at present: all 117 comparable templates match)
KNOWN_MISMATCHES: dict[str, str] = {}
# hand-written cases where the frontend itself throws and ui_to_api deliberately answers (see test_ui_to_api.py)
FRONTEND_THROWS = {"array widget value boxed": "value.replace is not a function",
                   "link from a removed node": "InvalidLinkError"}

LOAD_AND_CONVERT = """async (workflow) => {
  await window.app.loadGraphData(workflow, true, false, null,
                                 {showMissingNodesDialog: false, showMissingModelsDialog: false});
  const random = Math.random;
  Math.random = () => 0;
  try {
    const prompt = await window.app.graphToPrompt();
    return JSON.parse(JSON.stringify(prompt.output));
  } finally {
    Math.random = random;
  }
}"""


LOCALIZED_TITLES: set[str] = set()


class ZeroRng:
    """``Math.random`` pinned to 0: dynamic prompts take their first option."""

    def random(self) -> float:
        return 0.0


def template_files() -> list[Path]:
    """The template JSONs of the installed ``comfyui-workflow-templates`` (the split ``*_json`` bundle)."""
    files: list[Path] = []
    for package in ("comfyui_workflow_templates_json", "comfyui_workflow_templates"):
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            continue
        for location in spec.submodule_search_locations:
            files += sorted((Path(location) / "templates").glob("*.json"))
    return sorted(set(files))


def node_types(workflow: dict) -> set[str]:
    graphs = [workflow] + list((workflow.get("definitions") or {}).get("subgraphs") or [])
    return {n.get("type") for g in graphs for n in g.get("nodes") or [] if isinstance(n, dict)}


def unknown_types(workflow: dict, object_info: dict) -> set[str]:
    subgraph_ids = {s.get("id") for s in (workflow.get("definitions") or {}).get("subgraphs") or []}
    return {t for t in node_types(workflow) if t not in object_info and t not in VIRTUAL_TYPES and t not in subgraph_ids}


def differences(ours: dict, theirs: dict) -> list[str]:
    """Node-by-node, input-by-input: 'node 3 input seed: ours 5 vs frontend 6'."""
    found = []
    for node_id in sorted(set(ours) | set(theirs), key=str):
        if node_id not in theirs:
            found.append(f"node {node_id}: only ours ({ours[node_id].get('class_type')})")
            continue
        if node_id not in ours:
            found.append(f"node {node_id}: only frontend ({theirs[node_id].get('class_type')})")
            continue
        a, b = ours[node_id], theirs[node_id]
        for key in ("class_type", "_meta"):
            if key == "_meta" and a.get(key) != b.get(key) and a.get(key) == {"title": a.get("class_type")}:
                # no display_name in /object_info: the frontend's bundled en locale (nodeDefs.*.display_name)
                # names it; ui_to_api has only /object_info. Tolerated, printed.
                LOCALIZED_TITLES.add(f"{a.get('class_type')} -> {(b.get(key) or {}).get('title')!r}")
                continue
            if a.get(key) != b.get(key):
                found.append(f"node {node_id} {key}: ours {a.get(key)!r} vs frontend {b.get(key)!r}")
        ai, bi = a.get("inputs") or {}, b.get("inputs") or {}
        for name in list(ai) + [n for n in bi if n not in ai]:
            if ai.get(name, "<absent>") != bi.get(name, "<absent>"):
                found.append(f"node {node_id} input {name}: ours {str(ai.get(name, '<absent>'))[:120]!r} "
                             f"vs frontend {str(bi.get(name, '<absent>'))[:120]!r}")
        if set(a) - {"inputs", "class_type", "_meta"} != set(b) - {"inputs", "class_type", "_meta"}:
            found.append(f"node {node_id} keys: ours {sorted(a)} vs frontend {sorted(b)}")
    return found


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> Path:
    folder = Path(os.environ["ANIMSTUDIO_TEST_ARTIFACTS"]) if os.environ.get("ANIMSTUDIO_TEST_ARTIFACTS") \
        else tmp_path_factory.mktemp("graph-to-prompt")
    folder = folder / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\ngraphToPrompt reference artifacts: {folder}")
    return folder


@pytest.fixture(scope="module")
def object_info(comfy_server) -> dict:
    return ComfyClient(comfy_server.url).object_info()


@pytest.fixture(scope="module")
def frontend(comfy_server):
    """The ComfyUI page in headless Chromium, ready (``window.app`` with its graph); yields (page, console)."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found (Debian's chromium package): the frontend reference tests need it")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (the test extra): the frontend reference tests need it")
    console: list[dict] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.on("console", lambda m: console.append({"type": m.type, "text": m.text}))
            page.on("pageerror", lambda e: console.append({"type": "pageerror", "text": str(e)}))
            page.goto(comfy_server.url, wait_until="load", timeout=120_000)
            # ready: the ComfyApp has its graph and canvas, and the first (empty, for a new user) workflow is open
            page.wait_for_function("() => window.app && window.app.graph && window.app.canvas", timeout=120_000)
            for _ in range(120):
                if any("open workflow" in m["text"] for m in console):
                    break
                page.wait_for_timeout(250)
            page.keyboard.press("Escape")  # a new user's templates dialog, if shown
            page.set_default_timeout(60_000)
            yield page, console
        finally:
            browser.close()


def frontend_prompt(page, workflow: dict) -> dict:
    return page.evaluate(LOAD_AND_CONVERT, workflow)


def ours(workflow: dict, object_info: dict) -> dict:
    return json.loads(json.dumps(ui_to_api(copy.deepcopy(workflow), object_info, rng=ZeroRng())))


def compare(page, name: str, workflow: dict, object_info: dict) -> list[str]:
    try:
        theirs = frontend_prompt(page, workflow)
    except Exception as error:  # noqa: BLE001 - reported with the workflow's name
        return [f"frontend failed: {str(error).splitlines()[0][:300]}"]
    try:
        mine = ours(workflow, object_info)
    except Exception as error:  # noqa: BLE001
        return [f"ui_to_api raised {type(error).__name__}: {str(error)[:300]}"]
    return differences(mine, theirs)


def test_templates_match_the_frontend(frontend, object_info):
    page, _console = frontend
    files = template_files()
    if not files:
        pytest.skip("comfyui-workflow-templates is not installed (the test extra)")
    compared, skipped, mismatches = [], {}, {}
    for path in files:
        workflow = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(workflow, dict) or not isinstance(workflow.get("nodes"), list):
            skipped[path.name] = "not a UI-format workflow"
            continue
        if path.name in EXCLUDED_TEMPLATES:
            skipped[path.name] = EXCLUDED_TEMPLATES[path.name]
            continue
        missing = unknown_types(workflow, object_info)
        if missing:
            skipped[path.name] = f"node types the server lacks: {sorted(missing)[:5]}"
            continue
        compared.append(path.name)
        found = compare(page, path.name, workflow, object_info)
        if found:
            mismatches[path.name] = found
    print(f"\ntemplates: {len(files)} found, {len(compared)} compared, {len(compared) - len(mismatches)} matched, "
          f"{len(skipped)} skipped (unknown node types or not UI format)")
    for name, found in mismatches.items():
        print(f"MISMATCH {name}:\n  " + "\n  ".join(found[:20]))
    print(f"titles from the frontend's locale, not /object_info (tolerated): {sorted(LOCALIZED_TITLES)}")
    assert compared, "no template uses only node types this server knows"
    new = {n: f for n, f in mismatches.items() if n not in KNOWN_MISMATCHES}
    print(f"known mismatches: {sorted(set(mismatches) & set(KNOWN_MISMATCHES))}")
    assert not new, f"{len(new)} of {len(compared)} templates differ: " + \
        "; ".join(f"{n}: {f[0]}" for n, f in list(new.items())[:10])


def hand_written_cases() -> dict[str, dict]:
    import test_ui_to_api as unit

    def edit(base, change):
        workflow = base()
        change(workflow)
        return workflow

    def muted(w):
        unit._find(w, 8)["mode"] = 2

    def primitive(w):
        w["nodes"].append(unit.node(13, "PrimitiveNode", [], [
            {"name": "INT", "type": "INT", "links": [12], "slot_index": 0, "widget": {"name": "width"}}],
            [768, "fixed"], title="width"))
        unit._find(w, 5)["inputs"][0]["link"] = 12
        w["links"].append([12, 13, 0, 5, 0, "INT"])

    def primitive_int(w):
        w["nodes"].append(unit.node(14, "PrimitiveInt", [unit.inp("value", "INT", None, True)],
                                    [unit.out("INT", "INT", [12], 0)], [1234, "fixed"]))
        unit._find(w, 3)["inputs"][4]["link"] = 12
        w["links"].append([12, 14, 0, 3, 4, "INT"])

    def native_reroute(w):
        w["extra"]["reroutes"] = [{"id": 1, "pos": [1100, 300], "linkIds": [9]}]
        w["extra"]["linkExtensions"] = [{"id": 9, "parentId": 1}]

    def notes(w):
        w["nodes"] += [unit.node(15, "Note", [], [], ["remember the seed"]),
                       unit.node(16, "MarkdownNote", [], [], ["# notes"])]

    def trailing(w):
        unit._find(w, 3)["widgets_values"] = [5, "fixed", 30]
        del unit._find(w, 5)["widgets_values"]

    def load_image(w):
        w["nodes"].append(unit.node(17, "LoadImage", [unit.inp("image", "COMBO", None, True),
                                                      unit.inp("upload", "IMAGEUPLOAD", None, True)],
                                    [unit.out("IMAGE", "IMAGE", []), unit.out("MASK", "MASK", [])],
                                    ["example.png", "image"]))

    def dynamic(w):
        unit._find(w, 6)["widgets_values"] = ["a {red|blue} house // draft\n/* old */at dusk \\{kept\\}"]

    def boxed(w):
        unit._find(w, 9)["widgets_values"] = [["a", "b"]]

    def removed_origin(w):
        w["nodes"] = [n for n in w["nodes"] if n["id"] != 7]
        w["links"].append([12, 99, 0, 3, 4, "INT"])
        unit._find(w, 3)["inputs"][4]["link"] = 12

    def bypassed_subgraph(w):
        unit._find(w, 20)["mode"] = 4

    def subgraph_inner_value(w):
        del unit._find(w, 20)["widgets_values"]

    return {
        "default txt2img": unit.txt2img(),
        "muted VAEDecode": edit(unit.txt2img, muted),
        "bypassed ImageInvert": unit._with_invert(4),
        "active ImageInvert": unit._with_invert(0),
        "legacy reroute chain": edit(unit.txt2img, unit._legacy_reroutes),
        "native reroute": edit(unit.txt2img, native_reroute),
        "PrimitiveNode feeds width": edit(unit.txt2img, primitive),
        "PrimitiveInt linked to seed": edit(unit.txt2img, primitive_int),
        "notes": edit(unit.txt2img, notes),
        "missing trailing widget values": edit(unit.txt2img, trailing),
        "LoadImage upload button": edit(unit.txt2img, load_image),
        "dynamic prompt and comments": edit(unit.txt2img, dynamic),
        "array widget value boxed": edit(unit.txt2img, boxed),
        "link from a removed node": edit(unit.txt2img, removed_origin),
        "subgraph": unit._with_subgraph(),
        "bypassed subgraph": edit(unit._with_subgraph, bypassed_subgraph),
        "subgraph inner widget value": edit(unit._with_subgraph, subgraph_inner_value),
        "subgraph instance inputs saved out of order": edit(unit._with_subgraph,
                                                           unit._subgraph_instance_inputs_reversed),
        "extra input naming a missing widget": edit(unit.txt2img, unit._extra_input_naming_a_missing_widget),
    }


def test_hand_written_cases_match_the_frontend(frontend, object_info):
    page, _console = frontend
    mismatches = {}
    for name, workflow in hand_written_cases().items():
        found = compare(page, name, workflow, object_info)
        if name in FRONTEND_THROWS:
            assert len(found) == 1 and FRONTEND_THROWS[name] in found[0], (name, found)
            ours(workflow, object_info)  # ui_to_api answers where the frontend throws
        elif found:
            mismatches[name] = found
    for name, found in mismatches.items():
        print(f"MISMATCH {name}:\n  " + "\n  ".join(found))
    assert not mismatches, mismatches


def test_ui_examples_match_the_frontend(frontend, object_info, artifacts):
    page, console = frontend
    files = sorted((REPO / "workflows" / "ui").glob("*.json"))
    assert files
    mismatches = {}
    for path in files:
        workflow = json.loads(path.read_text(encoding="utf-8"))
        found = compare(page, path.name, workflow, object_info)
        if found:
            mismatches[path.name] = found
    # the last example as the editor draws it (the pack's nodes, their widgets)
    page.evaluate("() => { window.app.canvas.ds.offset = [0, 0]; window.app.canvas.ds.scale = 0.7; "
                  "window.app.graph.setDirtyCanvas(true, true); }")
    page.wait_for_timeout(500)
    shot = artifacts / f"{files[-1].stem}.png"
    page.screenshot(path=str(shot))
    print(f"\ncanvas screenshot: {shot}")
    assert shot.stat().st_size > 10_000
    assert not mismatches, mismatches


def test_no_console_error_mentions_the_pack(frontend):
    _page, console = frontend
    bad = [m for m in console if m["type"] in ("error", "pageerror") and "animstudio" in m["text"].lower()]
    assert not bad, bad
