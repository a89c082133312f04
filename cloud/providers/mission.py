"""A mission-style GPU cloud (Cephalon Cloud and its kind): ComfyUI machines rented as "missions".

The API, as this provider speaks it (``{base}`` and the key come from the environment variables the pool entry
names; the key goes in ``Authorization: Bearer <key>`` and nowhere else)::

    POST {base}/user/missions/batch   {"type": "comfyui_time" | "comfyui_advance_time", "gpu_version": "RTX 4090",
                                       "gpu_num": 1, "count": N, ...the entry's `body`}
         → the new missions: a list of ids or of mission objects, or {"mission_ids": [...]}, or {"missions": [...]}
    GET  {base}/user/missions/{id}    → the mission: {"id", "state", "comfyui_url", "gpu_version", ...}
    POST {base}/user/missions/close   {"mission_ids": [...]}

Answers may come wrapped as ``{"code": 0|200|20000, "msg": "...", "data": ...}``; any other code is an error.
A mission's ``state`` goes ``waiting`` → ``doing`` → ``suppyling`` (sic; the machine runs and bills, and the
mission carries its ComfyUI URL) → ``succeed``; or it ends ``canceled`` / ``failed``. ``start`` creates the
missions in one call, then polls each until it is ``suppyling`` and its ComfyUI answers ``/system_stats``.
Whatever goes wrong before every mission is ready (a mission failing, the time running out, the cancel event,
Ctrl-C), every mission that start created is closed before the error is raised: none is left billing.

Pool entry (``kind: mission``)::

    cephalon:
      kind: mission
      base_url_env: CEPHALON_BASE_URL     # or base_url: https://... (a URL is not a secret)
      api_key_env: CEPHALON_API_KEY
      type: comfyui_time                  # or comfyui_advance_time
      gpu_version: RTX 4090
      gpu_num: 1
      cost_per_gpu_second: 0.00055
      poll_interval: 5                    # seconds between polls
      start_timeout: 900                  # seconds for start when the caller gives none
      request_timeout: 30                 # seconds for one API call
      url_key: comfyui_url                # where a mission carries its ComfyUI URL
      body: {}                            # more fields for the create call (an image id, a region ...)
"""
from __future__ import annotations

import logging
import threading
import time
import urllib.parse
from typing import Any, Callable, Mapping

from ...common.errors import Problem
from ...common.urls import redact, split_credentials
from .base import Instance, ProviderError, secret_from_env
from .http import ApiClient, comfy_answers, scrub
from .lifecycle import check_cancelled, close_after_failure, wait_until_ready

log = logging.getLogger(__name__)

MISSION_TYPES = ("comfyui_time", "comfyui_advance_time")
PHASES = {
    "waiting": "pending", "doing": "pending", "pending": "pending", "queued": "pending",
    "suppyling": "running", "supplying": "running",
    "succeed": "ended", "succeeded": "ended", "finished": "ended", "closed": "ended",
    "canceled": "failed", "cancelled": "failed", "failed": "failed", "error": "failed",
}


def mission_phase(state: Any) -> str:
    """``pending`` (not yet usable), ``running`` (billing, ComfyUI URL given), ``ended``, ``failed`` or ``unknown``."""
    return PHASES.get(str(state or "").strip().lower(), "unknown")


def mission_id(mission: Any) -> str | None:
    if isinstance(mission, (str, int)) and not isinstance(mission, bool):
        return str(mission)
    if isinstance(mission, dict):
        for key in ("mission_id", "id", "missionId"):
            if mission.get(key) not in (None, ""):
                return str(mission[key])
    return None


def created_mission_ids(answer: Any) -> list[str]:
    """The ids in a create answer: a list of ids or missions, a dict holding one under a usual key, or one mission."""
    if isinstance(answer, dict):
        for key in ("mission_ids", "missions", "ids", "list", "items"):
            if isinstance(answer.get(key), list):
                answer = answer[key]
                break
        else:
            single = mission_id(answer)
            return [single] if single else []
    if isinstance(answer, list):
        return [i for i in (mission_id(m) for m in answer) if i]
    single = mission_id(answer)
    return [single] if single else []


