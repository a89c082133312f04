"""What every paying provider's ``start`` shares: waiting that a cancel event can cut short, and closing
everything a failed start opened, so that no failure path (an error, a timeout, Ctrl-C, a cancel from the
scheduler) leaves a machine billing."""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Iterable

from ...translator.errors import AnimStudioError, Problem
from .base import ProviderError

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
