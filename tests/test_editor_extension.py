"""The editor extension (js/*.js) in a real ComfyUI, driven by Playwright in Debian's Chromium (marker comfyui): the
Storyboard sidebar tab shows a storyboard as cards and as JSON, builds its graph onto the canvas, queues it to a film,
and shows a malformed storyboard's problems at their JSON paths and on their cards; the bundled example is opened from
the input folder and queues exactly as shipped (music and all) to a graph with no overlapping nodes; the storyboard
lasts through closing the tab and reloading the page; reordered cards render in their new order; a prompt ComfyUI
refuses is shown as refused. Screenshots go to $ANIMSTUDIO_TEST_ARTIFACTS (else tmp_path)."""
from __future__ import annotations

import contextlib
import json
import re
import shutil
import time
import urllib.request
from pathlib import Path

import pytest

from browser import CHROMIUM, artifact_folder, close_dialogs, playwright_or_skip, skip_first_run_dialog
from conftest import EXAMPLE, write_panel

TAB_BUTTON = ".animstudio-storyboard-tab-button"

STORY = {"version": 1, "project": {"title": "Editor test", "width": 64, "height": 64, "fps": 8},
         "characters": {"mara": {"description": "a keeper", "voice": {"engine": "espeak"}}},
         "shots": [{"id": "s1", "description": "a lighthouse", "keyframe": "editor/p1.png", "duration": 1.0,
                    "camera": {"move": "zoom_in"}},
                   {"id": "s2", "description": "the sea", "keyframe": "editor/p2.png", "duration": 1.0,
                    "dialogue": [{"character": "mara", "text": "Big boats."}]}]}


@pytest.fixture()
def artifacts(tmp_path):
    return artifact_folder(tmp_path, "editor-extension")


def _queue_empty(url: str) -> bool:
    with urllib.request.urlopen(url + "/queue", timeout=30) as answer:
        queue = json.load(answer)
    return not queue["queue_running"] and not queue["queue_pending"]


def _history(url: str) -> dict:
    with urllib.request.urlopen(url + "/history", timeout=30) as answer:
        return json.load(answer)


def _films(output: Path) -> set[Path]:
    return set(output.rglob("*.mp4"))


def _paste(page, storyboard) -> None:
    """The storyboard typed into the panel's JSON view (a second view of the same storyboard as the cards)."""
    page.click(".animstudio-view-json")
    page.fill(".animstudio-storyboard-text", storyboard if isinstance(storyboard, str) else json.dumps(storyboard, indent=2))


def _storyboard_json(page) -> dict:
    """The storyboard as the JSON view shows it (the cards view is opened again afterwards)."""
    page.click(".animstudio-view-json")
    text = page.input_value(".animstudio-storyboard-text")
    page.click(".animstudio-view-cards")
    return json.loads(text)


def _validate(page) -> str:
    page.click(".animstudio-validate")
    page.wait_for_function("() => /Valid|problem/.test(document.querySelector('.animstudio-status').innerText)",
                           timeout=30_000)
    return page.inner_text(".animstudio-result")


# the graph on the canvas as the frontend draws it: each node's rectangle (title bar included), the pairs that
# overlap, the nodes outside every group
LAYOUT_JS = """() => {
    const rect = (b) => [b[0], b[1], b[2], b[3]];
    const nodes = app.graph._nodes.map(n => ({id: n.id, title: n.title, type: n.type,
        r: rect(n.boundingRect ?? n.getBounding())}));
    const overlaps = [];
    for (let i = 0; i < nodes.length; i++) for (let j = i + 1; j < nodes.length; j++) {
        const a = nodes[i].r, b = nodes[j].r;
        if (a[0] < b[0] + b[2] && b[0] < a[0] + a[2] && a[1] < b[1] + b[3] && b[1] < a[1] + a[3])
            overlaps.push([nodes[i].title, nodes[j].title]);
    }
    const groups = app.graph._groups.map(g => rect(g._bounding ?? g.boundingRect ?? g.bounding));
    const outside = nodes.filter(n => !groups.some(g => n.r[0] >= g[0] && n.r[1] >= g[1]
        && n.r[0] + n.r[2] <= g[0] + g[2] && n.r[1] + n.r[3] <= g[1] + g[3])).map(n => n.title);
    return {count: nodes.length, overlaps, outside, titles: nodes.map(n => n.title), types: nodes.map(n => n.type)};
}"""


def _wait_for_run(url: str, prompts_before: set, seconds: float) -> dict:
    """The history entries of the prompts queued since ``prompts_before``, once the queue is empty."""
    deadline = time.monotonic() + seconds
    time.sleep(2)
    while time.monotonic() < deadline and not (_queue_empty(url) and set(_history(url)) - prompts_before):
        time.sleep(2)
    return {k: v for k, v in _history(url).items() if k not in prompts_before}


