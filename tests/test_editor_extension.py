"""The editor extension (js/animstudio.js) in a real ComfyUI, driven by Playwright in Debian's Chromium (marker
comfyui): the Storyboard sidebar tab builds a storyboard's graph onto the canvas, queues it to a film, and shows a
malformed storyboard's problems at their JSON paths. Screenshots go to $ANIMSTUDIO_TEST_ARTIFACTS (else tmp_path)."""
from __future__ import annotations

import json
import os
import shutil
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import write_panel

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
            assert any(t.startswith("s1:") for t in graph["titles"]) and any(t.startswith("s2:") for t in graph["titles"])
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
            page.wait_for_function("""() => app.graph._nodes.filter(n => n.type === 'AnimStudioShotClip')
                                        .every(n => n.imgs?.length && n.imgs[0].naturalWidth > 0)""", timeout=30_000)
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
