"""From a novel to episodes: a text (plain or Markdown, any language a voice speaks) → its chapters, grouped into
N episodes → a synopsis of each (one short grammar-held answer) → a series bible (the characters and places the
text names, each name checked to occur in the text, each character given its own voice) → a storyboard per
episode from the staged planner, held to the bible: the same ids, names, descriptions, voices and places in every
episode, ``project.series`` and ``project.episode`` set, each validated before it is written (atomically, as
``DIR/episode-01.json`` …, its stages beside it; the synopses and the bible in ``DIR/series.plan.json``).

Bad input is one :class:`PlanError` naming the file, before any model runs and before anything is written.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ...common.errors import Problem, StoryboardError
from ...common.paths import written_atomically
from .backends import PlanError
from .bible import Bible, BibleCharacter, BiblePlace
from .novel_text import (KNOWN_LANGUAGES, Chapter, group_episodes, name_candidates, occurs, read_text,
                         split_chapters, text_language, voice_problem)
from .planner import DEFAULT_CHECKPOINT, LANGUAGE_NAMES, MAX_PROBLEMS_SHOWN, _clean, _text, _validate
from .stages import _NAME_CHARS, DEFAULT_SHOTS, _ask, plan_in_stages, stages_json

EXCERPT_TOKENS = 900        # of an episode's text shown to a stage: fits a 2048-token context with the answer
MAX_CHARACTERS, MAX_PLACES = 8, 6
KINDS = ["man", "woman", "boy", "girl", "old man", "old woman", "creature"]
# a voice per kind of character (espeak-ng pitch in semitones, rate): the language picks espeak's voice
_VOICES = {"man": (-3.0, 1.0), "woman": (3.0, 1.0), "boy": (6.0, 1.05), "girl": (8.0, 1.05),
           "old man": (-5.0, 0.9), "old woman": (1.0, 0.9), "creature": (4.0, 1.1)}
_AGES = {"boy": "child", "girl": "child", "old man": "old", "old woman": "old"}


@dataclass
class Novel:
    """A text read and cut up, ready to plan: ``episodes`` lists the chapters of each."""
    path: str
    text: str
    language: str
    series: str
    chapters: list[Chapter]
    episodes: list[list[Chapter]]
    synopses: list[dict] = field(default_factory=list)
    bible: Bible = field(default_factory=Bible)
    dropped: list[str] = field(default_factory=list)   # names a model gave that the text does not have


def open_novel(path: str | Path, episodes: int | None = None, series: str = "") -> Novel:
    """Read and check the text: one :class:`PlanError` naming the file when it is empty, binary, in a language no
    voice speaks, or cannot give ``episodes`` (default: one per chapter, or one for a text without chapters)."""
    text = read_text(path)
    chapters, title = split_chapters(text)
    language = text_language(text)
    if language is None:
        raise PlanError(f"{path}: cannot tell the text's language, so no voice can speak it",
                        [Problem("text", "planning reads " + ", ".join(KNOWN_LANGUAGES))])
    problem = voice_problem(language)
    if problem:
        raise PlanError(f"{path}: no voice speaks the text's language ({LANGUAGE_NAMES.get(language, language)})",
                        [Problem("language", problem)])
    marked = any(c.title for c in chapters)
    count = episodes if episodes is not None else (len(chapters) if marked else 1)
    unit = "chapter" if marked else "paragraph"
    if count < 1:
        raise PlanError(f"{path}: the number of episodes must be 1 or more (got {count})")
    if count > len(chapters):
        raise PlanError(f"{path}: the text gives at most {len(chapters)} episode{'s' * (len(chapters) != 1)} "
                        f"({len(chapters)} {unit}{'s' * (len(chapters) != 1)}), not {count}",
                        [Problem("episodes", f"ask for {len(chapters)} or fewer")])
    name = series.strip() or title or Path(path).stem.replace("_", " ").replace("-", " ").strip().title()
    return Novel(str(path), text, language, _clean(name, 120) or "Series", chapters,
                 group_episodes(chapters, count))


# ------------------------------------------------------------------------------------------ excerpts

def _cost(text: str) -> float:
    """About how many tokens ``text`` takes: a CJK character one, other text four characters each."""
    wide = sum(1 for ch in text if ord(ch) >= 0x2e80)
    return wide + (len(text) - wide) / 4


def excerpt(chapters: list[Chapter], budget: int = EXCERPT_TOKENS) -> str:
    """The start of each chapter, an equal share of ``budget`` tokens each, cut at a sentence or a space."""
    share = budget / max(1, len(chapters))
    parts = []
    for chapter in chapters:
        text = " ".join(chapter.text.split())
        cut = len(text)
        if _cost(text) > share:
            cut = max(1, int(len(text) * share / _cost(text)))
            stop = max(text.rfind(mark, 0, cut) for mark in (". ", "。", "! ", "? ", "！", "？"))
            cut = stop + 1 if stop > cut // 2 else (text.rfind(" ", 0, cut) if text.rfind(" ", 0, cut) > 0 else cut)
        parts.append((f"{chapter.title}: " if chapter.title else "") + text[:cut].strip())
    return "\n".join(parts)


# ------------------------------------------------------------------------------------------ the stages

EXAMPLE_TEXT = ("Old Ana lived by the sea. One evening Ana cast his net from the rocks of Grey Cove and pulled out a "
                "golden fish. \"Let me go,\" said the fish, whose name was Goldie, \"and I will grant you a wish.\"")
EXAMPLE_SYNOPSIS = {"title": "The Golden Fish", "synopsis": "At Grey Cove, old Ana catches Goldie, a golden fish "
                    "that talks. Goldie begs to be let go and promises Ana a wish."}
EXAMPLE_BIBLE = {"characters": [{"name": "Ana", "kind": "old man", "look": "old fisherman with a grey beard"},
                                {"name": "Goldie", "kind": "creature", "look": "small shining golden fish"}],
                 "places": [{"name": "Grey Cove", "look": "rocky cove by the sea"}]}


def synopsis_schema() -> dict:
    return {"type": "object", "additionalProperties": False, "required": ["title", "synopsis"],
            "properties": {"title": _text(60), "synopsis": _text(400)}}


def bible_schema(language: str, candidates: list[str]) -> dict:
    """The characters and places of part of a text. Names are held to the names the text repeats when it writes
    capitals (Latin, Cyrillic), else to its script."""
    chars = _NAME_CHARS.get(language)
    name = ({"enum": candidates} if candidates else
            {"type": "string", "pattern": f"^[{chars}]{{1,12}}$"} if chars else _text(30))
    person = {"type": "object", "additionalProperties": False, "required": ["name", "kind", "look"],
              "properties": {"name": name, "kind": {"enum": KINDS}, "look": _text(100)}}
    place = {"type": "object", "additionalProperties": False, "required": ["name", "look"],
             "properties": {"name": _text(40), "look": _text(100)}}
    return {"type": "object", "additionalProperties": False, "required": ["characters", "places"],
            "properties": {"characters": {"type": "array", "minItems": 1, "maxItems": 5, "items": person},
                           "places": {"type": "array", "minItems": 1, "maxItems": 3, "items": place}}}


def _synopsis_prompt(language: str) -> str:
    name = LANGUAGE_NAMES.get(language, language)
    return ("You turn part of a story into one episode of an animated series: give the episode a title, and a "
            f"synopsis of two to four sentences in {name} saying what happens, naming the characters and places as "
            "the text names them. Answer with JSON only.\n"
            f"Example. Text: {EXAMPLE_TEXT}\nAnswer: {json.dumps(EXAMPLE_SYNOPSIS)}")


def _bible_prompt() -> str:
    return ("List the named characters of this part of a story, with the names exactly as the text writes them, "
            "what kind of character each one is and how each one looks, and the places where it happens. Answer "
            f"with JSON only.\nExample. Text: {EXAMPLE_TEXT}\nAnswer: {json.dumps(EXAMPLE_BIBLE)}")


def write_synopses(novel: Novel, backend, seed: int = 0) -> list[dict]:
    """One {title, synopsis} per episode, in the text's language."""
    novel.synopses = []
    for k, chapters in enumerate(novel.episodes):
        user = f"Episode {k + 1} of {len(novel.episodes)} of {novel.series}.\nText: {excerpt(chapters)}"
        reply = _ask(backend, _synopsis_prompt(novel.language), user, synopsis_schema(), seed + k, "synopsis")
        novel.synopses.append({"title": _clean(reply.get("title"), 60), "synopsis": _clean(reply.get("synopsis"))})
    return novel.synopses


