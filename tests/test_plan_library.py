"""Planning with the project library (issue 21, items 2 and 3): the planner is told the library's characters and
places closest to the request (or named in it) as an open series bible, so a new episode reuses their ids, looks
and voices and the series' style guide; a novel's episodes, put in the library, resolve to one set of entries; a
second text of the series keeps the library's cast."""
from __future__ import annotations

import json

import jsonschema
import pytest

from animstudio.cli import main
from animstudio.translator.library.continuity import resolve_characters
from animstudio.translator.library.ingest import add_storyboard
from animstudio.translator.library.recall import library_bible, series_bible
from animstudio.translator.library.store import Library
from animstudio.translator.planning import backends
from animstudio.translator.planning.novel import open_novel, plan_novel
from animstudio.translator.planning.stages import plan_in_stages
from animstudio.translator.storyboard import load_storyboard
from test_library import EPISODE_1
from test_plan_novel import EN, StoryModel


class RecallModel:
    """Answers each stage from its schema: the outline takes the bible's known names (the open bible's first
    choice) and adds ``new`` characters of its own (its second); every answer is checked against the schema."""

    def __init__(self, new=()):
        self.new, self.asked = list(new), []

    def describe(self):
        return "a recall model"

    def complete_json(self, system, user, schema, seed=0):
        self.asked.append((system, user))
        keys = sorted(schema["properties"])
        reply = getattr(self, "_" + "_".join(keys))(schema)
        jsonschema.validate(reply, schema)
        return json.dumps(reply, ensure_ascii=False)

    def _beats_characters_places_style_title(self, schema):
        props = schema["properties"]
        known_people = props["characters"]["items"]["anyOf"][0]["properties"]["name"]["enum"]
        places = props["places"]["items"]
        place = {"name": places["anyOf"][0]["properties"]["name"]["enum"][0]} if "anyOf" in places else \
            {"name": "the village square", "time": "day"}
        people = [{"name": n} for n in known_people[:2]] + [{"name": n, "look": "a tall heron"} for n in self.new]
        n = props["beats"]["minItems"]
        return {"title": "The Key", "style": "flat colours", "characters": people,
                "places": [place], "beats": ["Something happens by the well."] * n}

    def _shots(self, schema):
        shot = schema["properties"]["shots"]["items"]["properties"]
        names, places = shot["who"]["items"]["enum"], shot["place"]["enum"]
        return {"shots": [{"who": names[:2], "place": places[0], "framing": "medium", "move": "static"}
                          for _ in range(schema["properties"]["shots"]["minItems"])]}

    def _lines(self, schema):
        casts = [s["items"]["properties"]["who"]["enum"] for s in schema["properties"]["lines"]["prefixItems"]]
        return {"lines": [[{"who": cast[0], "text": "The key is in the moss.", "emotion": "happy"}] for cast in casts]}


@pytest.fixture()
def library(tmp_path):
    path = tmp_path / "episode-01.json"
    path.write_text(json.dumps(EPISODE_1), encoding="utf-8")
    with Library(tmp_path / "animstudio-library.db", create=True) as lib:
        add_storyboard(lib, load_storyboard(path), path.name)
        yield lib


def test_the_request_recalls_the_characters_and_places_it_names_or_means(library):
    bible = library_bible(library, "Mira asks the amphibian in the old well about a lost key")
    assert bible.open and bible.series == "Frog Tales"
    assert [c.id for c in bible.characters][:2] == ["mira", "frog"]  # named, then closest in meaning
    assert [p.id for p in bible.places] == ["well"]
    mira = bible.characters[0]
    assert (mira.wardrobe, mira.age, mira.voice) == ("a red wool coat and a yellow scarf", 10,
                                                     {"engine": "espeak", "name": "en-us", "rate": 1.0, "pitch": 0.0})


def test_an_episode_planned_with_the_library_reuses_its_cast_places_and_style(library):
    model = RecallModel(new=["Grey Heron"])
    board, stages = plan_in_stages("Mira and the frog find a key at the well. Four shots.", model,
                                   bible=library_bible(library, "Mira and the frog find a key at the well"))
    outline_prompt, outline_request = model.asked[0]
    assert "adding with how they look only those the film needs" in outline_prompt
    assert "Mira (a ten-year-old girl, curious and brave)" in outline_request and "Old Frog" in outline_request
    chars = board["characters"]
    assert chars["mira"] == {"name": "Mira", "description": "a ten-year-old girl, curious and brave", "age": 10,
                             "wardrobe": "a red wool coat and a yellow scarf",
                             "voice": {"engine": "espeak", "name": "en-us", "rate": 1.0, "pitch": 0.0}}
    assert chars["frog"]["voice"]["pitch"] == -4.0 and board["project"]["series"] == "Frog Tales"
    heron = [c for c in chars.values() if c["name"] == "Grey Heron"]  # a new one the library lacks, added
    assert heron and heron[0]["description"] == "a tall heron"
    assert set(board["scenes"]) == {"well"} and len(board["shots"]) == 4


