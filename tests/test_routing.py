"""Model-aware routing (issue 20, item 2): a free slot takes a job whose models its endpoint holds, then one whose
models nobody else holds, then any; ``POST /free`` only when an endpoint's model set changes; the summary reports
per endpoint its jobs, model loads and GPU seconds. The scheduler and ComfyClient are real, the endpoints
simulated (``tests/sim``); the figures (loads and batch time against model-blind round-robin) are in
``bench/batch_scale_bench.py``."""
from __future__ import annotations

from collections import Counter

import pytest

from animstudio.cloud.jobs import Job, ModelNeed
from animstudio.cloud.journal import JobRow
from animstudio.cloud.pool import Endpoint
from animstudio.cloud.routing import load_change, model_set, ranked
from animstudio.cloud.scheduler import Settings
from sim.comfy_sim import LOADER, MODELS, SimPool
from sim.drive import make_films, run_batch

A, B, C = (frozenset({f"checkpoints/{m}"}) for m in MODELS)


def _row(name: str, model: str | None, priority: int = 20) -> JobRow:
    models = (ModelNeed(LOADER, "ckpt_name", model, "checkpoints"),) if model else ()
    job = Job(name, "keyframe" if priority == 20 else "shot", "film", "", name, (), priority, models)
    return JobRow(f"b/{job.uid}", "b", job, "pending", 0, 0.0, None, None, None, 0.0, 0.0, None, None)


def _endpoint(name: str, loaded: frozenset = frozenset()) -> Endpoint:
    return Endpoint(name, f"http://{name}.invalid", loaded=loaded)


def _order(rows):
    seq = {r.uid: i for i, r in enumerate(rows)}
    return lambda r: seq[r.uid]


def test_a_slot_prefers_its_models_then_models_nobody_holds_then_the_rest():
    rows = [_row("a1", MODELS[0]), _row("b1", MODELS[1]), _row("c1", MODELS[2]), _row("c2", MODELS[2]),
            _row("a-shot", MODELS[0], priority=10), _row("plain", None, priority=10), _row("c3", MODELS[2])]
    here, other = _endpoint("here", A), _endpoint("other", B)
    names = [r.job.id for r in ranked(rows, here, [here, other], _order(rows))]
    # held here (a model-less job counts as held), earlier stage first; then C, which nobody holds; then B,
    # which "other" holds
    assert names == ["a1", "a-shot", "plain", "c1", "c2", "c3", "b1"]
    # a cold endpoint: the set with the most ready jobs among those nobody holds, before what "other" holds
    cold = _endpoint("cold")
    assert [r.job.id for r in ranked(rows, cold, [cold, other], _order(rows))] == \
        ["plain", "c1", "c2", "c3", "a1", "a-shot", "b1"]
    # an endpoint that is down holds nothing that counts
    other.healthy = False
    assert [r.job.id for r in ranked(rows, cold, [cold, other], _order(rows))][:4] == ["plain", "c1", "c2", "c3"]
    # blind: the earlier stage, in batch order, whatever is held
    assert [r.job.id for r in ranked(rows, here, [here], _order(rows), "blind")] == \
        ["a1", "b1", "c1", "c2", "c3", "a-shot", "plain"]


def test_free_is_asked_only_when_the_model_set_changes():
    endpoint = _endpoint("e")
    first, same, other, none = (_row("1", MODELS[0]), _row("2", MODELS[0]), _row("3", MODELS[1]), _row("4", None))
    assert load_change(endpoint, first.job) is False      # a first load: nothing to free
    assert endpoint.loaded == A and endpoint.model_loads == 1
    assert load_change(endpoint, same.job) is False       # held: no load, no free
    assert load_change(endpoint, none.job) is False       # no model: nothing changes
    assert load_change(endpoint, other.job) is True       # another checkpoint: free first
    assert endpoint.loaded == B and endpoint.model_loads == 2
    assert model_set(first.job) == A


def _routed(tmp_path, mode: str) -> tuple[dict, dict]:
    films = make_films(12, 3)  # 72 jobs, films alternating two checkpoints
    with SimPool(4, seconds=0.05, load_seconds=0.05, seed=4) as pool:
        result = run_batch(pool.urls, films, tmp_path / mode,
                           Settings(backoff=0.05, probe_every=1.0, poll=0.05, max_tries=5, job_timeout=120,
                                    routing=mode))
        return result, pool.stats()


def test_model_aware_routing_loads_fewer_models_and_frees_only_on_a_change(tmp_path):
    routed, routed_stats = _routed(tmp_path, "models")
    blind, blind_stats = _routed(tmp_path, "blind")
    for result in (routed, blind):
        assert result["completed"] == result["jobs"] == 72, Counter(r.state for r in result["rows"])
    per = routed["summary"].endpoints
    # what the scheduler counted is what the servers did
    assert sum(e["model_loads"] for e in per.values()) == routed_stats["loads"]
    assert sum(e["model_loads"] for e in blind["summary"].endpoints.values()) == blind_stats["loads"]
    # each endpoint keeps its checkpoint: a handful of loads, where batch order switches all the time
    assert routed_stats["loads"] <= 8 and blind_stats["loads"] >= 2 * routed_stats["loads"], \
        (routed_stats["loads"], blind_stats["loads"])
    # /free only when an endpoint's model set changed (not for its first load)
    first_loads = sum(1 for e in per.values() if e["model_loads"])
    assert routed_stats["requests"].get("/free", 0) == routed_stats["loads"] - first_loads
    assert blind_stats["requests"].get("/free", 0) == blind_stats["loads"] - sum(
        1 for e in blind["summary"].endpoints.values() if e["model_loads"])
    # per endpoint: jobs and GPU seconds add up to the batch's
    assert sum(e["jobs"] for e in per.values()) == 72 + routed["summary"].retries
    assert sum(e["gpu_seconds"] for e in per.values()) == pytest.approx(routed["summary"].gpu_seconds, abs=0.01)
    assert set(per) == {"e0", "e1", "e2", "e3"} and all(e["jobs"] for e in per.values())  # each took work
