"""Scaling: how many provider instances a batch holds, and closing every one of them when it ends.

Policies (``scaling:`` of a provider in the pool file):

* ``on_demand`` — none until jobs wait; one more per waiting job up to ``max``; an instance idle for
  ``idle_timeout`` seconds is closed;
* ``fixed`` — ``min`` instances (``max`` when ``min`` is 0) for the whole batch;
* ``warm`` — ``min`` kept open, growing with the queue up to ``max``, extra ones closed when idle.

Instances start in the background (a cloud machine takes minutes) and join the pool when their ComfyUI
answers. Every instance is journalled when opened and when closed, so :meth:`Scaler.recover` closes what a
crashed scheduler left billing, and :meth:`Scaler.close_all` runs whenever a batch ends, fails or is cancelled.
"""
from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass, field

from .pool import Endpoint, PoolSpec, ProviderSpec
from .providers import make_provider
from .providers.base import Instance, Provider, ProviderError

log = logging.getLogger(__name__)


def provider_for(spec: ProviderSpec) -> Provider:
    """The provider a pool entry names (``kind``: static, mission, runpod_pod)."""
    return make_provider(spec.name, {"kind": spec.kind, **spec.settings})


@dataclass
class _Managed:
    spec: ProviderSpec
    provider: Provider
    endpoints: list[Endpoint] = field(default_factory=list)
    starting: int = 0
    failures: int = 0


class Scaler:
    def __init__(self, managed: list[_Managed], capacity_per_instance: int = 1):
        self.managed = managed
        self.capacity = capacity_per_instance
        self._ready: list[tuple[_Managed, Instance]] = []
        self._lock = threading.Lock()
        self.cancel = threading.Event()  # set when the batch ends: instances still starting are given up
        self._starting: list[threading.Thread] = []

    @classmethod
    def from_pool(cls, pool: PoolSpec) -> "Scaler":
        return cls([_Managed(spec, provider_for(spec)) for spec in pool.providers])

    # ------------------------------------------------------------------ crash recovery and the end
    def recover(self, journal) -> None:
        """Close instances a crashed scheduler opened and never closed."""
        by_name = {m.spec.name: m for m in self.managed}
        for provider_name, instance_id in journal.open_instances():
            managed = by_name.get(provider_name)
            if managed is None:
                log.warning("instance %s of provider %r is open but that provider is not in the pool file; "
                            "close it by hand", instance_id, provider_name)
                continue
            try:
                managed.provider.close(instance_id)
                journal.instance_closed(provider_name, instance_id)
                log.info("closed instance %s of %s, left open by an earlier run", instance_id, provider_name)
            except ProviderError as exc:
                log.error("could not close instance %s of %s: %s", instance_id, provider_name, exc)

    def close_all(self, journal) -> None:
        self.cancel.set()
        for thread in self._starting:  # a start given up closes what it created before it returns
            thread.join(timeout=120)
        for managed in self.managed:
            for endpoint in list(managed.endpoints):
                self._close(managed, endpoint, journal)
        with self._lock:
            ready, self._ready = self._ready, []
        for managed, instance in ready:  # started while the batch was ending
            self._close_instance(managed, instance.instance_id, journal)

    def _close(self, managed: _Managed, endpoint: Endpoint, journal) -> None:
        endpoint.closed = True  # type: ignore[attr-defined]
        endpoint.healthy = False
        if endpoint in managed.endpoints:
            managed.endpoints.remove(endpoint)
        self._close_instance(managed, endpoint.instance_id, journal)

    def _close_instance(self, managed: _Managed, instance_id: str, journal) -> None:
        try:
            managed.provider.close(instance_id)
            journal.instance_closed(managed.spec.name, instance_id)
        except ProviderError as exc:
            log.error("could not close instance %s of %s (it may still bill): %s", instance_id, managed.spec.name,
                      exc)

    # ------------------------------------------------------------------ growing and shrinking
    def can_grow(self) -> bool:
        return any(len(m.endpoints) + m.starting < max(m.spec.scaling.max, 1) and m.failures < 3
                   for m in self.managed)

    def _wanted(self, managed: _Managed, waiting: int) -> int:
        scaling = managed.spec.scaling
        if scaling.policy == "fixed":
            return scaling.min or scaling.max
        need = math.ceil(waiting / self.capacity) if waiting else 0
        return max(scaling.min, min(scaling.max, need + sum(1 for e in managed.endpoints if e.busy)))

    def tick(self, waiting: int, endpoints: list[Endpoint], journal) -> list[Endpoint]:
        """Start or close instances for the queue as it is now; returns endpoints that just became ready."""
        new: list[Endpoint] = []
        with self._lock:
            ready, self._ready = self._ready, []
        for managed, instance in ready:
            endpoint = Endpoint(f"{managed.spec.name}/{instance.instance_id}", instance.url, self.capacity,
                                headers=dict(instance.headers),
                                cost_per_gpu_second=managed.provider.cost_per_gpu_second,
                                provider=managed.spec.name, instance_id=instance.instance_id,
                                warm=managed.spec.warm)
            managed.endpoints.append(endpoint)
            new.append(endpoint)
        for managed in self.managed:
            have = len(managed.endpoints) + managed.starting
            wanted = self._wanted(managed, waiting)
            if wanted > have and managed.failures < 3:
                self._start(managed, wanted - have, journal)
            elif managed.spec.scaling.policy != "fixed":
                keep = max(managed.spec.scaling.min, wanted)
                for endpoint in list(managed.endpoints):
                    if len(managed.endpoints) <= keep:
                        break
                    if endpoint.busy == 0 and time.time() - endpoint.last_used > managed.spec.scaling.idle_timeout:
                        log.info("closing idle instance %s", endpoint.name)
                        self._close(managed, endpoint, journal)
        return new

    def _start(self, managed: _Managed, count: int, journal) -> None:
        managed.starting += count

        def opened(ids: list[str]) -> None:  # journalled before they are ready: a crash leaves them to close
            for instance_id in ids:
                journal.instance_opened(managed.spec.name, instance_id, "")

        def run():
            try:
                instances = managed.provider.start(count, cancel=self.cancel, on_created=opened)
            except ProviderError as exc:
                managed.failures += 1
                log.error("provider %s could not start %d instance(s): %s", managed.spec.name, count, exc)
                instances = []
            finally:
                managed.starting -= count
            for instance in instances:
                journal.instance_opened(managed.spec.name, instance.instance_id, instance.url)
                with self._lock:
                    self._ready.append((managed, instance))

        thread = threading.Thread(target=run, name=f"start-{managed.spec.name}", daemon=True)
        self._starting.append(thread)
        thread.start()
