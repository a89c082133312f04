"""Subtitles: sidecar formats, burned-in captions checked by pixels, fonts that cover the text (CJK too)."""
from __future__ import annotations

import numpy as np
import pytest

from animstudio.nodes.film.clips import Film, Transition, still_clip
from animstudio.nodes.film.dialogue import Dialogue, SpokenLine
from animstudio.nodes.audio.clip import AudioClip
from animstudio.nodes.film.sidecars import parse_srt, to_srt, to_webvtt
from animstudio.nodes.film.subtitles import FontError, SubtitleCue, SubtitleStyle, active_caption, burn_in, find_font

CJK = "灯塔守护者说：今晚很安静。"


def cjk_font_or_skip():
    try:
        return find_font(CJK)
    except FontError as exc:
        pytest.skip(f"no CJK font installed here ({exc}); .ci/run installs fonts-droid-fallback")


def test_srt_and_webvtt_text():
    cues = [SubtitleCue(2.5, 4.272, "Another quiet night.", "Ada"), SubtitleCue(0.0, 1.0, "Hm.")]
    assert to_srt(cues) == ("1\n00:00:00,000 --> 00:00:01,000\nHm.\n\n"
                            "2\n00:00:02,500 --> 00:00:04,272\nAda: Another quiet night.\n")
    assert to_webvtt(cues) == ("WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nHm.\n\n"
                               "00:00:02.500 --> 00:00:04.272\n<v Ada>Another quiet night.\n")
    assert parse_srt(to_srt(cues)) == (SubtitleCue(0.0, 1.0, "Hm."), SubtitleCue(2.5, 4.272, "Ada: Another quiet night."))


def test_burned_caption_is_white_text_with_an_outline_in_the_bottom_band():
    frame = np.full((288, 512, 3), 100, np.uint8)
    out = burn_in(frame, "Ada: Another quiet night.")
    changed = np.any(out != frame, axis=2)
    rows = np.nonzero(changed.any(axis=1))[0]
    assert rows.min() > 288 * 0.7 and rows.max() < 288  # bottom band only
    assert (out[changed] > 240).all(axis=1).sum() > 100 and (out[changed] < 30).all(axis=1).sum() > 100
    top = burn_in(frame, "Top line.", SubtitleStyle(position="top"))
    assert np.nonzero(np.any(top != frame, axis=2).any(axis=1))[0].max() < 288 * 0.3
    assert np.array_equal(frame, np.full((288, 512, 3), 100, np.uint8))  # the input is untouched


def test_long_lines_wrap_and_cjk_renders():
    frame = np.full((288, 512, 3), 100, np.uint8)
    wrapped = burn_in(frame, "This is a very long line of dialogue that cannot possibly fit on one line of the frame.")
    rows = np.nonzero(np.any(wrapped != frame, axis=2).any(axis=1))[0]
    assert rows.max() - rows.min() > 2 * 288 * 0.055  # two lines or more
    font = cjk_font_or_skip()
    cjk = burn_in(frame, CJK, SubtitleStyle(font=font))
    assert (np.any(cjk != frame, axis=2)).sum() > 500


def test_fonts_must_cover_the_text(tmp_path):
    latin = find_font("Hello")
    with pytest.raises(FontError, match=r"has no glyph for .*'灯' \(U\+706F\)"):
        find_font("灯塔", latin)
    with pytest.raises(FontError, match="subtitle font not found"):
        find_font("Hello", str(tmp_path / "missing.ttf"))


def test_film_subtitles_follow_clip_starts():
    rate = 8000
    line = SpokenLine("Ada", "Hello there.", 0.2, AudioClip(np.zeros(rate), rate))
    dialogue = Dialogue((line,)).then(Dialogue((SpokenLine("Ben", "Hi.", 0.0, AudioClip(np.zeros(rate // 2), rate)),)), 0.3)
    picture = np.zeros((90, 160, 3), np.uint8)
    film = Film().append(still_clip(picture, 64, 36, 10, 2.0)).append(
        still_clip(picture, 64, 36, 10, 3.0, dialogue=dialogue), Transition("dissolve", 0.5))
    track = film.subtitle_track()
    assert [(round(c.start, 3), round(c.end, 3), c.speaker) for c in track] == [(1.7, 2.7, "Ada"), (3.0, 3.5, "Ben")]
    assert active_caption(track, 2.0) == "Ada: Hello there." and active_caption(track, 2.8) is None


def test_captions_wrap_in_even_lines_without_a_lone_last_word():
    from PIL import ImageFont

    from animstudio.nodes.film.subtitles import _greedy, _wrap

    font = ImageFont.truetype(find_font("Hello"), 20)
    text = "The light must burn tonight for every ship out there tonight"
    width = int(font.getlength("The light must burn tonight for every ship out there")) + 2
    greedy = _greedy(text.split(), " ", font, width)
    assert greedy[-1] == "tonight"  # what filling each line gives: one word alone under a full line
    lines = _wrap(text, font, width)
    assert len(lines) == len(greedy) == 2 and " ".join(lines) == text
    lengths = [font.getlength(line) for line in lines]
    assert max(lengths) <= width and min(lengths) > 0.6 * max(lengths)
    assert _wrap("Short line.", font, width) == ["Short line."]
