"""A novel's text, before any model sees it: read (UTF-8 only; an empty or binary file refused), split into chapters
(Markdown headings, "Chapter 3", "第三章", "Глава 3", "제3장", "Capitolo 3", else its paragraphs), grouped into
episodes of about equal length, its language told from its script and common words, and the names that stand out
in it (capitalised words that recur, for the scripts that have capitals). No model, no ``nodes/`` import here,
except the one lazy espeak-ng check of :func:`voice_problem`.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from ...common.errors import Problem
from .backends import PlanError

MAX_TEXT_BYTES = 32 << 20   # a long novel is 1-2 MB of UTF-8
FRONT_MATTER_CHARS = 300    # text before the first chapter heading that long or longer is part of chapter 1


@dataclass
class Chapter:
    title: str
    text: str


# ------------------------------------------------------------------------------------------ reading

def read_text(path: str | Path) -> str:
    """The file's text, or one :class:`PlanError` naming it: missing, empty, binary or not UTF-8, too large."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_TEXT_BYTES:
            raise PlanError(f"{path}: the text is too large ({size >> 20} MB; at most {MAX_TEXT_BYTES >> 20} MB)")
        raw = path.read_bytes()
    except FileNotFoundError:
        raise PlanError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise PlanError(f"{path}: is a folder, not a text file") from None
    except OSError as exc:
        raise PlanError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    if b"\0" in raw:
        raise PlanError(f"{path}: is a binary file, not text",
                        [Problem("text", "give plain text or Markdown, UTF-8 encoded")])
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PlanError(f"{path}: is not UTF-8 text (byte {exc.start} cannot be read)",
                        [Problem("text", "save it as UTF-8 and try again")]) from None
    text = re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", " ", text.replace("\r\n", "\n").replace("\r", "\n"))
    if not re.search(r"\w", text):
        raise PlanError(f"{path}: the text is empty", [Problem("text", "nothing to make episodes from")])
    return text


# ------------------------------------------------------------------------------------------ chapters

_WORDS = ("one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|"
          "seventeen|eighteen|nineteen|twenty|uno|due|tre|quattro|cinque|sei|sette|otto|nove|dieci")
_NUM = rf"(?:\d+|[IVXLCDM]+|(?:{_WORDS})(?:[- ](?:{_WORDS}))?)"
_MARKERS = [
    re.compile(rf"^\s*(?:chapter|capitolo|chapitre|cap[ií]tulo|kapitel)\s+{_NUM}\b\s*[.:)\-–—]*\s*(.*)$", re.I),
    re.compile(r"^\s*第\s*[0-9０-９一二三四五六七八九十百千零〇两]+\s*[章回节]\s*[:：.、]?\s*(.*)$"),
    re.compile(r"^\s*глава\s+(?:\d+|[IVXLCDM]+|[а-яё]+)\b\s*[.:)\-–—]*\s*(.*)$", re.I),
    re.compile(r"^\s*제\s*[0-9]+\s*장\s*[:.]?\s*(.*)$"),
]
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")


def _heading(line: str, level: int | None) -> str | None:
    """The chapter title a line starts (possibly ""), else None."""
    match = _HEADING.match(line)
    if match and level is not None:
        return match.group(2).strip() if len(match.group(1)) == level else None
    text = match.group(2) if match else line
    for marker in _MARKERS:
        found = marker.match(text)
        if found and len(text) <= 120:
            return (found.group(1) or "").strip(" #") or text.strip(" #")
    return None


def _heading_level(lines: list[str]) -> int | None:
    """The Markdown heading level chapters use: the highest level that occurs at least twice."""
    levels = Counter(len(m.group(1)) for line in lines if (m := _HEADING.match(line)))
    repeated = [level for level, n in levels.items() if n >= 2]
    return min(repeated) if repeated else None


def _title_line(lines: list[str], level: int | None) -> str:
    for line in lines:
        match = _HEADING.match(line)
        if match and (level is None or len(match.group(1)) < level):
            return match.group(2).strip()
    return ""


def split_chapters(text: str) -> tuple[list[Chapter], str]:
    """(chapters, the text's title from a Markdown heading above the chapters, or ""). A text without chapter
    headings gives one chapter per paragraph (a blank line apart); :func:`group_episodes` puts them together."""
    lines = text.split("\n")
    level = _heading_level(lines)
    marks = [(i, title) for i, line in enumerate(lines) if (title := _heading(line, level)) is not None]
    if level is not None and len(marks) < 2:
        level = None
        marks = [(i, title) for i, line in enumerate(lines) if (title := _heading(line, None)) is not None]
    if not marks:
        paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if re.search(r"\w", p)]
        return [Chapter("", p) for p in paragraphs], _title_line(lines, None)
    front = "\n".join(lines[:marks[0][0]])
    title = _title_line(lines[:marks[0][0]], level)
    chapters = []
    for k, (start, name) in enumerate(marks):
        end = marks[k + 1][0] if k + 1 < len(marks) else len(lines)
        body = "\n".join(lines[start + 1:end]).strip()
        if re.search(r"\w", body):
            chapters.append(Chapter(name, body))
    prose = "\n".join(l for l in front.split("\n") if not _HEADING.match(l)).strip()
    if chapters and len(prose) >= FRONT_MATTER_CHARS:
        chapters[0].text = prose + "\n\n" + chapters[0].text
    return chapters, title


