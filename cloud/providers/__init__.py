"""Providers start and close ComfyUI instances behind one interface (:class:`.base.Provider`).

:func:`make_provider` builds one from its pool-file entry by ``kind``: ``static`` (servers the user already runs),
``mission`` (a mission-style GPU cloud such as Cephalon), ``runpod_pod``. RunPod serverless is an engine, not a
provider of machines: :func:`make_serverless_engine` builds it from a ``kind: runpod_serverless`` entry.
"""
from __future__ import annotations

from typing import Any, Mapping

from .base import Instance, Provider, ProviderError

KINDS = ("static", "mission", "runpod_pod")
ENGINE_KINDS = ("runpod_serverless",)


def make_provider(name: str, entry: Mapping[str, Any]) -> Provider:
    """The provider a pool entry describes; credentials are read from the environment variables it names."""
    kind = entry.get("kind")
    if kind == "static":
        from .static import StaticProvider
        return StaticProvider.from_entry(name, entry)
    if kind == "mission":
        from .mission import MissionProvider
        return MissionProvider.from_entry(name, entry)
    if kind == "runpod_pod":
        from .runpod import RunPodPodProvider
        return RunPodPodProvider.from_entry(name, entry)
    if kind in ENGINE_KINDS:
        raise ProviderError(f"provider {name!r}: kind {kind!r} is an engine, not machines "
                            "(build it with make_serverless_engine)")
    raise ProviderError(f"provider {name!r}: unknown kind {kind!r} (expected one of: {', '.join(KINDS + ENGINE_KINDS)})")


def make_serverless_engine(name: str, entry: Mapping[str, Any]):
    """The render engine a ``kind: runpod_serverless`` entry describes."""
    from .runpod_serverless import RunPodServerlessEngine
    return RunPodServerlessEngine.from_entry(name, entry)


__all__ = ["Instance", "Provider", "ProviderError", "KINDS", "ENGINE_KINDS", "make_provider", "make_serverless_engine"]
