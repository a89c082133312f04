"""The pack's routes under /animstudio/: as plain handlers (no server), and on a real ComfyUI (marker comfyui)."""
from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from animstudio import routes
from animstudio.nodes.boundary import use_folders
from conftest import write_panel

STORY = {"version": 1, "project": {"title": "Routes", "width": 64, "height": 64, "fps": 8},
         "characters": {"mara": {"description": "a keeper", "voice": {"engine": "espeak"}}},
         "shots": [{"id": "s1", "description": "waves", "keyframe": "panels/p.png", "duration": 1.0,
                    "dialogue": [{"character": "mara", "text": "Hello there."}]}]}


@pytest.fixture()
def folders(tmp_path):
    write_panel(tmp_path / "input" / "panels" / "p.png", size=(64, 64))
    (tmp_path / "output").mkdir()
    with use_folders(tmp_path / "input", tmp_path / "output"):
        yield tmp_path


def test_validate_and_errors_at_their_json_path(folders):
    assert routes.handle("POST", "validate", {"storyboard": STORY}) == (
        200, {"ok": True, "problems": [], "shots": ["s1"], "characters": ["mara"],
              "camera_moves": ["static", "pan_left", "pan_right", "tilt_up", "tilt_down", "zoom_in", "zoom_out",
                               "dolly_in", "dolly_out", "shake"]})
    bad = json.loads(json.dumps(STORY))
    bad["project"]["width"] = 500
    status, answer = routes.handle("POST", "validate", {"storyboard": bad})
    assert status == 400 and not answer["ok"]
    assert {"where": "$.project.width", "message": "must be a multiple of 8, got 500"} in answer["problems"]
    assert routes.handle("POST", "validate", {})[1]["problems"][0]["where"] == "$.storyboard"
    assert routes.handle("POST", "validate", [1, 2])[0] == 400
    assert routes.handle("GET", "nothing", None)[0] == 404


@pytest.mark.parametrize("path", ["../../etc/passwd.png", "/etc/passwd.png", "panels/../../x.png"])
def test_storyboard_files_never_leave_the_input_folder(folders, path):
    bad = json.loads(json.dumps(STORY))
    bad["shots"][0]["keyframe"] = path
    status, answer = routes.handle("POST", "validate", {"storyboard": bad})
    assert status == 400 and answer["problems"][0]["where"] == "$.shots[0].keyframe"
    assert "leaves" in answer["problems"][0]["message"] or "absolute" in answer["problems"][0]["message"]


def test_tts_preview_speaks_and_gives_rhubarb_cues(folders):
    status, answer = routes.handle("POST", "tts_preview", {"text": "Hello there, ships.", "engine": "espeak"})
    assert status == 200, answer
    assert answer["audio"]["type"] == "temp" and answer["seconds"] > 0.5
    assert answer["cues"]["mouthCues"] and {c["value"] for c in answer["cues"]["mouthCues"]} <= set("ABCDEFGHX")
    assert routes.handle("POST", "tts_preview", {"text": "x" * 600})[1]["problems"][0]["where"] == "$.text"
    assert routes.handle("POST", "tts_preview", {"text": "hi", "engine": 3})[1]["problems"][0]["where"] == "$.engine"


def test_camera_path_is_the_renderers_crop_window(folders):
    from animstudio.nodes.film.camera import crop_window

    status, answer = routes.handle("POST", "camera_path", {"move": "zoom_in", "width": 512, "height": 288})
    assert status == 200 and answer["aspect"] == 512 / 288
    windows = answer["windows"]
    assert len(windows) == routes.CAMERA_PREVIEW_SAMPLES
    assert windows[0] == [0.0, 0.0, 1.0, 1.0]                      # a zoom in starts on the whole picture
    left, top, right, bottom = crop_window("zoom_in", 1.0, (0, 0, 512, 288))
    assert windows[-1] == pytest.approx([left / 512, top / 288, right / 512, bottom / 288], abs=1e-4)
    assert windows[-1][2] - windows[-1][0] == pytest.approx(1 / 1.25, abs=1e-4)  # ... and ends 1.25x tighter
    pan = routes.handle("POST", "camera_path", {"move": "pan_right", "width": 64, "height": 64})[1]["windows"]
    assert pan[0][0] < pan[-1][0]                                    # the window travels right
    assert all(0 <= v <= 1 for w in pan for v in w)                  # never past the picture's edge
    assert routes.handle("POST", "camera_path", {"move": "spin"})[1]["problems"][0]["where"] == "$.move"
    assert routes.handle("POST", "camera_path", {"move": "static", "width": "wide"})[1]["problems"][0]["where"] \
        == "$.width"


def test_lists(folders):
    assert "espeak" in routes.handle("GET", "voices", None)[1]["engines"]
    assert routes.handle("GET", "mouth_sets", None)[1]["builtin"] == ["preston_blair", "simple"]
    chars = routes.handle("POST", "characters", {"storyboard": STORY})[1]["characters"]
    assert chars[0]["id"] == "mara" and chars[0]["voice"]["engine"] == "espeak"


def _post(url, body: bytes):
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.comfyui
def test_routes_on_a_real_comfyui(comfy_server):
    base = comfy_server.url + "/animstudio/"
    write_panel(comfy_server.base / "input" / "panels" / "p.png", size=(64, 64))
    status, answer = _post(base + "validate", json.dumps({"storyboard": STORY}).encode())
    assert status == 200 and answer["ok"], answer
    status, answer = _post(base + "validate", b"{not json")
    assert status == 400 and answer["error"] == "the body is not JSON"
    status, answer = _post(base + "validate", b"{" + b" " * (routes.MAX_BODY + 10) + b"}")
    assert status == 413 and "over" in answer["error"]
    bad = json.loads(json.dumps(STORY))
    bad["shots"][0]["keyframe"] = "../../../etc/passwd.png"
    status, answer = _post(base + "validate", json.dumps({"storyboard": bad}).encode())
    assert status == 400 and answer["problems"][0]["where"] == "$.shots[0].keyframe"
    with urllib.request.urlopen(base + "voices", timeout=30) as listing:
        assert "espeak" in json.load(listing)["engines"]


def test_compile_gives_the_api_graph_and_a_laid_out_workflow(folders):
    status, answer = routes.handle("POST", "compile", {"storyboard": STORY})
    assert status == 200, answer
    api, workflow = answer["api"], answer["workflow"]
    assert api["s1:clip"]["class_type"] == "AnimStudioShotClip"
    assert len(workflow["nodes"]) == len(api) and {g["title"] for g in workflow["groups"]} >= {"s1"}
    assert set(workflow["extra"]["animstudio"]["node_ids"].values()) == set(api)
    assert routes.handle("POST", "compile", {"storyboard": STORY, "shape": "reel"})[1]["problems"][0]["where"] == "$.shape"


def test_compile_puts_the_files_the_graph_loads_in_the_input_folder(folders):
    status, answer = routes.handle("POST", "compile", {"storyboard": STORY})
    assert status == 200
    [graph] = answer["graphs"]
    for name in graph["uploads"]:
        assert (folders / "input" / name).is_file() and name.startswith("animstudio/panels/")