@pytest.mark.comfyui
def test_storyboard_sidebar_builds_queues_and_reports(comfy_server, artifacts):
    sync_playwright = playwright_or_skip()
    write_panel(comfy_server.base / "input" / "editor" / "p1.png", size=(64, 64))
    write_panel(comfy_server.base / "input" / "editor" / "p2.png", color=(40, 90, 200), size=(64, 64))
    films_before = _films(comfy_server.base / "output")
    prompts_before = set(_history(comfy_server.url))  # the session's server ran other tests' prompts
    skip_first_run_dialog(comfy_server.url)
    console: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 950})
            page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
            page.on("pageerror", lambda e: console.append(f"pageerror: {e} {getattr(e, 'stack', '') or ''}"))
            page.goto(comfy_server.url, wait_until="domcontentloaded")
            page.wait_for_function("() => window.app && window.app.graph && window.app.extensionManager",
                                   timeout=90_000)
            close_dialogs(page)  # any first-run dialog that still opens
            # the extension and its settings and command are registered
            tab_button = page.locator(TAB_BUTTON)
            tab_button.wait_for(timeout=60_000)
            assert page.evaluate("() => app.extensionManager.setting.get('AnimStudio.Consistency.Threshold')") == 0.62
            assert page.evaluate("() => app.extensionManager.setting.get('AnimStudio.TTS.DefaultEngine')") == "espeak"
            # the command opens the tab
            page.evaluate("() => app.extensionManager.command.execute('AnimStudio.OpenStoryboard')")
            panel = page.locator(".animstudio-panel")
            panel.wait_for(timeout=15_000)
            page.screenshot(path=str(artifacts / "01-sidebar.png"))

            # a malformed storyboard: its problems at their JSON paths, on the card they belong to
            bad = json.loads(json.dumps(STORY))
            bad["project"]["width"] = 500
            bad["shots"][1]["duration"] = "long"
            _paste(page, bad)
            result = _validate(page)
            wheres = page.locator(".animstudio-where").all_inner_texts()
            assert "$.project.width" in wheres, wheres
            assert "must be a multiple of 8" in result
            page.click(".animstudio-view-cards")
            on_card = page.locator(".animstudio-card[data-index='1'] .animstudio-problem")
            assert on_card.count() >= 1 and "$.shots[1].duration" in on_card.first.inner_text()
            assert not page.locator(".animstudio-card[data-index='0'] .animstudio-problem").count()
            on_card.first.click()  # selects the field
            page.wait_for_function("() => document.activeElement?.dataset?.path === '$.shots[1].duration'")
            page.screenshot(path=str(artifacts / "02-problems.png"))
            # not JSON at all: the JSON view says so, the cards keep the last good storyboard
            _paste(page, "{not json")
            page.wait_for_function("() => document.querySelector('.animstudio-json-note').innerText.includes('not JSON')")

            # a good one validates (0 problems), shows as two cards with their panels, then builds onto the canvas
            _paste(page, STORY)
            assert "Valid: 2 shot(s), 1 character(s), 0 problems" in _validate(page)
            page.click(".animstudio-view-cards")
            page.wait_for_function("() => [...document.querySelectorAll('.animstudio-card-thumb')]"
                                   ".filter(i => i.naturalWidth === 64).length === 2", timeout=30_000)
            assert page.locator(".animstudio-cast-member").count() == 1
            # the cast's ▶ speaks one of the character's lines in their voice
            page.locator(".animstudio-voice-preview").first.click()
            page.wait_for_function("() => document.querySelector('.animstudio-voice-preview').textContent === '⏸'",
                                   timeout=30_000)
            # a card opens its shot's fields, labelled; edits go back into the storyboard
            page.locator(".animstudio-card[data-index='0']").click()
            assert "duration" in page.inner_text(".animstudio-shot-fields")
            page.locator(".animstudio-shot-duration").fill("1.5")
            page.locator(".animstudio-shot-duration").dispatch_event("change")
            page.locator(".animstudio-card[data-index='1']").click()
            page.locator(".animstudio-shot-move").select_option("pan_left")
            page.locator(".animstudio-line-text").first.fill("Big boats, Mara.")
            page.locator(".animstudio-line-text").first.dispatch_event("change")
            edited = _storyboard_json(page)
            assert edited["shots"][0]["duration"] == 1.5 and edited["shots"][1]["camera"]["move"] == "pan_left"
            assert edited["shots"][1]["dialogue"][0]["text"] == "Big boats, Mara."
            assert edited["shots"][0]["camera"]["move"] == "zoom_in" and edited["characters"] == STORY["characters"]
            page.click(".animstudio-build")
            page.wait_for_function("() => document.querySelector('.animstudio-status').innerText.includes('Built')",
                                   timeout=60_000)
            assert "2 shot(s)" in page.inner_text(".animstudio-status")
            tabs = page.evaluate("() => app.extensionManager.workflow.openWorkflows.length")
            graph = page.evaluate(LAYOUT_JS)
            assert graph["count"] >= 4 and "AnimStudioShotClip" in graph["types"], graph
            assert any(t.startswith("s1") for t in graph["titles"]) and any(t.startswith("s2") for t in graph["titles"])
            assert graph["overlaps"] == [] and graph["outside"] == [], graph
            page.screenshot(path=str(artifacts / "03-built.png"))
            # Build again: the same workflow tab, not a new one
            page.click(".animstudio-build")
            page.wait_for_function("() => document.querySelector('.animstudio-status').innerText.includes('Built')",
                                   timeout=60_000)
            assert page.evaluate("() => app.extensionManager.workflow.openWorkflows.length") == tabs

            # Queue film: the storyboard has not changed since the build, so the canvas is queued as it is
            page.click(".animstudio-queue")
            page.wait_for_function("() => /Queued\\.|Running|Finished|refused/.test("
                                   "document.querySelector('.animstudio-panel').innerText)", timeout=60_000)
            assert "refused" not in page.inner_text(".animstudio-result"), page.inner_text(".animstudio-result")
            history = _wait_for_run(comfy_server.url, prompts_before, 420)
            films = _films(comfy_server.base / "output") - films_before
            assert page.evaluate("() => app.extensionManager.workflow.openWorkflows.length") == tabs
            assert history, "the film was never queued"
            errors = [h["status"] for h in history.values() if h.get("status", {}).get("status_str") == "error"]
            assert not errors, errors
            assert films, f"no mp4 in {comfy_server.base / 'output'}; server log tail:\n{comfy_server.log()[-3000:]}"
            assert all(f.stat().st_size > 0 for f in films)
            # per-shot progress in the panel ends with every shot done
            try:
                page.wait_for_function("() => [...document.querySelectorAll('.animstudio-shot')]"
                                       ".every(e => e.classList.contains('animstudio-shot-done'))", timeout=30_000)
            except Exception:
                raise AssertionError(f"shots not all done: {_shot_rows(page)}; panel: "
                                     f"{page.inner_text('.animstudio-panel')[-1500:]}; console: {console[-20:]}")
            page.screenshot(path=str(artifacts / "04-queued.png"))
            # after the run: the shot nodes show their first frame (core ui.images), the camera preview travels the
            # renderer's crop windows, and the Lip Sync node's timeline has the line's cues and its audio to play
            # (the frontend loads a node's pictures when it draws the node: each shot is brought into view, as a
            # user scrolls to it)
            page.wait_for_function("""() => {
                const shots = app.graph._nodes.filter(n => n.type === 'AnimStudioShotClip');
                const missing = shots.find(n => !(n.imgs?.length && n.imgs[0].naturalWidth > 0));
                if (missing) { app.canvas.centerOnNode(missing); app.canvas.draw(true, true); }
                return !missing; }""", timeout=30_000)
            camera = page.evaluate("""() => app.graph._nodes.filter(n => n.type === 'AnimStudioShotClip')
                .map(n => ({move: n.widgets.find(w => w.name === 'camera_move').value,
                            windows: n.animstudioCameraPreview?.windows}))""")
            zoom = next(c for c in camera if c["move"] == "zoom_in")
            assert zoom["windows"][0] == [0, 0, 1, 1] and zoom["windows"][-1][2] - zoom["windows"][-1][0] < 0.85, zoom
            drawn = page.evaluate("""() => app.graph._nodes.filter(n => n.type === 'AnimStudioShotClip').map(n => {
                const c = n.animstudioCameraPreview.canvas;
                const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                let yellow = 0; for (let i = 0; i < data.length; i += 4)
                    if (data[i] > 200 && data[i + 1] > 180 && data[i + 2] < 120) yellow++;
                return {yellow, shown: c.getBoundingClientRect().height > 0}; })""")
            assert all(d["yellow"] > 20 and d["shown"] for d in drawn), drawn  # the window's outline is drawn
            pan = next(c for c in camera if c["move"] == "pan_left")
            assert pan["windows"][0][0] > pan["windows"][-1][0], pan
            # its executed message, or the run's history read back when the run ends, fills it
            page.wait_for_function("""() => app.graph._nodes.find(n => n.type === 'AnimStudioLipSync')
                ?.animstudioTimeline?.cues?.length > 0""", timeout=30_000)
            timeline = page.evaluate("""() => { const n = app.graph._nodes.find(n => n.type === 'AnimStudioLipSync');
                const box = n.widgets.find(w => w.name === 'mouth_cue_timeline').element;
                return {cues: (n.animstudioTimeline.cues || []).map(c => c.value),
                        playable: !box.querySelector('button').disabled}; }""")
            assert timeline["playable"] and "A" in timeline["cues"], timeline  # "Big boats": b closes the lips
            page.evaluate("""() => app.canvas.ds.offset = [0, 0]""")
            page.screenshot(path=str(artifacts / "04b-run-previews.png"))

            # a Lip Sync node carries the mouth-cue timeline; previewing its line fills it with cues
            page.evaluate("""() => {
                const node = LiteGraph.createNode("AnimStudioLipSync");
                node.pos = [100, 100];
                app.graph.add(node);
                node.widgets.find(w => w.name === "dialogue_text").value = "Hello there, ships.";
                window.__lipsync = node;
                node.widgets.find(w => w.name === "mouth_cue_timeline").element
                    .querySelectorAll("button")[1].click();
            }""")
            page.wait_for_function("() => window.__lipsync.animstudioTimeline.cues?.length > 0", timeout=60_000)
            shapes = page.evaluate("() => window.__lipsync.animstudioTimeline.cues.map(c => c.value)")
            assert set(shapes) <= set("ABCDEFGHX") and len(shapes) > 2, shapes
            page.screenshot(path=str(artifacts / "05-timeline.png"))
        finally:
            browser.close()
    (artifacts / "console.log").write_text("\n".join(console))
    bad_lines = [line for line in console if ("error" in line.lower() or "pageerror" in line)
                 and "animstudio" in line.lower()]
    assert not bad_lines, bad_lines


