"""Every pack node as a user adds it, in a real ComfyUI driven by Playwright in Debian's Chromium (marker comfyui).

Issue acceptance: "every pack node added from the node search has all its widgets (none UNKNOWN) and queues in a
minimal graph". For every class in /object_info whose python_module is the pack's:

* it is added the way a user adds it: a double-click on the empty canvas opens the node search, its display name is
  typed, Enter takes the first result (or the result with that exact name is clicked, where it is not the first);
* the node has its class, every widget its definition implies (in definition order, plus the frontend's own: upload,
  audio player, control_after_generate, the pack's DOM widgets), none ``UNKNOWN``, none without a value (except a
  model combo whose folder is empty on this server, as core's own loaders), each at its definition's default;
* ``app.graphToPrompt()`` sends it with its ``class_type`` and every widget input, and ComfyUI's /prompt takes it:
  nodes that need nothing linked are queued (with a core preview node after them where they are not output nodes,
  their file combos set to files staged in input/, the planner pointed at a stub OpenAI-compatible server) and run;
  nodes that need links are refused only for those links (``required_input_missing``; an empty model combo: the
  pack's own "put it in models/…" message), never for a missing class_type or a widget value.

Then one real graph of 26 pack nodes (every class that needs no model file) built on the canvas (LiteGraph.createNode
and links, as a user wires it) runs to a film on CPU in seconds: one String node's line linked into TTS, lip sync and
the dialogue line, mouth cues saved, the audio chain under music, a camera move interpolated and given a talking
mouth, dialogue lines joined into a fitted shot with a mouth rig, a loaded video clip appended with a dissolve, the
film saved; and the planner through the stub server to shot prompts. Only the model nodes (LoRA, IP-Adapter,
consistency score, model family, saving a trained LoRA) are checked at the prompt alone: they need model files.
And the Lip Sync node's timeline: its play button shows pause while playing, and "Preview line" takes a line that
comes through a link from the node it comes from.

Per-node records go to node-checks.json and node-checks.md, screenshots beside them, in
$ANIMSTUDIO_TEST_ARTIFACTS/editor-nodes (else tmp_path)."""
from __future__ import annotations

import json
import math
import threading
import time
import urllib.error
import urllib.request
import wave
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from browser import CHROMIUM, artifact_folder, close_dialogs, playwright_or_skip, skip_first_run_dialog
from conftest import EXAMPLE, write_panel

pytestmark = pytest.mark.comfyui

STAGED = "editor-nodes"  # the folder in ComfyUI's input (and output) this test writes
LINE = "Big boats sail home."
LINKED_LINE = "Hello there, ships."
SEARCH_INPUT = "input[id^='comfy-vue-node-search-box-input']"
EMPTY_SPOT = (760, 420)  # on the canvas, clear of the sidebar, the menu and the minimap

# definition type → the frontend widget types that stand for it
WIDGET_TYPES = {"INT": {"number"}, "FLOAT": {"number"}, "STRING": {"text", "customtext"}, "BOOLEAN": {"toggle"},
                "COMBO": {"combo"}}
PACK_DOM_WIDGETS = {"AnimStudioLipSync": ["mouth_cue_timeline"], "AnimStudioShotClip": ["camera_preview"],
                    "AnimStudioCameraMove": ["camera_preview"]}
CONTROL_VALUES = {"fixed", "increment", "decrement", "randomize"}
# where a node's first output goes when it is queued alone: core's preview nodes
CONSUMERS = {"IMAGE": "PreviewImage", "AUDIO": "PreviewAudio"}
MODEL_FOLDERS = {"AnimStudioCharacterLoRA": "models/loras", "AnimStudioIPAdapter": "models/ipadapter"}
SCREENSHOTS = {"AnimStudioLipSync", "AnimStudioShotClip", "AnimStudioLoadAudio", "AnimStudioTTS", "AnimStudioSaveFilm",
               "AnimStudioCameraMove", "AnimStudioCharacterLoRA"}

CANNED_PLAN = {"title": "Fox and crow", "style": "flat colours",
               "characters": [{"id": "fox", "name": "Vix", "description": "a red fox"}],
               "scenes": [{"id": "wood", "location": "forest", "time_of_day": "day"}],
               "shots": [{"id": "a", "scene": "wood", "characters": ["fox"], "camera": "wide",
                          "description": "the fox looks up at the crow"}]}


# ---- records ---------------------------------------------------------------------------------------------------

REPORT: dict[str, dict] = {}


def _record(name: str, **fields) -> dict:
    entry = REPORT.setdefault(name, {"class": name})
    for key, value in fields.items():
        if isinstance(value, list) and isinstance(entry.get(key), list):
            entry[key] = entry[key] + [v for v in value if v not in entry[key]]
        else:
            entry[key] = value
    return entry


def _write_report(folder: Path) -> None:
    """node-checks.json (everything this session's tests recorded) and node-checks.md (the table)."""
    (folder / "node-checks.json").write_text(json.dumps(REPORT, indent=2, sort_keys=True))
    rows = ["| node | added via | widgets | queued / validated |", "|---|---|---|---|"]
    for name in sorted(n for n in REPORT if not n.startswith("_")):
        e = REPORT[name]
        widgets = e.get("widgets_problem", "not checked in this run")
        if e.get("widgets_ok"):
            empty = ", ".join(e.get("empty_model_combos", []))
            widgets = f"ok ({len(e.get('widgets', []))}" + (f"; {empty}: no file on this server, no value, as on "
                                                              "core's loaders" if empty else "") + ")"
        queued = "; ".join([e.get("alone", "")] + e.get("graphs", []))
        rows.append(f"| {name} | {e.get('added_via', '')} | {widgets} | {queued.strip('; ')} |")
    timing = REPORT.get("_timing", {})
    rows += [""] + [f"{key}: {value} s" for key, value in sorted(timing.items()) if key != "class"]
    (folder / "node-checks.md").write_text("\n".join(rows) + "\n")


# ---- fixtures and helpers --------------------------------------------------------------------------------------


@pytest.fixture()
def artifacts(tmp_path):
    folder = artifact_folder(tmp_path, "editor-nodes")
    yield folder
    _write_report(folder)


