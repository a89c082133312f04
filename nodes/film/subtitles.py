"""Subtitles: the cue and its style, fonts that cover the text, and burned-in captions drawn once per cue and laid
over frames (the sidecar files are :mod:`.sidecars`).

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


def caption_text(cue: SubtitleCue) -> str:
    """A caption as shown (burned in, in SRT): the line, after its speaker's name when it has one."""
    return f"{cue.speaker}: {cue.text}" if cue.speaker else cue.text


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
            return caption_text(cue)
    return None
