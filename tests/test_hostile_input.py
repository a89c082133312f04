"""Hostile storyboards (issue 15, items 1-5 and 7-9): each is refused with the project's own error naming the
place (a JSON path, or a line and column), through the loader, the CLI and the pack's routes; no file outside the
allowed folder is read, copied, or even told apart from a missing one. Then a property-based run over the loader
and the compile route: whatever the document, nothing but the project's error comes out."""
from __future__ import annotations

import copy
import json
import os
import shutil
import struct
import sys
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from animstudio import routes
from animstudio.cli import main
from animstudio.common.errors import AnimStudioError, StoryboardError
from animstudio.nodes.boundary import use_folders
from animstudio.translator.compile import compile_storyboard
from animstudio.translator.storyboard import load_storyboard
from conftest import EXAMPLE, write_panel
from test_routes import _post

STORY = {"version": 1, "project": {"title": "Hostile", "width": 64, "height": 64, "fps": 8},
         "characters": {"mara": {"description": "a keeper", "voice": {"engine": "espeak"}}},
         "shots": [{"id": "s1", "description": "waves", "keyframe": "panels/p.png", "duration": 1.0,
                    "dialogue": [{"character": "mara", "text": "Hello there."}]}]}


@pytest.fixture()
def board(tmp_path):
    """A storyboard folder with a panel, and a folder beside it (outside) holding a real picture and a secret."""
    folder = tmp_path / "board"
    write_panel(folder / "panels" / "p.png", size=(64, 64))
    outside = tmp_path / "outside"
    write_panel(outside / "face.png", size=(32, 32))
    (outside / "secret.txt").write_text("do not copy me")
    return folder


def story(**changes) -> dict:
    data = copy.deepcopy(STORY)
    for dotted, value in changes.items():
        *head, last = [int(k) if k.isdigit() else k for k in dotted.split("__")]
        target = data
        for key in head:
            target = target[key]
        target[last] = value
    return data


def refused(path, capsys) -> list[tuple[str, str]]:
    """Loader and CLI agree: a StoryboardError (exit 2), the same places, no traceback."""
    with pytest.raises(StoryboardError) as info:
        load_storyboard(path)
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    places = [(p.where, p.message) for p in info.value.problems]
    assert all(f"  {where}: " in err for where, _ in places), err
    return places


def deep(levels: int) -> str:
    return '{"version": 1, "project": ' + '{"a": ' * levels + "1" + "}" * levels + ', "shots": []}'


# ---------------------------------------------------------------------------------------- 1. deep nesting

def test_1_json_a_thousand_levels_deep_names_the_place(board, capsys):
    path = board / "storyboard.json"
    path.write_text(deep(1000))
    (where, message), = refused(path, capsys)
    assert where.startswith("$.project.a.a.a") and message == "nested deeper than 64 levels"


def test_1_deep_workflow_file_and_deep_route_body(board, capsys):
    path = board / "workflow.json"
    path.write_text("[" * 5000 + "]" * 5000)
    assert main(["convert", str(path), "-o", str(board / "out.json")]) != 0
    assert "Traceback" not in capsys.readouterr().err
    body: dict = {}
    cursor = body
    for _ in range(3000):  # a body a server already parsed: the route checks it before anything walks it
        cursor["a"] = {}
        cursor = cursor["a"]
    with use_folders(board, board / "out"):
        for name in ("validate", "compile", "characters"):
            status, answer = routes.handle("POST", name, {"storyboard": body})
            assert status == 400, (name, answer)
            assert answer["problems"][0]["message"] == "nested deeper than 64 levels"


# ---------------------------------------------------------------------------------------- 2. huge integers

def test_2_an_integer_of_5000_digits(board, capsys):
    path = board / "storyboard.json"
    path.write_text(json.dumps(story()).replace('"fps": 8', '"fps": 8, "seed": ' + "7" * 5000))
    (where, message), = refused(path, capsys)
    assert where == "$.project.seed" and "5000 digits" in message


# ---------------------------------------------------------------------------------------- 3. empty mouth folder

