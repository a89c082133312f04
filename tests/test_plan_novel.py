"""From a novel to episodes (issue 21, item 2): ``animstudio plan --from story.txt --episodes N -o DIR``.

A deterministic model (:class:`StoryModel`: each answer built from the stage's own schema, checked against it) plays
every stage, so what is checked is the pipeline: the chapters found per language, the episodes grouped, the names
the model gives checked against the text, one cast (ids, names, descriptions, voices) and one set of places shared
by every episode, the lines in the text's language, ``project.series``/``project.episode`` set, every episode
valid, and bad input refused with one message naming the file. A tiny random llama checks that llama.cpp compiles
every stage's grammar. What Gemma 3 270M makes of it: ``bench/plan_bench.py --novel``."""
from __future__ import annotations

import json
import re

import jsonschema
import pytest

from animstudio.cli import main
from animstudio.translator.planning import backends
from animstudio.translator.planning.backends import LlamaCppBackend, PlanError
from animstudio.translator.planning.bible import Bible
from animstudio.translator.planning.novel import open_novel, plan_novel
from animstudio.translator.planning.novel_text import split_chapters, text_language
from animstudio.translator.planning.stages import Stages, outline_request, outline_schema, plan_in_stages
from animstudio.translator.storyboard import load_storyboard
from test_llm_planner import needs_llama, write_tiny_llama

EN = """# The Mill on the River

## Chapter 1: The Flood
Mara lived with her grandfather Tom at the old mill by the Willow River. One morning Mara saw that the river had
risen. "Grandfather," said Mara, "the water is at the door!" Tom took his lantern and looked at the Willow River.

## Chapter 2: The Frog
In the reeds Mara found Pip, a green frog who could talk. Pip told Mara that the dam at Stone Bridge was broken.
Tom did not believe her, but Pip croaked until he came out of the old mill.

## Chapter 3: The Dam
Mara and Pip walked to Stone Bridge. Tom followed them with his lantern, and together they closed the dam.
The old mill was saved, and Pip sat on the wheel all evening.
"""

ZH = """第一章 洪水
莉莉和爷爷老周住在柳河边的磨坊里。一天早上，莉莉看见柳河涨水了。老周拿起了灯笼。

第二章 青蛙
莉莉在芦苇里遇到了会说话的青蛙阿福。阿福告诉莉莉，石桥的水坝坏了。老周不相信。

第三章 水坝
莉莉和阿福走到石桥。老周也来了，他们一起修好了水坝。磨坊得救了。
"""

RU = """Глава 1
Маша жила с дедушкой Фомой у старой мельницы на Ивовой реке. Однажды утром Маша увидела, что река поднялась.

Глава 2
В камышах Маша нашла лягушку Пипа. Пип сказал Маше, что плотина у Каменного моста сломана. Фома не поверил.

Глава 3
Маша и Пип пошли к Каменному мосту. Фома пошёл за ними, и вместе они закрыли плотину. Мельница спасена.
"""

# what the deterministic model "finds" in each text: characters (name, kind, look), places, and one name or
# place that is not in the text (to be dropped)
CASTS = {
    "en": ([("Mara", "girl", "girl in a red coat"), ("Tom", "old man", "old miller with a lantern"),
            ("Pip", "creature", "small green frog")], ["the old mill", "Stone Bridge", "Atlantis"]),
    "zh": ([("莉莉", "girl", "girl in a red coat"), ("老周", "old man", "old miller with a lantern"),
            ("阿福", "creature", "small green frog"), ("孙悟空", "man", "monkey king")], ["磨坊", "石桥"]),
    "ru": ([("Маша", "girl", "girl in a red coat"), ("Фома", "old man", "old miller with a lantern"),
            ("Пип", "creature", "small green frog")], ["мельница", "Каменный мост", "Лукоморье"]),
}
LINES = {"en": "Look at the water!", "zh": "快看河水！", "ru": "Смотри на воду!"}
BEATS = {"en": ("An episode", "The river rises at the mill."), "zh": ("一集", "河水涨到了磨坊。"),
         "ru": ("Серия", "Река поднялась у мельницы.")}  # (title, beat), in the text's script