# ---- the bundled example as shipped, and prompts ComfyUI refuses (issue 15, items 14 and 15) --------------------

@contextlib.contextmanager
def _editor(url: str, artifacts: Path, log_name: str, before_opening=None):
    """A page on the editor with the Storyboard tab open, and the console lines it logs (kept in ``log_name``);
    the page must end without a page error or an error from the pack. ``before_opening(page)`` runs before the
    page loads (to route its websocket)."""
    sync_playwright = playwright_or_skip()
    skip_first_run_dialog(url)
    console: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield _open_editor(browser, url, console, before_opening), console
        finally:
            browser.close()
            (artifacts / log_name).write_text("\n".join(console))
    assert not _page_errors(console), _page_errors(console)


def _open_editor(browser, url: str, console: list[str], before_opening=None):
    """A page on the editor with the Storyboard tab open; console lines and page errors go to ``console``."""
    page = browser.new_page(viewport={"width": 1500, "height": 950})
    if before_opening:
        before_opening(page)
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: console.append(f"pageerror: {e} {getattr(e, 'stack', '') or ''}"))
    page.goto(url, wait_until="domcontentloaded")
    page.wait_for_function("() => window.app && window.app.graph && window.app.extensionManager", timeout=90_000)
    page.locator(TAB_BUTTON).wait_for(timeout=60_000)
    close_dialogs(page)
    page.evaluate("() => app.extensionManager.command.execute('AnimStudio.OpenStoryboard')")
    page.locator(".animstudio-panel").wait_for(timeout=15_000)
    # frontend 1.27.10 itself throws once while a fresh user's settings load (Comfy.Canvas.NavigationMode's
    # onChange, before the pack does anything); what happens from here on is the pack's and the graph's doing
    at_load = [line for line in _page_errors(console) if "animstudio" in line.lower()]
    assert not at_load, at_load
    console.clear()
    return page


def _page_errors(console: list[str]) -> list[str]:
    """Uncaught errors, and errors the frontend caught and logged that are a TypeError or pass through the pack
    (the frontend logs a refused prompt as a PromptExecutionError: that one is an answer, not a fault)."""
    return [line for line in console if line.startswith("pageerror")
            or (line.startswith("error") and not line.startswith("error: PromptExecutionError")
                and ("TypeError" in line or "animstudio" in line.lower()))]


def _shot_rows(page) -> dict[str, str]:
    """Each shot row of the panel's progress list: its text → its status class."""
    return page.evaluate("""() => Object.fromEntries([...document.querySelectorAll('.animstudio-shot')].map(e =>
        [e.innerText, [...e.classList].find(c => c !== 'animstudio-shot') || '']))""")


def _cards(page) -> list[str]:
    return page.locator(".animstudio-card").evaluate_all("cards => cards.map(c => c.dataset.shot)")


