"""Model-aware routing: which ready job an endpoint's free slot takes, so that endpoints change models rarely.

A model load (a checkpoint read from disk, a video model moved to the GPU) costs seconds to minutes, often more
than the job; ComfyUI keeps what the last prompt loaded. So the scheduler remembers, per endpoint, the model files
of the last graph it sent there (:attr:`.pool.Endpoint.loaded`) and a free slot takes, in this order:

1. a job whose models its endpoint holds (a job that loads no model counts as held);
2. a job whose models no other endpoint holds (so jobs wait for the endpoint that holds theirs, while it is busy,
   rather than make a second endpoint load the same models);
3. any other job;

and within each, the earlier stage first (keyframes before shots: a film finishes sooner), then the model set
with the most ready jobs (one load serves the most work), then the batch's order. An idle slot always takes a
job when one is ready: work is never held back for locality. ``routing="blind"`` (the comparison in
``bench/batch_scale_bench.py``) takes the earliest stage in batch order, whatever the endpoint holds.

When a job's models differ from what its endpoint holds, the endpoint is asked to free memory first
(``POST /free``), and only then: a model set that does not change is never freed.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from typing import Callable, Iterable, Iterator, Mapping, Sized

from .jobs import Job

ROUTINGS = ("models", "blind")


def model_set(job: Job) -> frozenset[str]:
    """The model files a job's graph loads, as ``folder/file``."""
    return frozenset(f"{need.folder}/{need.file}" for need in job.models)


def holds(endpoint, models: frozenset[str]) -> bool:
    return models <= endpoint.loaded


def tiers(groups: Mapping[tuple, Sized], endpoint, endpoints: Iterable, routing: str = "models") -> list[list]:
    """The ready jobs' groups (``(model set, priority)`` → the group's ready jobs) in the order ``endpoint``'s free
    slot should try them: a list of tiers, each a list of groups whose jobs are taken in batch order."""
    if routing == "blind":  # the earliest stage first, in batch order across model sets
        by_stage: dict[int, list] = defaultdict(list)
        for group in groups:
            by_stage[group[1]].append(group)
        return [by_stage[priority] for priority in sorted(by_stage, reverse=True)]
    others = [e for e in endpoints if e is not endpoint and e.healthy and e.loaded]
    ready_per_set: Counter = Counter()
    for (models, _), members in groups.items():
        ready_per_set[models] += len(members)
    elsewhere = {models: any(holds(e, models) for e in others) for models in ready_per_set}

    def key(group):
        models, priority = group
        here = holds(endpoint, models)
        return (not here, not here and elsewhere[models], -priority, -ready_per_set[models], sorted(models))
    return [[group] for group in sorted(groups, key=key)]


def ranked(rows: Iterable, endpoint, endpoints: Iterable, order: Callable[[object], int],
           routing: str = "models") -> Iterator:
    """``rows`` (ready journal rows) in the order ``endpoint``'s free slot should try them (:func:`tiers` over
    rows grouped here; the scheduler keeps its ready jobs grouped as they change, see :mod:`.board`)."""
    groups: dict[tuple, list] = defaultdict(list)
    for row in rows:
        groups[(model_set(row.job), row.job.priority)].append(row)
    for tier in tiers(groups, endpoint, endpoints, routing):
        yield from sorted((row for group in tier for row in groups[group]), key=order)


def load_change(endpoint, job: Job) -> bool:
    """Record that ``job`` is sent to ``endpoint``: True when its models differ from what the endpoint holds
    and the endpoint held some (then it is asked to free them first). Counts the endpoint's model loads."""
    models = model_set(job)
    if not models or holds(endpoint, models):
        return False
    changed = bool(endpoint.loaded)
    endpoint.loaded = models
    endpoint.model_loads += 1
    return changed
