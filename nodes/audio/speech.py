"""What a voice is and what it gives back (the settings, the speech with its phone and word timings, the error),
and the registry engines add themselves to: the ground :mod:`.tts` and every engine stand on, so that an engine
module never imports the synthesis that loads it."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

from .clip import AudioClip
from .words import WordTiming

PHONE_SET = "ipa"  # the phone set of Speech.phones from the built-in engines


class TTSError(ValueError):
    """A voice that cannot speak: unknown engine, missing model file, unreachable server, empty text, unsupported language."""


@dataclass(frozen=True)
class VoiceSettings:
    """How one character speaks. ``voice`` is engine-specific: an espeak voice, a Piper ``.onnx`` file,
    a reference WAV for cloning, a server-side voice name."""

    engine: str = "espeak"
    voice: str | None = None
    language: str = "en"
    rate: float = 1.0
    pitch: float = 0.0          # semitones
    emotion: str = "neutral"
    server_url: str | None = None
    model: str | None = None
    energy: float = 1.0         # × the spoken sound's level
    # True: the emotion's default prosody (common/emotion.py) goes on top of rate, pitch and energy; False: they are
    # the line's own already (the translator works them out); either way the emotion still picks an engine's style
    emotion_prosody: bool = True


@dataclass(frozen=True)
class PhoneTiming:
    """A phone the engine reports it spoke, in seconds from the line's start; ``Speech.phone_set`` says
    which phone set the name is in."""

    phone: str
    start: float
    end: float


@dataclass(frozen=True)
class Speech:
    """A spoken line. ``phones`` are the engine's own timings (exact, so lip sync reads mouth shapes from
    them instead of recognising the audio again), named in ``phone_set``: "ipa" for espeak-ng and Piper,
    whose phonemes are espeak-ng's IPA names (Piper's one codepoint each, stress and length marks apart)."""

    audio: AudioClip
    phones: tuple[PhoneTiming, ...] = ()
    notes: tuple[str, ...] = ()
    text: str = ""
    phone_set: str = PHONE_SET
    words: tuple[WordTiming, ...] = ()  # when each word is said (:mod:`.words`); filled by synthesize()


class TTSEngine(Protocol):
    name: str

    def speak(self, sentence: str, voice: VoiceSettings) -> Speech:
        """One sentence, already normalised and non-empty."""


_ENGINES: dict[str, Callable[[], TTSEngine]] = {}


def register_engine(name: str, factory: Callable[[], TTSEngine]) -> None:
    _ENGINES[name] = factory