def mission_url(mission: Mapping[str, Any], key: str = "comfyui_url") -> str | None:
    """The ComfyUI URL a running mission carries (under ``key``, else ``url``), with a scheme."""
    url = mission.get(key) or mission.get("url")
    if not isinstance(url, str) or not url.strip():
        return None
    url = url.strip().rstrip("/")
    return url if "://" in url else "http://" + url


class MissionProvider:
    kind = "mission"

    def __init__(self, name: str, base_url: str, api_key: str, *, mission_type: str = "comfyui_time",
                 gpu_version: str = "", gpu_num: int = 1, cost_per_gpu_second: float = 0.0,
                 poll_interval: float = 5.0, start_timeout: float = 900.0, request_timeout: float = 30.0,
                 url_key: str = "comfyui_url", body: Mapping[str, Any] | None = None):
        if mission_type not in MISSION_TYPES:
            log.warning("provider %r: mission type %r is not one of %s; sending it anyway", name, mission_type,
                        ", ".join(MISSION_TYPES))
        if not base_url:
            raise ProviderError(f"provider {name!r}: no base URL (set base_url or base_url_env in the pool file)")
        self.name = name
        self.mission_type = mission_type
        self.gpu_version = gpu_version
        self.gpu_num = int(gpu_num)
        self.cost_per_gpu_second = float(cost_per_gpu_second or 0.0)
        self.poll_interval = float(poll_interval)
        self.start_timeout = float(start_timeout)
        self.request_timeout = float(request_timeout)
        self.url_key = url_key
        self.body = dict(body or {})
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.api = ApiClient(name, base_url, headers, timeout=request_timeout, secrets=[api_key])
        self._opened: dict[str, Instance] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_entry(cls, name: str, entry: Mapping[str, Any]) -> "MissionProvider":
        """From a pool-file entry; the base URL and key are read from the environment variables it names."""
        base_url = entry.get("base_url") or secret_from_env(entry.get("base_url_env"), name, "base URL")
        if not entry.get("api_key_env"):
            raise ProviderError(f"provider {name!r}: api_key_env (the environment variable holding the API key) "
                                "is missing from its pool entry")
        api_key = secret_from_env(entry["api_key_env"], name)
        return cls(name, base_url, api_key, mission_type=entry.get("type", entry.get("mission_type", "comfyui_time")),
                   gpu_version=str(entry.get("gpu_version", "")), gpu_num=int(entry.get("gpu_num", 1)),
                   cost_per_gpu_second=float(entry.get("cost_per_gpu_second", 0.0)),
                   poll_interval=float(entry.get("poll_interval", 5.0)),
                   start_timeout=float(entry.get("start_timeout", 900.0)),
                   request_timeout=float(entry.get("request_timeout", 30.0)),
                   url_key=entry.get("url_key", "comfyui_url"), body=entry.get("body"))

    def __repr__(self) -> str:
        return f"MissionProvider({self.name!r}, {self.api.name!r}, {self.mission_type!r}, {self.gpu_version!r})"

    # ------------------------------------------------------------------ start
    def start(self, count: int, timeout: float | None = None, cancel: threading.Event | None = None,
              on_created: Callable[[list[str]], None] | None = None) -> list[Instance]:
        """Create ``count`` missions and wait (up to ``timeout`` s) until each one's ComfyUI answers.

        ``cancel``: an event another thread sets to give up (raises :class:`.lifecycle.ProviderCancelled`).
        ``on_created``: called with the new mission ids as soon as they exist, before waiting, so a journal can
        record them and a crash mid-start still leaves them to close. On any failure every mission created here
        is closed, then the error is raised."""
        if count < 1:
            return []
        timeout = self.start_timeout if timeout is None else float(timeout)
        deadline = time.monotonic() + timeout
        check_cancelled(cancel, self.name)
        body = {"type": self.mission_type, "gpu_version": self.gpu_version, "gpu_num": self.gpu_num,
                "count": int(count), **self.body}
        answer = self.api.call("POST", "/user/missions/batch", body, what=f"create {count} mission(s)",
                               idempotent=False)
        ids = created_mission_ids(answer)
        try:
            if not ids:
                raise self.api.error("the create call answered no mission ids", "POST /user/missions/batch",
                                     str(answer)[:200])
            log.info("provider %r: created mission(s) %s", self.name, ", ".join(ids))
            if len(ids) != count:
                log.warning("provider %r: asked for %d mission(s), got %d", self.name, count, len(ids))
            if on_created is not None:
                on_created(list(ids))
            instances = self._wait_ready(ids, deadline, timeout, cancel)
        except BaseException as exc:
            close_after_failure(self.name, ids, self._close_many, exc, "mission")
            raise
        with self._lock:
            self._opened.update((i.instance_id, i) for i in instances)
        return instances

    def _wait_ready(self, ids: list[str], deadline: float, timeout: float,
                    cancel: threading.Event | None) -> list[Instance]:
        billing_since: dict[str, float] = {}

        def check(mid: str) -> Instance | str:
            mission = self.api.call("GET", f"/user/missions/{urllib.parse.quote(mid, safe='')}",
                                    what=f"read mission {mid}")
            if not isinstance(mission, dict):
                raise self.api.error(f"mission {mid}: the API answered no mission", f"mission {mid}",
                                     str(mission)[:200])
            state = mission.get("state")
            phase = mission_phase(state)
            if phase == "failed":
                raise self.api.error(f"mission {mid} went {state!r} while starting; the missions this start "
                                     "created were closed", f"mission {mid}",
                                     str(mission.get("reason") or mission.get("message") or state))
            if phase == "ended":
                raise self.api.error(f"mission {mid} ended ({state!r}) before it could be used; the missions "
                                     "this start created were closed", f"mission {mid}", str(state))
            if phase != "running":
                return f"state {state!r}"
            billing_since.setdefault(mid, time.time())
            url = mission_url(mission, self.url_key)
            if url is None:
                return f"state {state!r}, but no {self.url_key} yet"
            base, basic = split_credentials(url)
            headers = {"Authorization": basic} if basic else {}
            why = comfy_answers(base, headers, timeout=max(1.0, min(self.request_timeout,
                                                                    deadline - time.monotonic())))
            if why is not None:
                return f"ComfyUI at {redact(base)}: {why}"
            log.info("provider %r: mission %s ready at %s", self.name, mid, redact(base))
            return Instance(self.name, mid, base, billing_since[mid],
                            gpu=str(mission.get("gpu_version") or self.gpu_version), headers=headers,
                            meta={"state": str(state), "mission_type": self.mission_type, "gpu_num": self.gpu_num})

        return wait_until_ready(self.name, ids, check, deadline, timeout, cancel, self.poll_interval, "mission",
                                "closed", lambda text: scrub(text, self.api.secrets))

    # ------------------------------------------------------------------ close
    def _close_many(self, ids: list[str]) -> list[Problem]:
        """Close missions in one call; the problems (one per mission) when that fails, else []."""
        try:
            self.api.call("POST", "/user/missions/close", {"mission_ids": list(ids)},
                          what=f"close mission(s) {', '.join(ids)}", idempotent=True, missing_ok=True)
        except ProviderError as exc:
            return [Problem(f"mission {i}", f"could not be closed ({exc.summary}); close it in the provider's "
                                            "console") for i in ids]
        with self._lock:
            for i in ids:
                self._opened.pop(i, None)
        log.info("provider %r: closed mission(s) %s", self.name, ", ".join(ids))
        return []

    def close(self, instance_id: str) -> None:
        """Close one mission (stop its billing); closing one already closed is not an error."""
        problems = self._close_many([instance_id])
        if problems:
            raise ProviderError(f"provider {self.name!r}: could not close mission {instance_id}", problems)

    def opened(self) -> list[Instance]:
        with self._lock:
            return list(self._opened.values())
