"""Word-level subtitles: the voices' own word timings, WebVTT word timestamps and ASS karaoke (read back by pysubs2)."""
from __future__ import annotations

import re

import numpy as np
import pysubs2
import pytest

from animstudio.nodes.audio.clip import AudioClip
from animstudio.nodes.audio.tts import PhoneTiming, Speech, VoiceSettings, synthesize, with_words
from animstudio.nodes.audio.words import WordTiming, estimated_words, voiced_span, words_for_text, words_from_phones
from animstudio.nodes.film.clips import Film, Transition, still_clip
from animstudio.nodes.film.dialogue import Dialogue, SpokenLine
from animstudio.nodes.film.sidecars import parse_webvtt, to_ass, to_webvtt
from animstudio.nodes.film.subtitles import SubtitleCue

LINE = "Another quiet night at the lighthouse."


def rms(samples: np.ndarray, rate: int, start: float, end: float) -> float:
    part = samples[..., int(start * rate):int(end * rate)]
    return float(np.sqrt(np.mean(part ** 2))) if part.size else 0.0


def test_espeak_reports_each_word_where_it_is_said():
    speech = synthesize(LINE + " Is it?", VoiceSettings())
    words = speech.words
    assert [w.word for w in words] == ["Another", "quiet", "night", "at", "the", "lighthouse", "Is", "it"]
    starts = [w.start for w in words]
    assert starts == sorted(starts) and all(w.end > w.start for w in words)
    assert words[-1].end <= speech.audio.seconds + 1e-6
    # each word starts where one of the voice's phones starts (the same clock as lip sync)
    phone_starts = np.array([p.start for p in speech.phones])
    assert all(np.min(np.abs(phone_starts - w.start)) < 0.002 for w in words)
    # the second sentence's words come after the pause between the sentences, which is silent
    pause = (words[5].end, words[6].start)
    assert pause[1] - pause[0] >= 0.15
    samples, rate = speech.audio.samples, speech.audio.sample_rate
    assert rms(samples, rate, pause[0] + 0.02, pause[1] - 0.02) < 0.01 * rms(samples, rate, words[6].start, words[6].end)
    # a long word lasts longer than a short one
    assert words[5].end - words[5].start > 2 * (words[3].end - words[3].start)


def test_words_of_a_voice_without_timings():
    rate = 1000
    samples = np.zeros(3000, np.float32)
    samples[500:2500] = 0.5  # voiced from 0.5 s to 2.5 s
    assert voiced_span(samples, rate) == pytest.approx((0.5, 2.5))
    spoken = with_words(Speech(AudioClip(samples, rate), (), (), "ab abcd ab"))
    assert [(w.word, round(w.start, 3), round(w.end, 3)) for w in spoken.words] == [
        ("ab", 0.5, 1.0), ("abcd", 1.0, 2.0), ("ab", 2.0, 2.5)]
    # Piper: the spaces between its phones part the words
    phones = [PhoneTiming(p, a, b) for p, a, b in [("h", 0.1, 0.2), ("i", 0.2, 0.4), (" ", 0.4, 0.5),
                                                    ("ð", 0.5, 0.6), ("ɛ", 0.6, 0.8), ("ɹ", 0.8, 0.9)]]
    assert words_from_phones("Hi there.", phones) == (WordTiming("Hi", 0.1, 0.4), WordTiming("there.", 0.5, 0.9))
    assert words_from_phones("Hi there you.", phones) == ()  # counts disagree: the caller estimates
    # the written line keeps its punctuation, and a character the voice ran into the one before goes with it
    timed = [("Hi", 0.1, 0.4), ("there", 0.5, 0.9)]
    assert words_for_text("\"Hi, there!\"", timed) == (WordTiming("\"Hi,", 0.1, 0.4), WordTiming("there!\"", 0.5, 0.9))
    assert words_for_text("灯塔守。", [("灯", 0.0, 0.4), ("守", 0.5, 0.8)]) == (WordTiming("灯塔", 0.0, 0.4),
                                                                          WordTiming("守。", 0.5, 0.8))
    # the voice said "three" for "3": the written words keep the voice's times, one for one
    timed = [("I", 0.0, 0.2), ("have", 0.2, 0.5), ("three", 0.5, 0.9)]
    assert words_for_text("I have 3", timed) == (WordTiming("I", 0.0, 0.2), WordTiming("have", 0.2, 0.5),
                                                WordTiming("3", 0.5, 0.9))
    # ... and where the counts differ they share the span the voice's words took
    assert [w.word for w in words_for_text("I have 23", timed + [("three", 0.9, 1.3)])] == ["I", "have", "23"]
    assert estimated_words("", 0, 1) == ()


