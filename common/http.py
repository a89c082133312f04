"""One way out: every HTTP request the project sends (the LLM planner, speech servers, ComfyUI, cloud providers).

Written once so that these rules hold for every caller:

* **Credentials in a URL** (``http://user:password@host/``) become a Basic ``Authorization`` header (a header the
  caller sets itself wins); the URL handed to the connection, and so to the name resolver, never carries them.
* **Redirects** are followed with every header to the same scheme, host and port. To any other address they are
  followed *without credentials* (as curl and requests do): ``Authorization``, ``Proxy-Authorization``,
  ``Cookie``, API-key headers and any header holding a configured secret are dropped, and stay dropped for the
  rest of the chain. A redirect to a scheme other than http(s) is refused (:class:`Unreachable`; for
  ``file:`` and the like urllib already hands back the redirect answer itself, unfollowed), and credentials a
  redirect target carries in its own URL are discarded, never used nor resolved. (urllib never re-sends a body: a POST answered
  301/302/303 is followed as a GET; answered 307/308 it comes back as that answer.)
* **Loopback hosts** are never reached through a proxy.
* **Everything a server says** is passed through :func:`mask` before it can reach an error message, a log line or
  the output: configured secrets, the URL's password, the credential headers sent, and anything shaped like a
  credential (``Bearer``/``Basic`` tokens, ``Authorization:`` or ``api_key=`` values, userinfo in URLs) become
  ``***``.

An HTTP answer of any status comes back as an :class:`Answer`; a connection fault as one :class:`Unreachable`
saying whether the request surely never arrived (refused), timed out or was dropped. Retrying is the caller's
policy, given as ``retry_if``. Standard library only.
"""
from __future__ import annotations

import functools
import http.client
import json
import logging
import re
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping, Union

from .urls import redact, split_credentials

log = logging.getLogger(__name__)

LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})
CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "x-api-key", "api-key",
                                "x-auth-token", "x-access-token"})
MIN_SECRET = 4  # shorter "secrets" would mask ordinary words

_SECRET_FIELD = re.compile(
    r"(?i)\b((?:proxy-)?authorization|(?:x-)?api[-_]?key|x-auth-token|access[-_]?token|password|passwd"
    r"|(?:client[-_])?secret)(\"?\s*[:=]\s*\"?)((?:bearer|basic|token|digest)\s+)?(?!\*\*\*)[^\s\"'<>&,;]+")
_SCHEME_TOKEN = re.compile(r"(?i)\b(bearer|basic)(\s+)(?!\*\*\*)[A-Za-z0-9._~+/\-]{8,}=*")
_QUERY_SECRET = re.compile(r"(?i)([?&](?:key|token|sig|signature)=)[^&#\s\"'<>]+")
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^/\s@\"'<>]+@")


def mask(text: str, secrets: Iterable[str] = (), patterns: bool = True) -> str:
    """``text`` with every secret (of 4 characters or more) and, with ``patterns``, every credential-shaped string
    replaced by ``***``. Without ``patterns`` only the secrets themselves go: for content that is kept (a model's
    reply), where a line of dialogue may well say "password: swordfish"."""
    for secret in sorted({s for s in secrets if s and len(s) >= MIN_SECRET}, key=len, reverse=True):
        text = text.replace(secret, "***")
    if not patterns:
        return text
    text = _SECRET_FIELD.sub(lambda m: m.group(1) + m.group(2) + (m.group(3) or "") + "***", text)
    text = _SCHEME_TOKEN.sub(r"\1\2***", text)
    text = _QUERY_SECRET.sub(r"\1***", text)
    return _USERINFO.sub(r"\1***@", text)


def secrets_of(url: str = "", headers: Mapping[str, str] | None = None, extra: Iterable[str] = ()) -> list[str]:
    """What must never be shown for a request: ``extra``, the URL's password, and the credential headers' values
    (whole, and the token after ``Bearer``/``Basic``)."""
    found = [s for s in extra if s]
    if url:
        parts = urllib.parse.urlsplit(url)
        if parts.password:
            found += [parts.password, urllib.parse.unquote(parts.password)]
        _, basic = split_credentials(url)
        if basic:
            found.append(basic)
    for name, value in (headers or {}).items():
        if name.lower() in CREDENTIAL_HEADERS and value:
            found.append(str(value))
    found += [v.split(None, 1)[1] for v in list(found) if len(v.split(None, 1)) == 2]
    return found


