"""The Celery engine: each film's canvas is its job DAG (no services); with a real Redis (``redis-server``), worker
processes and the scheduler agree on the journal when endpoints are unreachable and when the batch is cancelled;
and on two real ComfyUI instances (marker ``comfyui``) a batch survives one of its two workers being killed
mid-job."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("celery", reason="the Celery engine needs celery[redis] (pip install 'animstudio[celery]')")

from animstudio.cloud.celery_app import TASK_NAMES, VISIBILITY_ENV, make_app, task_options  # noqa: E402
from animstudio.cloud.celery_engine import film_canvas, run_batch_on_celery  # noqa: E402
from animstudio.cloud.jobs import Job, plan_batch  # noqa: E402
from animstudio.cloud.journal import Journal  # noqa: E402
from animstudio.cloud.scheduler import Settings  # noqa: E402
from comfy_env import free_port  # noqa: E402
from conftest import TINY_CHECKPOINT, write_storyboard  # noqa: E402
from test_cloud_batch import check_film, film_storyboard, storyboards, two_servers  # noqa: E402,F401 (a fixture)

comfyui = pytest.mark.comfyui


# ------------------------------------------------------------------------------------------ no services

def _steps(signature) -> list:
    """A chain's tasks, or the one task, as (task name, job)."""
    tasks = signature.tasks if signature.task == "celery.chain" else [signature]
    return [(t.task, Job.from_json(t.kwargs["job"])) for t in tasks]


def _header(canvas) -> list:
    header = canvas.tasks
    return list(getattr(header, "tasks", header))


def test_each_film_is_a_chord_of_shot_chains_like_its_job_dag(tmp_path):
    films = plan_batch([film_storyboard(tmp_path / "a", "Alpha", shots=3)])
    jobs = films[0].jobs
    app = make_app("redis://127.0.0.1:9/0")  # nothing is sent, so no broker is needed
    settings = Settings(max_tries=4, backoff=0.5)
    canvas, ids = film_canvas(app, films[0], tmp_path / "out", settings, "b1")
    assert canvas.task == "celery.chord"
    body = canvas.body
    assert body.task == TASK_NAMES["compose"] and body.immutable
    assert Job.from_json(body.kwargs["job"]) == jobs[-1]
    # one chain per shot: keyframe → shot for a generated shot, the shot alone for a panel
    by_id = {j.id: j for j in jobs}
    expected = [[(TASK_NAMES[by_id[d].kind], by_id[d]) for d in shot.depends_on] + [(TASK_NAMES["shot"], shot)]
                for shot in jobs if shot.kind == "shot"]
    assert [_steps(chain) for chain in _header(canvas)] == expected
    assert [len(c) for c in expected] == [2, 2, 2, 1]
    # each task: its own id (the scheduler follows it), the output folder, the settings, immutable (no results passed)
    signatures = [s for chain in _header(canvas) for s in (chain.tasks if chain.task == "celery.chain" else [chain])]
    assert set(ids) == {j.uid for j in jobs}
    for sig in signatures + [body]:
        job = Job.from_json(sig.kwargs["job"])
        assert sig.options["task_id"] == ids[job.uid] and sig.immutable
        assert sig.kwargs["out_root"] == str(tmp_path / "out") and sig.kwargs["options"] == task_options(settings)
        json.dumps(sig.kwargs)  # JSON serializer
    assert len(set(ids.values())) == len(jobs)

    # a restarted batch: completed jobs are not sent; a shot whose keyframe waits for review is left out, and the
    # compose with it (the rest of the shots still run, as a plain group)
    states = {jobs[0].uid: "completed", jobs[1].uid: "completed", jobs[2].uid: "manual_review",
              jobs[4].uid: "running"}
    canvas, ids = film_canvas(app, films[0], tmp_path / "out", settings, "b1", states)
    assert canvas.task == "celery.group"
    assert [_steps(c) for c in canvas.tasks] == [expected[2], expected[3]]
    assert set(ids) == {jobs[4].uid, jobs[5].uid, jobs[6].uid}
    # only the compose left: the compose alone; nothing left: nothing
    states = {j.uid: "completed" for j in jobs[:-1]}
    canvas, ids = film_canvas(app, films[0], tmp_path / "out", settings, "b1", states)
    assert canvas.task == TASK_NAMES["compose"] and set(ids) == {jobs[-1].uid}
    states[jobs[-1].uid] = "completed"
    assert film_canvas(app, films[0], tmp_path / "out", settings, "b1", states) == (None, {})


# ------------------------------------------------------------------------------------------ a real Redis