class _PlannerHandler(BaseHTTPRequestHandler):
    """An OpenAI-compatible /v1/chat/completions that answers every request with CANNED_PLAN."""

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        self.server.seen.append(self.path)
        if not self.path.rstrip("/").endswith("/chat/completions"):
            return self._send(404, {"error": {"message": f"no route {self.path}"}})
        self._send(200, {"object": "chat.completion", "model": body.get("model", "stub"),
                         "choices": [{"index": 0, "finish_reason": "stop",
                                      "message": {"role": "assistant", "content": json.dumps(CANNED_PLAN)}}]})

    def _send(self, status, payload):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture()
def planner_url():
    """A stub LLM server (no model): the planner node runs through it as through llama.cpp's or OpenAI's."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _PlannerHandler)
    httpd.seen = []
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _stage_inputs(input_dir: Path) -> dict[str, str]:
    """A 64x64 panel, a 2 s tone and a 1 s 64x64 16 fps H.264 clip in input/editor-nodes: what the loaders pick."""
    import av

    folder = input_dir / STAGED
    folder.mkdir(parents=True, exist_ok=True)
    write_panel(folder / "panel.png", size=(64, 64))
    rate = 22050
    t = np.arange(int(rate * 2.0)) / rate
    tone = (0.2 * np.sin(2 * np.pi * 220 * t) * 32767).astype("<i2")
    with wave.open(str(folder / "tone.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(tone.tobytes())
    with av.open(str(folder / "clip.mp4"), "w") as container:
        stream = container.add_stream("libx264", rate=16)
        stream.width = stream.height = 64
        stream.pix_fmt = "yuv420p"
        for i in range(16):
            image = np.zeros((64, 64, 3), np.uint8)
            image[:, :, 0] = i * 15
            image[20:40, i * 3:i * 3 + 6] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return {"image": f"{STAGED}/panel.png", "audio": f"{STAGED}/tone.wav", "video": f"{STAGED}/clip.mp4"}


def _get(url: str):
    with urllib.request.urlopen(url, timeout=60) as answer:
        return json.load(answer)


def _post_prompt(url: str, prompt: dict, workflow: dict | None = None, client_id: str | None = None
                 ) -> tuple[int, dict]:
    """POST /prompt as the frontend does (with the page's client id, its run events go to the page); (HTTP status,
    answer)."""
    body = {"prompt": prompt, "extra_data": {"extra_pnginfo": {"workflow": workflow}} if workflow else {}}
    if client_id:
        body["client_id"] = client_id
    request = urllib.request.Request(url + "/prompt", data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read() or b"{}")


def _wait_for_history(url: str, prompt_ids: list[str], seconds: float = 300) -> dict[str, dict]:
    deadline = time.monotonic() + seconds
    done: dict[str, dict] = {}
    while time.monotonic() < deadline and len(done) < len(prompt_ids):
        for pid in prompt_ids:
            if pid not in done:
                entry = _get(f"{url}/history/{pid}").get(pid)
                if entry and entry.get("status", {}).get("completed") is not None \
                        and entry["status"].get("status_str") in ("success", "error"):
                    done[pid] = entry
        time.sleep(0.5)
    missing = [pid for pid in prompt_ids if pid not in done]
    assert not missing, f"prompts never finished: {missing}"
    return done


def _execution_error(entry: dict) -> str:
    for kind, data in entry.get("status", {}).get("messages", []):
        if kind == "execution_error":
            return f"{data.get('node_type')}: {data.get('exception_message')}"
    return ""


class _Watch:
    """Console lines, page errors and failed requests to the pack's routes, from the moment the editor is up."""

    def __init__(self, page):
        self.lines: list[str] = []
        self.failed: list[str] = []
        page.on("console", lambda m: self.lines.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: self.lines.append(f"pageerror: {e}"))
        page.on("response", lambda r: self.failed.append(f"HTTP {r.status} {r.url}")
                if r.status >= 400 and "/animstudio" in r.url else None)

    def problems(self) -> list[str]:
        """Uncaught errors, errors logged that are a TypeError or mention the pack, failed pack requests."""
        return [line for line in self.lines if line.startswith("pageerror")
                or (line.startswith("error") and ("TypeError" in line or "animstudio" in line.lower()))] + self.failed

    def clear(self) -> None:
        self.lines.clear()
        self.failed.clear()


def _open_editor(browser, url: str):
    page = browser.new_page(viewport={"width": 1500, "height": 950})
    watch = _Watch(page)
    page.goto(url, wait_until="domcontentloaded")
    page.wait_for_function("() => window.app && window.app.graph && window.app.extensionManager", timeout=90_000)
    page.locator(".animstudio-storyboard-tab-button").wait_for(timeout=60_000)
    close_dialogs(page)
    # frontend 1.27.10 itself throws once while a fresh user's settings load; nothing of the pack's may have
    at_load = [line for line in watch.problems() if "animstudio" in line.lower()]
    assert not at_load, at_load
    watch.clear()
    page.evaluate("() => app.graph.clear()")
    return page, watch


# ---- what a definition implies ---------------------------------------------------------------------------------

@dataclass
class WidgetSpec:
    name: str
    kind: str
    options: dict
    values: list | None = None
    required: bool = True


@dataclass
class Expected:
    widgets: list[WidgetSpec]
    extras: list[str] = field(default_factory=list)
    maybe: list[str] = field(default_factory=list)  # the frontend's previews, there once a file is shown
    linked: list[str] = field(default_factory=list)  # required inputs that can only come through a link


def expected_for(class_name: str, definition: dict) -> Expected:
    order = definition.get("input_order") or {s: list(definition["input"].get(s, {})) for s in ("required", "optional")}
    widgets, linked = [], []
    for section in ("required", "optional"):
        for name in order.get(section, []):
            spec = definition["input"][section][name]
            kind, options = spec[0], (spec[1] if len(spec) > 1 else None) or {}
            values = None
            if isinstance(kind, list):
                kind, values = "COMBO", kind
            elif kind == "COMBO":
                values = options.get("options", [])
            if kind in WIDGET_TYPES and not options.get("forceInput"):
                widgets.append(WidgetSpec(name, kind, options, values, section == "required"))
            elif section == "required":
                linked.append(name)
    extras, maybe = [], []
    for w in widgets:
        if w.kind == "COMBO" and w.options.get("audio_upload"):
            extras += ["audioUI", "upload"]
        elif w.kind == "COMBO" and w.options.get("image_upload"):
            extras.append("upload")
            maybe.append("$$canvas-image-preview")  # as on core's Load Image
        elif w.kind == "COMBO" and w.options.get("video_upload"):
            extras.append("upload")
            maybe.append("video-preview")  # as on core's Load Video
        if w.kind == "INT" and (w.name in ("seed", "noise_seed") or w.options.get("control_after_generate")):
            extras.append("control_after_generate")
    return Expected(widgets, extras + PACK_DOM_WIDGETS.get(class_name, []), maybe, linked)


