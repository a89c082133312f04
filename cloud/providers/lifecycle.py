"""What every paying provider's ``start`` shares: waiting that a cancel event can cut short, and closing
everything a failed start opened, so that no failure path (an error, a timeout, Ctrl-C, a cancel from the
scheduler) leaves a machine billing."""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Iterable, Sequence

from ...common.errors import AnimStudioError, Problem
from .base import Instance, ProviderError

log = logging.getLogger(__name__)


class ProviderCancelled(ProviderError):
    """A start was cancelled (its cancel event was set) while it waited; what it had opened was closed."""


def pause(seconds: float, cancel: threading.Event | None, provider: str) -> None:
    """Sleep ``seconds``, waking at once (with :class:`ProviderCancelled`) when ``cancel`` is set."""
    if cancel is None:
        time.sleep(seconds)
    elif cancel.wait(seconds):
        raise ProviderCancelled(f"provider {provider!r}: start cancelled")


def check_cancelled(cancel: threading.Event | None, provider: str) -> None:
    if cancel is not None and cancel.is_set():
        raise ProviderCancelled(f"provider {provider!r}: start cancelled")


def close_after_failure(provider: str, ids: Iterable[str], close_many: Callable[[list[str]], list[Problem]],
                        exc: BaseException, noun: str = "instance") -> None:
    """Close what a failed start opened. Called from ``except BaseException`` before re-raising ``exc``; never
    raises itself. What could not be closed is logged and, on our own errors, added to ``exc``'s problems so the
    user is told to close it by hand."""
    ids = list(ids)
    if not ids:
        return
    log.info("provider %r: start failed (%s); closing %d %s(s) it opened", provider,
             type(exc).__name__, len(ids), noun)
    try:
        problems = close_many(ids)
    except Exception as close_exc:  # noqa: BLE001 - the first failure is the one to raise
        problems = [Problem(f"{noun} {i}", f"could not be closed ({close_exc}); close it in the provider's console")
                    for i in ids]
    for problem in problems:
        log.error("provider %r: %s", provider, problem)
    if problems and isinstance(exc, AnimStudioError):
        exc.problems.extend(problems)
        exc.args = (str(exc),)


def wait_until_ready(provider: str, ids: Sequence[str], check_one: Callable[[str], "Instance | str"],
                     deadline: float, timeout: float, cancel: threading.Event | None, poll_interval: float,
                     noun: str, closed: str, scrub: Callable[[str], str]) -> list[Instance]:
    """Poll every id with ``check_one`` (an :class:`Instance` once its ComfyUI answers, else why not yet; it raises
    ProviderError for one that failed) until all are ready, the deadline passes or ``cancel`` is set."""
    pending = list(ids)
    ready: dict[str, Instance] = {}
    waiting_on = {i: "not polled yet" for i in ids}
    while True:
        check_cancelled(cancel, provider)
        for instance_id in list(pending):
            found = check_one(instance_id)
            if isinstance(found, str):
                waiting_on[instance_id] = found
                continue
            ready[instance_id] = found
            pending.remove(instance_id)
        if not pending:
            return [ready[i] for i in ids]
        left = deadline - time.monotonic()
        if left <= 0:
            raise ProviderError(
                f"provider {provider!r}: {len(pending)} of {len(ids)} {noun}(s) not ready within {timeout:g} s; "
                f"the {noun}s this start created were {closed}",
                [Problem(f"{noun} {i}", scrub(waiting_on[i])) for i in pending])
        pause(min(poll_interval, left), cancel, provider)
