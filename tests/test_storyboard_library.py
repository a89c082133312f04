"""Storyboards as folders in ComfyUI's input folder (translator/storyboard_library.py) through the pack's routes:
listed, opened with their paths read from their own folder, saved back, the bundled example offered, a zip
unpacked under limits and never outside its folder."""
from __future__ import annotations

import io
import json
import zipfile

import pytest

from animstudio import routes
from animstudio.nodes.boundary import use_folders
from animstudio.translator import storyboard_library as library
from conftest import EXAMPLE, write_panel

STORY = {"version": 1, "project": {"title": "Folder story", "width": 64, "height": 64, "fps": 8},
         "characters": {"mara": {"description": "a keeper", "voice": {"engine": "espeak"}}},
         "shots": [{"id": "s1", "description": "waves", "keyframe": "panels/p.png", "duration": 1.0}]}


@pytest.fixture()
def input_dir(tmp_path):
    (tmp_path / "output").mkdir()
    with use_folders(tmp_path / "input", tmp_path / "output"):
        (tmp_path / "input").mkdir()
        yield tmp_path / "input"


def _story_folder(root, name, story=STORY):
    write_panel(root / name / "panels" / "p.png", size=(64, 64))
    (root / name / "storyboard.json").write_text(json.dumps(story))


def test_listed_opened_and_validated_from_their_own_folder(input_dir):
    _story_folder(input_dir, "sea")
    _story_folder(input_dir / "series", "ep1")
    (input_dir / "animstudio" / "staged").mkdir(parents=True)  # the pack's own files are not storyboards
    (input_dir / "animstudio" / "staged" / "storyboard.json").write_text("{}")
    (input_dir / "broken").mkdir()
    (input_dir / "broken" / "storyboard.json").write_text("{nope")
    status, answer = routes.handle("GET", "storyboards", None)
    assert status == 200
    assert answer["storyboards"] == [{"folder": "broken", "title": None}, {"folder": "sea", "title": "Folder story"},
                                     {"folder": "series/ep1", "title": "Folder story"}]
    assert answer["examples"] == [{"name": "lighthouse", "title": "The Last Lighthouse"}]
    status, opened = routes.handle("POST", "storyboard_open", {"folder": "series/ep1"})
    assert status == 200 and opened["storyboard"] == STORY
    # panels/p.png is found in series/ep1/panels, not in the input folder's root
    assert routes.handle("POST", "validate", {"storyboard": STORY, "folder": "series/ep1"})[0] == 200
    status, answer = routes.handle("POST", "validate", {"storyboard": STORY})
    assert status == 400 and answer["problems"][0]["where"] == "$.shots[0].keyframe"
    status, answer = routes.handle("POST", "storyboard_open", {"folder": "broken"})
    assert status == 400 and "not valid JSON" in answer["error"]


@pytest.mark.parametrize("folder", ["../x", "/etc", "sea/../../x", 7, ""])
def test_folders_never_leave_the_input_folder(input_dir, folder):
    _story_folder(input_dir, "sea")
    for route, body in [("storyboard_open", {"folder": folder}),
                        ("storyboard_save", {"folder": folder, "storyboard": STORY}),
                        ("validate", {"folder": folder, "storyboard": STORY})]:
        status, answer = routes.handle("POST", route, body)
        if folder == "" and route == "validate":
            continue  # no folder: the input folder itself
        assert status == 400 and answer["problems"][0]["where"] == "$.folder", (route, answer)


def test_save_writes_back_beside_its_files(input_dir):
    _story_folder(input_dir, "sea")
    edited = json.loads(json.dumps(STORY))
    edited["shots"][0]["duration"] = 2.5
    assert routes.handle("POST", "storyboard_save", {"folder": "sea", "storyboard": edited}) == (
        200, {"ok": True, "folder": "sea"})
    assert json.loads((input_dir / "sea" / "storyboard.json").read_text()) == edited
    assert not list((input_dir / "sea").glob("*.partial"))
    status, answer = routes.handle("POST", "storyboard_save", {"folder": "new", "storyboard": edited})
    assert status == 400 and "does not exist" in answer["problems"][0]["message"]


