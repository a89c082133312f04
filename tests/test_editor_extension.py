"""The editor extension (js/animstudio.js) in a real ComfyUI, driven by Playwright in Debian's Chromium (marker
comfyui): the Storyboard sidebar tab builds a storyboard's graph onto the canvas, queues it to a film, and shows a
malformed storyboard's problems at their JSON paths; the bundled example queues exactly as shipped (music and all),
and a prompt ComfyUI refuses is shown as refused. Screenshots go to $ANIMSTUDIO_TEST_ARTIFACTS (else tmp_path)."""
from __future__ import annotations

import json
import os
import shutil
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import EXAMPLE, write_panel

CHROMIUM = "/usr/bin/chromium"
TAB_BUTTON = ".animstudio-storyboard-tab-button"

STORY = {"version": 1, "project": {"title": "Editor test", "width": 64, "height": 64, "fps": 8},
         "characters": {"mara": {"description": "a keeper", "voice": {"engine": "espeak"}}},
         "shots": [{"id": "s1", "description": "a lighthouse", "keyframe": "editor/p1.png", "duration": 1.0,
                    "camera": {"move": "zoom_in"}},
                   {"id": "s2", "description": "the sea", "keyframe": "editor/p2.png", "duration": 1.0,
                    "dialogue": [{"character": "mara", "text": "Big boats."}]}]}


def _playwright():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed in this environment")
    if not (Path(CHROMIUM).exists() or shutil.which("chromium")):
        pytest.skip(f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium); no browser is downloaded")
    return sync_playwright


@pytest.fixture()
def artifacts(tmp_path):
    folder = Path(os.environ.get("ANIMSTUDIO_TEST_ARTIFACTS") or tmp_path) / "editor-extension"
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots: {folder}")
    return folder


def _queue_empty(url: str) -> bool:
    with urllib.request.urlopen(url + "/queue", timeout=30) as answer:
        queue = json.load(answer)
    return not queue["queue_running"] and not queue["queue_pending"]


def _skip_first_run_dialog(url: str) -> None:
    """A fresh ComfyUI user sees the templates browser over the canvas; mark the tutorial seen."""
    request = urllib.request.Request(url + "/settings/Comfy.TutorialCompleted", data=b"true", method="POST",
                                     headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=30).close()


def _history(url: str) -> dict:
    with urllib.request.urlopen(url + "/history", timeout=30) as answer:
        return json.load(answer)


def _films(output: Path) -> set[Path]:
    return set(output.rglob("*.mp4"))


