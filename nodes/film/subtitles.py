"""Subtitles: SRT, WebVTT and ASS sidecars, and burned-in captions drawn once per cue and laid over frames.

Where the voice said when each word is spoken (:mod:`..audio.words`), WebVTT carries a timestamp before each
word (a player highlights the words as they are said) and ASS karaoke tags (``{\\k}``, written by pysubs2, the
field's library for ASS, so styles and escaping are Aegisub's) sweep the colour across each word as it is said.

Fonts: the caption's characters decide. A font is used only if its character map covers every
character of the text (checked with fontTools), so CJK lines never come out as empty boxes. The
search order is an explicit font file, ``$ANIMSTUDIO_FONT``, fontconfig's best match for the text's
script, then well-known system fonts (DejaVu, Noto CJK, Droid Sans Fallback, WenQuanYi). When nothing
covers the text, :class:`FontError` says which characters and how to get a font (``apt-get install
fonts-noto-cjk`` or ``fonts-droid-fallback``, or ``$ANIMSTUDIO_FONT``).
"""
from __future__ import annotations

import logging
import os
import shutil
import subprocess
import textwrap
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..audio.words import WordTiming

log = logging.getLogger(__name__)

KNOWN_FONTS = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/System/Library/Fonts/PingFang.ttc",
    "C:/Windows/Fonts/msyh.ttc",
)


class FontError(RuntimeError):
    pass


@dataclass(frozen=True)
class SubtitleCue:
    start: float
    end: float
    text: str
    speaker: str = ""
    words: tuple[WordTiming, ...] = ()  # when each word is said, on the cue's clock (seconds)

    def moved(self, offset: float, until: float) -> "SubtitleCue":
        """The cue ``offset`` seconds later, cut to end by ``until`` (before the move), words with it."""
        end = min(self.end, until)
        words = tuple(WordTiming(w.word, w.start + offset, min(w.end, end) + offset) for w in self.words
                      if w.start < end)
        return SubtitleCue(self.start + offset, end + offset, self.text, self.speaker, words)


@dataclass(frozen=True)
class SubtitleStyle:
    font: str = ""             # a font file; empty: chosen to cover the text
    size: int = 0              # pixels; 0: 5.5% of the frame height
    color: tuple[int, int, int] = (255, 255, 255)
    outline: int = -1          # pixels; -1: size / 12
    outline_color: tuple[int, int, int] = (0, 0, 0)
    position: str = "bottom"   # bottom or top
    margin: float = 0.06       # of the frame height, from the edge
    max_width: float = 0.9     # of the frame width, before wrapping


# ------------------------------------------------------------------------------------------ sidecars

