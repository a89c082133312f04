"""Subtitle sidecar files: SRT, WebVTT and ASS, written and read back.

Where the voice said when each word is spoken (:mod:`..audio.words`), WebVTT carries a timestamp before each
word (a player highlights the words as they are said) and ASS karaoke tags (``{\\k}``, written by pysubs2, the
field's library for ASS, so styles and escaping are Aegisub's) sweep the colour across each word as it is said.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

from ..audio.words import WordTiming
from .subtitles import SubtitleCue, SubtitleStyle, caption_text


def _timestamp(seconds: float, separator: str) -> str:
    ms = int(round(max(0.0, seconds) * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{separator}{ms:03d}"


def to_srt(cues: Iterable[SubtitleCue]) -> str:
    blocks = [f"{i}\n{_timestamp(c.start, ',')} --> {_timestamp(c.end, ',')}\n{caption_text(c)}\n"
              for i, c in enumerate(sorted(cues, key=lambda c: c.start), 1)]
    return "\n".join(blocks)


def parse_srt(text: str) -> tuple[SubtitleCue, ...]:
    """Cues from SRT text (the per-shot sidecars the compose graph reads back); speaker stays in the text."""
    import re

    cues = []
    for block in re.split(r"\n\s*\n", text.replace("\r\n", "\n").strip()):
        lines = block.strip().split("\n")
        timing = next((i for i, line in enumerate(lines) if "-->" in line), None)
        if timing is None:
            continue
        match = re.match(r"\s*(\d+):(\d+):(\d+)[,.](\d+)\s*-->\s*(\d+):(\d+):(\d+)[,.](\d+)", lines[timing])
        if not match:
            continue
        h1, m1, s1, f1, h2, m2, s2, f2 = (int(g) for g in match.groups())
        cues.append(SubtitleCue(h1 * 3600 + m1 * 60 + s1 + f1 / 1000, h2 * 3600 + m2 * 60 + s2 + f2 / 1000,
                                "\n".join(lines[timing + 1:]).strip()))
    return tuple(cues)


def _vtt_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _segments(cue: SubtitleCue) -> tuple[list[tuple[str, WordTiming]], str] | None:
    """The cue's text cut before each timed word: ``([(text before the word, word), ...], text after the last)``,
    so a writer puts a word's time in front of it and keeps the text as written (no spaces added between CJK
    characters); None when the cue has no word times or they do not match its text."""
    if not cue.words:
        return None
    out, at = [], 0
    for word in cue.words:
        found = cue.text.find(word.word, at)
        if found < 0:
            return None
        out.append((cue.text[at:found], word))
        at = found + len(word.word)
    return out, cue.text[at:]


def _vtt_text(cue: SubtitleCue) -> str:
    """The cue's text, each word after the first led by the timestamp it is said at (WebVTT karaoke)."""
    segments = _segments(cue)
    if segments is None:
        return _vtt_escape(cue.text)
    parts, tail = segments
    out = [_vtt_escape(before) + (f"<{_timestamp(max(w.start, cue.start), '.')}>" if i else "") + _vtt_escape(w.word)
           for i, (before, w) in enumerate(parts)]
    return "".join(out) + _vtt_escape(tail)


def to_webvtt(cues: Iterable[SubtitleCue]) -> str:
    blocks = ["WEBVTT\n"] + [f"{_timestamp(c.start, '.')} --> {_timestamp(c.end, '.')}\n"
                             + (f"<v {_vtt_escape(c.speaker)}>" if c.speaker else "") + _vtt_text(c) + "\n"
                             for c in sorted(cues, key=lambda c: c.start)]
    return "\n".join(blocks)


_VTT_TIME = r"(?:(\d+):)?(\d+):(\d+)\.(\d+)"


def _vtt_seconds(match) -> float:
    h, m, s, ms = match
    return int(h or 0) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000


def parse_webvtt(text: str) -> tuple[SubtitleCue, ...]:
    """Cues from WebVTT text as :func:`to_webvtt` writes it: speaker from ``<v>``, word times from the inline
    timestamps (the per-shot sidecars the compose graph reads back)."""
    import html
    import re

    cues = []
    for block in re.split(r"\n\s*\n", text.replace("\r\n", "\n").strip()):
        lines = block.strip().split("\n")
        timing = next((i for i, line in enumerate(lines) if "-->" in line), None)
        match = re.match(rf"\s*{_VTT_TIME}\s*-->\s*{_VTT_TIME}", lines[timing]) if timing is not None else None
        if not match:
            continue
        start, end = _vtt_seconds(match.groups()[:4]), _vtt_seconds(match.groups()[4:])
        body = "\n".join(lines[timing + 1:]).strip()
        speaker = ""
        voice = re.match(r"<v(?:\.[^ >]*)?\s+([^>]*)>", body)
        if voice:
            speaker, body = html.unescape(voice.group(1).strip()), body[voice.end():]
        body = re.sub(r"</v>", "", body)
        pieces = re.split(rf"<{_VTT_TIME}>", body)  # text, then (h, m, s, ms, text) for each timestamp
        marks = [start] + [_vtt_seconds(pieces[i:i + 4]) for i in range(1, len(pieces), 5)]
        texts = [pieces[0]] + [pieces[i + 4] for i in range(1, len(pieces), 5)]
        words = []
        if len(marks) > 1:
            for i, (at, piece) in enumerate(zip(marks, texts)):
                word = html.unescape(re.sub(r"<[^>]*>", "", piece)).strip()
                if word:
                    words.append(WordTiming(word, at, marks[i + 1] if i + 1 < len(marks) else end))
        plain = html.unescape(re.sub(r"<[^>]*>", "", "".join(texts))).strip()
        cues.append(SubtitleCue(start, end, plain, speaker, tuple(words)))
    return tuple(cues)


