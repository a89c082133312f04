"""ComfyUI servers the user already runs (a workstation, a rented box left on): nothing to start or close.

``start(count)`` hands out up to ``count`` of the listed URLs whose ComfyUI answers ``/system_stats`` and that
are not already handed out; ``close`` only takes one back. Credentials for them come from the environment:
``user:password@`` in a URL, or ``headers_env``, either an environment variable holding a JSON object of
headers, or a mapping from header name to the environment variable holding its value::

    studio:
      kind: static
      urls: [http://10.0.0.5:8188, http://10.0.0.6:8188]
      headers_env: {Authorization: STUDIO_COMFY_TOKEN}   # or: headers_env: STUDIO_COMFY_HEADERS
      cost_per_gpu_second: 0                             # for the cost report; 0 when it is your own machine
"""
from __future__ import annotations

import json
import logging
import os
import threading
import time
from typing import Any, Callable, Mapping, Sequence

from ...common.errors import Problem
from ...common.urls import redact, split_credentials
from .base import Instance, ProviderError
from .http import comfy_answers, scrub
from .lifecycle import check_cancelled

log = logging.getLogger(__name__)


def headers_from_env(headers_env: str | Mapping[str, str] | None, provider: str) -> dict[str, str]:
    """Headers whose values come from environment variables; a clear error names a variable that is unset."""
    if not headers_env:
        return {}
    if isinstance(headers_env, str):
        raw = os.environ.get(headers_env, "")
        if not raw:
            raise ProviderError(f"provider {provider!r}: its headers are read from ${headers_env}, which is not set")
        try:
            headers = json.loads(raw)
        except ValueError:
            headers = None
        if not isinstance(headers, dict):
            raise ProviderError(f"provider {provider!r}: ${headers_env} must hold a JSON object of headers "
                                '(like {"Authorization": "Bearer ..."})')
        return {str(k): str(v) for k, v in headers.items()}
    headers = {}
    for header, variable in headers_env.items():
        value = os.environ.get(variable, "")
        if not value:
            raise ProviderError(f"provider {provider!r}: its {header} header is read from ${variable}, "
                                "which is not set")
        headers[str(header)] = value
    return headers


class StaticProvider:
    kind = "static"

    def __init__(self, name: str, urls: Sequence[str], headers_env: str | Mapping[str, str] | None = None,
                 cost_per_gpu_second: float = 0.0, gpu: str = "", check_timeout: float = 10.0):
        if isinstance(urls, str):
            urls = [urls]
        if not urls:
            raise ProviderError(f"provider {name!r}: no urls listed in its pool entry")
        self.name = name
        self.cost_per_gpu_second = float(cost_per_gpu_second or 0.0)
        self.gpu = gpu
        self.check_timeout = check_timeout
        shared = headers_from_env(headers_env, name)
        self._endpoints: list[tuple[str, dict[str, str]]] = []
        for url in urls:
            url = url.strip().rstrip("/")
            url = url if "://" in url else "http://" + url
            base, basic = split_credentials(url)
            headers = dict(shared)
            if basic:
                headers.setdefault("Authorization", basic)
            self._endpoints.append((base, headers))
        self._secrets = [v for _b, h in self._endpoints for v in h.values()]
        self._opened: dict[str, Instance] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_entry(cls, name: str, entry: Mapping[str, Any]) -> "StaticProvider":
        urls = entry.get("urls") or ([entry["url"]] if entry.get("url") else [])
        return cls(name, urls, entry.get("headers_env"), float(entry.get("cost_per_gpu_second", 0.0)),
                   str(entry.get("gpu", "")), float(entry.get("check_timeout", 10.0)))

    def __repr__(self) -> str:
        return f"StaticProvider({self.name!r}, {[redact(b) for b, _h in self._endpoints]!r})"

    def start(self, count: int, timeout: float | None = None, cancel: threading.Event | None = None,
              on_created: Callable[[list[str]], None] | None = None) -> list[Instance]:
        """Up to ``count`` listed servers that answer and are not handed out yet; an error naming the provider
        and each server's fault when none answers."""
        if count < 1:
            return []
        check_cancelled(cancel, self.name)
        found: list[Instance] = []
        faults: list[Problem] = []
        per_check = self.check_timeout if timeout is None else max(1.0, min(self.check_timeout, float(timeout)))
        with self._lock:
            taken = set(self._opened)
        for base, headers in self._endpoints:
            if len(found) >= count:
                break
            instance_id = redact(base)
            if instance_id in taken:
                continue
            why = comfy_answers(base, headers, timeout=per_check)
            if why is not None:
                faults.append(Problem(instance_id, scrub(why, self._secrets)))
                log.warning("provider %r: %s does not answer (%s)", self.name, instance_id, faults[-1].message)
                continue
            found.append(Instance(self.name, instance_id, base, time.time(), gpu=self.gpu, headers=dict(headers)))
        if not found:
            if not faults:
                raise ProviderError(f"provider {self.name!r}: all {len(self._endpoints)} server(s) are already in use")
            raise ProviderError(f"provider {self.name!r}: none of its servers answers", faults)
        if len(found) < count:
            log.info("provider %r: %d of %d server(s) asked for are available", self.name, len(found), count)
        with self._lock:
            self._opened.update((i.instance_id, i) for i in found)
        if on_created is not None:
            on_created([i.instance_id for i in found])
        return found

    def close(self, instance_id: str) -> None:
        """Nothing to stop: the server is only taken back."""
        with self._lock:
            self._opened.pop(instance_id, None)

    def opened(self) -> list[Instance]:
        with self._lock:
            return list(self._opened.values())
