"""Planning in stages (issue 21, item 1): outline → shots → dialogue, each held by a grammar built from the stages
before it. With a tiny random-weight llama (real llama.cpp, real grammars) the structure is what is checked: exactly
the shots asked for, casts and places only from the outline, the stages kept and an edited outline followed. What a
real small model writes is measured by ``bench/plan_bench.py --stages``."""
from __future__ import annotations

import json
import re

import jsonschema
import pytest

from animstudio.cli import main
from animstudio.translator.planning.backends import LlamaCppBackend, PlanError
from animstudio.translator.planning.stages import (DEFAULT_STYLE, Stages, dialogue_schema, outline_prompt,
                                                   outline_schema, plan_in_stages, requested_shots)
from animstudio.translator.planning.novel_text import request_names
from test_llm_planner import needs_llama, write_tiny_llama


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    pytest.importorskip("gguf", reason="the gguf package (writes the test model) is not installed")
    return write_tiny_llama(tmp_path_factory.mktemp("llm") / "tiny-llama.gguf")


class Counting:
    """A backend that counts the stages it is asked, around a real one."""

    def __init__(self, backend):
        self.backend, self.asked = backend, []

    def describe(self):
        return self.backend.describe()

    def complete_json(self, system, user, schema, seed=0):
        self.asked.append(sorted(schema["properties"]))
        return self.backend.complete_json(system, user, schema, seed=seed)


class Scripted:
    """Answers each stage with a fixed reply (what a model might say), checked against the stage's schema."""

    def __init__(self, *replies):
        self.replies = list(replies)

    def describe(self):
        return "a scripted model"

    def complete_json(self, system, user, schema, seed=0):
        reply = self.replies.pop(0)
        jsonschema.validate(reply, schema)
        return json.dumps(reply, ensure_ascii=False)


@pytest.mark.parametrize("request_, shots", [
    ("A story in 4 shots about a frog.", 4), ("a four-shot film", 4), ("Three scenes: a cat.", 3),
    ("用四个镜头讲一个故事", 4), ("в четырёх кадрах", 4), ("5 кадров", 5), ("A frog and a girl.", None),
])
def test_the_number_of_shots_a_request_asks_for(request_, shots):
    assert requested_shots(request_) == shots


@needs_llama
def test_a_four_shot_request_gives_four_shots_from_the_outline(tiny, tmp_path):
    backend = Counting(LlamaCppBackend(tiny, max_tokens=1200))
    board, stages = plan_in_stages("A four-shot film: Mara meets Pip, a frog, at the pond.", backend, seed=3)
    assert len(board["shots"]) == 4 == stages.shots == len(stages.outline["beats"])
    assert backend.asked == [["beats", "characters", "places", "style", "title"], ["shots"], ["lines"]]
    names = {c["name"] for c in stages.outline["characters"]}
    assert names == {"Mara", "Pip"}  # the request's names are the cast: even random weights keep them
    assert {c["name"] for c in board["characters"].values()} == names
    for shot, beat in zip(board["shots"], stages.outline["beats"]):
        assert set(shot.get("characters", [])) <= set(board["characters"])  # only the outline's characters
        assert shot["description"] == beat.strip()[:400] or shot["description"].startswith("shot")
        for line in shot.get("dialogue", []):
            assert line["character"] in shot["characters"]                 # a line only from the shot's cast
    # the stages are kept; an edited outline is followed, and only the later stages are asked again
    saved = json.loads(json.dumps(stages.to_json()))
    saved["outline"]["beats"] = saved["outline"]["beats"][:3]
    saved["outline"]["beats"][1] = "Pip jumps onto a lily pad"
    saved["outline"]["characters"][0]["name"] = "Marianne"
    again = Counting(LlamaCppBackend(tiny, max_tokens=1200))
    board2, stages2 = plan_in_stages("", again, seed=3, stages=Stages.from_json(saved))
    assert len(board2["shots"]) == 3 and board2["shots"][1]["description"] == "Pip jumps onto a lily pad"
    assert "Marianne" in {c["name"] for c in board2["characters"].values()}
    assert again.asked == [["shots"], ["lines"]]


def test_lines_are_held_to_the_request_s_language():
    zh = dialogue_schema([["莉莉"], ["莉莉", "阿福"]], "zh")
    jsonschema.validate({"lines": [[{"who": "莉莉", "text": "你好，青蛙！", "emotion": "happy"}],
                                   [{"who": "阿福", "text": "我会说话。", "emotion": "neutral"}]]}, zh)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"lines": [[{"who": "莉莉", "text": "Hello frog", "emotion": "happy"}],
                                       [{"who": "阿福", "text": "我会说话。", "emotion": "neutral"}]]}, zh)
    with pytest.raises(jsonschema.ValidationError):  # digits fill no line (Gemma 3 270M's "10000")
        jsonschema.validate({"lines": [[{"who": "莉莉", "text": "10000", "emotion": "happy"}],
                                       [{"who": "阿福", "text": "我会说话。", "emotion": "neutral"}]]}, zh)
    names = outline_schema(2, "zh")["properties"]["characters"]["items"]["properties"]["name"]
    jsonschema.validate("莉莉", names)
    with pytest.raises(jsonschema.ValidationError):  # a character of a Chinese request has a Chinese name
        jsonschema.validate("Ana", names)
    ru = dialogue_schema([["Маша"]], "ru")
    jsonschema.validate({"lines": [[{"who": "Маша", "text": "Привет, лягушка!", "emotion": "happy"}]]}, ru)
    with pytest.raises(jsonschema.ValidationError):  # a line from another shot's cast, or a second tuple item
        jsonschema.validate({"lines": [[{"who": "Квак", "text": "Ква!", "emotion": "happy"}]]}, ru)