def test_3_a_mouth_folder_without_pictures(board, capsys):
    (board / "mouths").mkdir()
    (board / "mouths" / "readme.txt").write_text("shapes go here")
    data = story(characters__mara__mouth_shapes="mouths",
                 shots__0__mouths={"mara": {"x": 10, "y": 10, "width": 20, "height": 20}})
    path = board / "storyboard.json"
    path.write_text(json.dumps(data))
    (where, message), = refused(path, capsys)
    assert where == "$.characters.mara.mouth_shapes" and "holds no" in message
    with use_folders(board, board / "out"):
        status, answer = routes.handle("POST", "compile", {"storyboard": data})
    assert status == 400 and answer["problems"][0]["where"] == "$.characters.mara.mouth_shapes"


def test_3_a_mouth_folder_lacking_shapes(board, capsys):
    (board / "mouths").mkdir()
    for shape in "ABC":
        write_panel(board / "mouths" / f"{shape}.png", size=(16, 16))
    data = story(characters__mara__mouth_shapes="mouths")
    path = board / "storyboard.json"
    path.write_text(json.dumps(data))
    (where, message), = refused(path, capsys)
    assert where == "$.characters.mara.mouth_shapes" and "lacks shape(s) D, E, F" in message


# ---------------------------------------------------------------------------------------- 4. lone surrogates

def test_4_a_lone_surrogate_in_a_line(board, capsys):
    path = board / "storyboard.json"
    path.write_text(json.dumps(story()).replace("Hello there.", "Hello \\ud800 there."))
    (where, message), = refused(path, capsys)
    assert where == "$.shots[0].dialogue[0].text" and "lone surrogate (\\ud800)" in message
    with use_folders(board, board / "out"):
        status, answer = routes.handle("POST", "validate", {"storyboard": story(shots__0__description="x\udfffy")})
    assert status == 400 and answer["problems"][0]["where"].endswith("shots[0].description")


# ---------------------------------------------------------------------------------------- 5. decompression bombs