SCRIPT = {"en": r"^[A-Za-z !]+$", "zh": r"[\u4e00-\u9fff]", "ru": r"[\u0400-\u04ff]"}


class StoryModel:
    """A model that answers each stage from its schema (the names its enums allow, as many items as it must),
    in one language, and checks every answer against the schema, as the grammar would hold a real one."""

    def __init__(self, language: str, fail_outline_at: int | None = None):
        self.language, self.asked, self.fail_outline_at = language, [], fail_outline_at

    def describe(self):
        return "a story model"

    def complete_json(self, system, user, schema, seed=0):
        keys = sorted(schema["properties"])
        self.asked.append(keys)
        reply = getattr(self, "_" + "_".join(keys))(schema, user)
        jsonschema.validate(reply, schema)
        return json.dumps(reply, ensure_ascii=False)

    def _synopsis_title(self, schema, user):
        episode = re.search(r"Episode (\d+)", user).group(1)
        people = ", ".join(n for n, _, _ in CASTS[self.language][0][:2])
        return {"title": f"Part {episode}", "synopsis": f"{people} at the river, part {episode}."}

    def _characters_places(self, schema, user):
        allowed = schema["properties"]["characters"]["items"]["properties"]["name"].get("enum")
        people, places = CASTS[self.language]
        found = [{"name": n, "kind": k, "look": look} for n, k, look in people if not allowed or n in allowed]
        return {"characters": found[:5], "places": [{"name": p, "look": f"{p} by the river"} for p in places]}

    def _beats_characters_places_style_title(self, schema, user):
        if self.fail_outline_at is not None and len([a for a in self.asked if "beats" in a]) == self.fail_outline_at:
            raise PlanError("the model stopped")
        props = schema["properties"]
        who = props["characters"]["items"]["properties"]["name"]["enum"][:props["characters"]["maxItems"]]
        where = props["places"]["items"]["properties"]["name"]["enum"][:props["places"]["maxItems"]]
        n = props["beats"]["minItems"]
        title, beat = BEATS[self.language]
        return {"title": title, "style": "soft watercolor", "characters": [{"name": w} for w in who],
                "places": [{"name": p} for p in where], "beats": [beat] * n}

    def _shots(self, schema, user):
        shot = schema["properties"]["shots"]["items"]["properties"]
        names, places = shot["who"]["items"]["enum"], shot["place"]["enum"]
        n = schema["properties"]["shots"]["minItems"]
        return {"shots": [{"who": names[:2], "place": places[i % len(places)], "framing": "medium",
                           "move": "static"} for i in range(n)]}

    def _lines(self, schema, user):
        casts = [s["items"]["properties"]["who"]["enum"] for s in schema["properties"]["lines"]["prefixItems"]]
        return {"lines": [[{"who": cast[-1], "text": LINES[self.language], "emotion": "surprised"}]
                          for cast in casts]}