def group_episodes(chapters: list[Chapter], episodes: int) -> list[list[Chapter]]:
    """``episodes`` runs of consecutive chapters of about equal length (each at least one chapter)."""
    if not 1 <= episodes <= len(chapters):
        raise ValueError(f"{episodes} episodes from {len(chapters)} chapters")
    groups: list[list[Chapter]] = []
    rest = sum(len(c.text) for c in chapters)
    i = 0
    for k in range(episodes):
        left = episodes - k
        target = rest / left
        group, size = [chapters[i]], len(chapters[i].text)
        i += 1
        while len(chapters) - i > left - 1 and size + len(chapters[i].text) / 2 <= target:
            size += len(chapters[i].text)
            group.append(chapters[i])
            i += 1
        if left == 1:
            group += chapters[i:]
            size += sum(len(c.text) for c in chapters[i:])
            i = len(chapters)
        groups.append(group)
        rest -= size
    return groups


# ------------------------------------------------------------------------------------------ language

_SCRIPTS = [("ko", r"\uac00-\ud7af\u1100-\u11ff\u3130-\u318f"), ("kana", r"\u3040-\u30ff"),
            ("han", r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"), ("cyrillic", r"\u0400-\u04ff"),
            ("el", r"\u0370-\u03ff"), ("ar", r"\u0600-\u06ff"), ("he", r"\u0590-\u05ff"),
            ("hi", r"\u0900-\u097f"), ("th", r"\u0e00-\u0e7f"), ("ka", r"\u10a0-\u10ff"), ("hy", r"\u0530-\u058f"),
            ("latin", r"A-Za-z\u00c0-\u024f")]
_STOPWORDS = {
    "en": "the and of to was he she it his her in that with said you they had not but for",
    "it": "il la di che e non un una per con del della era gli le si lo ho ha sono",
    "es": "el la de que y en los las un una por con del se no era su para como",
    "fr": "le la les de des et est un une que qui dans il elle ne pas pour avec au",
    "de": "der die das und ist nicht ein eine zu mit sich den dem er sie es war auf",
    "pt": "o a os as de que e um uma para com não do da em era ele ela",
}
_STOP_SETS = {lang: set(words.split()) for lang, words in _STOPWORDS.items()}
KNOWN_LANGUAGES = ("en", "zh", "ru", "uk", "ko", "ja", "it", "es", "fr", "de", "pt", "el", "ar", "he", "hi", "th",
                   "ka", "hy")


def text_language(text: str) -> str | None:
    """The text's language code (``en``, ``zh``, ``ru``, ``ko``, ``it``, … :data:`KNOWN_LANGUAGES`) from its main
    script and, for Latin letters, its commonest words; None when neither tells."""
    sample = text[:200_000]
    counts = {name: len(re.findall(f"[{chars}]", sample)) for name, chars in _SCRIPTS}
    script, letters = max(counts.items(), key=lambda kv: kv[1])
    others = len(re.findall(r"[^\W\d_]", sample)) - sum(counts.values())
    if letters == 0 or others > letters:
        return None
    if script in ("kana", "han"):
        return "ja" if counts["kana"] >= 0.1 * (counts["kana"] + counts["han"]) else "zh"
    if script == "cyrillic":
        return "uk" if len(re.findall(r"[іїєґІЇЄҐ]", sample)) > 0.01 * letters else "ru"
    if script != "latin":
        return script
    words = re.findall(r"[^\W\d_]+", sample.lower())
    scores = {lang: sum(w in stop for w in words) for lang, stop in _STOP_SETS.items()}
    lang, hits = max(scores.items(), key=lambda kv: kv[1])
    return lang if hits >= max(3, 0.08 * len(words)) else None


def voice_problem(language: str) -> str | None:
    """Why no voice can speak ``language`` (espeak-ng, the voice every planned character gets), or None. espeak-ng
    missing on this machine is not a problem of the text: None then (``validate`` checks the machine's voices)."""
    from ...nodes.audio.engines import EspeakEngine  # lazily: the translator loads nodes/ only when it runs them
    from ...nodes.audio.espeak import EspeakUnavailable
    from ...nodes.audio.speech import TTSError, VoiceSettings

    try:
        EspeakEngine().resolve_voice(VoiceSettings("espeak", None, language))
    except EspeakUnavailable:
        return None
    except TTSError as exc:
        return str(exc)
    return None


# ------------------------------------------------------------------------------------------ names

_SENTENCE_END = re.compile(r"[.!?…:;\"“”«»—\n]\s*$")


def name_candidates(text: str, limit: int = 24) -> list[str]:
    """Capitalised words (or runs of them: "Stone Bridge") that recur, not only at the start of sentences (Latin,
    Cyrillic, Greek scripts), most frequent first: the names a text gives its characters and places. Headings are
    left out; empty for scripts without capitals."""
    body = "\n".join(line for line in text.split("\n") if _heading(line, None) is None and not _HEADING.match(line))
    counts: Counter[str] = Counter()
    starts: Counter[str] = Counter()
    word = r"[A-ZÀ-ÖØ-ÞА-ЯЁІЇЄҐΑ-Ω][a-zà-öø-ÿа-яёіїєґα-ω'’-]{1,29}"
    common = set().union(*_STOP_SETS.values())
    for match in re.finditer(rf"\b{word}(?: {word})*\b", body):
        before = body[max(0, match.start() - 3):match.start()]
        at_start = not before.strip() or bool(_SENTENCE_END.search(before))
        first, _, rest = match.group(0).partition(" ")
        if rest and (at_start or first.lower() in common):  # "The Willow River rose": the name is "Willow River"
            counts[rest] += 1
        else:
            (starts if at_start else counts)[match.group(0)] += 1
    lowered = set(re.findall(r"\b[a-zà-öø-ÿа-яёіїєґα-ω]+\b", body))
    ranked = [w for w, n in (counts + starts).most_common() if w.lower() not in common and
              ((counts[w] and n >= 2) or (starts[w] >= 2 and w.lower() not in lowered))]
    return ranked[:limit]


def occurs(name: str, text: str) -> bool:
    """Whether ``name`` is found in ``text``: as it is (any case), or each of its words by its stem (Russian and
    Italian names change their endings: Маша, Машу, Маши)."""
    name = re.sub(r"\s+", " ", name).strip()
    low = text.lower()
    if not name:
        return False
    if name.lower() in low:
        return True
    words = [w for w in re.findall(r"[^\W\d_]+", name.lower()) if len(w) >= 4]  # "the", "old" say nothing
    return bool(words) and all(re.search(rf"\b{re.escape(w[:max(3, len(w) - 2)])}", low) for w in words)


# ------------------------------------------------------------------------------------------ a request's names

_ZH_ROLES = ("女孩|男孩|姑娘|孩子|青蛙|熊猫|兔子|小猫|小狗|猫|狗|狐狸|熊|鸟|鱼|龙|老鼠|机器人|宇航员|老师|爷爷|奶奶|妈妈|"
             "爸爸|公主|王子|国王|船长|渔夫|医生|朋友")
_ZH_AFTER = "在和与跟说是的，。、！？,.!? 第也又就要想去来"
_NOT_NAMES = {"a", "an", "the", "in", "on", "at", "four", "three", "two", "five", "six", "film", "story", "shot", "shots",
              "фильм", "история", "четыре", "три", "два", "кадр", "кадра", "кадрах", "в", "на"}


def request_names(request: str) -> list[str]:
    """The names a request gives its characters: capitalised words (or runs of them) that do not open a sentence
    ("Mara, a girl in a red coat, meets Pip" → Mara, Pip; "девочка Маша" → Маша), and in Chinese a name after a
    role ("小女孩莉莉", "青蛙阿福", "叫白白的兔子") that is doubled (圆圆), begins with 小/阿/老, or is followed by a
    particle or a stop. Words that name no one (the, film, four) are left out; empty when the request names no one."""
    names: list[str] = []
    word = r"[A-ZÀ-ÖØ-ÞА-ЯЁІЇЄҐ][a-zà-öø-ÿа-яёіїєґ'’-]{1,29}"
    for match in re.finditer(rf"\b{word}(?: {word})*\b", request):
        before = request[max(0, match.start() - 3):match.start()]
        at_start = not before.strip() or bool(re.search(r"[.!?…]\s*$", before))
        name = match.group(0)
        if not at_start and name.lower() not in _NOT_NAMES:
            names.append(name)
    for match in re.finditer(r"(?:叫|名叫|名为)([\u4e00-\u9fff]{1,3}?)(?=的|，|。|、|,|$)", request):
        names.append(match.group(1))
    for match in re.finditer(rf"(?:{_ZH_ROLES})([\u4e00-\u9fff]{{2}})(.?)", request):
        name, after = match.group(1), match.group(2)
        if name[0] in "和与跟在是的她他它我你们这那一个只":  # a particle or pronoun, not a name ("奶奶和她的猫")
            continue
        if name[0] == name[1] or name[0] in "小阿老" or (after == "" or after in _ZH_AFTER):
            names.append(name)
    return list(dict.fromkeys(n for n in names if n))