def png_claiming(width: int, height: int) -> bytes:
    """A valid, tiny PNG whose header says ``width`` x ``height`` (its one data chunk is a few bytes)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + chunk(b"IEND", b""))


def test_5_a_png_claiming_100000_by_100000(board, capsys):
    (board / "panels" / "bomb.png").write_bytes(png_claiming(100_000, 100_000))
    path = board / "storyboard.json"
    path.write_text(json.dumps(story(shots__0__keyframe="panels/bomb.png")))
    (where, message), = refused(path, capsys)
    assert where == "$.shots[0].keyframe" and "claims 10000000000 pixels" in message
    (board / "panels" / "big.png").write_bytes(png_claiming(20_000, 5_000))  # opens, but over the limit
    (where, message), = refused(_write(board, story(shots__0__keyframe="panels/big.png")), capsys)
    assert "20000x5000 = 100000000 pixels; the limit is 67108864" in message
    with use_folders(board, board / "out"):
        status, answer = routes.handle("POST", "validate", {"storyboard": story(shots__0__keyframe="panels/bomb.png")})
    assert status == 400 and answer["problems"][0]["where"] == "$.shots[0].keyframe"


# ---------------------------------------------------------------------------------------- 7. NaN where text belongs

@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_7_non_standard_tokens_are_refused_where_text_belongs(board, capsys, token):
    path = board / "storyboard.json"
    path.write_text(json.dumps(story()).replace('"waves"', token))
    (where, message), = refused(path, capsys)
    assert where == "$.shots[0].description" and f"{token} is not a number JSON allows" in message


# ---------------------------------------------------------------------------------------- 8. symlinks in a mouth set

def test_8_a_symlinked_mouth_shape_is_refused_and_never_copied(board, capsys, tmp_path):
    mouths = board / "mouths"
    for shape in "BCDEF":
        write_panel(mouths / f"{shape}.png", size=(16, 16))
    os.symlink(tmp_path / "outside" / "face.png", mouths / "A.png")
    data = story(characters__mara__mouth_shapes="mouths",
                 shots__0__mouths={"mara": {"x": 10, "y": 10, "width": 20, "height": 20}})
    path = board / "storyboard.json"
    path.write_text(json.dumps(data))
    (where, message), = refused(path, capsys)
    assert where == "$.characters.mara.mouth_shapes" and "'mouths/A.png' leaves the storyboard's folder" in message
    assert main(["render", str(path), "-o", str(tmp_path / "film")]) == 2
    assert "Traceback" not in capsys.readouterr().err
    with use_folders(board, tmp_path / "comfy-out"):
        status, answer = routes.handle("POST", "compile", {"storyboard": data})
    assert status == 400 and answer["problems"][0]["where"] == "$.characters.mara.mouth_shapes"
    face = (tmp_path / "outside" / "face.png").read_bytes()
    copies = [p for p in board.rglob("*") if p.is_file() and not p.is_symlink() and p.read_bytes() == face]
    assert copies == []  # nothing staged into the input folder


# ---------------------------------------------------------------------------------------- 9. paths that probe

@pytest.mark.parametrize("field,value_existing,value_missing", [
    ("project__subtitles", {"font": "/etc/passwd"}, {"font": "/no/such/file"}),
    ("project__subtitles", {"font": "../outside/secret.txt"}, {"font": "../outside/nothing.txt"}),
    ("characters__mara__voice", {"engine": "piper", "name": "/etc/ld.so.cache"}, {"engine": "piper", "name": "/nope.onnx"}),
])
def test_9_a_path_outside_reads_the_same_whether_it_exists_or_not(board, capsys, field, value_existing, value_missing):
    seen = []
    for value in (value_existing, value_missing):
        places = refused(_write(board, story(**{field: value})), capsys)
        assert len(places) == 1, places
        where, message = places[0]
        assert where in ("$.project.subtitles.font", "$.characters.mara.voice.name")
        named = value.get("font") or value.get("name")
        seen.append((where, message.replace(named, "PATH")))
    assert seen[0] == seen[1], seen  # says nothing of what exists there
    assert "glyph" not in seen[0][1] and "not found" not in seen[0][1]


def test_9_fonts_by_family_name_or_a_file_beside_the_storyboard(board, capsys):
    from animstudio.nodes.film.subtitles import FontError, system_font

    assert Path(system_font("DejaVu Sans")).is_file()
    with pytest.raises(FontError, match="font list"):
        system_font("/etc/passwd")
    shutil.copy(system_font("DejaVu Sans"), board / "caption.ttf")
    board_ok = load_storyboard(_write(board, story(project__subtitles={"font": "caption.ttf"})))
    assert board_ok.project.subtitles.font_file == (board / "caption.ttf").resolve()
    graph = compile_storyboard(board_ok).graphs[0]
    save = next(n for n in graph.graph.values() if n["class_type"] == "AnimStudioSaveFilm")
    upload = next(u for u in graph.uploads if u.subfolder == "animstudio/fonts")
    assert save["inputs"]["subtitle_font"] == upload.name and upload.local_path == board_ok.project.subtitles.font_file
    (board / "fake.ttf").write_text("not a font")
    (where, message), = refused(_write(board, story(project__subtitles={"font": "fake.ttf"})), capsys)
    assert where == "$.project.subtitles.font" and "not a readable font" in message


def _write(board, data) -> Path:
    path = board / "storyboard.json"
    path.write_text(json.dumps(data))
    return path


# ---------------------------------------------------------------------------------------- properties

class Huge(int):
    """A 5000-digit integer that hypothesis can show (Python will not print one by default)."""

    def __repr__(self) -> str:
        return f"Huge(<{int.bit_length(self)} bits>)"


HOSTILE = st.sampled_from([Huge(10 ** 5000), Huge(-(10 ** 400)), float("inf"), float("nan"), "\ud800", "a\udfffb",
                           "[" * 1200, "panels/bomb.png", "mouths-empty", "mouths-linked", "../outside.png",
                           "/etc/passwd", "/etc/fonts/fonts.conf", "caption.ttf", "DejaVu Sans", "fit_to_dialogue",
                           "preston_blair", "panels/01-lighthouse.png", 1e308, -1, 0, 2 ** 64])
JSON_LEAVES = (st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70) | st.floats(allow_nan=True)
               | st.text(max_size=12) | HOSTILE)
JSON_VALUES = st.recursive(JSON_LEAVES, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)


def _paths(value, prefix=()):
    yield prefix
    if len(prefix) > 40:  # a value wrapped a thousand deep by an earlier mutation: its inside is not a target
        return
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, prefix + (key,))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _paths(item, prefix + (i,))


@st.composite
def mutants(draw):
    """The example storyboard with up to three places replaced by arbitrary JSON (or a key added/removed)."""
    data = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    for _ in range(draw(st.integers(1, 3))):
        paths = list(_paths(data))
        where = draw(st.sampled_from(paths))
        value = draw(JSON_VALUES)
        if draw(st.integers(0, 9)) == 0:  # now and then, a value wrapped a thousand levels deep
            for _ in range(1000):
                value = [value]
        if not where:
            data = value
            continue
        parent = data
        for key in where[:-1]:
            parent = parent[key]
        action = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
        if action == "delete":
            del parent[where[-1]]
        elif action == "add" and isinstance(parent, dict):
            parent[draw(st.text(max_size=10))] = value
        else:
            parent[where[-1]] = value
    return data


@pytest.fixture(scope="module")
def example_input(tmp_path_factory):
    """ComfyUI-like input and output folders holding the example's files, as the routes expect them."""
    root = tmp_path_factory.mktemp("routes")
    shutil.copytree(EXAMPLE.parent, root / "input")
    (root / "output").mkdir()
    (root / "input" / "panels" / "bomb.png").write_bytes(png_claiming(100_000, 100_000))
    (root / "input" / "mouths-empty").mkdir()
    for shape in "BCDEF":
        write_panel(root / "input" / "mouths-linked" / f"{shape}.png", size=(16, 16))
    write_panel(root / "secret.png", size=(8, 8))
    os.symlink(root / "secret.png", root / "input" / "mouths-linked" / "A.png")
    (root / "input" / "caption.ttf").write_text("not a font")
    return root