def _timestamp(seconds: float, separator: str) -> str:
    ms = int(round(max(0.0, seconds) * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{separator}{ms:03d}"


def _caption(cue: SubtitleCue) -> str:
    return f"{cue.speaker}: {cue.text}" if cue.speaker else cue.text


def to_srt(cues: Iterable[SubtitleCue]) -> str:
    blocks = [f"{i}\n{_timestamp(c.start, ',')} --> {_timestamp(c.end, ',')}\n{_caption(c)}\n"
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


# ------------------------------------------------------------------------------------------ fonts

@lru_cache(maxsize=64)
def _coverage(path: str) -> frozenset[int]:
    from fontTools.ttLib import TTCollection, TTFont

    try:
        fonts = TTCollection(path).fonts if path.lower().endswith((".ttc", ".otc")) else [TTFont(path, lazy=True)]
    except Exception as exc:  # noqa: BLE001 - an unreadable font is just not a candidate
        log.debug("cannot read font %s: %s", path, exc)
        return frozenset()
    covered: set[int] = set()
    for font in fonts[:1]:
        cmap = font.getBestCmap() or {}
        covered.update(cmap)
    return frozenset(covered)


def _needed(text: str) -> set[int]:
    return {ord(ch) for ch in text if not ch.isspace() and unicodedata.category(ch)[0] != "C"}


def _fontconfig_match(text: str) -> list[str]:
    if not shutil.which("fc-match"):
        return []
    lang = "zh" if any("\u4e00" <= ch <= "\u9fff" for ch in text) else (
        "ja" if any("\u3040" <= ch <= "\u30ff" for ch in text) else (
            "ko" if any("\uac00" <= ch <= "\ud7af" for ch in text) else "en"))
    try:
        out = subprocess.run(["fc-match", "-s", "-f", "%{file}\n", f"sans:bold:lang={lang}"], capture_output=True,
                             text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line for line in out.splitlines()[:12] if line]


@lru_cache(maxsize=1)
def _font_list() -> dict[str, str]:
    """Family name (lower case) → font file, from fontconfig's list of installed fonts, plus the known files
    by their stem; the only fonts a family name can reach."""
    families: dict[str, str] = {}
    if shutil.which("fc-list"):
        try:
            out = subprocess.run(["fc-list", "-f", "%{family}\t%{style}\t%{file}\n"], capture_output=True,
                                 text=True, timeout=20).stdout
        except (OSError, subprocess.SubprocessError):
            out = ""
        # regular faces first, so "DejaVu Sans" is the upright one
        rows = sorted((line.split("\t") for line in out.splitlines() if line.count("\t") == 2),
                      key=lambda r: ("regular" not in r[1].lower() and "book" not in r[1].lower(), r[2]))
        for family, _style, path in rows:
            for name in family.split(","):
                families.setdefault(name.strip().lower(), path)
    for path in KNOWN_FONTS:
        if Path(path).is_file():
            families.setdefault(Path(path).stem.lower(), path)
    return families


def system_font(family: str) -> str:
    """The font file of an installed font family (``"DejaVu Sans"``), by name only: never a path."""
    found = _font_list().get(family.strip().lower())
    if not found:
        raise FontError(f"no font family {family[:80]!r} in this machine's font list; name an installed family "
                        "(fc-list : family) or a font file in the input folder")
    return found


def find_font(text: str, preferred: str = "") -> str:
    """A font file whose character map covers every character of ``text``."""
    needed = _needed(text)
    if preferred:
        if not Path(preferred).is_file():
            raise FontError(f"subtitle font not found: {preferred}")
        missing = needed - _coverage(preferred)
        if missing:
            raise FontError(f"the subtitle font {preferred} has no glyph for {_show(missing)}")
        return preferred
    candidates = [os.environ.get("ANIMSTUDIO_FONT", "")] + _fontconfig_match(text) + list(KNOWN_FONTS)
    for path in candidates:
        if path and Path(path).is_file() and needed <= _coverage(path):
            return path
    raise FontError(f"no installed font covers {_show(needed - _union_coverage(candidates))} in {text!r}: install "
                    "one (Debian: apt-get install fonts-noto-cjk or fonts-droid-fallback) or set ANIMSTUDIO_FONT "
                    "to a .ttf/.otf/.ttc file")


def _union_coverage(paths) -> set[int]:
    covered: set[int] = set()
    for path in paths:
        if path and Path(path).is_file():
            covered |= _coverage(path)
    return covered


def _show(codepoints) -> str:
    chars = sorted(codepoints)[:8]
    return ", ".join(f"'{chr(c)}' (U+{c:04X})" for c in chars) + (" …" if len(codepoints) > 8 else "")


# ------------------------------------------------------------------------------------------ burning in

def _greedy(units: list[str], joiner: str, font, width: float) -> list[str]:
    """Fill each line with as many units (words, or characters) as fit in ``width``."""
    lines, line = [], ""
    for unit in units:
        trial = f"{line}{joiner}{unit}" if line else unit
        if font.getlength(trial) > width and line:
            lines.append(line)
            line = unit
        else:
            line = trial
    return lines + ([line] if line else [])


def _wrap(text: str, font, max_width: int) -> list[str]:
    """Wrap by words, or by characters for scripts written without spaces (CJK), in as few lines as fit and with
    those lines as even as they can be (the narrowest width that still needs no more lines): no lone word on a last
    line under a full one."""
    words = text.split()
    units, joiner = (list(text), "") if len(words) <= 1 and font.getlength(text) > max_width else (words, " ")
    lines = _greedy(units, joiner, font, max_width)
    if not lines:
        return textwrap.wrap(text, 40)
    if len(lines) > 1:
        low, high = max_width / len(lines), float(max_width)
        for _ in range(12):  # the narrowest width with no more lines, to within max_width / 4096
            middle = (low + high) / 2
            if len(_greedy(units, joiner, font, middle)) <= len(lines):
                high = middle
            else:
                low = middle
        lines = _greedy(units, joiner, font, high)
    return lines


@lru_cache(maxsize=8)  # captions come one after another: a few suffice
def caption_overlay(text: str, width: int, height: int, style: SubtitleStyle) -> tuple[np.ndarray, np.ndarray, int, int]:
    """The caption drawn once: RGB and alpha (0..1) of its box, and where the box goes on the frame."""
    size = style.size or max(10, int(round(height * 0.055)))
    outline = style.outline if style.outline >= 0 else max(1, size // 12)
    font = ImageFont.truetype(find_font(text, style.font), size)
    lines = _wrap(text, font, int(width * style.max_width))
    line_height = int(size * 1.25)
    box_w = min(width, int(max(font.getlength(line) for line in lines)) + 2 * outline + 4)
    box_h = line_height * len(lines) + 2 * outline + 4
    image = Image.new("RGBA", (box_w, box_h), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        x = (box_w - font.getlength(line)) / 2
        draw.text((x, outline + 2 + i * line_height), line, font=font, fill=(*style.color, 255),
                  stroke_width=outline, stroke_fill=(*style.outline_color, 255))
    array = np.asarray(image, np.float32)
    left = (width - box_w) // 2
    margin = int(height * style.margin)
    top = margin if style.position == "top" else max(0, height - margin - box_h)
    return array[..., :3], array[..., 3:4] / 255.0, left, top


def burn_in(frame: np.ndarray, text: str, style: SubtitleStyle = SubtitleStyle()) -> np.ndarray:
    """``frame`` with ``text`` drawn as a caption (a new array; the input is not changed)."""
    h, w = frame.shape[:2]
    rgb, alpha, left, top = caption_overlay(text, w, h, style)
    bh, bw = rgb.shape[:2]
    bh, bw = min(bh, h - top), min(bw, w - left)
    out = frame.copy()
    region = out[top:top + bh, left:left + bw].astype(np.float32)
    a = alpha[:bh, :bw]
    out[top:top + bh, left:left + bw] = (region * (1 - a) + rgb[:bh, :bw] * a + 0.5).astype(np.uint8)
    return out


def active_caption(cues: tuple[SubtitleCue, ...], seconds: float) -> str | None:
    for cue in cues:
        if cue.start <= seconds < cue.end:
            return _caption(cue)
    return None
