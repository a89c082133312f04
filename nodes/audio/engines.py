"""The built-in TTS engines, registered by name. Each optional engine imports its library only when used,
so a missing package or model is reported when a voice asks for it, never at import."""
from __future__ import annotations

from .clip import AudioClip
from .espeak import PHONE_SET, EspeakUnavailable, espeak_synthesize, list_voices
from .speech import PhoneTiming, Speech, TTSError, VoiceSettings, register_engine
from .words import words_from_events

# espeak has no emotions: their prosody (common/emotion.py, applied by synthesize) carries them, and a whisper is
# also spoken with espeak-ng's whispering voice variant
ESPEAK_VARIANT = {"whisper": "+whisper"}


class EspeakEngine:
    """espeak-ng: robotic but everywhere, every language it ships, exact phone timings (IPA names, pauses as
    empty or ``_`` names: see :mod:`.espeak`)."""

    name = "espeak"

    def resolve_voice(self, voice: VoiceSettings) -> str:
        wanted = (voice.voice or voice.language or "en").lower()
        voices = list_voices()
        for v in voices:
            if wanted in (v.identifier.lower(), v.identifier.lower().split("/")[-1], v.name.lower()):
                return v.identifier
        for v in voices:
            if wanted in (lang.lower() for lang in v.languages):
                return v.identifier
        base = wanted.split("-")[0]
        for v in voices:
            if base in (lang.lower() for lang in v.languages):
                return v.identifier
        known = sorted({lang for v in voices for lang in v.languages})
        raise TTSError(f"espeak-ng has no voice for {wanted!r}; languages it speaks: {', '.join(known[:40])}, …")

    def speak(self, sentence: str, voice: VoiceSettings) -> Speech:
        variant = ESPEAK_VARIANT.get(voice.emotion, "")
        try:
            samples, rate, events, word_events = espeak_synthesize(sentence, self.resolve_voice(voice) + variant,
                                                                   voice.rate, voice.pitch)
        except (EspeakUnavailable, ValueError) as exc:  # ValueError: espeak-ng refused the voice name
            raise TTSError(str(exc)) from None
        end = len(samples) / rate
        phones = tuple(PhoneTiming(e.phoneme, e.sample / rate, (nxt.sample / rate) if nxt else end)
                       for e, nxt in zip(events, list(events[1:]) + [None]))
        words = words_from_events(sentence, [(w.position, w.length, w.sample / rate) for w in word_events], phones, end)
        return Speech(AudioClip(samples.clip(-1, 1), rate), phones, (), sentence, PHONE_SET, words)


register_engine("espeak", EspeakEngine)


def _optional(module: str, cls: str):
    def factory():
        import importlib

        return getattr(importlib.import_module(f".{module}", __package__), cls)()
    return factory


register_engine("piper", _optional("piper_engine", "PiperEngine"))
register_engine("xtts", _optional("xtts_engine", "XTTSEngine"))
register_engine("gpt_sovits", _optional("sovits_engine", "GPTSoVITSEngine"))
register_engine("openai", _optional("openai_engine", "OpenAISpeechEngine"))
