"""GPT-SoVITS through its own ``api_v2.py`` HTTP server: few-shot voice cloning that runs beside ComfyUI.

GPT-SoVITS needs its own heavy environment, so the pack does not import it; it asks a running
``python api_v2.py`` (default ``http://127.0.0.1:9880``) with ``POST /tts``. The server reads the
reference recording from its own disk, so ``VoiceSettings.voice`` is a path *on the server*,
optionally followed by ``|`` and the reference's transcript and ``|`` its language
(``ref/mei.wav|The words she says in it.|en``): GPT-SoVITS clones far better, and v3/v4 models only
work, when it knows what the reference says. ``rate`` becomes ``speed_factor``; pitch and emotion
are not parameters of the server (the reference recording carries the emotion) and are reported.
"""
from __future__ import annotations

import logging
import os

from .http_tts import decode_audio, request_audio
from .tts import Speech, TTSError, VoiceSettings

log = logging.getLogger(__name__)

URL_ENV = "GPT_SOVITS_URL"
DEFAULT_URL = "http://127.0.0.1:9880"
SERVICE = "the GPT-SoVITS server"
# our language codes → api_v2's text_lang (v2+: zh, en, ja, ko, yue, auto, all_* variants)
_LANGUAGES = {"cmn": "zh", "zh": "zh", "yue": "yue", "zh-hk": "yue", "zh-yue": "yue", "ja": "ja", "jp": "ja",
              "ko": "ko", "en": "en", "auto": "auto"}


def text_lang(language: str) -> str:
    """The server's code for ``language``; an unknown one goes through as its base code for the server to judge."""
    code = (language or "auto").lower().replace("_", "-")
    return _LANGUAGES.get(code) or _LANGUAGES.get(code.split("-")[0]) or code.split("-")[0]


def parse_reference(voice: str | None) -> tuple[str, str, str | None]:
    """``path[|transcript[|language]]`` → (path, transcript, language or None)."""
    if not voice or not voice.strip():
        raise TTSError("the gpt_sovits engine needs a reference recording: set the voice to its path on the "
                       "GPT-SoVITS server, optionally 'path|transcript|language'")
    path, _, rest = voice.partition("|")
    transcript, _, language = rest.partition("|")
    return path.strip(), transcript.strip(), (language.strip() or None)


class GPTSoVITSEngine:
    """A GPT-SoVITS ``api_v2`` server: cloned voice from a reference recording on the server."""

    name = "gpt_sovits"

    def speak(self, sentence: str, voice: VoiceSettings) -> Speech:
        base = (voice.server_url or os.environ.get(URL_ENV) or DEFAULT_URL).rstrip("/")
        ref_path, transcript, ref_language = parse_reference(voice.voice)
        lang = text_lang(voice.language)
        body = {
            "text": sentence,
            "text_lang": lang,
            "ref_audio_path": ref_path,
            "prompt_text": transcript,
            "prompt_lang": text_lang(ref_language) if ref_language else lang,
            "media_type": "wav",
            "streaming_mode": False,
            "speed_factor": float(voice.rate),
        }
        url = f"{base}/tts"
        log.debug("GPT-SoVITS: %d characters, reference %s", len(sentence), ref_path)
        audio = decode_audio(request_audio(url, service=SERVICE, json_body=body), service=SERVICE, url=url)
        notes = []
        if voice.pitch:
            notes.append(f"GPT-SoVITS cannot shift pitch: the requested {voice.pitch:+g} semitones were not applied")
        if voice.emotion != "neutral":
            notes.append(f"GPT-SoVITS takes its emotion from the reference recording: {voice.emotion!r} "
                         "was approximated by pace and energy only (use a reference spoken that way)")
        if not transcript:
            notes.append("no transcript for the GPT-SoVITS reference (voice 'path|transcript|language'): "
                         "cloning is weaker, and v3/v4 models refuse it")
        return Speech(audio, (), tuple(notes), sentence)
