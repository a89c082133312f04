"""What every provider offers: start instances, tell their ComfyUI URLs, close them, and say what they cost.

A provider's instances are recorded in the scheduler's journal when opened, so a scheduler that crashed
closes them when it restarts (:meth:`Provider.close`, by id). Credentials come from environment variables
the pool file names, never from the file; they are never logged (see :mod:`animstudio.common.urls`).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Protocol

from ...common.errors import AnimStudioError


class ProviderError(AnimStudioError):
    """A provider that cannot start, reach or close an instance; the message names the provider, never a key."""


@dataclass
class Instance:
    """One running machine a provider opened: where its ComfyUI answers and since when it bills."""
    provider: str             # the provider's name in the pool file
    instance_id: str          # the provider's own id (mission id, pod id, or the URL for static endpoints)
    url: str                  # ComfyUI's base URL (credentials, if any, are in `headers`, never in the URL)
    started_at: float         # time.time() when it started billing
    gpu: str = ""             # what the provider says it is ("RTX 4090", "A100-80G" ...)
    headers: dict[str, str] = field(default_factory=dict, repr=False)  # sent with every request; may hold secrets
    meta: dict = field(default_factory=dict)


class Provider(Protocol):
    name: str
    kind: str                 # "static", "mission", "runpod_pod", ...
    cost_per_gpu_second: float  # for the cost report; 0 when unknown

    def start(self, count: int, timeout: float = 900.0) -> list[Instance]:
        """Open *count* instances and wait until each one's ComfyUI answers; raises ProviderError."""

    def close(self, instance_id: str) -> None:
        """Close (stop billing) an instance by id; closing one already closed is not an error."""

    def opened(self) -> list[Instance]:
        """The instances this provider opened and has not closed (as far as it can tell)."""


def secret_from_env(variable: str | None, provider: str, what: str = "API key") -> str:
    """A credential read from the environment variable the pool file names; a clear error names the variable
    (never the value) when it is unset."""
    if not variable:
        return ""
    value = os.environ.get(variable, "")
    if not value:
        raise ProviderError(f"provider {provider!r}: its {what} is read from ${variable}, which is not set")
    return value