def _dumps(data) -> str:
    """``json.dumps``, 5000-digit integers included (Python's int → str limit lifted for the write only)."""
    limit = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)
    try:
        return json.dumps(data)
    finally:
        sys.set_int_max_str_digits(limit)


@settings(max_examples=2000, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(mutants())
def test_property_the_loader_raises_only_its_own_error(example_input, data):
    """Each document written as Python's JSON writer would (NaN, Infinity, 5000-digit integers, surrogate escapes
    and all) and loaded from its file: a storyboard, or a StoryboardError; never anything else."""
    path = example_input / "input" / "mutant.json"
    try:
        text = _dumps(data)
    except RecursionError:  # deeper than Python's own writer goes: write the nesting out by hand
        text = "[" * 1000 + json.dumps(None) + "]" * 1000
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        load_storyboard(path)
    except StoryboardError:
        pass


@settings(max_examples=2000, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(mutants() | JSON_VALUES.map(lambda v: {"storyboard": v}))
def test_property_the_compile_route_answers_4xx_never_500(example_input, body):
    body = body if isinstance(body, dict) and "storyboard" in body else {"storyboard": body}
    with use_folders(example_input / "input", example_input / "output"):
        status, answer = routes.handle("POST", "compile", body)
    assert status in (200, 400), answer
    assert answer["ok"] is (status == 200)
    if status == 400:
        assert answer["problems"] and all(p["where"] for p in answer["problems"])
    json.dumps(answer, allow_nan=False).encode("utf-8")  # the answer itself is strict, encodable JSON


def test_the_project_error_type_is_what_the_reader_raises():
    from animstudio.common.jsonio import parse_json

    for text in ("[" * 2000, '{"a": 1e400}', '"\\udc00"', "-" + "9" * 9000, "\xff"):
        with pytest.raises(AnimStudioError):
            parse_json(text)


# ---------------------------------------------------------------------------------------- a real ComfyUI

@pytest.mark.comfyui
def test_hostile_storyboards_through_a_real_comfyuis_routes(comfy_server, tmp_path):
    """Each hostile document as raw bytes on the wire, to every storyboard route: a 4xx naming the place, never a
    500; the symlinked mouth shape is never copied into the input folder ComfyUI serves."""
    input_dir = comfy_server.base / "input"
    write_panel(input_dir / "panels" / "p.png", size=(64, 64))
    (input_dir / "panels" / "bomb.png").write_bytes(png_claiming(100_000, 100_000))
    (input_dir / "empty-mouths").mkdir(exist_ok=True)
    linked = input_dir / "linked-mouths"
    for shape in "BCDEF":
        write_panel(linked / f"{shape}.png", size=(16, 16))
    secret = tmp_path / "face.png"
    write_panel(secret, color=(1, 2, 3), size=(24, 24))
    if not (linked / "A.png").exists():
        os.symlink(secret, linked / "A.png")
    box = {"mara": {"x": 10, "y": 10, "width": 20, "height": 20}}
    text = json.dumps(story())
    cases = {
        "deep": ('{"storyboard": ' + "[" * 1000 + "]" * 1000 + "}", "$.storyboard"),
        "digits": (json.dumps({"storyboard": story()}).replace('"fps": 8', '"fps": 8, "seed": ' + "7" * 5000),
                   "$.storyboard.project.seed"),
        "surrogate": ('{"storyboard": ' + text.replace("Hello there.", "Hello \\ud800") + "}",
                      "$.storyboard.shots[0].dialogue[0].text"),
        "nan": ('{"storyboard": ' + text.replace('"waves"', "NaN") + "}", "$.storyboard.shots[0].description"),
        "bomb": (json.dumps({"storyboard": story(shots__0__keyframe="panels/bomb.png")}), "$.shots[0].keyframe"),
        "empty-mouths": (json.dumps({"storyboard": story(characters__mara__mouth_shapes="empty-mouths",
                                                         shots__0__mouths=box)}), "$.characters.mara.mouth_shapes"),
        "linked-mouths": (json.dumps({"storyboard": story(characters__mara__mouth_shapes="linked-mouths",
                                                          shots__0__mouths=box)}), "$.characters.mara.mouth_shapes"),
        "font": (json.dumps({"storyboard": story(project__subtitles={"font": "/etc/passwd"})}),
                 "$.project.subtitles.font"),
    }
    for route in ("validate", "compile", "characters"):
        for name, (body, where) in cases.items():
            status, answer = _post(f"{comfy_server.url}/animstudio/{route}", body.encode("utf-8"))
            assert status == 400, (route, name, status, answer)
            assert answer["ok"] is False and any(p["where"].startswith(where) for p in answer["problems"]), \
                (route, name, answer)
    face = secret.read_bytes()
    assert not [p for p in input_dir.rglob("*") if p.is_file() and not p.is_symlink() and p.read_bytes() == face]


def test_9_inside_comfyui_voices_are_names_and_references_stay_in_the_input_folder(tmp_path, monkeypatch):
    """A graph on a ComfyUI server cannot probe the server's disk through a voice: a Piper path and an XTTS
    reference outside the input folder read the same whether something exists there or not."""
    import types

    from animstudio.nodes.audio.piper_engine import resolve_voice
    from animstudio.nodes.audio.tts import TTSError
    from animstudio.nodes.audio.xtts_engine import find_reference

    (tmp_path / "input").mkdir()
    (tmp_path / "input" / "mara.wav").write_bytes(b"RIFF")
    (tmp_path / "secret.onnx").write_bytes(b"model")
    fake = types.SimpleNamespace(models_dir=str(tmp_path / "models"), get_folder_paths=lambda name: [],
                                 get_input_directory=lambda: str(tmp_path / "input"),
                                 get_output_directory=lambda: str(tmp_path / "output"))
    monkeypatch.setitem(sys.modules, "folder_paths", fake)
    messages = []
    for path in (tmp_path / "secret.onnx", tmp_path / "missing.onnx"):
        with pytest.raises(TTSError) as info:
            resolve_voice(str(path))
        messages.append(str(info.value))
    assert messages[0] == messages[1] and "not by a path" in messages[0]
    found, problems = find_reference("mara.wav")
    assert found == (tmp_path / "input" / "mara.wav").resolve() and not problems
    seen = [find_reference(str(p))[1] for p in (tmp_path / "secret.onnx", tmp_path / "gone.wav")]
    assert [[m.replace(str(tmp_path / n), "PATH") for m in s] for s, n in zip(seen, ("secret.onnx", "gone.wav"))] \
        == [["the reference recording 'PATH' must be a file in ComfyUI's input folder"]] * 2
