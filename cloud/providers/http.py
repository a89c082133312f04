"""JSON over HTTP for the providers' own APIs, with every failure turned into one :class:`ProviderError`.

Written once so that each provider's errors read the same way (which provider, which call, what went
wrong) and so that no API key can leak: keys travel only in headers, never follow a redirect to another
address, and any text a server sends back is masked before it is shown (some APIs echo the token they refused).
The requests themselves go through :func:`animstudio.common.http.send`, like every outgoing request of the project.
"""
from __future__ import annotations

import json
import logging
from typing import Any, Iterable, Mapping

from ...common.errors import AnimStudioError, Problem
from ...common.http import Answer, Unreachable, mask, send
from ...common.urls import redact, split_credentials
from .base import ProviderError

log = logging.getLogger(__name__)

# envelope codes that mean success, for APIs that wrap answers as {"code": ..., "msg": ..., "data": ...}
SUCCESS_CODES = {0, 200, 20000, "0", "200", "20000", "OK", "ok", "success"}


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret (4 characters or more) and anything shaped like a credential replaced by ``***``."""
    return mask(text, secrets)


def reason(exc: BaseException) -> str:
    found = getattr(exc, "reason", None)
    return str(found or exc) or type(exc).__name__


class ApiClient:
    """One provider's REST API: ``call("POST", "/pods", body, what="create a pod")`` → the decoded answer.

    Connection faults and 5xx answers are retried with backoff, except for calls that must not happen twice
    (creating a paid machine): those are retried only when the connection was refused, i.e. surely never arrived.
    """

    def __init__(self, provider: str, base_url: str, headers: Mapping[str, str] | None = None,
                 timeout: float = 30.0, retries: int = 2, backoff: float = 0.5, secrets: Iterable[str] = (),
                 label: str | None = None, error_type: type[AnimStudioError] = ProviderError):
        self.provider = provider
        self.label = label or f"provider {provider!r}"  # how errors start: which provider (or endpoint) failed
        self.error_type = error_type
        base_url, basic = split_credentials(base_url.rstrip("/"))
        self.base_url = base_url
        self.headers = dict(headers or {})
        if basic:
            self.headers.setdefault("Authorization", basic)
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        # everything that must never be shown: the given secrets, and whatever the Authorization header holds
        self.secrets = [s for s in secrets if s] + [v for k, v in self.headers.items() if k.lower() == "authorization"]
        self.secrets += [v.split(" ", 1)[1] for v in list(self.secrets) if " " in v]
        self.name = redact(self.base_url)

    def __repr__(self) -> str:
        return f"ApiClient({self.provider!r}, {self.name!r})"

    def error(self, summary: str, where: str = "", message: str = "", status: int | None = None) -> AnimStudioError:
        """An error naming the provider; anything a server said is scrubbed of secrets. ``status``: the HTTP
        status of the answer, when there was one."""
        problems = [Problem(where, scrub(message, self.secrets))] if message else []
        error = self.error_type(f"{self.label}: {scrub(summary, self.secrets)}", problems)
        error.status = status  # type: ignore[attr-defined]
        return error

    def call(self, method: str, path: str, body: Any = None, *, what: str = "", idempotent: bool | None = None,
             missing_ok: bool = False, timeout: float | None = None) -> Any:
        """``method path`` with a JSON body; the decoded JSON answer (an envelope's ``data`` when it has one), or
        None for an empty answer, or for a 404 when ``missing_ok``. ``what`` says in words what the call was for."""
        idempotent = method in ("GET", "DELETE") if idempotent is None else idempotent
        call = f"{method} {path.split('?')[0]}"
        what = what or call
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Accept": "application/json", **self.headers}
        if data is not None:
            headers["Content-Type"] = "application/json"

        def retry(outcome: Answer | Unreachable) -> bool:
            if isinstance(outcome, Answer):
                return outcome.status >= 500 and idempotent
            return idempotent or outcome.refused  # a refused connection surely never arrived

        try:
            answer = send(self.base_url + path, method=method, body=data, headers=headers,
                          timeout=timeout or self.timeout, secrets=self.secrets, retries=self.retries,
                          backoff=self.backoff, retry_if=retry, service=f"provider {self.provider!r}")
        except Unreachable as fault:
            hint = "" if idempotent or fault.refused else (
                " (the request may have arrived: check the provider's console for machines left running)")
            raise self.error(f"could not {what}: cannot reach {self.name}{hint}", call, fault.reason) from None
        if missing_ok and answer.status == 404:
            return None
        if not answer.ok:
            raise self.error(f"could not {what}: {self.name} answered {answer.status}", call,
                             answer.message(200) or answer.reason, answer.status)
        if not answer.body.strip():
            return None
        try:
            decoded = json.loads(answer.body)
        except ValueError:
            raise self.error(f"could not {what}: {self.name} answered something that is not JSON", call,
                             answer.text(200)) from None
        return self.unwrap(decoded, what, call)

    def unwrap(self, answer: Any, what: str, call: str) -> Any:
        """Open a ``{"code", "msg", "data"}`` envelope: its ``data``, or an error when its code is not a success."""
        if isinstance(answer, dict) and "code" in answer and ({"data", "msg", "message"} & answer.keys()):
            if answer["code"] not in SUCCESS_CODES:
                message = answer.get("msg") or answer.get("message") or f"code {answer['code']}"
                raise self.error(f"could not {what}: {self.name} refused (code {answer['code']})", call, str(message))
            return answer.get("data")
        return answer


def comfy_answers(url: str, headers: Mapping[str, str] | None = None, timeout: float = 10.0) -> str | None:
    """None when a ComfyUI at ``url`` answers ``/system_stats`` with JSON; otherwise why not (no secrets in it)."""
    try:
        answer = send(url.rstrip("/") + "/system_stats", headers=headers, timeout=timeout)
    except Unreachable as fault:
        return fault.reason
    if not answer.ok:
        return f"/system_stats answered {answer.status}"
    try:
        stats = json.loads(answer.body)
    except ValueError:
        return "/system_stats did not answer JSON (is it ComfyUI?)"
    if not isinstance(stats, dict) or "system" not in stats:
        return "/system_stats did not answer as ComfyUI does"
    return None