@pytest.fixture()
def redis_url(tmp_path):
    """A throw-away redis-server on a free loopback port, nothing saved to disk."""
    binary = shutil.which("redis-server") or next((p for p in ["/usr/bin/redis-server"] if Path(p).exists()), None)
    if binary is None:
        pytest.skip("redis-server is not installed (Debian: apt-get install redis-server): the Celery engine's "
                    "broker tests need a real Redis")
    import redis

    port = free_port()
    with open(tmp_path / "redis.log", "w") as log:
        process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                    "--appendonly", "no", "--daemonize", "no"], stdout=log, stderr=subprocess.STDOUT,
                                   cwd=tmp_path)
    client = redis.Redis(port=port)
    deadline = time.monotonic() + 20
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"redis-server did not start:\n{(tmp_path / 'redis.log').read_text()[-2000:]}")
            time.sleep(0.1)
    yield f"redis://127.0.0.1:{port}/0"
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()


def start_worker(tmp_path: Path, name: str, endpoints: dict[str, str], broker: str, out: Path,
                 visibility: float = 10) -> subprocess.Popen:
    """``animstudio worker`` in its own process group (so it can be killed whole), logging to worker-NAME.log."""
    pool = tmp_path / f"pool-{name}.yaml"
    pool.write_text("endpoints:\n" + "".join(f"  - {{name: {n}, url: '{u}'}}\n" for n, u in endpoints.items()))
    with open(tmp_path / f"worker-{name}.log", "w") as log:
        return subprocess.Popen([sys.executable, "-m", "animstudio", "-v", "worker", "--pool", str(pool),
                                 "--broker", broker, "-o", str(out)], stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, env={**os.environ, VISIBILITY_ENV: str(visibility)})


def wait_for_workers(broker: str, count: int, workers) -> None:
    """Until *count* workers answer a ping (each has connected and is ready to take jobs)."""
    app = make_app(broker)
    deadline = time.monotonic() + 90
    while len(app.control.ping(timeout=1.0)) < count:
        if time.monotonic() > deadline or any(w.poll() is not None for w in workers):
            pytest.fail("the workers did not start\n" + "\n".join(str(w.args) for w in workers))


def stop_workers(workers) -> None:
    for process in workers:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in workers:
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def worker_logs(tmp_path: Path) -> str:
    return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-4000:]}"
                     for p in sorted(tmp_path.glob("worker-*.log")))


def test_unreachable_endpoints_end_in_review_and_what_waits_on_them_too(redis_url, tmp_path):
    """A worker whose endpoint never answers sends its jobs back until all_down_timeout, then they wait for review,
    and so do the jobs after them: the batch ends instead of waiting forever."""
    out = tmp_path / "out"
    worker = start_worker(tmp_path, "gone", {"gone": "http://127.0.0.1:9"}, redis_url, out)
    try:
        films = plan_batch([film_storyboard(tmp_path / "a", "Alpha", shots=1)])
        settings = Settings(probe_every=0.5, all_down_timeout=3.0)
        started = time.monotonic()
        summary = run_batch_on_celery(films, out, tmp_path / "journal.sqlite", "b1", redis_url, None, settings)
        assert time.monotonic() - started < 120
    finally:
        stop_workers([worker])
    journal = Journal(tmp_path / "journal.sqlite")
    states = {r.job.label: (r.state, r.error) for r in journal.jobs("b1")}
    assert states["alpha:keyframe:s1"][0] == "manual_review", (states, worker_logs(tmp_path))
    assert "no endpoint answered for 3 s" in states["alpha:keyframe:s1"][1]
    assert states["alpha:shot:end"][0] == "manual_review"
    # as with the embedded scheduler, what waits on a job in review waits for review too, naming it
    assert states["alpha:shot:s1"] == ("manual_review", "waits on alpha:keyframe:s1, which needs review")
    assert states["alpha:compose"] == ("manual_review", "waits on alpha:shot:s1, which needs review")
    assert not summary.ok and summary.films == {"alpha": None}
    assert summary.jobs == {"manual_review": 4}
    assert journal.batch_state("b1") == "done"


def test_a_worker_keeps_the_messages_it_holds_past_the_visibility_timeout(redis_url, tmp_path):
    """Retries wait on the worker that took them (5 s here), longer than the broker's visibility timeout (2 s): the
    worker renews its hold, so each message is delivered once and no second copy of a job runs."""
    out = tmp_path / "out"
    worker = start_worker(tmp_path, "gone", {"gone": "http://127.0.0.1:9"}, redis_url, out, visibility=2)
    try:
        films = plan_batch([film_storyboard(tmp_path / "a", "Alpha", shots=1)])
        run_batch_on_celery(films, out, tmp_path / "journal.sqlite", "b1", redis_url, None,
                            Settings(probe_every=5.0, all_down_timeout=8.0))
    finally:
        stop_workers([worker])
    log = (tmp_path / "worker-gone.log").read_text()
    for job in ("keyframe.s1", "shot.end"):
        lines = [line for line in log.splitlines() if f".{job}." in line]
        received = sum(1 for line in lines if line.endswith("received"))
        retried = sum(1 for line in lines if " retry: " in line)
        assert retried >= 2 and received == retried + 1, log[-3000:]