def widget_problems(class_name: str, definition: dict, node: dict) -> list[str]:
    """What is wrong with the widgets of a node as the frontend made it, against its definition."""
    expected = expected_for(class_name, definition)
    problems = []
    actual = {w["name"]: w for w in node["widgets"]}
    names = [w["name"] for w in node["widgets"]]
    if "UNKNOWN" in names:
        problems.append(f"an UNKNOWN widget: {names}")
    want = [w.name for w in expected.widgets]
    if sorted(n for n in names if n not in expected.maybe) != sorted(want + expected.extras):
        problems.append(f"widgets {names}, expected {want} + {expected.extras} (+ maybe {expected.maybe})")
    if [n for n in names if n in want] != [n for n in want if n in actual]:
        problems.append(f"widgets out of definition order: {names} vs {want}")
    for spec in expected.widgets:
        w = actual.get(spec.name)
        if w is None:
            continue
        if w["type"] not in WIDGET_TYPES[spec.kind]:
            problems.append(f"{spec.name}: a {w['type']} widget for a {spec.kind} input")
        if w["undefined"]:
            if not (spec.kind == "COMBO" and spec.values == [] and class_name in MODEL_FOLDERS):
                problems.append(f"{spec.name} has no value")
            continue
        value, default = w["value"], spec.options.get("default")
        if spec.kind == "COMBO":
            if value not in spec.values:
                problems.append(f"{spec.name}={value!r} not among {spec.values[:8]}")
            if default is not None and value != default and default in spec.values:
                problems.append(f"{spec.name}={value!r}, the definition's default is {default!r}")
        elif spec.kind in ("INT", "FLOAT"):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                problems.append(f"{spec.name}={value!r} is not a number")
            elif default is not None and abs(value - default) > 1e-9 * max(1, abs(default)):
                problems.append(f"{spec.name}={value!r}, the definition's default is {default!r}")
        elif spec.kind == "STRING":
            if not isinstance(value, str) or value != spec.options.get("default", ""):
                problems.append(f"{spec.name}={value!r}, the definition's default is {default!r}")
        elif spec.kind == "BOOLEAN":
            if value is not bool(default):
                problems.append(f"{spec.name}={value!r}, the definition's default is {default!r}")
    if "control_after_generate" in actual and actual["control_after_generate"]["value"] not in CONTROL_VALUES:
        problems.append(f"control_after_generate={actual['control_after_generate']['value']!r}")
    for name in PACK_DOM_WIDGETS.get(class_name, []):
        if name in actual and not actual[name]["element"]:
            problems.append(f"{name} has no element")
    return problems


# every node deselected and deleted, as a user deletes them (app.graph.clear() would number the next node 1 again,
# and the frontend would show the previous node 1's pictures on it), the view back at the origin at scale 1
CLEAR_CANVAS = """() => { (app.canvas.deselectAll ?? app.canvas.deselectAllNodes).call(app.canvas);
  for (const n of [...app.graph._nodes]) app.graph.remove(n);
  app.canvas.ds.offset = [0, 0]; app.canvas.ds.scale = 1; app.canvas.setDirty(true, true); }"""


NODE_STATE = """(id) => { const n = app.graph.getNodeById(id);
  const plain = (v) => v == null || ['string', 'number', 'boolean'].includes(typeof v) ? v : String(v);
  return {id: n.id, type: n.type, comfyClass: n.comfyClass, title: n.title,
    widgets: (n.widgets || []).map(w => ({name: w.name, type: w.type, undefined: w.value === undefined,
                                         value: plain(w.value), element: !!w.element})),
    outputs: (n.outputs || []).map(o => ({name: o.name, type: o.type})),
    camera: n.animstudioCameraPreview ? (n.animstudioCameraPreview.windows || []).length : null,
    timeline: n.animstudioTimeline ? {cues: n.animstudioTimeline.cues, play: !!n.widgets.find(
        w => w.name === 'mouth_cue_timeline')?.element?.querySelector('.animstudio-play')} : null}; }"""


def _search_once(page, display_name: str, nth: int) -> tuple[list, str, list]:
    """One go at the node search: double-click the empty canvas, type the name, take the ``nth`` result with exactly
    that name (Enter when it is the first and has the focus, else a click). The nodes it added, how, the results."""
    before = page.evaluate("() => app.graph._nodes.map(n => n.id)")
    # the last search's dialog has gone (a closing dialog's mask takes the clicks)
    page.wait_for_function("() => !document.querySelector('.p-dialog-mask')", timeout=10_000)
    # the pointer comes to the spot as a user's does (the canvas finds what is under it on moves)
    page.mouse.move(EMPTY_SPOT[0] - 200, EMPTY_SPOT[1] + 300)
    page.mouse.move(*EMPTY_SPOT, steps=4)
    # a double-click with a human's gap between its clicks: LiteGraph takes two presses for a double-click only when
    # the second comes later than the first, and the two presses of Playwright's dblclick() can carry the same
    # (coarsened) timestamp, then the canvas sees two single clicks
    page.mouse.down()
    page.mouse.up()
    page.wait_for_timeout(60)
    page.mouse.down(click_count=2)
    page.mouse.up(click_count=2)
    box = page.locator(SEARCH_INPUT)
    box.wait_for(state="visible", timeout=10_000)
    box.fill(display_name)
    exact = page.locator(f"li.p-autocomplete-option[aria-label={json.dumps(display_name)}]")
    exact.first.wait_for(timeout=15_000)
    labels = page.locator("li.p-autocomplete-option").evaluate_all(
        "els => els.map(e => e.getAttribute('aria-label'))")
    positions = [i for i, label in enumerate(labels) if label == display_name]
    if nth >= len(positions):
        return [], "", labels
    if positions[nth] == 0:
        # Enter takes the focused result: wait until the first one has the focus
        page.wait_for_function("""(sel) => { const input = document.querySelector(sel);
            const first = document.querySelector('li.p-autocomplete-option');
            return input && first && input.getAttribute('aria-activedescendant') === first.id; }""",
                               arg=SEARCH_INPUT, timeout=10_000)
        page.keyboard.press("Enter")
        how = "search (Enter on the first result)"
    else:
        exact.nth(nth).click()
        how = f"search (clicked result {positions[nth] + 1} of {len(labels)})"
    page.wait_for_function("(n) => app.graph._nodes.length > n", arg=len(before), timeout=10_000)
    added = page.evaluate("(b) => app.graph._nodes.filter(n => !b.includes(n.id)).map(n => [n.id, n.type])", before)
    return added, how, labels