def test_a_style_that_repeats_the_instructions_is_replaced_and_the_storyboard_validates():
    stages = Stages("A two-shot film: Lili meets Afu.", "en", 2)
    copied = "a visual style for an image model"
    assert copied in outline_prompt(stages)
    backend = Scripted(
        {"title": "Lili and Afu", "style": copied, "characters": [{"name": "Lili", "look": "girl in a red coat"},
                                                                   {"name": "Afu", "look": "green frog"}],
         "places": [{"name": "the pond", "time": "day"}], "beats": ["Lili walks to the pond.", "Afu says hello."]},
        {"shots": [{"who": ["Lili"], "place": "the pond", "framing": "wide", "move": "static"},
                   {"who": ["Lili", "Afu"], "place": "the pond", "framing": "two_shot", "move": "zoom_in"}]},
        {"lines": [[{"who": "Lili", "text": "What a nice day.", "emotion": "happy"}],
                   [{"who": "Afu", "text": "Hello, Lili!", "emotion": "surprised"}]]})
    board, _ = plan_in_stages(stages.request, backend)
    assert board["project"]["style"] == DEFAULT_STYLE
    assert [s["characters"] for s in board["shots"]] == [["c1"], ["c1", "c2"]]
    assert board["shots"][1]["dialogue"] == [{"character": "c2", "text": "Hello, Lili!", "emotion": "surprised"}]
    assert board["shots"][1]["camera"] == {"shot": "two_shot", "move": "zoom_in"}
    assert board["scenes"] == {"p1": {"location": "the pond", "time_of_day": "day"}}


@needs_llama
def test_cli_plan_in_stages_keeps_the_stages_and_goes_on_from_an_edited_plan(tiny, tmp_path, capsys):
    out = tmp_path / "film.json"
    assert main(["plan", "A three-shot film: a fox and a crow.", "--model", str(tiny), "--stages", "-o", str(out)]) == 0
    plan = tmp_path / "film.plan.json"
    assert "film.plan.json" in capsys.readouterr().out and plan.is_file()
    saved = json.loads(plan.read_text())
    assert len(json.loads(out.read_text())["shots"]) == 3 == len(saved["outline"]["beats"])
    saved["outline"]["beats"].append("The crow flies away with the cheese")
    plan.write_text(json.dumps(saved))
    again = tmp_path / "film2.json"
    assert main(["plan", "--model", str(tiny), "--from-plan", str(plan), "-o", str(again)]) == 0
    assert json.loads(again.read_text())["shots"][3]["description"] == "The crow flies away with the cheese"
    plan.write_text('{"outline": 3}')
    assert main(["plan", "--model", str(tiny), "--from-plan", str(plan)]) == 2
    err = capsys.readouterr().err
    assert "not a saved plan" in err and "Traceback" not in err


def test_planning_nothing_is_one_clear_error():
    with pytest.raises(PlanError, match="nothing to plan"):
        plan_in_stages("   ", Scripted())
    assert re.search("exactly 4 beats", outline_prompt(Stages("x", "en", 4)))


@pytest.mark.parametrize("request_, names", [
    ("A four-shot film: Mara, a girl in a red coat, meets Pip, a talking frog, at the village pond.", ["Mara", "Pip"]),
    ("A story in four shots: Captain Rex, an old dog, teaches Bolt, a puppy, to swim.", ["Captain Rex", "Bolt"]),
    ("用四个镜头讲一个故事：小女孩莉莉在池塘边遇到一只会说话的青蛙阿福。", ["莉莉", "阿福"]),
    ("四个镜头：熊猫圆圆第一次学弹钢琴，老师是一只叫白白的兔子。", ["白白", "圆圆"]),
    ("Четыре кадра: кот Барсик учит мышонка Пика играть в шахматы.", ["Барсик", "Пика"]),
    ("A fox and a crow argue over a piece of cheese.", []),
    ("一只熊猫学习弹钢琴。", []),
    ("老奶奶和她的猫一起过新年。", []),
    ("Кот учит мышонка играть в шахматы.", []),
])
def test_the_names_a_request_gives(request_, names):
    assert request_names(request_) == names


def test_the_outline_must_list_the_request_s_named_characters():
    schema = outline_schema(4, "en", named=["Mara", "Pip"])
    beats = ["Mara walks.", "Pip hops.", "They talk.", "They part."]
    with_names = {"title": "The Pond", "style": "s", "characters": [{"name": "Mara", "look": "girl"},
                                                              {"name": "Pip", "look": "frog"}],
                  "places": [{"name": "pond", "time": "day"}], "beats": beats}
    jsonschema.validate(with_names, schema)
    renamed = dict(with_names, characters=[{"name": "Ana", "look": "girl"}, {"name": "Pip", "look": "frog"}])
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(renamed, schema)
    with pytest.raises(jsonschema.ValidationError):  # one left out
        jsonschema.validate(dict(with_names, characters=with_names["characters"][:1]), schema)
