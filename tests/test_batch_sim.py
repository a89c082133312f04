"""The real batch scheduler on simulated ComfyUI endpoints (``tests/sim``): with failures and dropped
websockets injected no job is lost and no completed job runs again, and the journal ends consistent. Figures
(throughput at 16, 64, 256 endpoints, a mixed pool against its fastest endpoint alone) live in
``bench/batch_scale_bench.py``: timings never decide a test."""
from __future__ import annotations

from collections import Counter

import pytest

from sim.comfy_sim import SimPool
from sim.drive import make_films, run_batch

pytest.importorskip("aiohttp")
pytest.importorskip("websocket")


def test_injected_failures_lose_no_job_and_rerun_no_completed_job(tmp_path):
    films = make_films(20, 5)  # 200 jobs: 100 keyframes, 100 shots waiting on them
    with SimPool(8, seconds=0.05, load_seconds=0.05, fail_rate=0.05, disconnect_rate=0.02, seed=7) as pool:
        result = run_batch(pool.urls, films, tmp_path)
        stats = pool.stats()
    rows = result["rows"]
    assert result["jobs"] == 200 and result["completed"] == 200, Counter(r.state for r in rows)
    assert not any(r.state == "running" for r in rows)
    runs = stats["runs"]
    assert set(runs) == {r.job.id for r in rows}           # every job ran to success somewhere ...
    assert max(runs.values()) == 1                           # ... exactly once
    assert stats["failures"] > 0                             # the injection happened, and each failure was a retry
    assert result["summary"].retries == stats["failures"]
    assert stats["executions"] == 200 + stats["failures"]  # no other try: a shot never started without its keyframe
    for row in rows:
        assert (tmp_path / "out" / row.job.film / row.result["files"][0]).is_file()