def add_from_search(page, display_name: str, class_name: str) -> tuple[int, str]:
    """Add a node as a user does from the node search: its display name typed, the result with that exact name taken
    (the next such result, should several nodes share the name, until the class matches). A go that does not open
    the search or add a node (a slow machine may read the double-click as two clicks) is tried again, twice at most,
    and said in how it was added. Returns the new node's id and how."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

    before = page.evaluate("() => app.graph._nodes.map(n => n.id)")
    missed: list[str] = []
    nth = 0
    while True:
        try:
            added, how, labels = _search_once(page, display_name, nth)
        except PlaywrightTimeoutError as error:
            missed.append(str(error).splitlines()[0])
            assert len(missed) < 3, f"the node search did not add {class_name}: {missed}"
            page.keyboard.press("Escape")
            page.evaluate("(b) => { for (const n of [...app.graph._nodes]) if (!b.includes(n.id)) "
                          "app.graph.remove(n); }", before)
            continue
        assert added or labels, f"no search result for {display_name!r}"
        assert added, f"no search result for {display_name!r} adds {class_name}: {labels}"
        assert len(added) == 1, added
        node_id, node_type = added[0]
        if node_type == class_name:
            page.locator(SEARCH_INPUT).wait_for(state="hidden", timeout=15_000)
            if missed:
                how += f"; took {len(missed) + 1} goes ({'; '.join(missed)})"
            return node_id, how
        page.evaluate("(id) => app.graph.remove(app.graph.getNodeById(id))", node_id)
        nth += 1


def _set_widgets(page, node_id: int, values: dict) -> None:
    page.evaluate("""([id, values]) => { const n = app.graph.getNodeById(id);
        for (const [name, value] of Object.entries(values)) {
            const w = n.widgets.find(w => w.name === name);
            if (!w) throw new Error(`no widget ${name} on ${n.type}`);
            w.value = value; w.callback?.(value);
        } }""", [node_id, values])


def _alone_values(class_name: str, definition: dict, staged: dict, planner: str) -> dict:
    """What a user sets on a node that needs no link before queuing it: a staged file in its file combo; the planner
    pointed at the stub server; shot prompts given the example storyboard and its first shot."""
    combos = {w.name: w for w in expected_for(class_name, definition).widgets if w.kind == "COMBO"}
    values = {name: staged[name] for name in combos if name in staged and staged[name] in combos[name].values}
    if class_name == "AnimStudioPlanStoryboard":
        values.update(backend="openai", base_url=planner, model="stub")
    if class_name == "AnimStudioShotPrompts":
        values.update(storyboard=EXAMPLE.read_text(), shot_id=json.loads(EXAMPLE.read_text())["shots"][0]["id"])
    return values


def prompt_problems(expected: Expected, definition: dict, node_id: str, prompt: dict, node: dict) -> list[str]:
    """The node as graphToPrompt sends it: its class_type and every widget input with the widget's value."""
    sent = prompt.get(node_id)
    if sent is None:
        return [f"node {node_id} is not in the prompt: {sorted(prompt)}"]
    problems = []
    if sent.get("class_type") != definition["name"]:
        problems.append(f"class_type {sent.get('class_type')!r}")
    values = {w["name"]: w for w in node["widgets"]}
    for spec in expected.widgets:
        if spec.name not in sent["inputs"]:
            problems.append(f"widget input {spec.name} not sent")
        elif not values[spec.name]["undefined"] and sent["inputs"][spec.name] != values[spec.name]["value"]:
            problems.append(f"{spec.name} sent as {sent['inputs'][spec.name]!r}, the widget holds "
                            f"{values[spec.name]['value']!r}")
    # the frontend also sends its players' values (core's Load Audio and Load Video send them too); ComfyUI ignores
    # inputs a node does not declare
    extra = set(sent["inputs"]) - {w.name for w in expected.widgets} - {"audioUI", "video-preview"}
    if extra:
        problems.append(f"inputs the node does not declare: {sorted(extra)}")
    return problems


def refusal_problems(class_name: str, expected: Expected, node_id: str, status: int, answer: dict) -> list[str]:
    """A refusal must be for the links a lone node lacks only (or, for a model combo on an empty folder, the pack's
    own message naming the folder)."""
    problems = []
    error = answer.get("error") or {}
    said = [error.get("message", ""), error.get("details", "")] + [
        f"{e.get('message', '')} {e.get('details', '')}" for entry in (answer.get("node_errors") or {}).values()
        for e in entry.get("errors", [])]
    if any("class_type" in line for line in said):
        problems.append(f"refused for a class_type: {said}")
    if error.get("type") != "prompt_outputs_failed_validation":
        problems.append(f"HTTP {status}: {error}")
    for other, entry in (answer.get("node_errors") or {}).items():
        if other != node_id:
            problems.append(f"node {other} ({entry.get('class_type')}) refused: {entry.get('errors')}")
    errors = (answer.get("node_errors") or {}).get(node_id, {}).get("errors", [])
    missing = {e.get("extra_info", {}).get("input_name") for e in errors if e.get("type") == "required_input_missing"}
    if missing != set(expected.linked):
        problems.append(f"missing {sorted(missing)}, expected exactly the linked inputs {expected.linked}")
    for e in errors:
        if e.get("type") == "required_input_missing":
            continue
        folder = MODEL_FOLDERS.get(class_name)
        if e.get("type") == "custom_validation_failed" and folder and folder in e.get("details", ""):
            continue  # no model file on this server: the pack says where to put one
        problems.append(f"{e.get('type')}: {e.get('message')} {e.get('details')}")
    return problems


