"""When each word of a spoken line is said: the voice's own timings, for word-level (karaoke) subtitles.

espeak-ng reports a word event at each word's first sample (exact). Piper's phoneme alignments hold the
spaces between words, so its words are the runs of phones between them. Where a voice reports neither
(XTTS, a server voice, Piper without alignments), the words are spread over the line's voiced span in
proportion to their letters, and the speech says so in a note.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

SILENT_PHONES = ("", "_", "_:", " ")


@dataclass(frozen=True)
class WordTiming:
    """A word as written in the line, and when it is said, in seconds from the line's start."""

    word: str
    start: float
    end: float


def split_words(text: str) -> list[str]:
    """The line's words as a reader sees them (punctuation stays with its word)."""
    return text.split()


def _spoken(start: float, limit: float, phones: Sequence) -> list:
    return [p for p in phones if start - 1e-6 <= p.start < limit - 1e-6 and p.phone not in SILENT_PHONES]


def words_from_events(text: str, events: Iterable[tuple[int, int, float]], phones: Sequence,
                      seconds: float) -> tuple[WordTiming, ...]:
    """espeak's word events ``(first character, 1-based; length in characters; start in seconds)`` → timings.

    The word's text is the slice of ``text`` the event names. espeak signals a word a little before its first
    phone sounds, so the word spans its own phones: from the first that starts after the event to the end of
    the last before the next word's event (the clock lip sync reads)."""
    events = sorted(events, key=lambda e: e[2])
    out = []
    for i, (position, length, start) in enumerate(events):
        word = text[max(position - 1, 0):max(position - 1, 0) + max(length, 0)].strip()
        if not word:
            continue
        limit = events[i + 1][2] if i + 1 < len(events) else seconds
        own = _spoken(start, limit, phones)
        out.append(WordTiming(word, own[0].start, min(own[-1].end, limit)) if own else
                   WordTiming(word, start, limit))
    return tuple(out)


def words_from_phones(text: str, phones: Sequence) -> tuple[WordTiming, ...]:
    """Words as the runs of phones between space phones (Piper), matched to the written words in order;
    empty when the counts disagree (the phonemiser joined or split words), so the caller estimates."""
    runs, current = [], []
    for phone in phones:
        if phone.phone == " ":
            if current:
                runs.append(current)
            current = []
        elif phone.phone not in SILENT_PHONES:
            current.append(phone)
    if current:
        runs.append(current)
    written = [w for w in split_words(text) if any(ch.isalnum() for ch in w)]
    if not written or len(runs) != len(written):
        return ()
    return tuple(WordTiming(word, run[0].start, run[-1].end) for word, run in zip(written, runs))


def voiced_span(mono: np.ndarray, rate: int, floor_db: float = -40.0) -> tuple[float, float]:
    """First and last moments (seconds) of ``mono`` louder than ``floor_db`` below the peak, on 10 ms windows."""
    mono = np.abs(np.asarray(mono, np.float32))
    hop = max(int(rate * 0.01), 1)
    n = len(mono) // hop
    if n == 0 or mono.max() <= 0:
        return 0.0, len(mono) / rate
    level = mono[:n * hop].reshape(n, hop).max(axis=1)
    loud = np.flatnonzero(level >= mono.max() * 10 ** (floor_db / 20))
    return loud[0] * hop / rate, min((loud[-1] + 1) * hop / rate, len(mono) / rate)


def estimated_words(text: str, start: float, end: float) -> tuple[WordTiming, ...]:
    """The line's words spread over ``start..end`` in proportion to their letters (a word has at least one)."""
    words = split_words(text)
    if not words or end <= start:
        return ()
    weights = np.array([max(sum(ch.isalnum() for ch in w), 1) for w in words], np.float64)
    edges = start + (end - start) * np.concatenate([[0.0], np.cumsum(weights) / weights.sum()])
    return tuple(WordTiming(w, float(a), float(b)) for w, a, b in zip(words, edges[:-1], edges[1:]))


def shifted(words: Iterable[WordTiming], seconds: float) -> tuple[WordTiming, ...]:
    return tuple(WordTiming(w.word, w.start + seconds, w.end + seconds) for w in words)


def _located(text: str, timed: Sequence[WordTiming]) -> tuple[WordTiming, ...] | None:
    """The written line cut where each of the voice's words begins in it (found in order, ignoring case): each
    piece, punctuation and words the voice did not report (a CJK character it ran into the one before) with
    it, takes that word's timing. None when a word is not in the written text (the voice said "three" for "3")."""
    lowered, at, starts = text.lower(), 0, []
    for word in timed:
        found = lowered.find(word.word.lower(), at)
        if found < 0 or not word.word.strip():
            return None
        starts.append(found)
        at = found + len(word.word)
    bounds = [0] + starts[1:] + [len(text)]
    pieces = [(text[a:b].strip(), t) for a, b, t in zip(bounds, bounds[1:], timed)]
    return tuple(WordTiming(piece, t.start, t.end) for piece, t in pieces if piece)


def words_for_text(text: str, timed: Sequence) -> tuple[WordTiming, ...]:
    """The written line's words with the voice's timings (``WordTiming`` or ``(word, start, end)``).

    The voice's words are found in the written line in order; where the voice spoke something else (the
    normalised "three" for "3") the written words take the voice's one for one if the counts agree, else they
    share the span the voice's words took, by letters."""
    timed = [t if isinstance(t, WordTiming) else WordTiming(str(t[0]), float(t[1]), float(t[2])) for t in timed]
    written = split_words(text)
    if not timed or not written:
        return ()
    located = _located(text, timed)
    if located:
        return located
    if len(timed) == len(written):
        return tuple(WordTiming(w, t.start, t.end) for w, t in zip(written, timed))
    return estimated_words(text, timed[0].start, max(t.end for t in timed))
