"""One attempt policy for both batch engines (cloud/attempts.py): what an attempt of a job came to, for every kind of
failure, and the same journal outcome from the embedded scheduler and from Celery workers when a stage raises
something nobody expected (a bug): a failed try, a retry after backoff, then review; never a job left running."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from animstudio.cloud import attempts, scheduler as scheduler_module
from animstudio.cloud.attempts import COMPLETED, REQUEUE, RETRY, REVIEW, block_dependents, judge
from animstudio.cloud.jobs import plan_batch
from animstudio.cloud.journal import FINAL, Journal
from animstudio.cloud.pool import Endpoint
from animstudio.cloud.scheduler import Scheduler, Settings
from animstudio.common.errors import AnimStudioError, GraphValidationError, ServerError, StoryboardError
from conftest import TINY_CHECKPOINT, write_storyboard
from test_cloud_celery import redis_url  # noqa: F401 (a fixture: a real Redis)

FIXTURES = Path(__file__).parent / "fixtures"


# ------------------------------------------------------------------------------------------ the policy

def test_each_kind_of_failure_has_one_outcome():
    probed = []

    def answers():
        probed.append(1)
        return True

    assert judge(None, 0, 3, 1.0) == attempts.Outcome(COMPLETED, 1)
    assert judge(None, 2, 3, 1.0).tries == 3
    # the job itself is wrong: review at once, whatever tries are left
    for exc in (StoryboardError("bad board"), GraphValidationError("does not fit")):
        outcome = judge(exc, 0, 5, 1.0)
        assert (outcome.kind, outcome.tries, outcome.message) == (REVIEW, 1, str(exc))
    # the endpoint went away: back to the queue, no try used, the endpoint out of the pool
    for exc in (ServerError("connection refused\nmore"), ConnectionResetError("reset by peer")):
        outcome = judge(exc, 1, 3, 1.0, endpoint_answers=lambda: False)
        assert (outcome.kind, outcome.tries, outcome.counted) == (REQUEUE, 1, False)
        assert outcome.down == str(exc).splitlines()[0]
    # the endpoint answers: a server error is a failed try like any other; retries back off exponentially
    assert judge(ServerError("500"), 0, 3, 1.5, endpoint_answers=answers) == \
        attempts.Outcome(RETRY, 1, "500", delay=1.5)
    assert probed == [1]
    assert judge(AnimStudioError("node failed"), 1, 3, 1.5).delay == 3.0
    assert judge(AnimStudioError("node failed"), 2, 3, 1.5) == attempts.Outcome(REVIEW, 3, "node failed")
    # a bug in a stage is a failed try too, named by its type; a project error is never probed for
    bug = judge(KeyError("shot"), 0, 2, 0.5, endpoint_answers=lambda: pytest.fail("probed"))
    assert (bug.kind, bug.tries, bug.message, bug.delay) == (RETRY, 1, "KeyError: 'shot'", 0.5)
    assert judge(RuntimeError(), 1, 2, 0.5) == attempts.Outcome(REVIEW, 2, "RuntimeError")
    # the watchdog's timeout is said first
    assert judge(ServerError("interrupted"), 0, 1, 1.0, timed_out=2.0).message == \
        "timed out after 2 s; interrupted"


def test_jobs_waiting_on_one_in_review_wait_too_whatever_the_engine(tmp_path):
    folder = tmp_path / "two"
    write_storyboard(folder, {"version": 1, "project": {"title": "Two", "width": 64, "height": 64, "fps": 8,
                                                        "checkpoint": TINY_CHECKPOINT, "steps": 1},
                              "shots": [{"id": "s1", "description": "x", "duration": 0.5},
                                        {"id": "s2", "description": "y", "duration": 0.5}]})
    journal = Journal(tmp_path / "journal.sqlite")
    journal.add_batch("b", tmp_path / "out", plan_batch([folder / "storyboard.json"]))
    rows = journal.jobs("b")
    first = next(r for r in rows if r.job.label == "two:keyframe:s1")
    journal.transition(first.uid, "manual_review", error="broken")
    rows = journal.jobs("b")
    held = next(r for r in rows if r.job.label == "two:shot:s2")
    block_dependents(journal, rows, FINAL, skip=lambda r: r.uid == held.uid)
    states = {r.job.label: (r.state, r.error) for r in journal.jobs("b")}
    assert states["two:shot:s1"] == ("manual_review", "waits on two:keyframe:s1, which needs review")
    assert states["two:compose"] == ("manual_review", "waits on two:shot:s1, which needs review")
    assert states["two:keyframe:s2"][0] == "pending" and states["two:shot:s2"][0] == "pending"


# ------------------------------------------------------------------------------------------ both engines

def _bug_board(tmp_path: Path) -> Path:
    return write_storyboard(tmp_path / "bug", {
        "version": 1, "project": {"title": "Bug", "width": 64, "height": 64, "fps": 8, "checkpoint": TINY_CHECKPOINT,
                                  "steps": 1},
        "shots": [{"id": "s1", "description": "x", "duration": 0.5}]})


def _outcome(journal: Journal, batch: str) -> dict:
    """What the journal says of each job: state, tries, error, and the keyframe's story of states."""
    rows = {r.job.label: r for r in journal.jobs(batch)}
    keyframe = rows["bug:keyframe:s1"]
    story = [e[2] for e in journal.events(keyframe.uid)]
    return {"jobs": {label: (r.state, r.tries, r.error) for label, r in rows.items()},
            "keyframe story": [s for s in story if s != "pending"]}


