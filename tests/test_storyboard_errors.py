"""Malformed storyboards: each is refused with a StoryboardError whose problems name the exact JSON path.

Every case starts from a small valid storyboard (a real PNG panel, a real WAV cue) and breaks one
thing. The loader must report it at the right place with a message that says what was expected,
and the CLI must exit 2 with the same problem and no traceback.
"""
from __future__ import annotations

import copy
import json
import os
import wave

import pytest
from PIL import Image

from animstudio.cli import main
from animstudio.common.errors import StoryboardError
from animstudio.translator.storyboard import load_storyboard

BASE = {
    "version": 1,
    "project": {"title": "Tide", "width": 512, "height": 288, "fps": 12, "seed": 7},
    "characters": {
        "mara": {"name": "Mara", "description": "a girl in a red coat",
                 "lora": {"file": "mara.safetensors", "weight": 0.8, "trigger_words": ["mara_v1"]}},
        "otto": {"description": "an old dog"},
    },
    "scenes": {"beach": {"description": "wet sand", "location": "a beach"}},
    "shots": [
        {"id": "s1", "description": "Mara walks", "scene": "beach", "characters": ["mara"],
         "camera": {"shot": "wide", "move": "pan_left"}, "duration": 3.0,
         "dialogue": [{"character": "mara", "text": "Here we are.", "emotion": "happy"}],
         "transition": {"type": "fade_black", "duration": 0.5}, "keyframe": "panels/p1.png"},
        {"id": "s2", "description": "the dog barks", "characters": ["otto"], "duration": 2.0,
         "transition": {"type": "dissolve", "duration": 0.5}, "keyframe": "panels/p1.png"},
    ],
    "music": [{"file": "music/theme.wav", "start_shot": "s1", "volume": 0.4}],
}