def find_bible(novel: Novel, backend, seed: int = 0) -> Bible:
    """The series' characters and places from each episode's text (names the text does not have are dropped),
    the characters most named in the whole text first, each with a voice of its own."""
    people: dict[str, dict] = {}
    places: dict[str, dict] = {}
    for k, chapters in enumerate(novel.episodes):
        part = excerpt(chapters)
        reply = _ask(backend, _bible_prompt(), f"Text: {part}",
                     bible_schema(novel.language, name_candidates(part) or name_candidates(novel.text)),
                     seed + k, "characters")
        for found, into in ((reply.get("characters"), people), (reply.get("places"), places)):
            for item in found if isinstance(found, list) else []:
                name = _clean(item.get("name"), 40) if isinstance(item, dict) else ""
                if not name or name.lower() in map(str.lower, list(people) + list(places)):
                    continue
                if occurs(name, novel.text):
                    into[name] = item
                elif name not in novel.dropped:
                    novel.dropped.append(name)
    if not people:  # the model named nobody the text has: the names the text repeats, when it writes capitals
        people = {name: {} for name in name_candidates(novel.text)[:4]}
    if not people:
        raise PlanError(f"{novel.path}: found no named character in the text",
                        [Problem("characters", "name the characters in the text; the model's names "
                                               f"({', '.join(novel.dropped[:6]) or 'none'}) are not in it")])
    ranked = sorted(people, key=lambda n: -novel.text.lower().count(n.lower()))[:MAX_CHARACTERS]
    novel.bible = Bible.from_json({"series": novel.series, "characters": _with_voices(ranked, people),
                                   "places": [{"name": n, "description": _clean(places[n].get("look"))}
                                              for n in list(places)[:MAX_PLACES]]})
    return novel.bible