def test_webvtt_carries_speakers_and_word_times_both_ways():
    words = (WordTiming("Look", 1.0, 1.3), WordTiming("<there>", 1.45, 1.9), WordTiming("&", 2.0, 2.2))
    cues = (SubtitleCue(1.0, 2.4, "Look <there> &", "Ada & Bo", words), SubtitleCue(3.0, 4.0, "Hm."))
    text = to_webvtt(cues)
    assert "<v Ada &amp; Bo>Look <00:00:01.450>&lt;there&gt; <00:00:02.000>&amp;\n" in text
    back = parse_webvtt(text)
    assert [(c.start, c.end, c.text, c.speaker) for c in back] == [(1.0, 2.4, "Look <there> &", "Ada & Bo"),
                                                                  (3.0, 4.0, "Hm.", "")]
    # a word lasts until the next starts (WebVTT marks starts only)
    assert back[0].words == (WordTiming("Look", 1.0, 1.45), WordTiming("<there>", 1.45, 2.0),
                             WordTiming("&", 2.0, 2.4))
    assert back[1].words == ()


def test_ass_karaoke_lights_each_word_when_it_is_said():
    words = (WordTiming("Another", 2.6, 3.0), WordTiming("quiet", 3.1, 3.4), WordTiming("night", 3.4, 3.9))
    cues = [SubtitleCue(2.5, 4.25, "Another quiet night", "Ada", words)]
    subs = pysubs2.SSAFile.from_string(to_ass(cues, 512, 288))
    assert (subs.info["PlayResX"], subs.info["PlayResY"]) == ("512", "288")
    (event,) = subs.events
    assert (event.start, event.end, event.name) == (2500, 4250, "Ada")
    tags = re.findall(r"\{\\(kf?)(\d+)\}([^{]*)", event.text)
    # every tag's start, on the event's clock, is where its word starts: silences are plain \k without text
    at, starts = event.start, {}
    for kind, centis, text in tags:
        if text.strip():
            starts[text.strip()] = at
        at += int(centis) * 10
    assert starts == {"Another": 2600, "quiet": 3100, "night": 3400}
    assert at == 3900  # the last word's sweep ends when it is said
    assert event.plaintext.startswith("Ada: ")
    # braces in a line are text, not override tags
    (braced,) = pysubs2.SSAFile.from_string(to_ass([SubtitleCue(0, 1, "a {b}", "")], 64, 36)).events
    assert braced.text == "a \\{b\\}"
    style = subs.styles["Default"]
    assert style.alignment == pysubs2.Alignment.BOTTOM_CENTER and style.fontsize == round(288 * 0.055)


def test_film_moves_word_times_with_the_clip_and_cuts_them_at_its_end():
    rate = 8000
    words = (WordTiming("Hello", 0.0, 0.4), WordTiming("there.", 0.5, 1.5))
    line = SpokenLine("Ada", "Hello there.", 0.2, AudioClip(np.zeros(int(1.5 * rate)), rate), words=words)
    picture = np.zeros((36, 64, 3), np.uint8)
    film = Film().append(still_clip(picture, 64, 36, 10, 2.0)).append(
        still_clip(picture, 64, 36, 10, 1.0, dialogue=Dialogue((line,))), Transition("dissolve", 0.5))
    (cue,) = film.subtitle_track()
    # the clip starts at 1.5 s; the line at 0.2 s in it; the clip lasts 1 s, so the second word is cut at 2.5 s
    assert (round(cue.start, 3), round(cue.end, 3)) == (1.7, 2.5)
    assert [(w.word, round(w.start, 3), round(w.end, 3)) for w in cue.words] == [("Hello", 1.7, 2.1),
                                                                               ("there.", 2.2, 2.5)]