EXPECTED = {"jobs": {"bug:keyframe:s1": ("manual_review", 2, "RuntimeError: a bug in the stage"),
                     "bug:shot:s1": ("manual_review", 0, "waits on bug:keyframe:s1, which needs review"),
                     "bug:compose": ("manual_review", 0, "waits on bug:shot:s1, which needs review")},
            "keyframe story": ["running", "failed", "retry_pending", "running", "manual_review"]}


@pytest.mark.comfyui
def test_a_bug_in_a_stage_is_a_failed_try_in_the_embedded_scheduler(comfy_server, tmp_path, monkeypatch):
    real = scheduler_module.run_job

    def run_job(job, *args, **kwargs):
        if job.kind == "keyframe":
            raise RuntimeError("a bug in the stage")
        return real(job, *args, **kwargs)

    monkeypatch.setattr(scheduler_module, "run_job", run_job)
    journal = Journal(tmp_path / "journal.sqlite")
    scheduler = Scheduler(journal, [Endpoint("a", comfy_server.url)], tmp_path / "out",
                          Settings(max_tries=2, backoff=1.5))
    scheduler.submit("b1", plan_batch([_bug_board(tmp_path)]))
    started = time.monotonic()
    summary = scheduler.run("b1")
    assert time.monotonic() - started < 60
    assert _outcome(journal, "b1") == EXPECTED
    assert summary.jobs == {"manual_review": 3}


@pytest.mark.comfyui
def test_a_bug_in_a_stage_is_the_same_failed_try_under_celery(comfy_server, redis_url, tmp_path):
    pytest.importorskip("celery", reason="the Celery engine needs celery[redis]")
    from animstudio.cloud.celery_engine import run_batch_on_celery
    from test_cloud_celery import stop_workers, wait_for_workers, worker_logs

    out = tmp_path / "out"
    pool = tmp_path / "pool-a.yaml"
    pool.write_text(f"endpoints:\n  - {{name: a, url: '{comfy_server.url}'}}\n")
    with open(tmp_path / "worker-a.log", "w") as log:
        worker = subprocess.Popen([sys.executable, str(FIXTURES / "faulty_worker.py"), "--pool", str(pool),
                                   "--broker", redis_url, "-o", str(out)], stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True, env={**os.environ, "ANIMSTUDIO_FAULTY_KINDS": "keyframe"})
    try:
        wait_for_workers(redis_url, 1, [worker])
        started = time.monotonic()
        # the Celery scheduler journals the task states it reads, a poll at a time: a backoff of several polls lets
        # it see the retry before the task runs again
        summary = run_batch_on_celery(plan_batch([_bug_board(tmp_path)]), out, tmp_path / "journal.sqlite", "b1",
                                      redis_url, None, Settings(max_tries=2, backoff=1.5))
        assert time.monotonic() - started < 90
    finally:
        stop_workers([worker])
    journal = Journal(tmp_path / "journal.sqlite")
    assert _outcome(journal, "b1") == EXPECTED, worker_logs(tmp_path)
    assert summary.jobs == {"manual_review": 3}