def _reopen_tab_and_reload(page, console: list[str], shots: list[str], name: str, artifacts: Path, tag: str) -> None:
    """Closing and opening the Storyboard tab, then reloading the page, keep the storyboard, its file and view."""
    page.evaluate("() => app.extensionManager.command.execute('Workspace.ToggleSidebarTab.animstudio-storyboard')")
    page.wait_for_function("() => !document.querySelector('.animstudio-panel')", timeout=15_000)
    page.evaluate("() => app.extensionManager.command.execute('AnimStudio.OpenStoryboard')")
    page.wait_for_function(f"() => document.querySelectorAll('.animstudio-card').length === {len(shots)}",
                           timeout=15_000)
    assert _cards(page) == shots and name in page.inner_text(".animstudio-file-name")
    before = len(console)
    page.reload(wait_until="domcontentloaded")
    page.wait_for_function("() => window.app && window.app.graph && window.app.extensionManager", timeout=90_000)
    page.locator(TAB_BUTTON).wait_for(timeout=60_000)
    close_dialogs(page)
    # as on the first load (see _open_editor): what the frontend throws while it starts again is its own; an error
    # whose stack passes through the pack stays
    console[before:] = [line for line in console[before:]
                        if not line.startswith("pageerror") or "animstudio" in line.lower()]
    if not page.locator(".animstudio-panel").count():
        page.evaluate("() => app.extensionManager.command.execute('AnimStudio.OpenStoryboard')")
    page.wait_for_function(f"() => document.querySelectorAll('.animstudio-card').length === {len(shots)}",
                           timeout=30_000)
    assert _cards(page) == shots and name in page.inner_text(".animstudio-file-name")
    page.screenshot(path=str(artifacts / f"{tag}-after-reload.png"))


@pytest.mark.comfyui
def test_bundled_example_opened_from_the_input_folder_and_queued_as_shipped(comfy_server, artifacts):
    """The bundled example, offered on first use, is put in the input folder as a folder and opened from there
    (its paths read from its own folder), validates with 0 problems, builds to a graph with no overlapping node and
    every node inside its shot's group, and queues from the panel to a film in the output folder, exactly as
    shipped (its music bed through the pack's Load Audio with core's player); no page error; the storyboard lasts
    through closing the tab and reloading the page."""
    from animstudio.translator.storyboard import load_storyboard
    from animstudio.translator.ui_to_api import ui_to_api
    from conftest import check_example_film

    shutil.rmtree(comfy_server.base / "input" / "lighthouse", ignore_errors=True)
    films_before = _films(comfy_server.base / "output")
    prompts_before = set(_history(comfy_server.url))
    with _editor(comfy_server.url, artifacts, "console-example.log") as (page, console):
        page.locator(".animstudio-example").click()
        page.wait_for_function("() => document.querySelectorAll('.animstudio-card').length === 4", timeout=30_000)
        assert (comfy_server.base / "input" / "lighthouse" / "storyboard.json").read_text() == EXAMPLE.read_text()
        assert "lighthouse/storyboard.json" in page.inner_text(".animstudio-file-name")
        assert "lighthouse" in page.locator(".animstudio-library option").all_inner_texts()[1]
        page.wait_for_function("() => [...document.querySelectorAll('img.animstudio-card-thumb')]"
                               ".every(i => i.naturalWidth > 0)", timeout=30_000)
        assert page.locator(".animstudio-cast-member").count() == 2
        assert "Valid: 4 shot(s), 2 character(s), 0 problems" in _validate(page)
        page.screenshot(path=str(artifacts / "10-example-cards.png"))
        page.click(".animstudio-build")
        page.wait_for_function("() => document.querySelector('.animstudio-status').innerText.includes('Built')",
                               timeout=60_000)
        assert "4 shot(s)" in page.inner_text(".animstudio-status")
        layout = page.evaluate(LAYOUT_JS)
        assert layout["overlaps"] == [] and layout["outside"] == [], layout
        assert not [t for t, k in zip(layout["titles"], layout["types"]) if k in t], layout["titles"]
        page.click(".animstudio-queue")
        page.wait_for_function("() => /Queued\\.|Running|Finished|refused/.test("
                               "document.querySelector('.animstudio-panel').innerText)", timeout=60_000)
        page.screenshot(path=str(artifacts / "10b-example-queued.png"))
        assert not _page_errors(console), _page_errors(console)
        # the music loader is the pack's node, not a stub: its file combo, core's player and upload button
        music = page.evaluate("""() => { const n = app.graph._nodes.find(n => n.type === 'AnimStudioLoadAudio');
            return n && {widgets: n.widgets.map(w => w.name), value: n.widgets.find(w => w.name === 'audio').value,
                         src: n.widgets.find(w => w.name === 'audioUI')?.element?.src || ''}; }""")
        assert music and "UNKNOWN" not in music["widgets"], music
        assert music["widgets"][:2] == ["audio", "audioUI"] and "upload" in music["widgets"], music
        assert music["value"].endswith(".ogg") and "/view?" in music["src"], music
        page.wait_for_function("""() => app.graph._nodes.find(n => n.type === 'AnimStudioLoadAudio')
            .widgets.find(w => w.name === 'audioUI').element.duration > 1""", timeout=30_000)
        sent = page.evaluate("async () => { const p = await app.graphToPrompt(); return {prompt: p.output,"
                             " workflow: p.workflow}; }")
        prompt = sent["prompt"]
        assert all(node.get("class_type") for node in prompt.values()), prompt
        with urllib.request.urlopen(comfy_server.url + "/object_info", timeout=60) as answer:
            info = json.load(answer)
        converted = ui_to_api(sent["workflow"], info)
        music_id = next(k for k, v in prompt.items() if v["class_type"] == "AnimStudioLoadAudio")
        assert prompt[music_id]["inputs"]["audioUI"] == ""
        assert converted == prompt
        result = page.inner_text(".animstudio-panel")
        assert "refused" not in result, result
        history = _wait_for_run(comfy_server.url, prompts_before, 480)
        assert history, "ComfyUI never ran the example"
        errors = [h["status"] for h in history.values() if h.get("status", {}).get("status_str") == "error"]
        assert not errors, errors
        films = sorted(_films(comfy_server.base / "output") - films_before)
        assert len(films) == 1, f"{films}; server log tail:\n{comfy_server.log()[-3000:]}"
        page.wait_for_function(
            "() => [...document.querySelectorAll('.animstudio-shot')].every(e => e.classList.contains('animstudio-shot-done'))", timeout=30_000)
        # after the run, with every preview drawn (each output node brought into view as a user scrolls to it),
        # still no node overlaps another
        page.evaluate("""async () => { for (const n of app.graph._nodes) { app.canvas.centerOnNode(n);
            app.canvas.draw(true, true); await new Promise(r => setTimeout(r, 50)); } }""")
        page.wait_for_timeout(1000)
        page.evaluate("() => app.canvas.draw(true, true)")
        layout = page.evaluate(LAYOUT_JS)
        assert layout["overlaps"] == [], layout
        # each shot node shows its first frame at the film's size (the editor prints it under the picture)
        sizes = page.evaluate("""() => app.graph._nodes.filter(n => n.type === 'AnimStudioShotClip')
            .map(n => [n.imgs?.[0]?.naturalWidth, n.imgs?.[0]?.naturalHeight])""")
        assert sizes == [[512, 288]] * 4, sizes
        assert page.locator(".animstudio-play-film").count() == 1  # the strip plays the film
        page.screenshot(path=str(artifacts / "11-example-finished.png"))
        _reopen_tab_and_reload(page, console, ["opening", "keeper-window", "ship-storm", "beam"],
                               "lighthouse/storyboard.json", artifacts, "12")
    check_example_film(films[0], load_storyboard(EXAMPLE))


