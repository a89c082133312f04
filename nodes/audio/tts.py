"""Text-to-speech behind one interface, one engine per character voice.

An engine (registered in :mod:`.speech`, where the types it speaks in live) turns one sentence into audio;
:func:`synthesize` does the rest the same way for every engine: normalise the text, refuse empty lines, split
long lines into sentences, and join the sentences with short pauses and click-free fades. What a voice asks for
that its engine cannot do (an emotion, a pitch shift) comes back in ``Speech.notes`` rather than being dropped
silently.
"""
from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np

from ...common.emotion import EMOTIONS, emotion_defaults
from .clip import AudioClip
from .speech import _ENGINES, PHONE_SET, PhoneTiming, Speech, TTSEngine, TTSError, VoiceSettings
from .text import has_speech, normalize_text, split_sentences
from .words import estimated_words, shifted, voiced_span, words_from_phones

log = logging.getLogger(__name__)

SENTENCE_PAUSE_SECONDS = 0.18
FADE_SECONDS = 0.008


def engine_names() -> list[str]:
    _load_builtin_engines()
    return sorted(_ENGINES)


def get_engine(name: str) -> TTSEngine:
    _load_builtin_engines()
    if name not in _ENGINES:
        raise TTSError(f"unknown TTS engine {name!r}; available: {', '.join(sorted(_ENGINES))}")
    return _ENGINES[name]()


def _load_builtin_engines() -> None:
    if "espeak" not in _ENGINES:
        from . import engines  # noqa: F401  (registers the built-in engines)


def synthesize(text: str, voice: VoiceSettings) -> Speech:
    """Speak a dialogue line with ``voice``: normalised, split into sentences, joined without clicks."""
    if voice.emotion not in EMOTIONS:
        raise TTSError(f"unknown emotion {voice.emotion!r}; one of {', '.join(EMOTIONS)}")
    words = normalize_text(text, voice.language)
    if not has_speech(words):
        raise TTSError(f"nothing to say: the line {text!r} has no words")
    voice = line_prosody(voice)
    engine = get_engine(voice.engine)
    parts = [with_words(engine.speak(sentence, voice)) for sentence in split_sentences(words)]
    return with_energy(join_speech(parts, words), voice.energy)


def line_prosody(voice: VoiceSettings) -> VoiceSettings:
    """The voice with its emotion's default prosody applied (rate ×, pitch +, energy ×), once: what every engine
    then speaks with (each honours what it has; energy is set here, for all); unchanged when it is the line's own."""
    if not voice.emotion_prosody:
        return voice
    emotion = emotion_defaults(voice.emotion)
    return replace(voice, rate=voice.rate * emotion.rate, pitch=voice.pitch + emotion.pitch,
                   energy=voice.energy * emotion.energy, emotion_prosody=False)


def with_energy(speech: Speech, energy: float) -> Speech:
    """The spoken sound's level × ``energy`` (held to -1..1: a shout's peaks clip, as a shout's do)."""
    if energy == 1.0:
        return speech
    samples = np.clip(speech.audio.samples * np.float32(energy), -1.0, 1.0)
    return replace(speech, audio=AudioClip(samples, speech.audio.sample_rate))


def with_words(speech: Speech) -> Speech:
    """The sentence with its word timings: the engine's own, else from its phones (Piper), else spread over its
    voiced span by letters (an estimate: logged, as it is no fault of the line)."""
    if speech.words:
        return speech
    words = words_from_phones(speech.text, speech.phones)
    if not words:
        log.debug("no word timings from the voice for %r; estimated from the sound", speech.text[:40])
        words = estimated_words(speech.text, *voiced_span(speech.audio.mono(), speech.audio.sample_rate))
    return replace(speech, words=words)


def join_speech(parts: list[Speech], text: str = "") -> Speech:
    """Sentences one after another with a short pause, each faded in and out over a few milliseconds."""
    rate = parts[0].audio.sample_rate
    channels = max(p.audio.channels for p in parts)
    pause = np.zeros((channels, int(SENTENCE_PAUSE_SECONDS * rate)), np.float32)
    chunks, phones, notes, words, offset = [], [], [], [], 0.0
    for i, part in enumerate(parts):
        if part.audio.sample_rate != rate:
            raise TTSError("sentences came back at different sample rates")
        samples = np.broadcast_to(part.audio.samples, (channels, part.audio.frames)).copy()
        fade_edges(samples, rate)
        if i:
            chunks.append(pause)
            offset += pause.shape[1] / rate
        chunks.append(samples)
        phones += [PhoneTiming(p.phone, p.start + offset, p.end + offset) for p in part.phones]
        words += shifted(part.words, offset)
        notes += [n for n in part.notes if n not in notes]
        offset += samples.shape[1] / rate
    sets = {p.phone_set for p in parts if p.phones}
    if len(sets) > 1:  # never mix names from two phone sets in one timeline
        log.warning("sentences came back in different phone sets (%s); phone timings dropped", ", ".join(sorted(sets)))
        phones = []
    return Speech(AudioClip(np.concatenate(chunks, axis=1), rate), tuple(phones), tuple(notes), text,
                  sets.pop() if len(sets) == 1 else PHONE_SET, tuple(words))


def fade_edges(samples: np.ndarray, rate: int, seconds: float = FADE_SECONDS) -> None:
    """Raised-cosine fade in and out, in place: a cut at a non-zero sample is an audible click."""
    n = min(int(seconds * rate), samples.shape[1] // 2)
    if n <= 0:
        return
    ramp = (0.5 - 0.5 * np.cos(np.linspace(0, np.pi, n, dtype=np.float32)))
    samples[:, :n] *= ramp
    samples[:, -n:] *= ramp[::-1]
