"""One HTTP request for a speech server, with the timeout, retry and error wording written once.

Engines that talk to a server (GPT-SoVITS, OpenAI-compatible) differ only in the request they build;
how a dead server, a refusal or a non-audio answer reads to the user is the same for all of them:
one :class:`TTSError` with the server's own message, the URL without credentials, no traceback, and
never a secret (anything a server sends back is masked). The request itself, its credentials and redirects
are :func:`animstudio.common.http.send`'s, as for every outgoing request of the project.
"""
from __future__ import annotations

import io
import json
import logging
import os

import numpy as np

from ...common.http import Answer, Unreachable, mask, secrets_of, send
from ...common.urls import redact
from .clip import AudioClip
from .tts import TTSError

log = logging.getLogger(__name__)

TIMEOUT_ENV = "ANIMSTUDIO_TTS_TIMEOUT"
DEFAULT_TIMEOUT = 120.0          # a CPU-bound server can take a while for one sentence
RETRY_STATUSES = {429, 502, 503, 504}
MAX_ERROR_CHARS = 400


def _retry(outcome: Answer | Unreachable) -> bool:
    """What may pass: 429 and 502-504, or a dropped connection. A refused connection or a timeout fails at once,
    since waiting again would only double the wait."""
    return outcome.status in RETRY_STATUSES if isinstance(outcome, Answer) else outcome.dropped


def request_audio(url: str, *, service: str, json_body: dict | None = None, headers: dict | None = None,
                  timeout: float | None = None, retries: int = 2, secrets: tuple[str, ...] = ()) -> bytes:
    """POST ``json_body`` (or GET when None) to ``url`` and return the answer's bytes, through the project's one
    HTTP helper (credentials in the URL become a header and never follow a redirect to another address).

    Retries only what may pass (429, 502-504, a dropped connection) with a short backoff.
    """
    timeout = timeout or float(os.environ.get(TIMEOUT_ENV) or DEFAULT_TIMEOUT)
    shown = redact(url)
    all_headers = {"Accept": "audio/wav, application/json;q=0.5", "User-Agent": "animstudio-tts"}
    all_headers.update(headers or {})
    data = None
    if json_body is not None:
        data = json.dumps(json_body).encode("utf-8")
        all_headers["Content-Type"] = "application/json"
    try:
        answer = send(url, method="POST" if data is not None else "GET", body=data, headers=all_headers,
                      timeout=timeout, secrets=secrets, retries=retries, retry_if=_retry, service=service)
    except Unreachable as fault:
        if fault.timed_out:
            raise TTSError(f"{service} at {shown} did not answer within {timeout:g} s "
                           f"(raise ${TIMEOUT_ENV} for slow servers)") from None
        if fault.dropped:
            raise TTSError(f"{service} at {shown} dropped the connection {retries + 1} times") from None
        raise TTSError(f"cannot reach {service} at {shown}: {fault.reason}; "
                       "is it running, and is the URL right?") from None
    if not answer.ok:
        raise TTSError(f"{service} at {shown} refused the request (HTTP {answer.status}): "
                       f"{answer.message(MAX_ERROR_CHARS) or '(empty answer)'}")
    return answer.body


def decode_audio(body: bytes, *, service: str, url: str, secrets: tuple[str, ...] = ()) -> AudioClip:
    """WAV (or anything libsndfile reads) bytes → :class:`AudioClip`; a clear error when it is not audio, showing
    the start of what came instead, masked (a server may echo the request's headers)."""
    import soundfile

    try:
        data, rate = soundfile.read(io.BytesIO(body), dtype="float32", always_2d=True)
    except Exception:
        head = mask(body[:4096].decode("utf-8", "replace"), secrets_of(url, extra=secrets))[:80]
        raise TTSError(f"{service} at {redact(url)} answered with something that is not audio "
                       f"({len(body)} bytes, starting {head!r})") from None
    if not len(data):
        raise TTSError(f"{service} at {redact(url)} answered with empty audio")
    return AudioClip(np.ascontiguousarray(data.T), int(rate))