def _queue_and_wait_for_answer(page, storyboard: dict) -> str:
    _paste(page, storyboard)
    _validate(page)  # the last answer's text gives way to "Valid"
    page.click(".animstudio-queue")
    page.wait_for_function("() => /Queued|refused/.test(document.querySelector('.animstudio-status').innerText)",
                           timeout=60_000)
    page.wait_for_timeout(300)
    close_dialogs(page)
    return page.inner_text(".animstudio-panel")


@pytest.mark.comfyui
def test_storyboard_panel_shows_a_refused_prompt(comfy_server, artifacts):
    """Item 15: the panel reads ComfyUI's answer to /prompt and shows a refusal (the error, the nodes by their
    storyboard ids) instead of "Queued.", and no shot stays "waiting" for a run that will not come: a prompt
    refused without node errors (HTTP 400: a node sent without its class_type, as the stub the editor made of
    Load Audio sent it), one refused for node errors (HTTP 400: a checkpoint absent on the server), and one ComfyUI
    queues only in part (HTTP 200 with node_errors: the outputs that do not need the checkpoint)."""
    write_panel(comfy_server.base / "input" / "editor" / "p1.png", size=(64, 64))
    write_panel(comfy_server.base / "input" / "editor" / "p2.png", color=(40, 90, 200), size=(64, 64))
    absent = json.loads(json.dumps(STORY))
    absent["project"].update({"checkpoint": "absent-on-this-server.safetensors", "steps": 1})
    for shot in absent["shots"]:  # every shot generated from the absent checkpoint, nothing else to run
        shot.pop("keyframe")
        shot.pop("dialogue", None)
    partly = json.loads(json.dumps(STORY))
    partly["project"].update({"checkpoint": "absent-on-this-server.safetensors", "steps": 1})
    del partly["shots"][0]["keyframe"]  # s1 generated, s2 from its panel with a spoken line
    prompts_before = set(_history(comfy_server.url))
    with _editor(comfy_server.url, artifacts, "console-refused.log") as (page, console):

        # refused without node errors: s2's shot node goes out without its class_type
        page.evaluate("""() => {
            const original = app.graphToPrompt;
            app.graphToPrompt = async function (...args) {
                const p = await original.apply(this, args);
                const ids = app.graph.extra?.animstudio?.node_ids || {};
                const uiId = Object.keys(p.output).find(k => String(ids[k] || '').startsWith('s2:')
                                                          && p.output[k].class_type === 'AnimStudioShotClip');
                delete p.output[uiId].class_type;
                window.__broken = ids[uiId];
                app.graphToPrompt = original;
                return p;
            };
        }""")
        text = _queue_and_wait_for_answer(page, STORY)
        page.screenshot(path=str(artifacts / "21-refused-prompt.png"))
        broken = page.evaluate("() => window.__broken")
        assert broken == "s2:clip", broken
        assert "Queued." not in text and "ComfyUI refused the film" in text, text
        assert "missing the class_type property" in text, text
        assert broken in page.locator(".animstudio-where").all_inner_texts(), text
        rows = _shot_rows(page)
        assert rows == {"film: not queued": "animstudio-shot-not-queued",
                        "s1: not queued": "animstudio-shot-not-queued", "s2: refused": "animstudio-shot-refused"}, rows
        assert not set(_history(comfy_server.url)) - prompts_before, "a refused prompt must not run"

        # refused for node errors: the checkpoint loader names a file the server does not have
        text = _queue_and_wait_for_answer(page, absent)
        page.screenshot(path=str(artifacts / "20-refused-node-errors.png"))
        assert "Queued." not in text and "ComfyUI refused the film" in text, text
        assert "absent-on-this-server.safetensors" in text, text
        assert "film:checkpoint" in page.locator(".animstudio-where").all_inner_texts(), text
        rows = _shot_rows(page)
        assert rows == {"film: refused": "animstudio-shot-refused", "s1: refused": "animstudio-shot-refused",
                        "s2: refused": "animstudio-shot-refused"}, rows

        # queued in part: s2's outputs run, s1 and the film (which needs s1) are refused
        text = _queue_and_wait_for_answer(page, partly)
        page.screenshot(path=str(artifacts / "22-queued-in-part.png"))
        assert "Queued." not in text and "ComfyUI refused part of the film" in text, text
        assert "film:checkpoint" in page.locator(".animstudio-where").all_inner_texts(), text
        rows = _shot_rows(page)
        assert rows["film: refused"] == rows["s1: refused"] == "animstudio-shot-refused", rows
        assert not any(r.startswith("s2: refused") or r.startswith("s2: not") for r in rows), rows
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and not (_queue_empty(comfy_server.url)
                                                  and set(_history(comfy_server.url)) - prompts_before):
            time.sleep(1)
        page.wait_for_function("() => document.querySelector('.animstudio-shot-done')?.innerText === 's2: done'",
                               timeout=30_000)
        rows = _shot_rows(page)
        assert rows == {"film: refused": "animstudio-shot-refused", "s1: refused": "animstudio-shot-refused",
                        "s2: done": "animstudio-shot-done"}, rows