# ---- 1. every pack node from the node search ------------------------------------------------------------------

@pytest.mark.comfyui
def test_every_pack_node_from_the_search_box_has_its_widgets_and_queues(comfy_server, artifacts, planner_url):
    from animstudio.nodes import NODE_CLASS_MAPPINGS

    sync_playwright = playwright_or_skip()
    started = time.monotonic()
    staged = _stage_inputs(comfy_server.base / "input")
    info = _get(comfy_server.url + "/object_info")
    pack = {name: d for name, d in info.items() if d.get("python_module", "").split(".")[-1] == "animstudio"}
    assert set(pack) == set(NODE_CLASS_MAPPINGS) and all(name.startswith("AnimStudio") for name in pack), sorted(pack)
    assert len(pack) >= 28, len(pack)
    skip_first_run_dialog(comfy_server.url)
    failures: list[str] = []
    queued: dict[str, str] = {}  # prompt id → class
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page, watch = _open_editor(browser, comfy_server.url)
            for name, definition in pack.items():
                display = definition.get("display_name") or name
                page.evaluate(CLEAR_CANVAS)
                try:
                    node_id, how = add_from_search(page, display, name)
                except Exception:
                    page.screenshot(path=str(artifacts / f"search-failed-{name}.png"))
                    raise
                if name in ("AnimStudioShotClip", "AnimStudioCameraMove"):  # the camera preview asked for its path
                    page.wait_for_function("(id) => app.graph.getNodeById(id).animstudioCameraPreview?.windows?.length",
                                           arg=node_id, timeout=30_000)
                state = page.evaluate(NODE_STATE, node_id)
                expected = expected_for(name, definition)
                problems = [] if (state["type"], state["comfyClass"]) == (name, name) else [
                    f"added as {state['type']}/{state['comfyClass']}"]
                problems += widget_problems(name, definition, state)
                if name in ("AnimStudioShotClip", "AnimStudioCameraMove") and not state["camera"]:
                    problems.append("the camera preview has no path")
                if name == "AnimStudioLipSync" and not (state["timeline"] and state["timeline"]["play"]):
                    problems.append("no mouth-cue timeline with a play button")
                empty_models = [w["name"] for w in state["widgets"] if w["undefined"]]
                _record(name, display_name=display, added_via=how,
                        widgets=[f"{w['name']}:{w['type']}={w['value']!r}" for w in state["widgets"]],
                        widgets_ok=not problems, empty_model_combos=empty_models)
                if problems:
                    _record(name, widgets_problem="; ".join(problems))
                if name in SCREENSHOTS:
                    page.wait_for_timeout(200)
                    page.screenshot(path=str(artifacts / f"node-{name}.png"))

                # the prompt: the node alone, set as a user sets it, with a core preview after a non-output node
                values = _alone_values(name, definition, staged, planner_url)
                if values:
                    _set_widgets(page, node_id, values)
                    state = page.evaluate(NODE_STATE, node_id)
                consumer = None
                if not definition.get("output_node"):
                    consumer = CONSUMERS.get(definition["output"][0], "PreviewAny")
                    page.evaluate("""([id, type]) => {
                        const n = app.graph.getNodeById(id), c = LiteGraph.createNode(type);
                        c.pos = [n.pos[0] + n.size[0] + 60, n.pos[1]]; app.graph.add(c);
                        if (!n.connect(0, c, 0)) throw new Error(`cannot link ${n.type} to ${type}`); }""",
                                  [node_id, consumer])
                sent = page.evaluate("async () => { const p = await app.graphToPrompt(); "
                                     "return {output: p.output, workflow: p.workflow}; }")
                prompt_issues = prompt_problems(expected, definition, str(node_id), sent["output"], state)
                status, answer = _post_prompt(comfy_server.url, sent["output"], sent["workflow"])
                after = f" + {consumer}" if consumer else ""
                if expected.linked:
                    prompt_issues += refusal_problems(name, expected, str(node_id), status, answer)
                    errors = answer.get("node_errors", {}).get(str(node_id), {}).get("errors", [])
                    kinds = sorted({f"{e['type']}({e.get('extra_info', {}).get('input_name')})" for e in errors})
                    _record(name, alone=f"prompt-validated alone{after}: refused only for {', '.join(kinds)}")
                elif status == 200 and answer.get("prompt_id") and not answer.get("node_errors"):
                    queued[answer["prompt_id"]] = name
                    set_note = f" ({', '.join(f'{k}={v!r}' for k, v in values.items() if k != 'storyboard')})" \
                        if values else ""
                    _record(name, alone=f"queued alone{after}{set_note}")
                else:
                    prompt_issues.append(f"a node needing no link was refused: HTTP {status} {answer}")
                if prompt_issues:
                    problems += prompt_issues
                    _record(name, prompt_problem="; ".join(prompt_issues))
                if watch.problems():
                    problems += watch.problems()
                    watch.clear()
                if problems:
                    failures.append(f"{name}: {problems}")
            page.evaluate(CLEAR_CANVAS)
            close_dialogs(page)
            assert not watch.problems(), watch.problems()
        finally:
            browser.close()
    # the lone nodes that needed no link ran
    for pid, entry in _wait_for_history(comfy_server.url, list(queued)).items():
        name = queued[pid]
        ok = entry["status"]["status_str"] == "success" and entry.get("outputs")
        _record(name, alone=REPORT[name]["alone"] + (": ran" if ok else f": FAILED {_execution_error(entry)}"))
        if not ok:
            failures.append(f"{name}: queued alone but failed: {_execution_error(entry)}")
    _record("_timing", search_test_seconds=round(time.monotonic() - started, 1))
    assert not failures, "\n".join(failures)


# ---- 2. one real graph of pack nodes, wired on the canvas, runs to a film ---------------------------------------