def test_cancel_revokes_the_batch(redis_url, tmp_path):
    out = tmp_path / "out"
    worker = start_worker(tmp_path, "gone", {"gone": "http://127.0.0.1:9"}, redis_url, out)
    journal_path = tmp_path / "journal.sqlite"

    def cancel_soon():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if journal_path.is_file() and Journal(journal_path).batches():
                time.sleep(1.0)
                Journal(journal_path).cancel("b1")  # as `animstudio batch cancel` does
                return
            time.sleep(0.1)

    canceller = threading.Thread(target=cancel_soon)
    canceller.start()
    try:
        films = plan_batch([film_storyboard(tmp_path / "a", "Alpha", shots=1)])
        summary = run_batch_on_celery(films, out, journal_path, "b1", redis_url, None,
                                      Settings(probe_every=0.5, all_down_timeout=600))
    finally:
        canceller.join()
        stop_workers([worker])
    journal = Journal(journal_path)
    assert journal.batch_state("b1") == "cancelled"
    assert summary.jobs == {"cancelled": 4} and not summary.ok


def test_broker_not_answering_is_one_clear_message(tmp_path):
    from animstudio.common.errors import ServerError

    films = plan_batch([film_storyboard(tmp_path / "a", "Alpha", shots=1)])
    with pytest.raises(ServerError, match=r"cannot reach the Celery broker at redis://127\.0\.0\.1:9/0") as caught:
        run_batch_on_celery(films, tmp_path / "out", tmp_path / "j.sqlite", "b1", "redis://:s3cret-pw@127.0.0.1:9/0")
    assert "s3cret-pw" not in str(caught.value)


# ------------------------------------------------------------------------------------------ real ComfyUI

@comfyui
def test_jobs_no_endpoint_can_run_or_past_their_timeout_wait_for_review(comfy_server, redis_url, tmp_path):
    """The worker's verdicts match the embedded scheduler's: a job whose model the endpoint lacks waits for review
    at once, saying what is missing; a job past its timeout is interrupted and counted as a failed try."""
    out = tmp_path / "out"
    worker = start_worker(tmp_path, "a", {"a": comfy_server.url}, redis_url, out)
    boards = []
    for title, checkpoint, steps in (("Missing", "not-here.safetensors", 1), ("Slow", TINY_CHECKPOINT, 150)):
        boards.append(write_storyboard(tmp_path / title, {
            "version": 1, "project": {"title": title, "width": 64, "height": 64, "fps": 8, "checkpoint": checkpoint,
                                      "steps": steps},
            "shots": [{"id": "s1", "description": "x", "duration": 0.5}]}))
    try:
        started = time.monotonic()
        summary = run_batch_on_celery(plan_batch(boards), out, tmp_path / "journal.sqlite", "b1", redis_url, None,
                                      Settings(max_tries=1, job_timeout=2.0))
        assert time.monotonic() - started < 120
    finally:
        stop_workers([worker])
    rows = {r.job.label: r for r in Journal(tmp_path / "journal.sqlite").jobs("b1")}
    assert rows["missing:keyframe:s1"].error == \
        "no endpoint can run it: a lacks model not-here.safetensors (models/checkpoints)", worker_logs(tmp_path)
    assert rows["slow:keyframe:s1"].state == "manual_review"
    assert rows["slow:keyframe:s1"].error.startswith("timed out after 2 s"), rows["slow:keyframe:s1"].error
    assert rows["slow:keyframe:s1"].tries == 1 and rows["slow:keyframe:s1"].gpu_seconds >= 2
    assert rows["slow:compose"].error == "waits on slow:shot:s1, which needs review"
    assert summary.jobs == {"manual_review": 6}