# ---- a mouth placed by a click on the shot's keyframe (issue 16 part 3) ----------------------------------------

@pytest.mark.comfyui
def test_clicking_the_mouth_on_a_keyframe_sets_the_shots_mouth_box(comfy_server, artifacts):
    """The shot editor shows each shot's keyframe; a click puts the chosen character's mouth box there (a default
    size proportional to the picture, editable), written into the storyboard JSON as shots[i].mouths."""
    write_panel(comfy_server.base / "input" / "editor" / "mouth.png", size=(160, 90))
    story = json.loads(json.dumps(STORY))
    story["shots"] = [{"id": "m1", "description": "the keeper speaks", "keyframe": "editor/mouth.png",
                       "duration": 1.0, "dialogue": [{"character": "mara", "text": "Hello."}]}]
    with _editor(comfy_server.url, artifacts, "console-mouth.log") as (page, console):
        _paste(page, story)
        _validate(page)
        page.click(".animstudio-view-cards")
        page.locator(".animstudio-card[data-index='0']").click()
        page.wait_for_function("() => document.querySelector('.animstudio-keyframe')?.naturalWidth === 160",
                               timeout=30_000)
        assert page.input_value(".animstudio-mouth-character") == "mara"
        # the default size: 12 % of the keyframe's width, 0.6 as high
        assert (page.input_value(".animstudio-mouth-width"), page.input_value(".animstudio-mouth-height")) == ("19", "11")
        shown = page.locator(".animstudio-keyframe").bounding_box()
        # click where keyframe pixel (100, 30) is shown
        page.locator(".animstudio-keyframe").click(position={"x": 100.5 * shown["width"] / 160,
                                                             "y": 30.5 * shown["height"] / 90})
        box = _storyboard_json(page)["shots"][0]["mouths"]["mara"]
        assert (box["width"], box["height"]) == (19, 11)
        assert abs(box["x"] + box["width"] / 2 - 100.5) <= 1 and abs(box["y"] + box["height"] / 2 - 30.5) <= 1, box
        page.wait_for_function("() => document.querySelector('.animstudio-keyframe')?.naturalWidth === 160")
        page.wait_for_function("() => document.querySelectorAll(\".animstudio-mouth-box[data-character='mara']\").length === 1")
        page.screenshot(path=str(artifacts / "30-mouth-clicked.png"))
        # the size edited: the box keeps its centre
        page.fill(".animstudio-mouth-width", "30")
        page.locator(".animstudio-mouth-width").dispatch_event("change")
        resized = _storyboard_json(page)["shots"][0]["mouths"]["mara"]
        assert resized["width"] == 30 and resized["height"] == 11
        assert abs((resized["x"] + 15) - (box["x"] + box["width"] / 2)) <= 1
        # the storyboard with the clicked box is valid
        assert "0 problems" in _validate(page)


# ---- cards reordered by dragging render in their new order ---------------------------------------------------------

@pytest.mark.comfyui
def test_cards_reordered_by_dragging_render_in_the_new_order(comfy_server, artifacts, tmp_path):
    """A storyboard uploaded as a zip becomes a folder in the input folder and opens as cards; dragging the second
    card onto the first swaps the shots, Save writes the order back, and the queued film shows the shots in the new
    order (its first frames are the second panel's blue, its last the first panel's red); after the run a card
    plays its shot on hover; the storyboard lasts through closing the tab and reloading the page."""
    import zipfile

    import av
    import numpy as np

    story = {"version": 1, "project": {"title": "Reorder", "width": 64, "height": 64, "fps": 8},
             "characters": {},
             "shots": [{"id": "red", "description": "red", "keyframe": "panels/red.png", "duration": 1.0},
                       {"id": "blue", "description": "blue", "keyframe": "panels/blue.png", "duration": 1.0}]}
    write_panel(tmp_path / "red.png", color=(220, 30, 30), size=(64, 64))
    write_panel(tmp_path / "blue.png", color=(30, 40, 220), size=(64, 64))
    upload = tmp_path / "reorder-story.zip"
    with zipfile.ZipFile(upload, "w") as archive:
        archive.writestr("reorder-story/storyboard.json", json.dumps(story))
        archive.write(tmp_path / "red.png", "reorder-story/panels/red.png")
        archive.write(tmp_path / "blue.png", "reorder-story/panels/blue.png")
    folder = comfy_server.base / "input" / "reorder-story"
    shutil.rmtree(folder, ignore_errors=True)
    films_before = _films(comfy_server.base / "output")
    prompts_before = set(_history(comfy_server.url))
    with _editor(comfy_server.url, artifacts, "console-reorder.log") as (page, console):
        page.locator(".animstudio-upload-zip-input").set_input_files(str(upload))
        page.wait_for_function("() => document.querySelectorAll('.animstudio-card').length === 2", timeout=30_000)
        assert _cards(page) == ["red", "blue"]
        assert "reorder-story/storyboard.json" in page.inner_text(".animstudio-file-name")
        assert (folder / "panels" / "blue.png").is_file() and not list(folder.parent.rglob("reorder-story.zip"))
        page.locator(".animstudio-card[data-index='1']").drag_to(page.locator(".animstudio-card[data-index='0']"))
        page.wait_for_function("() => document.querySelector('.animstudio-card').dataset.shot === 'blue'",
                               timeout=10_000)
        assert _cards(page) == ["blue", "red"]
        page.click(".animstudio-save")
        page.wait_for_function("() => document.querySelector('.animstudio-status').innerText.includes('Saved')")
        assert [s["id"] for s in json.loads((folder / "storyboard.json").read_text())["shots"]] == ["blue", "red"]
        page.screenshot(path=str(artifacts / "40-reordered.png"))
        page.click(".animstudio-queue")
        page.wait_for_function("() => /Queued\\.|Finished|refused/.test(document.querySelector('.animstudio-status').innerText)",
                               timeout=60_000)
        assert "refused" not in page.inner_text(".animstudio-status")
        history = _wait_for_run(comfy_server.url, prompts_before, 300)
        assert history and not [h for h in history.values()
                                if h.get("status", {}).get("status_str") == "error"], history
        films = sorted(_films(comfy_server.base / "output") - films_before)
        assert len(films) == 1, films
        # the card plays its shot's stretch of the film on hover
        page.wait_for_function("() => !!document.querySelector('.animstudio-play-film')", timeout=30_000)
        page.locator(".animstudio-card[data-index='1']").hover()
        page.wait_for_function("() => { const v = document.querySelector('.animstudio-card-video');"
                               " return v && v.currentTime >= 0.99; }", timeout=30_000)
        page.screenshot(path=str(artifacts / "41-hover-plays.png"))
        page.mouse.move(0, 0)
        _reopen_tab_and_reload(page, console, ["blue", "red"], "reorder-story/storyboard.json", artifacts, "42")
    with av.open(str(films[0])) as container:
        frames = [f.to_ndarray(format="rgb24").reshape(-1, 3).mean(axis=0) for f in container.decode(video=0)]
    assert len(frames) == 16, len(frames)
    first, last = frames[1], frames[-2]
    assert first[2] > 150 and first[0] < 90, first  # blue first
    assert last[0] > 150 and last[2] < 90, last  # red last
    assert np.argmax(frames[4]) == 2 and np.argmax(frames[12]) == 0