def test_cli_plan_with_the_library_beside_the_output(library, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(backends, "make_backend", lambda *a, **k: RecallModel())
    out = tmp_path / "episode-02.json"
    assert main(["plan", "Mira meets the frog again", "--model", "any.gguf", "-o", str(out)]) == 0
    board = json.loads(out.read_text(encoding="utf-8"))
    assert set(board["characters"]) == {"mira", "frog"}
    assert board["project"]["style"] == "soft watercolour backgrounds, warm dawn light, thin ink outlines"
    assert out.with_suffix(".plan.json").is_file()  # planned in stages, with the library's bible kept
    assert json.loads(out.with_suffix(".plan.json").read_text(encoding="utf-8"))["bible"]["open"] is True
    capsys.readouterr()
    assert main(["validate", str(out), "--json"]) == 0  # the library's own facts: no continuity warning
    assert json.loads(capsys.readouterr().out)["warnings"] == []


def test_a_novels_episodes_resolve_to_the_same_library_entries(tmp_path):
    text = tmp_path / "story.txt"
    text.write_text(EN, encoding="utf-8")
    paths = plan_novel(open_novel(text, 3), StoryModel("en"), tmp_path / "out", seed=1)
    boards = [load_storyboard(p) for p in paths]
    with Library(tmp_path / "out" / "animstudio-library.db", create=True) as lib:
        resolved = []
        for path, board in zip(paths, boards):
            resolved.append({cid: (m.entry.key, m.how) for cid, m in resolve_characters(lib, board).items()})
            add_storyboard(lib, board, path.name)
        assert resolved[0] == {}  # the library starts empty
        assert resolved[1] == resolved[2] == {"mara": ("mara", "id"), "tom": ("tom", "id"), "pip": ("pip", "id")}
        assert sorted(e.key for e in lib.entries("character")) == ["mara", "pip", "tom"]
        assert [e.episode for e in lib.entries("shot")] == [1] * 4 + [2] * 4 + [3] * 4
        # the second text of the series keeps the library's cast: Mara's voice as the library has it
        mara = lib.get("character", "mara", "The Mill on the River")
        lib.put([mara.__class__(**{**mara.__dict__, "data": {**mara.data, "voice": {"engine": "espeak",
                                                                                    "pitch": 3.5}}})])
        known = series_bible(lib, "The Mill on the River")
    paths = plan_novel(open_novel(text, 3), StoryModel("en"), tmp_path / "season-2", known=known)
    again = json.loads(paths[0].read_text(encoding="utf-8"))
    assert again["characters"]["mara"]["voice"] == {"engine": "espeak", "pitch": 3.5}
    assert set(again["characters"]) == {"mara", "tom", "pip"}


def test_a_request_that_names_its_cast_gets_the_librarys_entries_for_those_it_knows(library):
    """"Mira meets Ada": Mira is the library's (her entry whole), Ada is new (described by the model); the
    library's frog, not named, is not in the film."""
    class Named(RecallModel):
        def _beats_characters_places_style_title(self, schema):
            items = schema["properties"]["characters"]["prefixItems"]
            assert [i["properties"]["name"]["enum"] for i in items] == [["Mira"], ["Ada"]]
            assert [sorted(i["required"]) for i in items] == [["name"], ["look", "name"]]
            reply = super()._beats_characters_places_style_title(dict(schema, properties=dict(
                schema["properties"], characters={"items": {"anyOf": [{"properties": {"name": {"enum": []}}}]}})))
            return dict(reply, characters=[{"name": "Mira"}, {"name": "Ada", "look": "a girl with a kite"}])

    request = "A four-shot film: Mira meets Ada, a new girl, at the well."
    board, _ = plan_in_stages(request, Named(), bible=library_bible(library, request))
    by_name = {c["name"]: (cid, c) for cid, c in board["characters"].items()}
    assert set(by_name) == {"Mira", "Ada"}
    assert by_name["Mira"][0] == "mira" and by_name["Mira"][1]["wardrobe"] == "a red wool coat and a yellow scarf"
    assert by_name["Ada"][1]["description"] == "a girl with a kite"