def test_the_bundled_example_is_put_in_the_input_folder_once(input_dir):
    status, answer = routes.handle("POST", "storyboard_example", {"name": "lighthouse"})
    assert status == 200 and answer["folder"] == "lighthouse"
    assert answer["storyboard"] == json.loads(EXAMPLE.read_text())
    assert (input_dir / "lighthouse" / "music").is_dir() and (input_dir / "lighthouse" / "panels").is_dir()
    # validates as shipped, its paths read from its folder
    assert routes.handle("POST", "validate", {"storyboard": answer["storyboard"], "folder": "lighthouse"})[0] == 200
    (input_dir / "lighthouse" / "storyboard.json").write_text(json.dumps(STORY))  # the user's edits stay
    assert routes.handle("POST", "storyboard_example", {"name": "lighthouse"})[1]["storyboard"] == STORY
    assert routes.handle("POST", "storyboard_example", {"name": "../x"})[0] == 400


def _zip(entries: dict[str, bytes], links: tuple[str, ...] = ()) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
        for name in links:
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o120777 << 16
            archive.writestr(info, "/etc/passwd")
    return buffer.getvalue()


def test_a_zip_becomes_a_storyboard_folder(input_dir):
    write_panel(input_dir.parent / "p.png", size=(64, 64))
    panel = (input_dir.parent / "p.png").read_bytes()
    (input_dir / "uploads").mkdir()
    (input_dir / "uploads" / "my story.zip").write_bytes(_zip({
        "my story/storyboard.json": json.dumps(STORY).encode(), "my story/panels/p.png": panel,
        "__MACOSX/my story/._storyboard.json": b"junk"}))
    status, answer = routes.handle("POST", "storyboard_unzip", {"file": "uploads/my story.zip"})
    assert status == 200 and answer["folder"] == "my_story" and answer["storyboard"] == STORY
    assert sorted(p.relative_to(input_dir / "my_story").as_posix() for p in (input_dir / "my_story").rglob("*")
                  if p.is_file()) == ["panels/p.png", "storyboard.json"]
    assert not (input_dir / "uploads" / "my story.zip").exists()
    assert routes.handle("POST", "validate", {"storyboard": STORY, "folder": "my_story"})[0] == 200
    # a second upload of the same name gets a folder of its own
    (input_dir / "uploads" / "my story.zip").write_bytes(_zip({"storyboard.json": b"{}"}))
    assert routes.handle("POST", "storyboard_unzip", {"file": "uploads/my story.zip"})[1]["folder"] == "my_story-2"


@pytest.mark.parametrize("entries,links,message", [
    ({"../evil.txt": b"x", "storyboard.json": b"{}"}, (), "outside its folder"),
    ({"/abs.txt": b"x", "storyboard.json": b"{}"}, (), "outside its folder"),
    ({"storyboard.json": b"{}"}, ("panels/link.png",), "outside its folder"),
    ({"panels/p.png": b"x"}, (), "no storyboard"),
])
def test_a_hostile_zip_is_refused_whole(input_dir, entries, links, message):
    (input_dir / "bad.zip").write_bytes(_zip(entries, links))
    status, answer = routes.handle("POST", "storyboard_unzip", {"file": "bad.zip"})
    assert status == 400 and message in answer["error"], answer
    assert sorted(p.name for p in input_dir.iterdir()) == ["bad.zip"]
    assert not (input_dir.parent / "evil.txt").exists()


def test_zip_limits_and_missing_files(input_dir, monkeypatch):
    monkeypatch.setattr(library, "MAX_ZIP_MEMBERS", 3)
    (input_dir / "many.zip").write_bytes(_zip({f"f{i}": b"x" for i in range(5)} | {"storyboard.json": b"{}"}))
    status, answer = routes.handle("POST", "storyboard_unzip", {"file": "many.zip"})
    assert status == 400 and "too many files" in answer["error"]
    (input_dir / "not.zip").write_bytes(b"plain text")
    assert "cannot unpack" in routes.handle("POST", "storyboard_unzip", {"file": "not.zip"})[1]["error"]
    for file in ["missing.zip", "../outside.zip", None]:
        status, answer = routes.handle("POST", "storyboard_unzip", {"file": file})
        assert status == 400 and answer["problems"][0]["where"] == "$.file"
