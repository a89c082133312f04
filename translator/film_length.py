"""How long a film may be before a render starts: a storyboard of 10,000 shots is refused at once, with the limit
and how to raise it, instead of starting hours of synthesis. The render pipeline and batch planning check it first."""
from __future__ import annotations

import math
import os

from ..common.errors import Problem, StoryboardError
from .storyboard_model import Storyboard

MAX_FILM_MINUTES = 180.0  # three hours: generous for a film, and a stop for a runaway generated storyboard
MAX_FILM_MINUTES_ENV = "ANIMSTUDIO_MAX_FILM_MINUTES"
RAISE_LIMIT_HINT = f"raise it with --max-minutes N or {MAX_FILM_MINUTES_ENV}=N (0: no limit)"


class FilmTooLong(StoryboardError):
    """The storyboard's film is longer than the render limit (exit status 2, like any storyboard refusal)."""


def film_minutes_limit(max_minutes: float | None = None) -> float | None:
    """The longest film a render takes, in minutes: ``max_minutes`` if given, else ``$ANIMSTUDIO_MAX_FILM_MINUTES``,
    else :data:`MAX_FILM_MINUTES`; ``None`` (no limit) for 0."""
    where = "--max-minutes"
    if max_minutes is None:
        raw = os.environ.get(MAX_FILM_MINUTES_ENV, "").strip()
        if not raw:
            return MAX_FILM_MINUTES
        where = MAX_FILM_MINUTES_ENV
        try:
            max_minutes = float(raw)
        except ValueError:
            max_minutes = math.nan
    if not math.isfinite(max_minutes) or max_minutes < 0:
        raise StoryboardError(f"{where}: not a length in minutes", [
            Problem(where, f"expected a number of minutes, 0 or more (0: no limit), got {max_minutes}")])
    return max_minutes or None


def film_seconds(board: Storyboard) -> float:
    """The film's estimated length from the storyboard alone (nothing synthesised): the shots' lengths (dialogue
    estimated) less what the transitions overlap."""
    total = sum(board.shot_seconds(shot) for shot in board.shots)
    overlap = sum(shot.transition.seconds for shot in board.shots[1:])
    return max(0.0, total - overlap)


def check_film_length(board: Storyboard, max_minutes: float | None = None) -> float:
    """Refuse, before anything is made, a film longer than the limit (:func:`film_minutes_limit`); returns its
    estimated length in seconds. The render pipeline calls it first; so may any worker taking a whole film."""
    limit = film_minutes_limit(max_minutes)
    seconds = film_seconds(board)
    if limit is not None and seconds > limit * 60:
        raise FilmTooLong(
            f"{board.source}: the film is {_duration(seconds)} long ({len(board.shots)} shots), longer than the "
            f"render limit of {_duration(limit * 60)}",
            [Problem("$.shots", f"{len(board.shots)} shots, about {seconds / 60:.1f} minutes in all; the limit is "
                                f"{limit:g} minutes: {RAISE_LIMIT_HINT}")])
    return seconds


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"