@comfyui
def test_celery_batch_survives_a_killed_worker(two_servers, redis_url, tmp_path):
    """Two workers, one per ComfyUI; the one on b is killed (SIGKILL, its whole process group) while it renders a
    job: that job goes to the other worker once the broker's visibility timeout has passed, and the batch ends
    with every job completed and both films right."""
    a, b = two_servers
    out = tmp_path / "out"
    workers = {"a": start_worker(tmp_path, "a", {"a": a.url}, redis_url, out),
               "b": start_worker(tmp_path, "b", {"b": b.url}, redis_url, out)}
    wait_for_workers(redis_url, 2, workers.values())
    (tmp_path / "pool.yaml").write_text(f"endpoints:\n  - {{name: a, url: '{a.url}'}}\n"
                                        f"  - {{name: b, url: '{b.url}'}}\n")
    journal_path = out / ".animstudio" / "journal.sqlite"
    killed: dict = {}

    def kill_b_when_busy():
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if journal_path.is_file():
                journal = Journal(journal_path)
                batches = journal.batches()
                rows = journal.jobs(batches[0][0]) if batches else []
                running = [r.uid for r in rows if r.endpoint == "b" and r.state == "running"]
                if any(r.endpoint == "b" and r.state == "completed" for r in rows) and running:
                    os.killpg(workers["b"].pid, signal.SIGKILL)  # no chance to clean up: like a crashed machine
                    killed.update(at=time.time(), running=running)
                    return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_b_when_busy)
    killer.start()
    try:
        command = [sys.executable, "-m", "animstudio", "-v", "batch", *map(str, storyboards(tmp_path)), "--pool",
                   str(tmp_path / "pool.yaml"), "-o", str(out), "--engine", "celery", "--broker", redis_url,
                   "-q", "--json"]
        batch = subprocess.run(command, capture_output=True, text=True, timeout=600)
    finally:
        killer.join()
        stop_workers(workers.values())
    diagnostics = f"{batch.stderr[-4000:]}\n{worker_logs(tmp_path)}"
    assert killed, "worker b never ran a job\n" + diagnostics
    assert batch.returncode == 0, diagnostics
    summary = json.loads(batch.stdout)
    journal = Journal(journal_path)
    batch_id = journal.batches()[0][0]
    rows = journal.jobs(batch_id)
    assert len(rows) >= 14 and {r.state for r in rows} == {"completed"}, [(r.job.label, r.state, r.error) for r in rows]
    # the job b was rendering went back to the queue (without using a try) and finished on a
    for uid in killed["running"]:
        row = next(r for r in rows if r.uid == uid)
        states = [(e[2], e[3]) for e in journal.events(uid)]
        assert ("pending", "b") in states and row.endpoint == "a" and row.tries == 1, (states, diagnostics)
    # nothing ran on b after it was killed
    assert all(e[0] < killed["at"] for e in journal.events() if e[2] == "running" and e[3] == "b")
    assert summary["ok"] and set(summary["jobs"]) == {"completed"} and summary["gpu_seconds"] > 0
    for film in ("film-one", "film-two"):
        check_film(out / summary["films"][film], shots=3)
        assert json.loads((out / film / "render-report.json").read_text())["film"]


@comfyui
def test_killed_celery_scheduler_resumes_without_rerunning_completed_jobs(two_servers, redis_url, tmp_path):
    """The batch command killed mid-batch and run again: what it had sent is revoked, what is not completed is sent
    again, and no completed job runs twice (one worker serving both endpoints, two slots)."""
    a, b = two_servers
    out = tmp_path / "out"
    worker = start_worker(tmp_path, "ab", {"a": a.url, "b": b.url}, redis_url, out)
    pool = tmp_path / "pool.yaml"
    pool.write_text(f"endpoints:\n  - {{name: a, url: '{a.url}'}}\n  - {{name: b, url: '{b.url}'}}\n")
    command = [sys.executable, "-m", "animstudio", "batch", *map(str, storyboards(tmp_path)), "--pool", str(pool),
               "-o", str(out), "--engine", "celery", "--broker", redis_url, "-q", "--json"]
    journal_path = out / ".animstudio" / "journal.sqlite"
    try:
        first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if journal_path.is_file():
                journal = Journal(journal_path)
                batches = journal.batches()
                rows = journal.jobs(batches[0][0]) if batches else []
                if sum(1 for r in rows if r.state == "completed") >= 3:
                    os.killpg(first.pid, signal.SIGKILL)
                    first.wait()
                    break
            time.sleep(0.05)
        else:
            first.kill()
            pytest.fail("the first batch command never completed 3 jobs\n" + worker_logs(tmp_path))
        journal = Journal(journal_path)
        batch = journal.batches()[0][0]
        completed_before = {}
        for row in journal.jobs(batch):
            if row.state == "completed":
                completed_before[row.uid] = {name: (out / row.job.film / name).stat().st_mtime_ns
                                             for name in row.result["files"]}
        assert 3 <= len(completed_before) < len(journal.jobs(batch))
        second = subprocess.run(command, capture_output=True, text=True, timeout=600)
    finally:
        stop_workers([worker])
    assert second.returncode == 0, second.stderr[-3000:] + worker_logs(tmp_path)
    summary = json.loads(second.stdout)
    assert summary["ok"] and set(summary["jobs"]) == {"completed"}
    journal = Journal(journal_path)
    for uid, mtimes in completed_before.items():
        row = next(r for r in journal.jobs(batch) if r.uid == uid)
        assert [e[2] for e in journal.events(uid)].count("running") == 1  # never started again
        assert {name: (out / row.job.film / name).stat().st_mtime_ns for name in row.result["files"]} == mtimes
    for film in ("film-one", "film-two"):
        check_film(out / summary["films"][film], shots=3)