@pytest.mark.comfyui
def test_storyboard_sidebar_builds_queues_and_reports(comfy_server, artifacts):
    sync_playwright = _playwright()
    write_panel(comfy_server.base / "input" / "editor" / "p1.png", size=(64, 64))
    write_panel(comfy_server.base / "input" / "editor" / "p2.png", color=(40, 90, 200), size=(64, 64))
    films_before = _films(comfy_server.base / "output")
    prompts_before = set(_history(comfy_server.url))  # the session's server ran other tests' prompts
    _skip_first_run_dialog(comfy_server.url)
    console: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 950})
            page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
            page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
            page.goto(comfy_server.url, wait_until="domcontentloaded")
            page.wait_for_function("() => window.app && window.app.graph && window.app.extensionManager",
                                   timeout=90_000)
            for _ in range(5):  # any first-run dialog that still opens
                if not page.locator(".p-dialog-mask").count():
                    break
                page.keyboard.press("Escape")
                page.wait_for_timeout(300)
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

            # a malformed storyboard: its problems at their JSON paths
            bad = json.loads(json.dumps(STORY))
            bad["project"]["width"] = 500
            bad["shots"][1]["duration"] = "long"
            page.fill(".animstudio-storyboard-text", json.dumps(bad, indent=2))
            page.click(".animstudio-validate")
            page.locator(".animstudio-where").first.wait_for(timeout=30_000)
            wheres = page.locator(".animstudio-where").all_inner_texts()
            assert "$.project.width" in wheres, wheres
            assert "must be a multiple of 8" in page.inner_text(".animstudio-result")
            page.screenshot(path=str(artifacts / "02-problems.png"))
            # not JSON at all
            page.fill(".animstudio-storyboard-text", "{not json")
            page.click(".animstudio-validate")
            page.wait_for_function("() => document.querySelector('.animstudio-result').innerText.includes('not JSON')")

            # a good one validates, then builds onto the canvas
            page.fill(".animstudio-storyboard-text", json.dumps(STORY, indent=2))
            page.click(".animstudio-validate")
            page.wait_for_function("() => document.querySelector('.animstudio-result').innerText.includes('Valid')")
            assert "s1, s2" in page.inner_text(".animstudio-result")
            # the shot editor writes its fields back into the storyboard text
            page.locator(".animstudio-shot-duration").first.fill("1.5")
            page.locator(".animstudio-shot-duration").first.dispatch_event("change")
            page.locator(".animstudio-shot-move").nth(1).select_option("pan_left")
            edited = json.loads(page.input_value(".animstudio-storyboard-text"))
            assert edited["shots"][0]["duration"] == 1.5 and edited["shots"][1]["camera"]["move"] == "pan_left"
            assert edited["shots"][0]["camera"]["move"] == "zoom_in" and edited["characters"] == STORY["characters"]
            page.click(".animstudio-build")
            page.wait_for_function("() => document.querySelector('.animstudio-result').innerText.includes('Built')",
                                   timeout=60_000)
            graph = page.evaluate("""() => ({
                count: app.graph._nodes.length,
                types: app.graph._nodes.map(n => n.type),
                titles: app.graph._nodes.map(n => n.title),
                ids: app.graph.extra?.animstudio?.node_ids || {} })""")
            assert graph["count"] >= 4 and "AnimStudioShotClip" in graph["types"], graph
            assert any(t.startswith("s1") for t in graph["titles"]) and any(t.startswith("s2") for t in graph["titles"])
            page.screenshot(path=str(artifacts / "03-built.png"))

            # Queue film: builds again and queues; runs to a film in the output folder
            page.click(".animstudio-queue")
            page.wait_for_function("() => /Queued\\.|Running|Finished|refused/.test("
                                   "document.querySelector('.animstudio-panel').innerText)", timeout=60_000)
            assert "refused" not in page.inner_text(".animstudio-result"), page.inner_text(".animstudio-result")
            deadline = time.monotonic() + 420
            time.sleep(2)
            while time.monotonic() < deadline and not (_queue_empty(comfy_server.url)
                                                      and set(_history(comfy_server.url)) - prompts_before):
                time.sleep(2)
            films = _films(comfy_server.base / "output") - films_before
            history = {k: v for k, v in _history(comfy_server.url).items() if k not in prompts_before}
            assert history, "the film was never queued"
            errors = [h["status"] for h in history.values() if h.get("status", {}).get("status_str") == "error"]
            assert not errors, errors
            assert films, f"no mp4 in {comfy_server.base / 'output'}; server log tail:\n{comfy_server.log()[-3000:]}"
            assert all(f.stat().st_size > 0 for f in films)
            # per-shot progress in the panel ends with every shot done
            page.wait_for_function(
                "() => [...document.querySelectorAll('.animstudio-shot')].every(e => e.classList.contains('animstudio-shot-done'))", timeout=30_000)
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

def _open_editor(browser, url: str, console: list[str]):
    """A page on the editor with the Storyboard tab open; console lines and page errors go to ``console``."""
    page = browser.new_page(viewport={"width": 1500, "height": 950})
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
    page.goto(url, wait_until="domcontentloaded")
    page.wait_for_function("() => window.app && window.app.graph && window.app.extensionManager", timeout=90_000)
    page.locator(TAB_BUTTON).wait_for(timeout=60_000)
    _close_dialogs(page)
    page.evaluate("() => app.extensionManager.command.execute('AnimStudio.OpenStoryboard')")
    page.locator(".animstudio-panel").wait_for(timeout=15_000)
    # frontend 1.27.10 itself throws once while a fresh user's settings load (Comfy.Canvas.NavigationMode's
    # onChange, before the pack does anything); what happens from here on is the pack's and the graph's doing
    at_load = [line for line in _page_errors(console) if "animstudio" in line.lower()]
    assert not at_load, at_load
    console.clear()
    return page


def _close_dialogs(page) -> None:
    """First-run dialogs, and the error dialog the frontend opens over the canvas when a prompt is refused."""
    for _ in range(5):
        if not page.locator(".p-dialog-mask").count():
            break
        page.keyboard.press("Escape")
        page.wait_for_timeout(300)


def _stage_example(input_dir: Path) -> None:
    """The example's files where the routes look for a posted storyboard's files: ComfyUI's input folder, at the
    paths the storyboard names (panels/…, music/…)."""
    for sub in ("panels", "music"):
        shutil.copytree(EXAMPLE.parent / sub, input_dir / sub, dirs_exist_ok=True)


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


