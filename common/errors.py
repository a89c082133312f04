"""Errors the user can act on.

Every failure that comes from input (a storyboard, a graph, a server's answer) is raised as an
:class:`AnimStudioError` carrying a list of :class:`Problem` s, each naming *where* (a JSON path, a shot
id, a node id) and *what*. The CLI prints them one per line and exits with the error's ``exit_code``;
it never shows a traceback for them.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong, and the place it is wrong at (``$.shots[2].duration``, ``shot s1-02 / node s1-02:sampler``)."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message


class AnimStudioError(Exception):
    """Base of all errors meant for the user. ``exit_code`` is the CLI's exit status for it."""

    exit_code = 1

    def __init__(self, summary: str, problems: list[Problem] | None = None):
        self.summary = summary
        self.problems = list(problems or [])
        super().__init__(self.__str__())

    def __str__(self) -> str:
        lines = [self.summary] + [f"  {p}" for p in self.problems]
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {"error": type(self).__name__, "summary": self.summary,
                "problems": [{"where": p.where, "message": p.message} for p in self.problems]}


class StoryboardError(AnimStudioError):
    """The storyboard file is unreadable, malformed or inconsistent."""

    exit_code = 2


class GraphValidationError(AnimStudioError):
    """A compiled graph does not fit the node definitions of the engine it is meant for."""

    exit_code = 3


class ServerError(AnimStudioError):
    """The ComfyUI server is unreachable, refused the graph, or failed while running it."""

    exit_code = 4


class EngineUnavailableError(AnimStudioError):
    """The graph needs an engine (core ComfyUI nodes, a model) that is not available here."""

    exit_code = 5


class RenderInterrupted(AnimStudioError):
    """The user interrupted the render (Ctrl-C); what was already downloaded is kept."""

    exit_code = 130


class LibraryError(AnimStudioError):
    """The project library file is missing, unreadable, of a newer schema, or asked something it cannot answer."""

    exit_code = 2