def _with_voices(names: list[str], found: dict[str, dict]) -> list[dict]:
    """Each character's entry with a voice of its own: its kind's pitch and rate, a step apart from others of
    its kind, so no two sound alike."""
    out, used = [], {}
    for name in names:
        kind = found[name].get("kind") if found[name].get("kind") in _VOICES else None
        pitch, rate = _VOICES.get(kind, (0.0, 1.0))
        step = used.get(kind, 0)
        used[kind] = step + 1
        entry = {"name": name, "description": _clean(found[name].get("look"), 200) or name,
                 "voice": {"engine": "espeak", "pitch": max(-12.0, min(12.0, pitch + 1.5 * step)), "rate": rate}}
        if kind in _AGES:
            entry["age"] = _AGES[kind]
        out.append(entry)
    return out


# ------------------------------------------------------------------------------------------ episodes

def _write(path: Path, text: str) -> None:
    with written_atomically(path) as partial:
        partial.write_text(text, encoding="utf-8")


def _episode(novel: Novel, k: int, backend, seed: int, shots: int | None, checkpoint: str) -> tuple[dict, str]:
    synopsis = novel.synopses[k]
    request = f"Episode {k + 1} of {novel.series}: {synopsis['synopsis'] or synopsis['title']}"
    try:
        board, stages = plan_in_stages(request, backend, seed=seed + k, shots=shots or DEFAULT_SHOTS,
                                       checkpoint=checkpoint,
                                       bible=novel.bible, language=novel.language)
    except PlanError as exc:
        raise PlanError(f"{novel.path}: episode {k + 1}: {exc.summary}", exc.problems) from None
    project = board["project"]
    project["title"] = synopsis["title"] or project["title"]
    project["series"], project["episode"] = novel.series, k + 1
    try:
        _validate(board, source=f"{novel.path}, episode {k + 1}")
    except StoryboardError as exc:
        raise PlanError(f"{novel.path}: episode {k + 1} does not validate", exc.problems[:MAX_PROBLEMS_SHOWN]) \
            from None
    return board, stages_json(stages)


def plan_novel(novel: Novel, backend, out_dir: str | Path, *, seed: int = 0, shots: int | None = None,
               checkpoint: str = DEFAULT_CHECKPOINT, written: Callable[[Path, dict], None] | None = None,
               known: Bible | None = None) -> list[Path]:
    """Synopses, bible, then each episode planned, validated and written to ``out_dir/episode-NN.json`` (its
    stages beside it, ``episode-NN.plan.json``) as soon as it is planned; ``written(path, board)`` is called for
    each. ``known``: characters and places the series already has (a project library's), whose entries replace
    the text's of the same name. A failing episode raises :class:`PlanError` naming it; the episodes before it are
    kept."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise PlanError(f"{out}: is a file; with --from, -o names a folder for the episodes")
    write_synopses(novel, backend, seed)
    find_bible(novel, backend, seed)
    if known:
        novel.bible = novel.bible.reusing(known)
    out.mkdir(parents=True, exist_ok=True)
    width = max(2, len(str(len(novel.episodes))))
    names = [f"episode-{k + 1:0{width}d}" for k in range(len(novel.episodes))]
    _write(out / "series.plan.json", json.dumps(
        {"series": novel.series, "source": Path(novel.path).name, "language": novel.language,
         "episodes": [{"episode": k + 1, "file": f"{names[k]}.json", "chapters": [c.title for c in chapters],
                       **novel.synopses[k]} for k, chapters in enumerate(novel.episodes)],
         "bible": novel.bible.to_json(), "names_not_in_text": novel.dropped}, ensure_ascii=False, indent=2) + "\n")
    paths = []
    for k in range(len(novel.episodes)):
        board, plan = _episode(novel, k, backend, seed, shots, checkpoint)
        path = out / f"{names[k]}.json"
        _write(path, json.dumps(board, ensure_ascii=False, indent=2) + "\n")
        _write(out / f"{names[k]}.plan.json", plan)
        paths.append(path)
        if written is not None:
            written(path, board)
    return paths


__all__ = ["Novel", "open_novel", "plan_novel", "write_synopses", "find_bible", "excerpt", "Bible",
           "BibleCharacter", "BiblePlace"]