@pytest.mark.comfyui
def test_bundled_example_queues_from_the_editor_as_shipped(comfy_server, artifacts):
    """Item 14: the example exactly as shipped (its music bed included) builds without a page error, its Load
    Audio node is the real node with core's audio player, ComfyUI accepts the prompt and the film renders."""
    from animstudio.translator.storyboard import load_storyboard
    from animstudio.translator.ui_to_api import ui_to_api
    from conftest import check_example_film

    sync_playwright = _playwright()
    _stage_example(comfy_server.base / "input")
    films_before = _films(comfy_server.base / "output")
    prompts_before = set(_history(comfy_server.url))
    _skip_first_run_dialog(comfy_server.url)
    console: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = _open_editor(browser, comfy_server.url, console)
            page.fill(".animstudio-storyboard-text", EXAMPLE.read_text())
            page.click(".animstudio-queue")
            page.wait_for_function("() => /Queued\\.|Running|Finished|refused/.test("
                                   "document.querySelector('.animstudio-panel').innerText)", timeout=60_000)
            page.screenshot(path=str(artifacts / "10-example-queued.png"))
            assert not _page_errors(console), _page_errors(console)
            # the music loader is the pack's node, not a stub: its file combo, core's player and upload button
            music = page.evaluate("""() => { const n = app.graph._nodes.find(n => n.type === 'AnimStudioLoadAudio');
                return n && {widgets: n.widgets.map(w => w.name), value: n.widgets.find(w => w.name === 'audio').value,
                             src: n.widgets.find(w => w.name === 'audioUI')?.element?.src || ''}; }""")
            assert music and "UNKNOWN" not in music["widgets"], music
            assert music["widgets"][:2] == ["audio", "audioUI"] and "upload" in music["widgets"], music
            assert music["value"].endswith(".ogg") and "/view?" in music["src"], music
            # the player can play the staged file (Chromium decodes the Ogg Vorbis bed)
            page.wait_for_function("""() => app.graph._nodes.find(n => n.type === 'AnimStudioLoadAudio')
                .widgets.find(w => w.name === 'audioUI').element.duration > 1""", timeout=30_000)
            sent = page.evaluate("async () => { const p = await app.graphToPrompt(); return {prompt: p.output,"
                                 " workflow: p.workflow}; }")
            prompt = sent["prompt"]
            assert all(node.get("class_type") for node in prompt.values()), prompt
            # the workflow the editor saves converts (the pack's UI→API converter) to the prompt the editor sends,
            # core's player value included (sent empty; ComfyUI drops it: the node does not declare it)
            with urllib.request.urlopen(comfy_server.url + "/object_info", timeout=60) as answer:
                info = json.load(answer)
            converted = ui_to_api(sent["workflow"], info)
            music_id = next(k for k, v in prompt.items() if v["class_type"] == "AnimStudioLoadAudio")
            assert prompt[music_id]["inputs"]["audioUI"] == ""
            assert converted == prompt
            page.evaluate(f"() => {{ app.canvas.centerOnNode(app.graph.getNodeById({music_id})); "
                          "app.canvas.setDirty(true, true); }")
            page.wait_for_timeout(300)
            page.screenshot(path=str(artifacts / "10b-example-music-node.png"))
            result = page.inner_text(".animstudio-panel")
            assert "refused" not in result, result
            deadline = time.monotonic() + 480
            while time.monotonic() < deadline and not (_queue_empty(comfy_server.url)
                                                      and set(_history(comfy_server.url)) - prompts_before):
                time.sleep(2)
            history = {k: v for k, v in _history(comfy_server.url).items() if k not in prompts_before}
            assert history, "ComfyUI never ran the example"
            errors = [h["status"] for h in history.values() if h.get("status", {}).get("status_str") == "error"]
            assert not errors, errors
            films = sorted(_films(comfy_server.base / "output") - films_before)
            assert len(films) == 1, f"{films}; server log tail:\n{comfy_server.log()[-3000:]}"
            page.wait_for_function(
                "() => [...document.querySelectorAll('.animstudio-shot')].every(e => e.classList.contains('animstudio-shot-done'))", timeout=30_000)
            page.screenshot(path=str(artifacts / "11-example-finished.png"))
        finally:
            browser.close()
            (artifacts / "console-example.log").write_text("\n".join(console))
    assert not _page_errors(console), _page_errors(console)
    check_example_film(films[0], load_storyboard(EXAMPLE))