BUILD_GRAPH = """({nodes, links}) => {
  app.graph.clear();
  const made = {};
  for (const [key, [type, values, pos]] of Object.entries(nodes)) {
    const n = LiteGraph.createNode(type);
    if (!n) throw new Error(`no node type ${type}`);
    n.pos = pos; app.graph.add(n);
    for (const [name, value] of Object.entries(values)) {
      const w = n.widgets?.find(w => w.name === name);
      if (!w) throw new Error(`no widget ${name} on ${type}`);
      w.value = value; w.callback?.(value);
    }
    made[key] = n;
  }
  for (const [from, out, to, input] of links) {
    const a = made[from], b = made[to];
    const o = typeof out === 'number' ? out : a.outputs.findIndex(s => s.name === out);
    const i = b.inputs.findIndex(s => s.name === input);
    if (o < 0 || i < 0 || !a.connect(o, b, i)) throw new Error(`cannot link ${from}.${out} to ${to}.${input}`);
  }
  return Object.fromEntries(Object.entries(made).map(([k, n]) => [k, n.id]));
}"""


# the graph laid out in columns by its links (LiteGraph's arrange) and fitted to the window
FIT_VIEW = """() => { (app.canvas.deselectAll ?? app.canvas.deselectAllNodes).call(app.canvas); app.graph.arrange(40);
  app.extensionManager.command.execute('Comfy.Canvas.FitView');
  app.canvas.setDirty(true, true); }"""


def _film_graph(staged: dict, planner: str, line: str) -> tuple[dict, list]:
    """Nodes {key: [type, widget values, position]} and links [from, output, to, input]: one String node's line
    spoken (TTS), lip-synced and subtitled (its dialogue line), cues saved, an audio chain under music, a talking
    camera move, a fitted dialogue shot with a mouth rig, a loaded clip appended with a dissolve, the film saved; the
    planner to shot prompts."""
    col = lambda c, r: [40 + c * 330, 40 + r * 230]  # noqa: E731
    nodes = {
        "line": ["PrimitiveStringMultiline", {"value": line}, col(0, 0)],
        "tts": ["AnimStudioTTS", {}, col(0, 1)],
        "tts2": ["AnimStudioTTS", {"text": "Yes."}, col(0, 3)],
        "lip": ["AnimStudioLipSync", {}, col(1, 0)],
        "cues": ["AnimStudioSaveMouthCues", {"filename_prefix": f"{STAGED}/cues"}, col(2, 0)],
        "norm": ["AnimStudioNormalizeLoudness", {}, col(1, 2)],
        "join": ["AnimStudioJoinAudio", {}, col(2, 2)],
        "fit": ["AnimStudioFitAudio", {"seconds": 3.0}, col(3, 2)],
        "music": ["AnimStudioLoadAudio", {"audio": staged["audio"]}, col(3, 3)],
        "mix": ["AnimStudioMixMusic", {}, col(4, 2)],
        "hear": ["PreviewAudio", {}, col(5, 2)],
        "panel": ["AnimStudioLoadPanel", {"image": staged["image"]}, col(0, 5)],
        "cam": ["AnimStudioCameraMove", {"seconds": 1.0, "fps": 8, "width": 64, "height": 64}, col(1, 5)],
        "between": ["AnimStudioInterpolateFrames", {}, col(2, 5)],
        "talk": ["AnimStudioTalkingMouth", {"x": 20, "y": 36, "width": 24, "height": 14, "fps": 16}, col(3, 5)],
        "see": ["PreviewImage", {}, col(4, 5)],
        "line1": ["AnimStudioDialogueLine", {"speaker": "mara"}, col(2, 3)],
        "line2": ["AnimStudioDialogueLine", {"text": "Yes.", "speaker": "tom"}, col(1, 4)],
        "dialogue": ["AnimStudioJoinDialogue", {}, col(3, 4)],
        "voices": ["AnimStudioDialogueAudio", {}, col(4, 4)],
        "rig": ["AnimStudioMouthRig", {"speaker": "mara", "x": 20, "y": 36, "width": 24, "height": 14}, col(4, 6)],
        "shot": ["AnimStudioShotClip", {"seconds": 1.0, "width": 64, "height": 64, "fps": 8, "fit_to_audio": True,
                                        "label": "talk", "control_after_generate": "fixed"}, col(5, 4)],
        "smooth": ["AnimStudioInterpolateClip", {}, col(6, 4)],
        "first": ["AnimStudioAppendClip", {}, col(7, 4)],
        "clip": ["AnimStudioLoadVideoClip", {"video": staged["video"], "label": "clip"}, col(6, 6)],
        "second": ["AnimStudioAppendClip", {"transition": "dissolve", "transition_seconds": 0.25}, col(8, 4)],
        "save": ["AnimStudioSaveFilm", {"filename_prefix": f"{STAGED}/film"}, col(9, 4)],
        "plan": ["AnimStudioPlanStoryboard", {"backend": "openai", "base_url": planner, "model": "stub",
                                              "control_after_generate": "fixed"}, col(0, 7)],
        "prompts": ["AnimStudioShotPrompts", {"shot_id": "a"}, col(1, 7)],
        "positive": ["PreviewAny", {}, col(2, 7)],
    }
    links = [
        ["line", 0, "tts", "text"], ["line", 0, "lip", "dialogue_text"], ["line", 0, "line1", "text"],
        ["tts", "audio", "lip", "audio"],
        ["lip", "mouth_cues", "cues", "mouth_cues"], ["tts", "audio", "cues", "audio"],
        ["tts", "audio", "norm", "audio"], ["norm", 0, "join", "first"], ["tts2", "audio", "join", "second"],
        ["join", 0, "fit", "audio"], ["fit", 0, "mix", "dialogue"], ["music", 0, "mix", "music"],
        ["mix", 0, "hear", "audio"],
        ["panel", 0, "cam", "images"], ["cam", 0, "between", "images"], ["between", 0, "talk", "base"],
        ["lip", "mouth_cues", "talk", "mouth_cues"], ["talk", 0, "see", "images"],
        ["tts", "audio", "line1", "audio"], ["lip", "mouth_cues", "line1", "mouth_cues"],
        ["tts2", "audio", "line2", "audio"], ["line1", 0, "dialogue", "first"], ["line2", 0, "dialogue", "second"],
        ["dialogue", 0, "voices", "dialogue"],
        ["panel", 0, "shot", "image"], ["voices", 0, "shot", "audio"], ["dialogue", 0, "shot", "dialogue"],
        ["rig", 0, "shot", "mouth_rigs"], ["shot", 0, "smooth", "clip"], ["smooth", 0, "first", "clip"],
        ["first", 0, "second", "film"], ["clip", 0, "second", "clip"], ["second", 0, "save", "film"],
        ["plan", 0, "prompts", "storyboard"], ["prompts", "positive", "positive", "source"],
    ]
    return nodes, links


