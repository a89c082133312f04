"""What a batch will cost before it runs, from what jobs of the same kind cost before (the journal's history).

Each job kind's GPU seconds are the mean of its completed runs in the journal (every try counted, as billed; jobs
copied from an earlier run are left out), and the cost is those seconds at the pool's price (the mean
``cost_per_gpu_second`` of its endpoints and providers). A kind with no history yet uses a stated default. A job
already rendered in this journal (the same graph in another film or batch) is copied, so it costs nothing.

The scheduler keeps a batch under ``--budget`` with a stricter figure than the mean: what it reserves for one try
of a job is the longest try of its kind measured so far, times :data:`BUDGET_MARGIN` (``job_seconds(...,
reserve=True)``). A mean is right for a whole batch's cost, but the jobs above it would take a batch that stops
just under its cap past it; with the highest try, the cap holds as long as no try takes longer than that figure.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable

from .jobs import Film, Job
from .journal import Journal

# GPU seconds per job when the journal has never seen one of that kind (a tiny-model test run is far less, a
# 1080p video model far more: the first batch of a kind calibrates the estimate)
DEFAULT_SECONDS = {"keyframe": 30.0, "shot": 90.0, "compose": 20.0, "train": 1800.0}

# what the budget reserves for a try, over the longest try of its kind measured: room for the jitter of what the
# scheduler measures (wall time around a job, its HTTP included)
BUDGET_MARGIN = 1.1


@dataclass(frozen=True)
class KindCost:
    seconds: float      # GPU seconds per job
    jobs: int           # completed jobs it is measured over (0: the default)
    highest: float = field(default=0.0, compare=False)  # GPU seconds of the longest try measured (0: none)


@dataclass
class Estimate:
    films: dict[str, tuple[float, float]] = field(default_factory=dict)  # film → (GPU seconds, cost)
    gpu_seconds: float = 0.0
    cost: float = 0.0
    basis: dict[str, KindCost] = field(default_factory=dict)            # job kind → what it is based on
    cached: int = 0                                                       # jobs copied from earlier runs
    rate: float = 0.0                                                     # cost per GPU second

    def lines(self) -> list[str]:
        """The estimate as a person reads it."""
        out = [f"{film}: {seconds:.0f} GPU s, about {cost:.4f}" for film, (seconds, cost) in self.films.items()]
        out.append(f"in all: {self.gpu_seconds:.0f} GPU s, about {self.cost:.4f} (at {self.rate:g} per GPU second)"
                   + (f"; {self.cached} job(s) already rendered, copied for free" if self.cached else ""))
        for kind, basis in sorted(self.basis.items()):
            out.append(f"  {kind}: {basis.seconds:.1f} GPU s per job, "
                       + (f"measured over {basis.jobs} job(s)" if basis.jobs else "no history: a default"))
        return out

    def to_json(self) -> dict:
        return {"films": {f: {"gpu_seconds": round(s, 3), "cost": round(c, 6)} for f, (s, c) in self.films.items()},
                "gpu_seconds": round(self.gpu_seconds, 3), "cost": round(self.cost, 6), "rate": self.rate,
                "cached": self.cached,
                "basis": {k: {"seconds": round(b.seconds, 3), "jobs": b.jobs} for k, b in self.basis.items()}}


def kind_costs(journal: Journal) -> dict[str, KindCost]:
    """Each job kind's mean GPU seconds over its completed, rendered (not copied) runs in the journal; the
    defaults for kinds it has not seen."""
    highest = journal.highest_try_seconds()
    measured = {kind: KindCost(seconds, count, highest.get(kind, 0.0))
                for kind, seconds, count in journal.completed_seconds()}
    return {kind: measured.get(kind) or KindCost(DEFAULT_SECONDS[kind], 0) for kind in DEFAULT_SECONDS} | measured


def job_seconds(job: Job, costs: dict[str, KindCost], reserve: bool = False) -> float:
    """The GPU seconds ``job`` is expected to take (its kind's mean); ``reserve``: what the budget keeps for one
    try of it, its kind's longest try measured times :data:`BUDGET_MARGIN` (the mean where none was measured)."""
    cost = costs.get(job.kind) or KindCost(DEFAULT_SECONDS.get(job.kind, 60.0), 0)
    return max(cost.seconds, cost.highest * BUDGET_MARGIN) if reserve else cost.seconds


def committed_cost(rows: Iterable, running: Callable[[object], bool], endpoints: Iterable,
                   costs: dict[str, KindCost]) -> float:
    """What a batch under a budget has committed: what it spent (its jobs' tries, lost attempts included, and the
    endpoints' warm-ups) and what its ``running`` jobs may still cost, each reserved its kind's longest try measured
    with a margin (``job_seconds(..., reserve=True)``), not the mean: a job above the mean must not take the batch
    past its cap. A running job's endpoint that is not known is priced as the dearest."""
    endpoints = list(endpoints)
    rates = {e.name: e.cost_per_gpu_second for e in endpoints}
    dearest = max(rates.values(), default=0.0)
    rows = list(rows)
    spent = sum(r.cost or 0.0 for r in rows) + sum(e.warm_seconds * e.cost_per_gpu_second for e in endpoints)
    return spent + sum(job_seconds(r.job, costs, reserve=True) * rates.get(r.endpoint or "", dearest)
                       for r in rows if running(r))


def estimate(films: list[Film], journal: Journal, rate: float) -> Estimate:
    """The GPU seconds and cost of rendering ``films`` (see the module's docstring)."""
    costs = kind_costs(journal)
    result = Estimate(rate=rate)
    for film in films:
        seconds = 0.0
        for job in film.jobs:
            if job.kind not in ("compose", "train") and journal.completed_elsewhere(job.id) is not None:
                result.cached += 1
                continue
            seconds += job_seconds(job, costs)
            result.basis[job.kind] = costs.get(job.kind) or KindCost(job_seconds(job, costs), 0)
        result.films[film.name] = (seconds, seconds * rate)
        result.gpu_seconds += seconds
    result.cost = result.gpu_seconds * rate
    return result
