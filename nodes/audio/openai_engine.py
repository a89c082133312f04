"""Any OpenAI-compatible speech endpoint (``POST /v1/audio/speech``): OpenAI itself or a local server.

Many local TTS servers (Kokoro-FastAPI, openedai-speech, LocalAI, …) speak this one protocol, so one
engine reaches them all. Nothing is contacted unless a URL is configured: ``VoiceSettings.server_url``,
else ``$OPENAI_BASE_URL``, else ``$ANIMSTUDIO_TTS_URL`` (with or without the trailing ``/v1``). The API
key comes only from ``$OPENAI_API_KEY``, goes only into the ``Authorization`` header, and is never
logged nor put in a message. ``rate`` becomes ``speed`` (0.25..4); pitch is not part of the protocol,
and emotion is sent as spoken instructions only to models that take them (``gpt-4o*-tts``).
"""
from __future__ import annotations

import logging
import os

from .http_tts import decode_audio, request_audio
from .tts import Speech, TTSError, VoiceSettings

log = logging.getLogger(__name__)

URL_ENVS = ("OPENAI_BASE_URL", "ANIMSTUDIO_TTS_URL")
KEY_ENV = "OPENAI_API_KEY"
DEFAULT_MODEL = "tts-1"
DEFAULT_VOICE = "alloy"
SPEED_RANGE = (0.25, 4.0)
SERVICE = "the OpenAI-compatible speech server"


def speech_url(base: str) -> str:
    """``{base}/v1/audio/speech``, also when ``base`` already ends in ``/v1`` (the OpenAI SDK's convention)."""
    base = base.rstrip("/")
    return f"{base}/audio/speech" if base.endswith("/v1") else f"{base}/v1/audio/speech"


def takes_instructions(model: str) -> bool:
    return model.startswith("gpt-4o") and "tts" in model


class OpenAISpeechEngine:
    """OpenAI-compatible ``/v1/audio/speech``: a named server-side voice, WAV back."""

    name = "openai"

    def speak(self, sentence: str, voice: VoiceSettings) -> Speech:
        base = voice.server_url or next((os.environ[e] for e in URL_ENVS if os.environ.get(e)), None)
        if not base:
            raise TTSError("the openai engine needs a server: set the voice's server_url, or $OPENAI_BASE_URL / "
                           "$ANIMSTUDIO_TTS_URL (e.g. https://api.openai.com/v1 or http://127.0.0.1:8880/v1)")
        model = voice.model or DEFAULT_MODEL
        speed = min(max(float(voice.rate), SPEED_RANGE[0]), SPEED_RANGE[1])
        body = {"model": model, "input": sentence, "voice": voice.voice or DEFAULT_VOICE,
                "response_format": "wav", "speed": speed}
        notes = []
        if speed != voice.rate:
            notes.append(f"the speech endpoint takes speeds {SPEED_RANGE[0]}..{SPEED_RANGE[1]}; "
                         f"rate {voice.rate} was clamped to {speed}")
        if voice.pitch:
            notes.append(f"the OpenAI speech API cannot shift pitch: the requested {voice.pitch:+g} semitones "
                         "were not applied")
        if voice.emotion != "neutral":
            if takes_instructions(model):
                body["instructions"] = f"Speak in a {voice.emotion} tone." if voice.emotion not in (
                    "whisper", "shout") else f"{voice.emotion.capitalize()} the line."
            else:
                notes.append(f"the model {model!r} has no emotion control: {voice.emotion!r} was approximated by "
                             "pace and energy only")
        key = os.environ.get(KEY_ENV, "")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        url = speech_url(base)
        log.debug("speech request: model %s, voice %s, %d characters", model, body["voice"], len(sentence))
        answer = request_audio(url, service=SERVICE, json_body=body, headers=headers, secrets=(key,))
        return Speech(decode_audio(answer, service=SERVICE, url=url, secrets=(key,)), (), tuple(notes), sentence)
