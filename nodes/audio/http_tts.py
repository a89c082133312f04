"""One HTTP request for a speech server, with the timeout, retry and error wording written once.

Engines that talk to a server (GPT-SoVITS, OpenAI-compatible) differ only in the request they build;
how a dead server, a refusal or a non-audio answer reads to the user is the same for all of them:
one :class:`TTSError` with the server's own message, the URL without credentials, no traceback, and
never a secret (an API key is scrubbed from anything a server echoes back). Standard library only.
"""
from __future__ import annotations

import http.client
import io
import json
import logging
import os
import socket
import time
import urllib.error
import urllib.parse
import urllib.request

import numpy as np

from ...common.urls import redact, split_credentials
from .clip import AudioClip
from .tts import TTSError

log = logging.getLogger(__name__)

TIMEOUT_ENV = "ANIMSTUDIO_TTS_TIMEOUT"
DEFAULT_TIMEOUT = 120.0          # a CPU-bound server can take a while for one sentence
RETRY_STATUSES = {429, 502, 503, 504}
MAX_ERROR_CHARS = 400
_LOOPBACK = {"localhost", "127.0.0.1", "::1"}


def _scrub(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def _server_message(body: bytes) -> str:
    """What the server said: OpenAI's ``{"error": {"message"}}``, GPT-SoVITS' ``{"message", "Exception"}``, or text."""
    text = body.decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return text[:MAX_ERROR_CHARS] or "(empty answer)"
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])[:MAX_ERROR_CHARS]
        parts = [str(data[k]) for k in ("message", "Exception", "detail", "error") if data.get(k)]
        if parts:
            return ": ".join(parts)[:MAX_ERROR_CHARS]
    return text[:MAX_ERROR_CHARS]


def request_audio(url: str, *, service: str, json_body: dict | None = None, headers: dict | None = None,
                  timeout: float | None = None, retries: int = 2, secrets: tuple[str, ...] = ()) -> bytes:
    """POST ``json_body`` (or GET when None) to ``url`` and return the answer's bytes.

    Retries only what may pass (429, 502-504, a dropped connection) with a short backoff; a refused
    connection or a timeout fails at once, since waiting again would only double the wait.
    """
    timeout = timeout or float(os.environ.get(TIMEOUT_ENV) or DEFAULT_TIMEOUT)
    shown = redact(url)
    target, basic = split_credentials(url)
    all_headers = {"Accept": "audio/wav, application/json;q=0.5", "User-Agent": "animstudio-tts"}
    if basic:
        all_headers["Authorization"] = basic
    all_headers.update(headers or {})
    data = None
    if json_body is not None:
        data = json.dumps(json_body).encode("utf-8")
        all_headers["Content-Type"] = "application/json"
    handlers = []
    if (urllib.parse.urlsplit(target).hostname or "") in _LOOPBACK:
        handlers.append(urllib.request.ProxyHandler({}))  # a local server is never reached through a proxy
    opener = urllib.request.build_opener(*handlers)
    for attempt in range(retries + 1):
        request = urllib.request.Request(target, data=data, headers=all_headers,
                                         method="POST" if data is not None else "GET")
        try:
            with opener.open(request, timeout=timeout) as response:
                return response.read()
        except urllib.error.HTTPError as exc:
            message = _scrub(_server_message(exc.read() or b""), secrets)
            if exc.code in RETRY_STATUSES and attempt < retries:
                log.warning("%s at %s answered HTTP %d; retrying", service, shown, exc.code)
                time.sleep(0.5 * 2 ** attempt)
                continue
            raise TTSError(f"{service} at {shown} refused the request (HTTP {exc.code}): {message}") from None
        except (ConnectionResetError, http.client.RemoteDisconnected) as exc:
            if attempt < retries:
                log.warning("%s at %s dropped the connection (%s); retrying", service, shown, type(exc).__name__)
                time.sleep(0.5 * 2 ** attempt)
                continue
            raise TTSError(f"{service} at {shown} dropped the connection {retries + 1} times") from None
        except (socket.timeout, TimeoutError):
            raise TTSError(f"{service} at {shown} did not answer within {timeout:g} s "
                           f"(raise ${TIMEOUT_ENV} for slow servers)") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, (socket.timeout, TimeoutError)):
                raise TTSError(f"{service} at {shown} did not answer within {timeout:g} s "
                               f"(raise ${TIMEOUT_ENV} for slow servers)") from None
            raise TTSError(f"cannot reach {service} at {shown}: {_scrub(str(reason), secrets)}; "
                           "is it running, and is the URL right?") from None
    raise AssertionError("unreachable")


def decode_audio(body: bytes, *, service: str, url: str) -> AudioClip:
    """WAV (or anything libsndfile reads) bytes → :class:`AudioClip`; a clear error when it is not audio."""
    import soundfile

    try:
        data, rate = soundfile.read(io.BytesIO(body), dtype="float32", always_2d=True)
    except Exception:
        head = body[:80].decode("utf-8", "replace")
        raise TTSError(f"{service} at {redact(url)} answered with something that is not audio "
                       f"({len(body)} bytes, starting {head!r})") from None
    if not len(data):
        raise TTSError(f"{service} at {redact(url)} answered with empty audio")
    return AudioClip(np.ascontiguousarray(data.T), int(rate))