def read_sidecar(path: Path) -> tuple[SubtitleCue, ...]:
    """A per-shot subtitle sidecar, WebVTT (with speakers and word times) or SRT."""
    text = path.read_text(encoding="utf-8")
    return parse_webvtt(text) if path.suffix.lower() == ".vtt" else parse_srt(text)


SUBTITLE_FILES = ("none", "srt", "vtt", "ass", "srt+vtt", "srt+vtt+ass")  # sidecar choices, "+"-joined


def sidecar_text(kind: str, cues: tuple[SubtitleCue, ...], film, style: "SubtitleStyle") -> str:
    """One sidecar's text: ``kind`` srt, vtt or ass (sized for the film's frame)."""
    if kind == "srt":
        return to_srt(cues)
    if kind == "vtt":
        return to_webvtt(cues)
    first = film.clips[0]
    return to_ass(cues, first.width, first.height, style)


def _centiseconds(seconds: float) -> int:
    return max(int(round(seconds * 100)), 0)


def _ass_karaoke(cue: SubtitleCue, speaker: bool) -> str:
    """The cue's text with a ``{\\kf}`` tag before each word: the fill sweeps through the word while it is said,
    a ``{\\k}`` pause covers the silence before it."""
    def escape(text: str) -> str:
        return text.replace("\\", "\\\\").replace("{", "\\{").replace("}", "\\}").replace("\n", "\\N")

    lead = escape(f"{cue.speaker}: ") if speaker and cue.speaker else ""
    segments = _segments(cue)
    if segments is None:
        return lead + escape(cue.text)
    parts, tail = segments
    out, at = [lead], cue.start
    for before, word in parts:
        start, end = max(word.start, at), min(max(word.end, word.start), cue.end)
        out.append(escape(before))
        if _centiseconds(start - at):
            out.append(f"{{\\k{_centiseconds(start - at)}}}")
        out.append(f"{{\\kf{max(_centiseconds(end - start), 1)}}}{escape(word.word)}")
        at = max(end, start)
    return "".join(out) + escape(tail)


def to_ass(cues: Iterable[SubtitleCue], width: int, height: int, style: "SubtitleStyle | None" = None) -> str:
    """An Advanced SubStation Alpha script (through pysubs2) with karaoke timing where words are timed: the
    caption's style follows ``style`` (size as burned in, position, colours); the speaker is the event's Name."""
    import pysubs2

    style = style or SubtitleStyle()
    subs = pysubs2.SSAFile()
    subs.info.update({"PlayResX": str(width), "PlayResY": str(height), "ScaledBorderAndShadow": "yes",
                      "WrapStyle": "0"})
    size = style.size or max(int(round(height * 0.055)), 8)
    family = Path(style.font).stem if style.font else "DejaVu Sans"
    colour = pysubs2.Color(*style.color)
    subs.styles["Default"] = pysubs2.SSAStyle(
        fontname=family, fontsize=size, primarycolor=pysubs2.Color(255, 220, 64), secondarycolor=colour,
        outlinecolor=pysubs2.Color(*style.outline_color), backcolor=pysubs2.Color(0, 0, 0, 128), bold=True,
        outline=style.outline if style.outline >= 0 else max(size / 12, 1), shadow=0,
        alignment=pysubs2.Alignment.TOP_CENTER if style.position == "top" else pysubs2.Alignment.BOTTOM_CENTER,
        marginl=int(width * (1 - style.max_width) / 2), marginr=int(width * (1 - style.max_width) / 2),
        marginv=int(height * style.margin))
    for cue in sorted(cues, key=lambda c: c.start):
        subs.events.append(pysubs2.SSAEvent(start=int(round(cue.start * 1000)), end=int(round(cue.end * 1000)),
                                            name=cue.speaker, text=_ass_karaoke(cue, speaker=True)))
    return subs.to_string("ass")
