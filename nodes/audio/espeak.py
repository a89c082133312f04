"""espeak-ng through its C API (ctypes), from the ``espeakng-loader`` wheel: a voice on any fresh machine.

The library is process-global and not thread-safe, so every call holds one lock. Synthesis runs in
synchronous mode with a callback that collects the samples and the phoneme events espeak emits
(their times are exact, which lets lip sync read mouth shapes straight from the voice).

The library is initialised with ``espeakINITIALIZE_PHONEME_IPA``, so each phoneme event names its phone
in IPA (UTF-8, at most 8 bytes, not always NUL-terminated) rather than in espeak's per-language ASCII
mnemonics: IPA is one phone set for every language espeak speaks, and it is the set Piper reports too.
Pauses (espeak's ``_`` and ``_:`` phonemes, which have no IPA) come back with an empty name;
:mod:`..lipsync.ipa` reads empty names, and ``_`` ones, as silence.
"""
from __future__ import annotations

import ctypes
import logging
import threading
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

log = logging.getLogger(__name__)

AUDIO_OUTPUT_SYNCHRONOUS = 2
INITIALIZE_PHONEME_EVENTS = 0x0001
INITIALIZE_PHONEME_IPA = 0x0002
INITIALIZE_DONT_EXIT = 0x8000
POS_CHARACTER = 1
CHARS_UTF8 = 1
EVENT_WORD, EVENT_SENTENCE, EVENT_END, EVENT_MSG_TERMINATED, EVENT_PHONEME = 1, 2, 5, 6, 7
PARAM_RATE, PARAM_VOLUME, PARAM_PITCH, PARAM_RANGE, PARAM_WORDGAP = 1, 2, 3, 4, 7
DEFAULT_WPM = 175
PHONE_SET = "ipa"  # what PhonemeEvent.phoneme is in (espeak's IPA names, as Piper's phonemes)


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint), ("text_position", ctypes.c_int),
                ("length", ctypes.c_int), ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", _EventId)]


class _Voice(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("languages", ctypes.c_void_p), ("identifier", ctypes.c_char_p),
                ("gender", ctypes.c_ubyte), ("age", ctypes.c_ubyte), ("variant", ctypes.c_ubyte),
                ("xx1", ctypes.c_ubyte), ("score", ctypes.c_int), ("spare", ctypes.c_void_p)]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))
_lock = threading.Lock()


class EspeakUnavailable(RuntimeError):
    pass


@dataclass(frozen=True)
class PhonemeEvent:
    """A phoneme espeak spoke: its IPA name (``PHONE_SET``) and where it starts, in samples."""

    phoneme: str
    sample: int


@dataclass(frozen=True)
class WordEvent:
    """A word espeak began: its first character in the text (1-based), its length in characters, its first sample."""

    position: int
    length: int
    sample: int


@dataclass(frozen=True)
class EspeakVoice:
    identifier: str
    name: str
    languages: tuple[str, ...]


@dataclass
class _Engine:
    lib: ctypes.CDLL
    sample_rate: int
    callback: object = None
    samples: list = None
    events: list = None
    words: list = None


@lru_cache(maxsize=1)
def _engine() -> _Engine:
    try:
        import espeakng_loader
    except ImportError:
        raise EspeakUnavailable("the espeak-ng voice needs the package espeakng-loader "
                                "(pip install espeakng-loader)") from None
    lib = ctypes.CDLL(espeakng_loader.get_library_path())
    lib.espeak_Initialize.restype = ctypes.c_int
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                                 ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
    lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_Voice))
    lib.espeak_ListVoices.argtypes = [ctypes.c_void_p]
    rate = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, espeakng_loader.get_data_path().encode(),
                                 INITIALIZE_PHONEME_EVENTS | INITIALIZE_PHONEME_IPA | INITIALIZE_DONT_EXIT)
    if rate <= 0:
        raise EspeakUnavailable(f"espeak-ng failed to initialise with its data at {espeakng_loader.get_data_path()}")
    engine = _Engine(lib, rate)

    def collect(wav, count, events):
        if count > 0 and engine.samples is not None:
            engine.samples.append(np.ctypeslib.as_array(wav, shape=(count,)).copy())
        i = 0
        while events and events[i].type != 0:  # LIST_TERMINATED
            event = events[i]
            if event.type == EVENT_PHONEME and engine.events is not None:
                engine.events.append(PhonemeEvent(_phoneme_name(bytes(event.id.string)), event.sample))
            elif event.type == EVENT_WORD and engine.words is not None:
                engine.words.append(WordEvent(event.text_position, event.length, event.sample))
            i += 1
        return 0

    engine.callback = _CALLBACK(collect)  # kept referenced: espeak calls it from C
    lib.espeak_SetSynthCallback(engine.callback)
    return engine


def _phoneme_name(raw: bytes) -> str:
    """The IPA name in an event's 8-byte ``id.string``: up to the first NUL, as UTF-8.

    The field is a fixed ``char[8]`` that espeak fills without a terminator when the name takes all 8
    bytes, and a long name may be cut inside a multi-byte character, so a broken tail is dropped rather
    than turned into a replacement character.
    """
    raw = raw.split(b"\0", 1)[0][:8]
    return raw.decode("utf-8", "ignore")


@lru_cache(maxsize=1)
def list_voices() -> tuple[EspeakVoice, ...]:
    with _lock:
        engine = _engine()
        voices = engine.lib.espeak_ListVoices(None)
        found, i = [], 0
        while voices[i]:
            v = voices[i].contents
            raw = ctypes.string_at(v.languages, 64)
            langs, pos = [], 0
            while pos < len(raw) and raw[pos] != 0:  # (priority byte, name, NUL) repeated, ended by a 0 byte
                end = raw.index(b"\0", pos + 1)
                langs.append(raw[pos + 1:end].decode())
                pos = end + 1
            found.append(EspeakVoice(v.identifier.decode(), v.name.decode(), tuple(langs)))
            i += 1
    return tuple(found)


def espeak_synthesize(text: str, voice: str = "en-us", rate: float = 1.0, pitch: float = 0.0,
                      ) -> tuple[np.ndarray, int, list[PhonemeEvent], list[WordEvent]]:
    """Speak ``text``; returns mono float32 samples in -1..1, the sample rate, the phoneme and the word events.

    ``rate`` scales espeak's default 175 words a minute; ``pitch`` is in semitones around the voice's own
    (espeak's 0-100 pitch scale, 50 = normal, covers roughly an octave either way).
    """
    with _lock:
        engine = _engine()
        lib = engine.lib
        if lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise ValueError(f"espeak-ng has no voice or language {voice!r}")
        lib.espeak_SetParameter(PARAM_RATE, int(round(DEFAULT_WPM * rate)), 0)
        lib.espeak_SetParameter(PARAM_PITCH, int(np.clip(50 + pitch * 50 / 12, 0, 100)), 0)
        engine.samples, engine.events, engine.words = [], [], []
        data = text.encode("utf-8") + b"\0"
        try:
            status = lib.espeak_Synth(data, len(data), 0, POS_CHARACTER, 0, CHARS_UTF8, None, None)
            if status != 0:
                raise RuntimeError(f"espeak-ng could not synthesise the text (error {status})")
            samples = np.concatenate(engine.samples) if engine.samples else np.zeros(0, np.int16)
            events, words = engine.events, engine.words
        finally:
            engine.samples = engine.events = engine.words = None
    return samples.astype(np.float32) / 32768.0, engine.sample_rate, events, words