def _write(tmp_path, text, name="story.txt"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _episodes(out):
    return [load_storyboard(out / f"episode-0{k}.json") for k in (1, 2, 3)], \
        [json.loads((out / f"episode-0{k}.json").read_text(encoding="utf-8")) for k in (1, 2, 3)]


# ------------------------------------------------------------------------------------------ the pipeline

@pytest.mark.parametrize("language, text", [("en", EN), ("zh", ZH), ("ru", RU)])
def test_three_chapters_give_three_valid_episodes_sharing_one_cast(tmp_path, language, text):
    novel = open_novel(_write(tmp_path, text), 3)
    assert novel.language == language and [len(e) for e in novel.episodes] == [1, 1, 1]
    model = StoryModel(language)
    paths = plan_novel(novel, model, tmp_path / "out", seed=5)
    assert [p.name for p in paths] == ["episode-01.json", "episode-02.json", "episode-03.json"]
    boards, raw = _episodes(tmp_path / "out")                      # each one loads and validates
    series = "The Mill on the River" if language == "en" else "Story"
    assert [(b.project.series, b.project.episode, b.project.title) for b in boards] == \
        [(series, 1, "Part 1"), (series, 2, "Part 2"), (series, 3, "Part 3")]
    assert {b["project"]["language"] for b in raw} == {language}
    # one cast: the same ids with the same entries (name, description, voice, age) in every episode
    people, places = CASTS[language]
    named = [n for n, _, _ in people][:3]
    assert sorted(c["name"] for c in raw[0]["characters"].values()) == sorted(named)
    assert raw[0]["characters"] == raw[1]["characters"] == raw[2]["characters"]
    assert raw[0]["scenes"] == raw[1]["scenes"] == raw[2]["scenes"]
    first = next(iter(raw[0]["characters"].values()))
    assert first == {"name": named[0], "description": "girl in a red coat", "age": "child",
                     "voice": {"engine": "espeak", "pitch": 8.0, "rate": 1.05}}
    voices = [(c["voice"]["pitch"], c["voice"]["rate"]) for c in raw[0]["characters"].values()]
    assert len(set(voices)) == len(voices) == 3                    # no two characters sound alike
    if language == "en":
        assert set(raw[0]["characters"]) == {"mara", "tom", "pip"}
        assert set(raw[0]["scenes"]) == {"the_old_mill", "stone_bridge"}
    for board in raw:                                              # every line in the text's language
        lines = [l for s in board["shots"] for l in s["dialogue"]]
        assert len(board["shots"]) == 4 and len(lines) == 4
        assert all(re.search(SCRIPT[language], l["text"]) for l in lines)
        assert all(set(s["characters"]) <= set(board["characters"]) and s["scene"] in board["scenes"]
                   for s in board["shots"])
    # the names the model gave that the text does not have are dropped, and said so
    plan = json.loads((tmp_path / "out" / "series.plan.json").read_text(encoding="utf-8"))
    dropped = {"en": ["Atlantis"], "zh": ["孙悟空"], "ru": ["Лукоморье"]}[language]
    assert plan["names_not_in_text"] == dropped and plan["language"] == language
    assert [e["synopsis"] for e in plan["episodes"]][1].endswith("part 2.")
    # each episode's stages are kept and carry the bible: planning again from them keeps the cast
    saved = Stages.from_json(json.loads((tmp_path / "out" / "episode-02.plan.json").read_text(encoding="utf-8")))
    again, _ = plan_in_stages("", StoryModel(language), stages=saved)
    assert again["characters"] == raw[1]["characters"]


def test_episodes_group_chapters_and_a_failure_keeps_what_was_written(tmp_path):
    text = EN + "\n## Chapter 4: Home\nMara and Tom went home to the old mill. Pip stayed at Stone Bridge.\n"
    out = tmp_path / "out"
    out.mkdir()
    (out / "episode-02.json").write_text("an earlier episode 2", encoding="utf-8")
    novel = open_novel(_write(tmp_path, text), 2)
    assert [[c.title for c in e] for e in novel.episodes] == [["Chapter 1: The Flood", "Chapter 2: The Frog"],
                                                             ["Chapter 3: The Dam", "Chapter 4: Home"]]
    with pytest.raises(PlanError, match=r"story.txt: episode 2: the model stopped"):
        plan_novel(novel, StoryModel("en", fail_outline_at=2), out)
    assert load_storyboard(out / "episode-01.json").project.episode == 1
    assert (out / "episode-02.json").read_text(encoding="utf-8") == "an earlier episode 2"
    assert not list(out.glob("*.partial"))


# ------------------------------------------------------------------------------------------ the text

@pytest.mark.parametrize("text, titles", [
    ("Chapter 1\nOne.\n\nChapter 2: Two\nTwo.\n", ["Chapter 1", "Two"]),
    ("CHAPTER ONE\nOne.\nCHAPTER TWO\nTwo.\n", ["CHAPTER ONE", "CHAPTER TWO"]),
    ("# Book\n\n## The Flood\nOne.\n\n## The Frog\nTwo.\n", ["The Flood", "The Frog"]),
    ("第一章 洪水\n一。\n第2章\n二。\n", ["洪水", "第2章"]),
    ("Глава 1. Река\nРаз.\nГЛАВА 2\nДва.\n", ["Река", "ГЛАВА 2"]),
    ("제1장 강\n하나.\n제2장 개구리\n둘.\n", ["강", "개구리"]),
    ("Capitolo 1\nUno.\nCapitolo 2 - Il gatto\nDue.\n", ["Capitolo 1", "Il gatto"]),
    ("One paragraph.\n\nAnother one.\n\nA third.\n", ["", "", ""]),
])
def test_chapters_are_found_in_each_language(text, titles):
    chapters, _ = split_chapters(text)
    assert [c.title for c in chapters] == titles
    assert all(c.text and "Chapter" not in c.text and "章" not in c.text[:2] for c in chapters)


def test_a_long_preface_is_part_of_the_first_chapter_and_a_title_names_the_series():
    chapters, title = split_chapters("# The Mill\n\n" + "A preface. " * 40 + "\n\n## One\nText.\n\n## Two\nMore.\n")
    assert title == "The Mill" and chapters[0].text.startswith("A preface.") and len(chapters) == 2


@pytest.mark.parametrize("text, language", [
    (EN, "en"), (ZH, "zh"), (RU, "ru"), ("미나는 할아버지와 함께 방앗간에 살았다. 미나는 개구리를 만났다.", "ko"),
    ("La piccola Lucia viveva con il nonno vicino al mulino. Non era mai stata al mare e per questo era triste.",
     "it"), ("ミナはおじいさんと水車小屋に住んでいました。", "ja"), ("ཀུན་མཁྱེན་ཀློང་ཆེན་རབ་འབྱམས།" * 4, None),
])
def test_the_text_s_language(text, language):
    assert text_language(text) == language


# ------------------------------------------------------------------------------------------ bad input

def _bad(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


@pytest.mark.parametrize("name, content, episodes, message", [
    ("empty.txt", " \n\n ", 1, "the text is empty"),
    ("cover.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", 1, "is a binary file, not text"),
    ("latin1.txt", "Ma\u00efs et caf\u00e9".encode("latin-1"), 1, "is not UTF-8 text"),
    ("tibetan.txt", "ཀུན་མཁྱེན་ཀློང་ཆེན་རབ་འབྱམས།\n" * 8, 1, "cannot tell the text's language"),
    ("story.txt", EN, 4, "the text gives at most 3 episodes (3 chapters), not 4"),
    ("story.txt", EN, 0, "the number of episodes must be 1 or more (got 0)"),
])
def test_bad_input_is_one_message_naming_the_file_and_writes_nothing(tmp_path, capsys, name, content, episodes,
                                                                    message):
    path = _bad(tmp_path, name, content)
    with pytest.raises(PlanError, match=re.escape(f"{path}: {message}")):
        open_novel(path, episodes)
    out = tmp_path / "out"
    code = main(["plan", "--from", str(path), "--episodes", str(episodes), "--model", "nowhere.gguf",
                 "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(f"animstudio: {path}: {message}") and "Traceback" not in err
    assert not out.exists()                                         # checked before any model, nothing written


def test_a_language_no_voice_speaks(tmp_path, monkeypatch):
    from animstudio.nodes.audio.espeak import EspeakUnavailable, list_voices
    from animstudio.translator.planning import novel as novel_module
    from animstudio.translator.planning.novel_text import voice_problem

    try:
        list_voices()
    except EspeakUnavailable:
        pytest.skip("espeak-ng is not installed")
    assert voice_problem("zh") is None and voice_problem("it") is None
    assert voice_problem("km").startswith("espeak-ng has no voice for 'km'")  # Khmer: espeak-ng has none

    monkeypatch.setattr(novel_module, "voice_problem", lambda language: f"espeak-ng has no voice for {language!r}")
    path = _write(tmp_path, EN)
    with pytest.raises(PlanError, match=re.escape(f"{path}: no voice speaks the text's language (English)")):
        open_novel(path, 3)


# ------------------------------------------------------------------------------------------ the bible, the CLI

def test_a_bible_given_to_the_staged_planner_is_used_whole():
    bible = {"series": "Pond Tales",
             "characters": [{"id": "lili", "name": "Lili", "description": "girl in a yellow raincoat",
                             "voice": {"engine": "espeak", "pitch": 5}, "wardrobe": "yellow raincoat", "age": 9},
                            {"name": "Afu", "description": "green frog", "language": "en"}],
             "places": [{"id": "pond", "name": "the pond", "description": "a pond with lilies", "time_of_day": "dusk"}]}
    schema = outline_schema(2, "en", Bible.from_json(bible))
    assert schema["properties"]["characters"]["items"]["properties"]["name"] == {"enum": ["Lili", "Afu"]}
    board, stages = plan_in_stages("A two-shot film: Lili meets Afu.", StoryModel("en"), bible=bible)
    assert board["project"]["series"] == "Pond Tales"
    assert board["characters"] == {"lili": {"name": "Lili", "description": "girl in a yellow raincoat",
                                            "voice": {"engine": "espeak", "pitch": 5}, "wardrobe": "yellow raincoat",
                                            "age": 9},
                                   "afu": {"name": "Afu", "description": "green frog", "language": "en"}}
    assert board["scenes"] == {"pond": {"location": "the pond", "time_of_day": "dusk",
                                        "description": "a pond with lilies"}}
    assert outline_request(stages) == ("A two-shot film: Lili meets Afu.\n"
                                       "Characters: Lili (girl in a yellow raincoat); Afu (green frog)\nPlaces: the pond")


def test_cli_writes_each_episode_and_says_where(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(backends, "make_backend", lambda *a, **k: StoryModel("ru"))
    path = _write(tmp_path, RU, "skazka.md")
    out = tmp_path / "episodes"
    assert main(["plan", "--from", str(path), "--episodes", "3", "--model", "any.gguf", "-o", str(out),
                 "--series", "Мельница"]) == 0
    said = capsys.readouterr().out
    assert said.count("wrote ") == 3 and f"{out / 'episode-03.json'}: episode 3, 4 shot(s), Маша" in said
    boards, raw = _episodes(out)
    assert {b.project.series for b in boards} == {"Мельница"}
    assert main(["plan", "--episodes", "2", "--model", "any.gguf"]) == 2
    assert "--episodes needs --from TEXT" in capsys.readouterr().err


@needs_llama
def test_every_stage_s_grammar_compiles_in_llama_cpp(tmp_path_factory, tmp_path):
    pytest.importorskip("gguf", reason="the gguf package (writes the test model) is not installed")
    tiny = write_tiny_llama(tmp_path_factory.mktemp("llm") / "tiny-llama.gguf")
    novel = open_novel(_write(tmp_path, EN), 3)
    paths = plan_novel(novel, LlamaCppBackend(tiny, n_ctx=4096, max_tokens=1200), tmp_path / "out", shots=2)
    boards = [load_storyboard(p) for p in paths]
    ids = [set(b.characters) for b in boards]
    assert len(boards) == 3 and all(i <= {"mara", "tom", "pip", "stone_bridge", "willow_river"} for i in ids)
    assert all(len(b.shots) == 2 and b.project.episode == k + 1 for k, b in enumerate(boards))