@pytest.mark.comfyui
def test_pack_nodes_wired_on_the_canvas_run_to_a_film(comfy_server, artifacts, planner_url):
    from animstudio.nodes import NODE_CLASS_MAPPINGS

    sync_playwright = playwright_or_skip()
    started = time.monotonic()
    staged = _stage_inputs(comfy_server.base / "input")
    output = comfy_server.base / "output" / STAGED
    films_before = set(output.rglob("*.mp4")) if output.exists() else set()
    # the line carries the run's number: every node runs, none is answered from the server's cache of an earlier run
    line = f"{LINE[:-1]}, run {int(time.time()) % 1000}."
    nodes, links = _film_graph(staged, planner_url, line)
    skip_first_run_dialog(comfy_server.url)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page, watch = _open_editor(browser, comfy_server.url)
            ids = page.evaluate(BUILD_GRAPH, {"nodes": nodes, "links": links})
            page.evaluate(FIT_VIEW)
            page.wait_for_timeout(500)
            page.screenshot(path=str(artifacts / "graph-built.png"))
            sent = page.evaluate("async () => { const p = await app.graphToPrompt(); "
                                 "return {output: p.output, workflow: p.workflow}; }")
            prompt = sent["output"]
            for key, node_id in ids.items():
                assert prompt[str(node_id)]["class_type"] == nodes[key][0], (key, prompt[str(node_id)])
            # the line reaches the TTS, the lip sync and the dialogue line through its links, not their widgets
            for key, name in (("tts", "text"), ("lip", "dialogue_text"), ("line1", "text")):
                assert prompt[str(ids[key])]["inputs"][name] == [str(ids["line"]), 0], (key, prompt[str(ids[key])])
            assert prompt[str(ids["prompts"])]["inputs"]["storyboard"] == [str(ids["plan"]), 0]
            status, answer = _post_prompt(comfy_server.url, prompt, sent["workflow"],
                                          page.evaluate("() => app.api.clientId"))
            assert status == 200 and not answer.get("node_errors"), answer
            entry = _wait_for_history(comfy_server.url, [answer["prompt_id"]])[answer["prompt_id"]]
            assert entry["status"]["status_str"] == "success", _execution_error(entry) or entry["status"]
            outputs = entry["outputs"]
            # the film, the cues file, the mix, the talking frames and the shot prompts came out
            films = set(output.rglob("*.mp4")) - films_before
            assert films and all(f.stat().st_size > 0 for f in films), sorted(output.rglob("*"))
            assert outputs[str(ids["cues"])]["files"], outputs[str(ids["cues"])]
            assert outputs[str(ids["hear"])]["audio"] and outputs[str(ids["see"])]["images"]
            positive = outputs[str(ids["positive"])]["text"][0]
            assert "the fox looks up at the crow" in positive and "Vix" in positive, positive
            # the run's cues and audio reach the Lip Sync node's timeline; its play button shows pause while playing
            page.wait_for_function(f"() => app.graph.getNodeById({ids['lip']}).animstudioTimeline.cues?.length > 2",
                                   timeout=30_000)
            cues = page.evaluate(f"() => app.graph.getNodeById({ids['lip']}).animstudioTimeline.cues.map(c => c.value)")
            assert "A" in cues, cues  # "Big boats": b closes the lips
            played = _play_through(page, ids["lip"])
            page.evaluate(FIT_VIEW)
            page.wait_for_timeout(500)
            page.screenshot(path=str(artifacts / "graph-ran.png"))
            for key in ("shot", "lip"):  # readable: the shot with its first frame, the lip sync with its cues
                page.evaluate(f"() => {{ app.canvas.ds.scale = 0.9; "
                              f"app.canvas.centerOnNode(app.graph.getNodeById({ids[key]})); "
                              "app.canvas.setDirty(true, true); }")
                page.wait_for_timeout(400)
                page.screenshot(path=str(artifacts / f"graph-ran-{key}.png"))
            close_dialogs(page)
            assert not watch.problems(), watch.problems()
        finally:
            browser.close()
    ran = {}
    for key, (type_, _values, _pos) in nodes.items():
        if type_.startswith("AnimStudio"):
            ran.setdefault(type_, []).append(key)
    for type_, keys in ran.items():
        _record(type_, graphs=[f"ran in the wired film graph ({', '.join(keys)})"])
    _record("AnimStudioLipSync", graphs=[f"its timeline got the run's {len(cues)} cues; play showed {played}"])
    untouched = sorted(set(NODE_CLASS_MAPPINGS) - set(ran))
    for name in untouched:
        _record(name, graphs=["not run: needs model files"])
    _record("_timing", graph_test_seconds=round(time.monotonic() - started, 1))
    assert untouched == sorted(["AnimStudioCharacterLoRA", "AnimStudioSaveCharacterLoRA", "AnimStudioIPAdapter",
                                "AnimStudioConsistencyScore", "AnimStudioCheckModelFamily"]), untouched


def _timeline_part(lip_id: int, selector: str) -> str:
    return (f"app.graph.getNodeById({lip_id}).widgets.find(w => w.name === 'mouth_cue_timeline').element"
            f".querySelector('{selector}')")


def _click(page, element: str) -> None:
    """A real mouse click on a DOM widget's element (a user's gesture, which playing audio needs), the node brought
    into view at scale 1 first."""
    page.evaluate(f"""() => {{ const e = {element};
        const node = app.graph._nodes.find(n => n.widgets?.some(w => w.element?.contains(e)));
        app.canvas.ds.scale = 1; app.canvas.centerOnNode(node); app.canvas.setDirty(true, true); }}""")
    page.wait_for_timeout(300)
    box = page.evaluate(f"() => {{ const r = {element}.getBoundingClientRect(); "
                        "return {x: r.x + r.width / 2, y: r.y + r.height / 2, w: r.width}; }")
    assert box["w"] > 0, f"{element} is not shown"
    page.mouse.click(box["x"], box["y"])