# ---- edits on the canvas are kept, or Queue asks before a rebuild throws them away ---------------------------------

def _clip_seconds(prompt: dict) -> list[float]:
    return sorted(node["inputs"]["seconds"] for node in prompt.values() if node["class_type"] == "AnimStudioShotClip")


@pytest.mark.comfyui
def test_queue_keeps_canvas_edits_or_asks_before_overwriting_them(comfy_server, artifacts, tmp_path):
    """A storyboard uploaded as a folder opens from the input folder. After Build, a value changed on the canvas is
    queued as edited while the storyboard is unchanged; once the
    storyboard changes too, Queue asks before rebuilding: Cancel keeps the canvas (nothing queued), Overwrite
    rebuilds from the storyboard. The storyboard is kept in the built workflow's extra."""
    write_panel(comfy_server.base / "input" / "editor" / "p1.png", size=(64, 64))
    write_panel(comfy_server.base / "input" / "editor" / "p2.png", color=(40, 90, 200), size=(64, 64))
    story = json.loads(json.dumps(STORY))
    del story["shots"][1]["dialogue"]
    for shot, name in zip(story["shots"], ("p1.png", "p2.png")):
        shot["keyframe"] = f"panels/{name}"
        write_panel(tmp_path / "canvas-story" / "panels" / name, size=(64, 64))
    (tmp_path / "canvas-story" / "storyboard.json").write_text(json.dumps(story))
    shutil.rmtree(comfy_server.base / "input" / "canvas-story", ignore_errors=True)
    with _editor(comfy_server.url, artifacts, "console-canvas-edits.log") as (page, console):
        # "Upload storyboard folder": a folder picked in the browser lands in the input folder and opens
        page.locator(".animstudio-upload-folder-input").set_input_files(str(tmp_path / "canvas-story"))
        page.wait_for_function("() => document.querySelectorAll('.animstudio-card').length === 2", timeout=30_000)
        assert "canvas-story/storyboard.json" in page.inner_text(".animstudio-file-name")
        assert (comfy_server.base / "input" / "canvas-story" / "panels" / "p2.png").is_file()
        page.click(".animstudio-build")
        page.wait_for_function("() => document.querySelector('.animstudio-status').innerText.includes('Built')",
                               timeout=60_000)
        kept = page.evaluate("() => app.graph.extra.animstudio.storyboard.storyboard")
        assert kept == story
        # an edit on the canvas: s1's clip made 2 s long
        page.evaluate("""() => { const n = app.graph._nodes.find(n => n.type === 'AnimStudioShotClip');
            n.widgets.find(w => w.name === 'seconds').value = 2.0; app.graph.setDirtyCanvas(true, true); }""")
        prompts_before = set(_history(comfy_server.url))
        page.click(".animstudio-queue")
        page.wait_for_function("() => /Queued\\.|Finished|refused/.test(document.querySelector('.animstudio-status').innerText)",
                               timeout=60_000)
        history = _wait_for_run(comfy_server.url, prompts_before, 240)
        assert len(history) == 1, history
        sent = next(iter(history.values()))["prompt"][2]
        assert _clip_seconds(sent) == [1.0, 2.0]  # the canvas as edited
        # the storyboard changes too: Queue asks; Cancel keeps the canvas and queues nothing
        page.click(".animstudio-view-cards")
        page.locator(".animstudio-card[data-index='1']").click()
        page.locator(".animstudio-shot-duration").fill("1.5")
        page.locator(".animstudio-shot-duration").dispatch_event("change")
        page.click(".animstudio-queue")
        dialog = page.locator(".p-dialog")
        dialog.wait_for(timeout=15_000)
        assert "canvas edits are lost" in dialog.inner_text()
        page.screenshot(path=str(artifacts / "50-asks-before-overwriting.png"))
        dialog.get_by_role("button", name="Cancel").click()
        page.wait_for_function("() => document.querySelector('.animstudio-status').innerText.includes('Not queued')")
        assert page.evaluate("""() => app.graph._nodes.filter(n => n.type === 'AnimStudioShotClip')
            .map(n => n.widgets.find(w => w.name === 'seconds').value).sort()""") == [1.0, 2.0]
        # Overwrite: rebuilt from the storyboard and queued
        prompts_before = set(_history(comfy_server.url))
        page.click(".animstudio-queue")
        dialog.wait_for(timeout=15_000)
        dialog.get_by_role("button", name="Overwrite").click()
        page.wait_for_function("() => /Queued\\.|Finished|refused/.test(document.querySelector('.animstudio-status').innerText)",
                               timeout=60_000)
        history = _wait_for_run(comfy_server.url, prompts_before, 240)
        assert len(history) == 1, history
        assert _clip_seconds(next(iter(history.values()))["prompt"][2]) == [1.0, 1.5]


def _story_with_music_that_is_not_sound(base: Path) -> dict:
    """Two panel shots whose music file is not sound: ComfyUI accepts the prompt, the music node raises."""
    write_panel(base / "input" / "editor" / "p1.png", size=(64, 64))
    write_panel(base / "input" / "editor" / "p2.png", color=(40, 90, 200), size=(64, 64))
    (base / "input" / "editor" / "not-sound.wav").write_bytes(b"RIFF" + bytes(range(256)) * 8)
    story = json.loads(json.dumps(STORY))
    del story["shots"][1]["dialogue"]
    story["music"] = [{"file": "editor/not-sound.wav", "volume": 0.2}]
    return story