def _queue_and_wait_for_answer(page, storyboard: dict) -> str:
    page.fill(".animstudio-storyboard-text", json.dumps(storyboard, indent=2))
    page.evaluate("() => { document.querySelector('.animstudio-status').textContent = '';"
                  " document.querySelector('.animstudio-result').replaceChildren(); }")  # the last answer's text
    page.click(".animstudio-queue")
    page.wait_for_function("() => /Queued|Refused|refused/.test(document.querySelector('.animstudio-status').innerText"
                           " + document.querySelector('.animstudio-result').innerText)", timeout=60_000)
    page.wait_for_timeout(300)
    _close_dialogs(page)
    return page.inner_text(".animstudio-panel")


@pytest.mark.comfyui
def test_storyboard_panel_shows_a_refused_prompt(comfy_server, artifacts):
    """Item 15: the panel reads ComfyUI's answer to /prompt and shows a refusal (the error, the nodes by their
    storyboard ids) instead of "Queued.", and no shot stays "waiting" for a run that will not come: a prompt
    refused without node errors (HTTP 400: a node sent without its class_type, as the stub the editor made of
    Load Audio sent it), one refused for node errors (HTTP 400: a checkpoint absent on the server), and one ComfyUI
    queues only in part (HTTP 200 with node_errors: the outputs that do not need the checkpoint)."""
    sync_playwright = _playwright()
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
    _skip_first_run_dialog(comfy_server.url)
    console: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = _open_editor(browser, comfy_server.url, console)

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
        finally:
            browser.close()
            (artifacts / "console-refused.log").write_text("\n".join(console))
    assert not _page_errors(console), _page_errors(console)


# ---- a mouth placed by a click on the shot's keyframe (issue 16 part 3) ----------------------------------------

@pytest.mark.comfyui
def test_clicking_the_mouth_on_a_keyframe_sets_the_shots_mouth_box(comfy_server, artifacts):
    """The shot editor shows each shot's keyframe; a click puts the chosen character's mouth box there (a default
    size proportional to the picture, editable), written into the storyboard JSON as shots[i].mouths."""
    sync_playwright = _playwright()
    write_panel(comfy_server.base / "input" / "editor" / "mouth.png", size=(160, 90))
    story = json.loads(json.dumps(STORY))
    story["shots"] = [{"id": "m1", "description": "the keeper speaks", "keyframe": "editor/mouth.png",
                       "duration": 1.0, "dialogue": [{"character": "mara", "text": "Hello."}]}]
    _skip_first_run_dialog(comfy_server.url)
    console: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = _open_editor(browser, comfy_server.url, console)
            page.fill(".animstudio-storyboard-text", json.dumps(story, indent=2))
            page.click(".animstudio-validate")
            page.wait_for_function("() => document.querySelector('.animstudio-keyframe')?.naturalWidth === 160",
                                   timeout=30_000)
            assert page.input_value(".animstudio-mouth-character") == "mara"
            # the default size: 12 % of the keyframe's width, 0.6 as high
            assert (page.input_value(".animstudio-mouth-width"), page.input_value(".animstudio-mouth-height")) == ("19", "11")
            shown = page.locator(".animstudio-keyframe").bounding_box()
            # click where keyframe pixel (100, 30) is shown
            page.locator(".animstudio-keyframe").click(position={"x": 100.5 * shown["width"] / 160,
                                                                 "y": 30.5 * shown["height"] / 90})
            box = json.loads(page.input_value(".animstudio-storyboard-text"))["shots"][0]["mouths"]["mara"]
            assert (box["width"], box["height"]) == (19, 11)
            assert abs(box["x"] + box["width"] / 2 - 100.5) <= 1 and abs(box["y"] + box["height"] / 2 - 30.5) <= 1, box
            assert page.locator(".animstudio-mouth-box[data-character='mara']").count() == 1
            page.screenshot(path=str(artifacts / "30-mouth-clicked.png"))
            # the size edited: the box keeps its centre
            page.fill(".animstudio-mouth-width", "30")
            page.locator(".animstudio-mouth-width").dispatch_event("change")
            resized = json.loads(page.input_value(".animstudio-storyboard-text"))["shots"][0]["mouths"]["mara"]
            assert resized["width"] == 30 and resized["height"] == 11
            assert abs((resized["x"] + 15) - (box["x"] + box["width"] / 2)) <= 1
            # the storyboard with the clicked box is valid
            page.click(".animstudio-validate")
            page.wait_for_function("() => document.querySelector('.animstudio-result').innerText.includes('Valid')")
        finally:
            browser.close()
            (artifacts / "console-mouth.log").write_text("\n".join(console))
    assert not _page_errors(console), _page_errors(console)
