"""A batch's summary: films, jobs by state, retries, GPU seconds and cost (per film and shot, reconciled from the
journal, warm-ups added), per endpoint its jobs, model loads and seconds, and what needs review or was left undone.
Both engines end with it (the embedded scheduler adds what only it knows: its endpoints' model loads and
warm-ups, and the budget)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from .journal import FINAL, Journal, JobRow


@dataclass
class BatchSummary:
    batch: str
    films: dict[str, str | None] = field(default_factory=dict)    # film -> film file (relative to OUT) or None
    jobs: dict[str, int] = field(default_factory=dict)            # state -> count
    retries: int = 0
    gpu_seconds: float = 0.0
    cost: float = 0.0
    gpu_seconds_per_film: dict[str, float] = field(default_factory=dict)
    gpu_seconds_per_shot: dict[str, float] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    loras: dict[str, str] = field(default_factory=dict)           # "film/character" -> trained LoRA (train jobs)
    endpoints: dict[str, dict] = field(default_factory=dict)      # name -> jobs, model_loads, gpu_seconds (this run)

    @property
    def ok(self) -> bool:
        return all(self.films.values()) and set(self.jobs) <= {"completed"}


def summarize(journal: Journal, batch: str, out_root: Path) -> BatchSummary:
    summary = BatchSummary(batch)
    for row in journal.jobs(batch):
        summary.jobs[row.state] = summary.jobs.get(row.state, 0) + 1
        summary.retries += max(0, row.tries - 1)
        summary.gpu_seconds += row.gpu_seconds or 0.0
        summary.cost += row.cost or 0.0
        film = row.job.film
        summary.gpu_seconds_per_film[film] = round(summary.gpu_seconds_per_film.get(film, 0.0) + (row.gpu_seconds or 0), 3)
        if row.job.shot_id:
            key = f"{film}/{row.job.shot_id}"
            summary.gpu_seconds_per_shot[key] = round(summary.gpu_seconds_per_shot.get(key, 0) + (row.gpu_seconds or 0), 3)
        if row.job.kind == "compose":
            files = (row.result or {}).get("files") or []
            summary.films[film] = f"{film}/{files[0]}" if row.state == "completed" and files else None
        if row.job.kind == "train" and row.state == "completed":
            summary.loras[f"{film}/{row.job.character}"] = (row.result or {}).get("lora", "")
        if row.state in ("manual_review", "cancelled") and row.error:
            summary.problems.append(f"{row.job.label}: {row.error}")
    summary.gpu_seconds = round(summary.gpu_seconds, 3)
    summary.cost = round(summary.cost, 4)
    return summary


def add_endpoints(summary: BatchSummary, endpoints: Iterable) -> None:
    """Per endpoint (:class:`.pool.Endpoint`) what it did in this run; warm-ups are spent too, so they are added to
    the batch's GPU seconds and cost."""
    endpoints = list(endpoints)
    summary.endpoints = {e.name: {"jobs": e.jobs, "model_loads": e.model_loads, "gpu_seconds": round(e.gpu_seconds, 3),
                                  "warm_seconds": round(e.warm_seconds, 3)} for e in endpoints}
    summary.gpu_seconds = round(summary.gpu_seconds + sum(e.warm_seconds for e in endpoints), 3)
    summary.cost = round(summary.cost + sum(e.warm_seconds * e.cost_per_gpu_second for e in endpoints), 4)


def note_budget(summary: BatchSummary, budget: float, rows: Iterable[JobRow]) -> None:
    """The budget stopped the batch: say what was left undone and how to render it."""
    undone = [r.job.label for r in rows if r.state not in FINAL]
    summary.problems.append(f"the budget of {budget:g} allows no more: {len(undone)} job(s) left undone "
                            f"({', '.join(undone[:8])}{', …' if len(undone) > 8 else ''}); "
                            "run the batch again with a larger --budget to render them")
