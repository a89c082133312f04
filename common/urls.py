"""Server addresses: what may be shown of them, and credentials moved out of them.

Used by every HTTP client in the project (the ComfyUI client, TTS and LLM servers), so that no
password, token or query secret ever reaches a log line or an error message.
"""
from __future__ import annotations

import base64
import urllib.parse


def redact(url: str) -> str:
    """The URL without user, password or query: safe for logs and error messages."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    if port:
        host += f":{port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


def split_credentials(url: str) -> tuple[str, str | None]:
    """``http://user:pass@host/x`` → (``http://host/x``, Basic header); urllib cannot send userinfo itself."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is None:
        return url, None
    netloc = parts.netloc.rsplit("@", 1)[1]
    token = f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
    header = "Basic " + base64.b64encode(token.encode()).decode()
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment)), header