def _play_through(page, lip_id: int) -> str:
    """Click ▶ on a Lip Sync timeline: it shows ⏸ while the audio plays, ▶ again when it ends; a click while
    playing pauses (▶). Returns what the button showed, in order."""
    button = _timeline_part(lip_id, ".animstudio-play")
    audio = f"app.graph.getNodeById({lip_id}).animstudioTimeline.audio"
    page.wait_for_function(f"() => !{button}.disabled", timeout=30_000)
    shown = [page.evaluate(f"() => {button}.textContent")]
    assert shown == ["▶"], shown
    _click(page, button)
    page.wait_for_function(f"() => {button}.textContent === '⏸' && !{audio}.paused", timeout=15_000)
    shown.append("⏸")
    _click(page, button)  # a click while playing pauses
    page.wait_for_function(f"() => {button}.textContent === '▶' && {audio}.paused && !{audio}.ended",
                           timeout=15_000)
    shown.append("▶ (paused)")
    _click(page, button)  # played on to its end, it shows ▶ again
    page.wait_for_function(f"() => {button}.textContent === '⏸'", timeout=15_000)
    page.wait_for_function(f"() => {audio}.ended && {button}.textContent === '▶'", timeout=30_000)
    shown += ["⏸", "▶ (ended)"]
    return " → ".join(shown)


# ---- 3. "Preview line" where the line comes through a link ------------------------------------------------------

def _preview(page, lip_id: int) -> str:
    """Click Preview line; wait for the answer; the info text."""
    info = _timeline_part(lip_id, ".animstudio-timeline-info")
    page.evaluate(f"() => {{ {info}.textContent = ''; }}")
    _click(page, _timeline_part(lip_id, ".animstudio-preview-line"))
    page.wait_for_function(f"() => {info}.textContent && {info}.textContent !== 'speaking…'", timeout=60_000)
    return page.evaluate(f"() => {info}.textContent")


@pytest.mark.comfyui
def test_preview_line_takes_a_linked_line_and_play_shows_pause(comfy_server, artifacts):
    """Preview line on a Lip Sync node whose dialogue_text is linked: from a String node, that node's text is spoken
    and timed; from TTS's notes output (computed by a run), it says so instead of "empty"; unlinked and empty with
    the audio from a TTS node, that node's line; its own text first; nothing at all: empty. ▶ shows ⏸ while playing."""
    sync_playwright = playwright_or_skip()
    started = time.monotonic()
    skip_first_run_dialog(comfy_server.url)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page, watch = _open_editor(browser, comfy_server.url)
            ids = page.evaluate(BUILD_GRAPH, {"nodes": {
                "line": ["PrimitiveStringMultiline", {"value": LINKED_LINE}, [60, 60]],
                "tts": ["AnimStudioTTS", {"text": LINE}, [60, 300]],
                "lip": ["AnimStudioLipSync", {"dialogue_text": ""}, [480, 120]],
            }, "links": [["line", 0, "lip", "dialogue_text"], ["tts", "audio", "lip", "audio"]]})
            lip = ids["lip"]
            timeline = f"app.graph.getNodeById({lip}).animstudioTimeline"

            # the line through a link from a String node: that node's text is previewed
            text = _preview(page, lip)
            assert "dialogue_text is empty" not in text and "cues" in text, text
            assert "String (Multiline)" in text, text
            line = page.evaluate(f"() => {timeline}.line")
            assert line["text"] == LINKED_LINE, line
            shapes = page.evaluate(f"() => {timeline}.cues.map(c => c.value)")
            assert len(shapes) > 2 and set(shapes) <= set("ABCDEFGHX"), shapes
            page.evaluate(f"() => app.canvas.centerOnNode(app.graph.getNodeById({lip}))")
            page.wait_for_timeout(300)
            page.screenshot(path=str(artifacts / "preview-linked-line.png"))
            played = _play_through(page, lip)

            # a line computed by a run (TTS's notes output): said so, not "empty"
            page.evaluate("""([tts, lip]) => { const t = app.graph.getNodeById(tts), l = app.graph.getNodeById(lip);
                t.connect(t.outputs.findIndex(o => o.name === 'notes'), l,
                          l.inputs.findIndex(i => i.name === 'dialogue_text')); }""", [ids["tts"], lip])
            text = _preview(page, lip)
            assert "comes through a link" in text and "run the graph" in text and "notes" in text, text
            page.screenshot(path=str(artifacts / "preview-line-through-a-link.png"))

            # dialogue_text empty and unlinked, the audio from TTS: the TTS node's line is previewed, in its voice
            page.evaluate(f"""() => {{ const l = app.graph.getNodeById({lip});
                l.disconnectInput(l.inputs.findIndex(i => i.name === 'dialogue_text')); }}""")
            text = _preview(page, lip)
            assert "cues" in text and "Text to Speech" in text, text
            assert page.evaluate(f"() => {timeline}.line.text") == LINE

            # its own text wins over the TTS node's
            page.evaluate(f"() => app.graph.getNodeById({lip}).widgets.find(w => w.name === 'dialogue_text')"
                          ".value = 'Own words.'")
            text = _preview(page, lip)
            assert "cues" in text and "line from" not in text, text
            assert page.evaluate(f"() => {timeline}.line.text") == "Own words."

            # nothing anywhere: empty
            page.evaluate(f"""() => {{ const l = app.graph.getNodeById({lip});
                l.widgets.find(w => w.name === 'dialogue_text').value = '';
                l.disconnectInput(l.inputs.findIndex(i => i.name === 'audio')); }}""")
            assert _preview(page, lip) == "dialogue_text is empty"
            close_dialogs(page)
            assert not watch.problems(), watch.problems()
        finally:
            browser.close()
    _record("AnimStudioLipSync", graphs=[f"Preview line took a linked String node's line and a linked TTS's line; "
                                         f"play showed {played}"])
    _record("_timing", preview_test_seconds=round(time.monotonic() - started, 1))