@pytest.mark.comfyui
def test_an_exception_in_a_node_shows_as_an_error_at_its_node(comfy_server, artifacts):
    """A prompt ComfyUI accepts but a node of which raises while it runs (a music file that is not sound) is shown
    as a failure with the node's message at the node's storyboard id, the film's row "failed", never "Finished."."""
    story = _story_with_music_that_is_not_sound(comfy_server.base)
    with _editor(comfy_server.url, artifacts, "console-exception.log") as (page, console):
        _paste(page, story)
        page.click(".animstudio-queue")
        page.wait_for_function("() => /Failed|Finished|refused/.test(document.querySelector('.animstudio-status')"
                               ".innerText)", timeout=120_000)
        close_dialogs(page)
        status = page.inner_text(".animstudio-status")
        assert status == "Failed at film · music", status
        assert "film:music" in page.locator(".animstudio-where").all_inner_texts()
        assert "AnimStudioLoadAudio" in page.inner_text(".animstudio-result")
        assert _shot_rows(page)["film: failed"] == "animstudio-shot-failed"
        page.screenshot(path=str(artifacts / "60-exception-in-a-node.png"))


@pytest.mark.comfyui
def test_the_end_of_a_run_whose_last_messages_were_lost_is_read_from_the_history(comfy_server, artifacts):
    """The websocket loses the run's closing messages (the node's exception, the end of the prompt, as while the
    socket reconnects): the panel still ends the run from ComfyUI's history once the queue is empty, with the node's
    error at its storyboard id and the film's row failed, never left running or waiting."""
    story = _story_with_music_that_is_not_sound(comfy_server.base)
    dropped: list[str] = []

    def lose_the_end(page):
        def route(ws):
            server = ws.connect_to_server()

            def from_server(message):
                kind = json.loads(message).get("type") if isinstance(message, str) else None
                data = json.loads(message).get("data") if isinstance(message, str) else None
                if kind in ("execution_error", "execution_success", "execution_interrupted") or (
                        kind == "executing" and isinstance(data, dict) and data.get("node") is None):
                    dropped.append(kind)
                    return
                ws.send(message)
            server.on_message(from_server)
        page.route_web_socket(re.compile(r"/ws(\?|$)"), route)

    with _editor(comfy_server.url, artifacts, "console-lost-messages.log", lose_the_end) as (page, console):
        _paste(page, story)
        page.click(".animstudio-queue")
        page.wait_for_function("() => /Failed|Finished|refused/.test(document.querySelector('.animstudio-status')"
                               ".innerText)", timeout=120_000)
        close_dialogs(page)
        assert "execution_error" in dropped and "executing" in dropped, dropped
        status = page.inner_text(".animstudio-status")
        assert status == "Failed at film · music", status
        assert "film:music" in page.locator(".animstudio-where").all_inner_texts()
        rows = _shot_rows(page)
        assert rows["film: failed"] == "animstudio-shot-failed", rows
        assert not any("waiting" in row or "running" in row for row in rows), rows


@pytest.mark.comfyui
def test_the_series_library_is_searched_from_the_panel_and_a_character_taken_into_the_storyboard(comfy_server,
                                                                                                  artifacts):
    """The panel's Series library searches the input folder's project library by meaning (a Russian query for an
    English description) and takes the character it finds into the storyboard as the library keeps them."""
    from animstudio.translator.library.ingest import add_storyboard
    from animstudio.translator.library.store import Library
    from animstudio.translator.storyboard import parse_storyboard

    episode = {"version": 1, "project": {"title": "Episode 1", "series": "Keepers", "episode": 1},
               "characters": {"mara": {"name": "Mara", "description": "a lighthouse keeper with grey hair",
                                       "wardrobe": "a yellow oilskin coat", "voice": {"engine": "espeak", "pitch": -3}},
                              "tom": {"name": "Tom", "description": "a fisherman's boy who sells shells"}},
               "shots": [{"id": "s1", "description": "waves break on the black rocks", "keyframe": "editor/p1.png"}]}
    write_panel(comfy_server.base / "input" / "editor" / "p1.png", size=(64, 64))
    library_file = comfy_server.base / "input" / "animstudio-library.db"
    with Library(library_file, create=True) as library:
        add_storyboard(library, parse_storyboard(episode, comfy_server.base / "input"), "episode-01.json")
    try:
        with _editor(comfy_server.url, artifacts, "console-series.log") as (page, console):
            _paste(page, STORY)
            page.click(".animstudio-series summary")
            page.fill(".animstudio-series-query", "смотритель маяка в жёлтом плаще")
            page.press(".animstudio-series-query", "Enter")
            page.locator(".animstudio-series-hit").first.wait_for(timeout=30_000)
            first = page.locator(".animstudio-series-hit").first.inner_text()
            assert "character · Mara" in first and "yellow oilskin coat" in first, first
            page.screenshot(path=str(artifacts / "40-series-search.png"))
            page.locator(".animstudio-series-hit").first.locator(".animstudio-series-take").click()
            page.wait_for_function("() => /mara is already in the storyboard/.test(document.querySelector("
                                   "'.animstudio-series-note').innerText)", timeout=15_000)
            taken = _storyboard_json(page)["characters"]
            assert taken["mara"]["description"] == "a keeper"  # the storyboard's own Mara is kept, not replaced
            page.fill(".animstudio-series-query", "a boy who sells seashells")
            page.press(".animstudio-series-query", "Enter")
            page.wait_for_function("() => /Tom/.test(document.querySelector('.animstudio-series-hit')?.innerText)",
                                   timeout=30_000)
            page.locator(".animstudio-series-hit").first.locator(".animstudio-series-take").click()
            tom = _storyboard_json(page)["characters"]["tom"]
            assert tom == {"name": "Tom", "description": "a fisherman's boy who sells shells",
                           "voice": {"engine": "espeak", "rate": 1.0, "pitch": 0.0}}
    finally:
        library_file.unlink(missing_ok=True)