def server_message(body: bytes, secrets: Iterable[str] = (), limit: int = 400) -> str:
    """What a server said, masked: OpenAI's ``{"error": {"message"}}``, the ``msg``/``message``/``Exception``/
    ``detail``/``error``/``errors`` of other APIs, else the text itself; "" for an empty body."""
    text = body.decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict) and error.get("message"):
            text = str(error["message"])
        else:
            parts = [v if isinstance(v, str) else json.dumps(v)
                     for k in ("msg", "message", "Exception", "detail", "error", "errors") if (v := data.get(k))]
            text = ": ".join(parts) or text
    return mask(text, secrets)[:limit]


@dataclass(frozen=True)
class Answer:
    """An HTTP answer of any status. ``url`` is where it came from (after redirects), without credentials."""

    status: int
    body: bytes
    url: str
    reason: str = ""
    content_type: str = ""
    secrets: tuple[str, ...] = field(default=(), repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def text(self, limit: int = 400) -> str:
        """The body as text, masked, then cut to ``limit`` characters (masking first: no half secret survives)."""
        return mask(self.body[:max(limit * 8, 4096)].decode("utf-8", "replace").strip(), self.secrets)[:limit]

    def message(self, limit: int = 400) -> str:
        """What the server said (see :func:`server_message`), masked."""
        return server_message(self.body, self.secrets, limit)


class Unreachable(OSError):
    """No answer: refused (the request surely never arrived), timed out, dropped, or no such host. ``reason`` is
    masked and safe to show."""

    def __init__(self, reason: str, *, refused: bool = False, timed_out: bool = False, dropped: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.refused, self.timed_out, self.dropped = refused, timed_out, dropped

    def __str__(self) -> str:
        return self.reason


Outcome = Union[Answer, Unreachable]


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urllib.parse.urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    return parts.scheme.lower(), (parts.hostname or "").lower(), port or default


class _RedirectPolicy(urllib.request.HTTPRedirectHandler):
    """Follows redirects as the module's docstring says: credentials only ever go to the address they were
    configured for."""

    def __init__(self, secrets: Iterable[str]):
        self.secrets = [s for s in secrets if s and len(s) >= MIN_SECRET]

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        scheme = urllib.parse.urlsplit(newurl).scheme.lower()
        if scheme not in ("http", "https"):
            raise Unreachable(f"{redact(req.full_url)} redirected to a {scheme or 'relative'}: address; refused")
        target, _discarded = split_credentials(newurl)  # a server cannot hand us credentials to resolve or send
        new = super().redirect_request(req, fp, code, msg, headers, target)
        if new is None or _origin(new.full_url) == _origin(req.full_url):
            return new
        dropped = [name for name, value in list(new.headers.items()) + list(new.unredirected_hdrs.items())
                   if self._is_credential(name, value)]
        for name in dropped:
            new.remove_header(name)
        if dropped:
            log.info("%s redirected to another address, %s: followed without its credentials (%s)",
                     redact(req.full_url), redact(new.full_url), ", ".join(sorted({n.lower() for n in dropped})))
        return new

    def _is_credential(self, name: str, value: str) -> bool:
        return name.lower() in CREDENTIAL_HEADERS or any(s in str(value) for s in self.secrets)


def _opener(url: str, secrets: Iterable[str]) -> urllib.request.OpenerDirector:
    return _built_opener((urllib.parse.urlsplit(url).hostname or "").lower() in LOOPBACK, tuple(secrets))


@functools.lru_cache(maxsize=32)
def _built_opener(loopback: bool, secrets: tuple[str, ...]) -> urllib.request.OpenerDirector:
    """One opener per kind of address and set of secrets, shared (as urllib's own ``urlopen`` shares one): building
    it was a tenth of a batch scheduler's CPU per job; its handlers keep no state between requests."""
    handlers: list = [_RedirectPolicy(secrets)]
    if loopback:
        handlers.append(urllib.request.ProxyHandler({}))  # a local server is never reached through a proxy
    return urllib.request.build_opener(*handlers)


def _fault(exc: BaseException, secrets: Iterable[str]) -> Unreachable:
    """A connection fault, classified; its words masked."""
    cause = exc.reason if isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, BaseException) else exc
    words = mask(str(getattr(exc, "reason", None) or exc) or type(exc).__name__, secrets)
    if isinstance(cause, (socket.timeout, TimeoutError)):
        return Unreachable(words or "timed out", timed_out=True)
    if isinstance(cause, ConnectionRefusedError):
        return Unreachable(words, refused=True)
    dropped = isinstance(cause, (ConnectionResetError, ConnectionAbortedError, BrokenPipeError,
                                 http.client.HTTPException))
    return Unreachable(words, dropped=dropped)


def _once(opener, request: urllib.request.Request, timeout: float, secrets: tuple[str, ...]) -> Answer:
    try:
        with opener.open(request, timeout=timeout) as response:
            return Answer(response.status, response.read(), redact(response.geturl()), response.reason or "",
                          response.headers.get("Content-Type", ""), secrets)
    except urllib.error.HTTPError as exc:
        try:
            body = exc.read() or b""
        except Exception:  # noqa: BLE001 - an unreadable error body says nothing more
            body = b""
        return Answer(exc.code, body, redact(exc.geturl() or request.full_url), mask(str(exc.reason or ""), secrets),
                      exc.headers.get("Content-Type", "") if exc.headers else "", secrets)
    except Unreachable:
        raise
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
        raise _fault(exc, secrets) from None  # ValueError: a URL http.client cannot use (a bad port)


def _prepared(url: str, headers: Mapping[str, str] | None, secrets: Iterable[str]):
    """What every request starts from: the URL without its credentials (they become a Basic ``Authorization``
    header, unless the caller set one), the secrets to mask, and the opener with the redirect policy. A URL that
    is not http(s) (``file:``, ``ftp:``, ``data:``) is refused."""
    target, basic = split_credentials(url)
    all_headers = dict(headers or {})
    if basic and not any(k.lower() == "authorization" for k in all_headers):
        all_headers["Authorization"] = basic
    hidden = tuple(secrets_of(url, all_headers, secrets))
    if urllib.parse.urlsplit(target).scheme.lower() not in ("http", "https"):
        raise Unreachable(f"{redact(target) or 'the URL'} is not an http(s) URL")
    return target, all_headers, hidden, _opener(target, hidden)


def send(url: str, *, method: str | None = None, body: bytes | None = None,
         headers: Mapping[str, str] | None = None, timeout: float = 30.0, secrets: Iterable[str] = (),
         retries: int = 0, backoff: float = 0.5, retry_if: Callable[[Outcome], bool] | None = None,
         service: str = "") -> Answer:
    """Send one request (``method`` defaults to POST with a body, else GET) and return its :class:`Answer`, or
    raise :class:`Unreachable`. Up to ``retries`` more tries, ``backoff * 2**n`` seconds apart, for an outcome
    ``retry_if`` accepts. ``secrets`` are masked in everything this returns or logs (the URL's credentials and the
    credential headers are added to them)."""
    target, all_headers, hidden, opener = _prepared(url, headers, secrets)
    shown = redact(target)
    method = method or ("POST" if body is not None else "GET")
    for attempt in range(retries + 1):
        try:
            request = urllib.request.Request(target, data=body, headers=all_headers, method=method)
            outcome: Outcome = _once(opener, request, timeout, hidden)
        except Unreachable as fault:
            outcome = fault
        if attempt < retries and retry_if is not None and retry_if(outcome):
            delay = backoff * 2 ** attempt
            why = f"HTTP {outcome.status}" if isinstance(outcome, Answer) else outcome.reason
            log.info("%s at %s: %s; retrying in %.1f s", service or "the server", shown, why, delay)
            time.sleep(delay)
            continue
        if isinstance(outcome, Unreachable):
            raise outcome
        return outcome
    raise AssertionError("unreachable")


# ------------------------------------------------------------------------------------------ files

DOWNLOAD_CHUNK = 1 << 20  # bytes read and written at a time: a download's memory does not grow with its size


@dataclass(frozen=True)
class Downloaded:
    """A file fetched whole: its size, its SHA-256 (hex) and how many times the transfer was resumed."""

    size: int
    sha256: str
    resumed: int = 0


class Refused(Exception):
    """The server answered a download with an error status; ``answer`` holds it (masked when shown)."""

    def __init__(self, answer: Answer):
        super().__init__(answer.status)
        self.answer = answer


def _total(response, offset: int) -> int | None:
    """The whole file's size from ``Content-Range`` (a resumed transfer) or ``Content-Length`` (from the start)."""
    ranged = re.match(r"bytes \d+-\d+/(\d+)", response.headers.get("Content-Range", ""))
    if ranged:
        return int(ranged.group(1))
    length = response.headers.get("Content-Length")
    return offset + int(length) if length and length.isdigit() else None


def fetch_file(url: str, target, *, headers: Mapping[str, str] | None = None, timeout: float = 60.0,
               secrets: Iterable[str] = (), tries: int = 5, backoff: float = 0.5, expected_size: int | None = None,
               expected_sha256: str | None = None, service: str = "") -> Downloaded:
    """GET ``url`` into the file ``target``, streamed in :data:`DOWNLOAD_CHUNK` pieces through ``target.partial``
    and renamed only when whole (never held in memory): a dropped connection is resumed where it broke (``Range``;
    from the start where the server ignores it), up to ``tries`` connections ``backoff * 2**n`` apart. The size
    is checked against the server's length and ``expected_size``, the SHA-256 against ``expected_sha256`` where
    the caller knows them. An error status raises :class:`Refused`; a fault past the tries, :class:`Unreachable`."""
    import hashlib
    import os
    from pathlib import Path

    target = Path(target)
    address, all_headers, hidden, opener = _prepared(url, headers, secrets)
    partial = target.with_name(target.name + ".partial")
    digest, size, total, resumed = hashlib.sha256(), 0, expected_size, 0
    try:
        with open(partial, "wb") as out:
            for attempt in range(max(1, tries)):
                ask = dict(all_headers, **({"Range": f"bytes={size}-"} if size else {}))
                try:
                    with opener.open(urllib.request.Request(address, headers=ask), timeout=timeout) as response:
                        if size and response.status != 206:  # the range was not honoured: the whole file again
                            out.seek(0)
                            out.truncate()
                            digest, size = hashlib.sha256(), 0
                        total = _total(response, size) or total
                        while piece := response.read(DOWNLOAD_CHUNK):
                            out.write(piece)
                            digest.update(piece)
                            size += len(piece)
                    if total is None or size >= total:
                        break
                    fault = Unreachable(f"the connection closed after {size} of {total} bytes", dropped=True)
                except urllib.error.HTTPError as exc:
                    raise Refused(Answer(exc.code, (exc.read() or b"")[:65536], redact(address),
                                         mask(str(exc.reason or ""), hidden), "", hidden)) from None
                except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
                    fault = _fault(exc, hidden)
                if attempt + 1 >= max(1, tries) or fault.refused:
                    raise fault
                resumed += 1
                delay = backoff * 2 ** attempt
                log.info("%s at %s: %s; resuming at byte %d in %.1f s", service or "the server", redact(address),
                         fault.reason, size, delay)
                time.sleep(delay)
        if total is not None and size != total:
            raise Unreachable(f"{redact(address)}: got {size} bytes, the server said {total}")
        sha256 = digest.hexdigest()
        if expected_sha256 and sha256 != expected_sha256.lower():
            raise Unreachable(f"{redact(address)}: the file's SHA-256 is {sha256}, not the {expected_sha256} announced")
        os.replace(partial, target)
        return Downloaded(size, sha256, resumed)
    finally:
        partial.unlink(missing_ok=True)


def file_digest(path) -> tuple[int, str]:
    """A file's size and SHA-256 (hex), read in pieces."""
    import hashlib

    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as fh:
        while piece := fh.read(DOWNLOAD_CHUNK):
            digest.update(piece)
            size += len(piece)
    return size, digest.hexdigest()


def put_file(url: str, path, *, headers: Mapping[str, str] | None = None, timeout: float = 120.0,
             secrets: Iterable[str] = (), tries: int = 3, backoff: float = 1.0, service: str = "") -> Answer:
    """PUT the file at ``path`` to ``url``, streamed from disk (never read whole); a connection fault is retried
    from the start up to ``tries`` times. Returns the :class:`Answer` (any status: the caller judges it)."""
    import os

    address, all_headers, hidden, opener = _prepared(url, headers, secrets)
    all_headers.setdefault("Content-Type", "application/octet-stream")
    all_headers["Content-Length"] = str(os.path.getsize(path))
    for attempt in range(max(1, tries)):
        try:
            with open(path, "rb") as body:
                return _once(opener, urllib.request.Request(address, data=body, headers=all_headers, method="PUT"),
                             timeout, hidden)
        except Unreachable as fault:
            if attempt + 1 >= max(1, tries):
                raise
            log.info("%s at %s: %s; sending again in %.1f s", service or "the server", redact(address),
                     fault.reason, backoff * 2 ** attempt)
            time.sleep(backoff * 2 ** attempt)
    raise AssertionError("unreachable")