@pytest.fixture
def folder(tmp_path):
    """The storyboard's folder, with a panel, a music cue, a text file, and a PNG just outside it."""
    board = tmp_path / "board"
    (board / "panels").mkdir(parents=True)
    Image.new("RGB", (16, 9), (200, 40, 40)).save(board / "panels" / "p1.png")
    (board / "music").mkdir()
    with wave.open(str(board / "music" / "theme.wav"), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(8000), w.writeframes(b"\0\0" * 800)
    (board / "notes.txt").write_text("not an image")
    (board / "panels" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"cut short")  # a PNG that stops early
    Image.new("RGB", (16, 9)).save(tmp_path / "x.png")  # exists, but outside the storyboard's folder
    return board


def write(folder, data) -> str:
    path = folder / "storyboard.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data, indent=2), encoding="utf-8")
    return str(path)


def put(dotted: str, value):
    """A mutation setting ``dotted`` (``shots.0.duration``) to ``value``."""
    def mutate(d):
        *head, last = [int(k) if k.isdigit() else k for k in dotted.split(".")]
        for key in head:
            d = d[key]
        d[last] = value
    return mutate


def drop(dotted: str):
    def mutate(d):
        *head, last = [int(k) if k.isdigit() else k for k in dotted.split(".")]
        for key in head:
            d = d[key]
        del d[last]
    return mutate


def both(*mutations):
    def mutate(d):
        for m in mutations:
            m(d)
    return mutate


def rename_top(old, new):
    def mutate(d):
        d[new] = d.pop(old)
    return mutate


BROKEN_JSON = '{\n  "version": 1,\n    oops\n}\n'

# (id, mutation or raw text, where, words the message must contain)
CASES = [
    ("invalid-json", BROKEN_JSON, "line 3, column 5", "property name"),
    ("top-level-array", "[1, 2]", "$", "expected object, got array"),
    ("wrong-version", put("version", 2), "$.version", "expected 1, got 2"),
    ("missing-title", drop("project.title"), "$.project", "missing required property 'title'"),
    ("empty-title", put("project.title", ""), "$.project.title", "must not be empty"),
    ("unknown-top-level", rename_top("shots", "shot"), "$", "unknown property 'shot' (did you mean 'shots'?)"),
    ("missing-shots", drop("shots"), "$", "missing required property 'shots'"),
    ("width-not-multiple-of-8", put("project.width", 500), "$.project.width", "multiple of 8"),
    ("fps-zero", put("project.fps", 0), "$.project.fps", "must be >= 1"),
    ("width-a-string", put("project.width", "512"), "$.project.width", "expected integer, got string"),
    ("negative-duration", put("shots.1.duration", -2), "$.shots[1].duration", "seconds > 0"),
    ("duration-other-string", put("shots.1.duration", "long"), "$.shots[1].duration", "fit_to_dialogue"),
    ("duration-boolean", put("shots.1.duration", True), "$.shots[1].duration", "got true"),
    ("fit-without-dialogue", put("shots.1.duration", "fit_to_dialogue"), "$.shots[1].duration", "needs dialogue"),
    ("characters-a-string", put("shots.0.characters", "mara"), "$.shots[0].characters", "expected array, got string"),
    ("characters-twice", put("shots.0.characters", ["mara", "mara"]), "$.shots[0].characters", "same item twice"),
    ("unknown-shot-character", put("shots.1.characters", ["oto"]), "$.shots[1].characters[0]",
     "unknown character 'oto' (did you mean 'otto'?)"),
    ("unknown-dialogue-character", put("shots.0.dialogue.0.character", "nobody"), "$.shots[0].dialogue[0].character",
     "unknown character 'nobody'"),
    ("unknown-scene", put("shots.0.scene", "beech"), "$.shots[0].scene", "unknown scene 'beech' (did you mean 'beach'?)"),
    ("duplicate-shot-id", put("shots.1.id", "s1"), "$.shots[1].id", "duplicate shot id 's1'"),
    ("bad-shot-id", put("shots.0.id", "shot one!"), "$.shots[0].id", "not a valid id"),
    ("keyframe-missing", put("shots.0.keyframe", "panels/nope.png"), "$.shots[0].keyframe", "file not found"),
    ("keyframe-dotdot", put("shots.0.keyframe", "../x.png"), "$.shots[0].keyframe", "leaves the storyboard's folder"),
    ("keyframe-absolute", put("shots.0.keyframe", "/etc/passwd.png"), "$.shots[0].keyframe", "leaves the storyboard"),
    ("keyframe-drive", put("shots.0.keyframe", "C:/x.png"), "$.shots[0].keyframe", "leaves the storyboard"),
    ("keyframe-backslash", put("shots.0.keyframe", "panels\\p1.png"), "$.shots[0].keyframe", "use '/'"),
    ("keyframe-not-image", put("shots.0.keyframe", "notes.txt"), "$.shots[0].keyframe", "not a supported file"),
    ("camera-move-enum", put("shots.0.camera.move", "zoom-in"), "$.shots[0].camera.move", "did you mean 'zoom_in'?"),
    ("camera-unknown-key", put("shots.0.camera.angle", "low"), "$.shots[0].camera", "unknown property 'angle'"),
    ("emotion-enum", put("shots.0.dialogue.0.emotion", "joyful"), "$.shots[0].dialogue[0].emotion",
     "expected one of neutral, happy"),
    ("transition-too-long", put("shots.1.transition.duration", 2.0), "$.shots[1].transition.duration",
     "not shorter than the shot"),
    ("dissolve-first-shot", put("shots.0.transition.type", "dissolve"), "$.shots[0].transition.type",
     "use cut or fade_black"),
    ("empty-shots", put("shots", []), "$.shots", "at least 1"),
    ("generated-without-checkpoint", drop("shots.1.keyframe"), "$.project.checkpoint", "'s2' has no keyframe"),
    ("music-missing", put("music.0.file", "music/none.wav"), "$.music[0].file", "file not found"),
    ("music-not-audio", put("music.0.file", "panels/p1.png"), "$.music[0].file", "not a supported file"),
    ("music-unknown-start", put("music.0.start_shot", "s9"), "$.music[0].start_shot", "unknown shot 's9'"),
    ("lora-weight-range", put("characters.mara.lora.weight", 5), "$.characters.mara.lora.weight", "must be <= 4"),
    ("lora-without-file", drop("characters.mara.lora.file"), "$.characters.mara.lora", "missing required property 'file'"),
    ("mouth-shapes-unknown", put("characters.otto.mouth_shapes", "cartoon"), "$.characters.otto.mouth_shapes",
     "neither a built-in mouth set"),
    ("reference-image-missing", put("characters.otto.reference_images", ["ref/otto.png"]),
     "$.characters.otto.reference_images[0]", "file not found"),
    ("reference-image-unreadable", put("characters.otto.reference_images", ["panels/broken.png"]),
     "$.characters.otto.reference_images[0]", "'panels/broken.png' is not a readable image"),
    ("keyframe-unreadable", put("shots.0.keyframe", "panels/broken.png"), "$.shots[0].keyframe", "not a readable image"),
    ("voice-rate-zero", put("characters.otto.voice", {"rate": 0}), "$.characters.otto.voice.rate", "must be > 0"),
    ("cfg-a-string", both(put("project.cfg", "high"), put("project.checkpoint", "m.safetensors")),
     "$.project.cfg", "expected number, got string"),
]
CLI_SUBSET = {"invalid-json", "top-level-array", "wrong-version", "unknown-top-level", "width-not-multiple-of-8",
              "negative-duration", "fit-without-dialogue", "unknown-dialogue-character", "keyframe-dotdot",
              "camera-move-enum", "generated-without-checkpoint", "lora-weight-range", "duplicate-shot-id"}


def make(folder, change) -> str:
    if isinstance(change, str):
        return write(folder, change)
    data = copy.deepcopy(BASE)
    change(data)
    return write(folder, data)


def test_base_storyboard_is_valid(folder):
    board = load_storyboard(write(folder, BASE))
    assert [s.id for s in board.shots] == ["s1", "s2"]
    assert board.shots[0].keyframe == (folder / "panels" / "p1.png").resolve()
    assert board.music[0].file.name == "theme.wav"
    assert main(["validate", write(folder, BASE)]) == 0


def test_cases_are_distinct():
    assert len({c[0] for c in CASES}) == len(CASES) >= 18
    assert CLI_SUBSET <= {c[0] for c in CASES}


@pytest.mark.parametrize("change, where, words", [pytest.param(*c[1:], id=c[0]) for c in CASES])
def test_load_reports_problem_at_path(folder, change, where, words):
    path = make(folder, change)
    with pytest.raises(StoryboardError) as info:
        load_storyboard(path)
    err = info.value
    assert err.exit_code == 2
    at = [p for p in err.problems if p.where == where]
    assert at, f"no problem at {where}: {err.problems}"
    assert any(words in p.message for p in at), f"{words!r} not in {[p.message for p in at]}"
    assert path in err.summary


@pytest.mark.parametrize("change, where, words", [pytest.param(*c[1:], id=c[0]) for c in CASES if c[0] in CLI_SUBSET])
def test_cli_validate_reports_problem(folder, capsys, change, where, words):
    path = make(folder, change)
    assert main(["validate", path]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "Traceback" not in err
    assert err.startswith("animstudio: ")
    assert any(line.strip().startswith(f"{where}: ") and words in line for line in err.splitlines()), err

    assert main(["validate", "--json", path]) == 2
    out, err = capsys.readouterr()
    payload = json.loads(out)
    assert payload["ok"] is False and payload["error"] == "StoryboardError"
    assert any(p["where"] == where and words in p["message"] for p in payload["problems"])
    assert "Traceback" not in err


def test_missing_file(tmp_path, capsys):
    path = tmp_path / "nowhere" / "storyboard.json"
    with pytest.raises(StoryboardError, match="no such storyboard file") as info:
        load_storyboard(path)
    assert str(path) in info.value.summary
    assert main(["validate", str(path)]) == 2
    _, err = capsys.readouterr()
    assert "no such storyboard file" in err and "Traceback" not in err


def test_unreadable_file_is_a_storyboard_error(tmp_path, capsys):
    (tmp_path / "bad.json").write_bytes(b'{"version": 1, "project": {"title": "\xff\xfe"}}')
    with pytest.raises(StoryboardError, match="cannot read the storyboard"):
        load_storyboard(tmp_path / "bad.json")
    assert main(["validate", str(tmp_path)]) == 2  # a folder, not a file
    assert "Traceback" not in capsys.readouterr().err


def test_schema_problems_all_reported_together(folder):
    data = copy.deepcopy(BASE)
    for change in (put("project.width", 500), put("project.fps", 0), put("shots.0.camera.move", "zoom-in"),
                   put("shots.0.dialogue.0.emotion", "joyful"), put("characters.mara.lora.weight", 5),
                   put("shots.1.duration", -1)):
        change(data)
    with pytest.raises(StoryboardError) as info:
        load_storyboard(write(folder, data))
    wheres = [p.where for p in info.value.problems]
    assert sorted(wheres) == sorted(["$.project.width", "$.project.fps", "$.shots[0].camera.move",
                                     "$.shots[0].dialogue[0].emotion", "$.characters.mara.lora.weight",
                                     "$.shots[1].duration"])
    assert info.value.summary.endswith("6 problems in the storyboard")


def test_schema_reference_and_file_problems_in_one_pass(folder, capsys):
    """The README's own example: a bad width (the schema), an unknown character and a missing file (the checks after
    it) reported at once, not one stage at a time."""
    data = copy.deepcopy(BASE)
    for change in (put("project.width", 500), put("shots.1.characters", ["mra"]),
                   put("shots.1.keyframe", "panels/03.png")):
        change(data)
    data["characters"]["mara"]["lorra"] = {}  # an unknown property goes too, and the rest is still checked
    path = write(folder, data)
    assert main(["validate", path]) == 2
    err = capsys.readouterr().err
    assert "4 problems in the storyboard" in err
    assert "$.project.width: must be a multiple of 8, got 500" in err
    assert "$.characters.mara: unknown property 'lorra' (did you mean 'lora'?)" in err
    assert "$.shots[1].characters[0]: unknown character 'mra' (did you mean 'mara'?)" in err
    assert "$.shots[1].keyframe: file not found: 'panels/03.png'" in err
    assert "$.shots[1].dialogue" not in err


def test_a_refused_required_property_reports_the_schema_alone(folder):
    data = copy.deepcopy(BASE)
    del data["shots"][0]["description"]
    data["shots"][1]["characters"] = ["mra"]
    with pytest.raises(StoryboardError) as info:
        load_storyboard(write(folder, data))
    assert [p.where for p in info.value.problems] == ["$.shots[0]"]  # no safe copy to check the rest on


def test_cross_reference_problems_all_reported_together(folder, capsys):
    data = copy.deepcopy(BASE)
    for change in (put("shots.0.scene", "moon"), put("shots.1.characters", ["ghost"]), put("shots.1.id", "s1"),
                   put("shots.0.keyframe", "../x.png"), put("music.0.start_shot", "s3"),
                   put("shots.0.dialogue.0.character", "otto2")):
        change(data)
    path = write(folder, data)
    with pytest.raises(StoryboardError) as info:
        load_storyboard(path)
    wheres = {p.where for p in info.value.problems}
    expected = {"$.shots[0].scene", "$.shots[1].characters[0]", "$.shots[1].id", "$.shots[0].keyframe",
                "$.music[0].start_shot", "$.shots[0].dialogue[0].character"}
    assert expected <= wheres
    assert main(["validate", path]) == 2
    err = capsys.readouterr().err
    assert all(f"  {w}: " in err for w in expected) and "Traceback" not in err


# ---- hostile paths: these must be refused as storyboard problems, never crash the loader

@pytest.mark.parametrize("keyframe", ["panels/a\u0000.png", "a" * 300 + ".png", "loop.png"],
                         ids=["nul-byte", "name-too-long", "symlink-loop"])
def test_hostile_keyframe_path_is_a_problem_not_a_crash(folder, capsys, keyframe):
    os.symlink("loop.png", folder / "loop.png")
    path = make(folder, put("shots.0.keyframe", keyframe))
    with pytest.raises(StoryboardError) as info:
        load_storyboard(path)
    assert [p.where for p in info.value.problems] == ["$.shots[0].keyframe"]
    assert main(["validate", path]) == 2
    err = capsys.readouterr().err
    assert "$.shots[0].keyframe: " in err and "Traceback" not in err


def test_symlink_out_of_folder_is_refused(folder):
    os.symlink(folder.parent / "x.png", folder / "panels" / "out.png")
    with pytest.raises(StoryboardError) as info:
        load_storyboard(make(folder, put("shots.0.keyframe", "panels/out.png")))
    assert [p.where for p in info.value.problems] == ["$.shots[0].keyframe"]
    assert "leaves the storyboard's folder" in info.value.problems[0].message


def test_nan_duration_is_refused(folder):
    text = json.dumps(BASE).replace('"duration": 2.0', '"duration": NaN')
    assert "NaN" in text
    path = write(folder, text)
    with pytest.raises(StoryboardError) as info:
        load_storyboard(path)
    assert any(p.where == "$.shots[1].duration" for p in info.value.problems)
    assert main(["validate", path]) == 2


def test_a_caption_no_font_draws_is_refused_before_anything_renders(folder, tmp_path, capsys):
    """The project's font (a file beside the storyboard, Latin only here) cannot draw a Chinese line: validate and
    an embedded render refuse it at the line's path, before anything is synthesised or rendered."""
    import shutil

    from animstudio.nodes.film.subtitles import find_font

    shutil.copyfile(find_font("Hello"), folder / "latin.ttf")
    data = copy.deepcopy(BASE)
    data["project"]["subtitles"] = {"font": "latin.ttf"}
    data["shots"][0]["dialogue"].append({"character": "otto", "text": "灯塔在那里", "language": "cmn"})
    path = write(folder, data)
    assert main(["validate", path]) == 2
    err = capsys.readouterr().err
    assert "$.shots[0].dialogue[1].text: the subtitle font" in err and "'灯' (U+706F)" in err
    assert "dialogue[0]" not in err
    out = tmp_path / "out"
    assert main(["render", path, "-o", str(out), "-q"]) == 2
    assert "$.shots[0].dialogue[1].text" in capsys.readouterr().err and not out.exists()
    data["project"]["subtitles"]["burn"] = False  # sidecar files only: nothing to draw
    assert main(["validate", write(folder, data)]) == 0


def test_a_voice_this_machine_lacks_is_refused_before_anything_renders(folder, tmp_path, capsys):
    """An espeak-ng voice it does not have and a Piper voice file that is not in the voices folders: validate and an
    embedded render name the character's voice before anything is synthesised."""
    data = copy.deepcopy(BASE)
    data["characters"]["mara"]["voice"] = {"engine": "espeak", "name": "xx-nowhere"}
    data["characters"]["otto"]["voice"] = {"engine": "piper", "name": "en_US-nobody-medium"}
    data["shots"][1]["dialogue"] = [{"character": "otto", "text": "Woof."}]
    path = write(folder, data)
    assert main(["validate", path]) == 2
    err = capsys.readouterr().err
    assert "$.characters.mara.voice: espeak-ng has no voice for 'xx-nowhere'" in err
    assert "$.characters.otto.voice:" in err and "en_US-nobody-medium.onnx" in err
    assert main(["render", path, "-o", str(tmp_path / "out"), "-q"]) == 2
    assert not (tmp_path / "out").exists()
