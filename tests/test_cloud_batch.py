"""Batch rendering: jobs as a DAG, the pool file, the journal, and the embedded scheduler on two real ComfyUI
instances on loopback (marker ``comfyui``), one of them killed mid-batch; the scheduler itself killed and
restarted without re-running what was completed."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import av
import pytest

from animstudio.cloud.jobs import plan_batch
from animstudio.cloud.journal import Journal
from animstudio.cloud.pool import Endpoint, PoolError, load_pool, parse_pool
from animstudio.cloud.scheduler import Scheduler, Settings
from comfy_env import comfyui_paths, start_comfyui
from conftest import TINY_CHECKPOINT, write_panel, write_storyboard

REPO = Path(__file__).resolve().parent.parent


def film_storyboard(folder: Path, title: str, shots: int = 3, seed: int = 1) -> Path:
    """A film of generated shots (keyframe job + shot job each) and one panel shot, 64x64, one sampler step."""
    write_panel(folder / "panels" / "p.png", size=(64, 64))
    data = {"version": 1,
            "project": {"title": title, "width": 64, "height": 64, "fps": 8, "seed": seed, "checkpoint": TINY_CHECKPOINT,
                        "steps": 1, "cfg": 1.0},
            "shots": [{"id": f"s{i + 1}", "description": f"waves {i}", "duration": 0.5} for i in range(shots)]}
    data["shots"].append({"id": "end", "description": "the end", "duration": 0.5, "keyframe": "panels/p.png",
                          "transition": {"type": "dissolve", "duration": 0.25}})
    return write_storyboard(folder, data)


def check_film(path: Path, shots: int) -> None:
    """The film decodes: 64x64 H.264 at 8 fps, as long as its shots (each 0.5 s, the last dissolving in)."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        assert (video.codec_context.width, video.codec_context.height) == (64, 64)
        frames = sum(1 for _ in container.decode(video))
    assert frames == (shots + 1) * 4 - 2


# ------------------------------------------------------------------------------------------ no ComfyUI

def test_jobs_are_a_dag_with_content_ids(tmp_path):
    films = plan_batch([film_storyboard(tmp_path / "a", "Alpha"), film_storyboard(tmp_path / "b", "Alpha"),
                        film_storyboard(tmp_path / "c", "Gamma", seed=2)])
    assert [f.name for f in films] == ["alpha", "alpha-2", "gamma"]
    alpha = films[0].jobs
    assert [j.kind for j in alpha] == ["keyframe", "shot"] * 3 + ["shot", "compose"]
    by_id = {j.id: j for j in alpha}
    for job in alpha:
        assert all(dep in by_id for dep in job.depends_on)
    compose = alpha[-1]
    assert set(compose.depends_on) == {j.id for j in alpha if j.kind == "shot"}
    assert alpha[1].depends_on == (alpha[0].id,)
    # the same storyboard content in another folder is the same jobs (rendered once); another seed is not
    assert [j.id for j in films[1].jobs[:-1]] == [j.id for j in alpha[:-1]]
    assert {j.id for j in films[2].jobs if j.kind == "keyframe"}.isdisjoint({j.id for j in alpha})
    assert alpha[0].models[0].file == TINY_CHECKPOINT and alpha[0].models[0].folder == "checkpoints"
    assert again_ids(tmp_path) == [j.id for j in alpha]


def again_ids(tmp_path):
    return [j.id for j in plan_batch([tmp_path / "a" / "storyboard.json"])[0].jobs]


@pytest.mark.parametrize("text, where, words", [
    ("endpoints: [{name: a}]", "$.endpoints[0].url", "ComfyUI base URL"),
    ("endpoints: [{name: a, url: 'http://u:pw@h:1'}]", "$.endpoints[0].url", "password in the URL"),
    ("endpoints: [{name: a, url: 'http://h:1', api_key: sk-live-123}]", "$.endpoints[0].api_key", "environment variable"),
    ("endpoints: [{name: a, url: 'http://h:1'}, {name: a, url: 'http://h:2'}]", "$.endpoints[1].name", "used twice"),
    ("endpoints: [{name: a, url: 'http://h:1', capacity: 0}]", "$.endpoints[0].capacity", ">= 1"),
    ("providers: [{name: p, kind: mission, scaling: {policy: sometimes}}]", "$.providers[0].scaling.policy",
     "on_demand"),
    ("endpoints: []", "$", "nothing to render on"),
    ("endpoints: [{name: a, url: 'http://h:1'}]\nextra: 1", "$.extra", "unknown key"),
])
def test_bad_pool_files_name_the_place(tmp_path, text, where, words):
    path = tmp_path / "pool.yaml"
    path.write_text(text)
    with pytest.raises(PoolError) as caught:
        load_pool(path)
    places = {p.where: p.message for p in caught.value.problems}
    assert where in places and words in places[where], caught.value.problems
    assert "sk-live-123" not in str(caught.value) and ":pw@" not in str(caught.value)


def test_pool_file_not_yaml_names_the_line(tmp_path):
    path = tmp_path / "pool.yaml"
    path.write_text("endpoints:\n  - {name: a, url: [\n")
    with pytest.raises(PoolError, match="not valid YAML") as caught:
        load_pool(path)
    assert caught.value.problems[0].where.startswith("line ")


def test_journal_resume_retry_cancel(tmp_path):
    films = plan_batch([film_storyboard(tmp_path / "a", "Alpha", shots=1)])
    journal = Journal(tmp_path / "j.sqlite")
    journal.add_batch("b1", tmp_path / "out", films)
    journal.add_batch("b1", tmp_path / "out", films)  # adding again keeps states
    rows = journal.jobs("b1")
    assert [r.state for r in rows] == ["pending"] * 4
    journal.transition(rows[0].uid, "running", "a")
    journal.transition(rows[1].uid, "manual_review", "a", error="boom")
    assert Journal(tmp_path / "j.sqlite").resume("b1") == 1  # as a restarted scheduler would
    assert [r.state for r in journal.jobs("b1")][:2] == ["pending", "manual_review"]
    assert journal.retry("b1") == 1 and journal.jobs("b1")[1].state == "pending"
    assert journal.cancel("b1") == 4 and journal.batch_state("b1") == "cancelled"
    assert [e[2] for e in journal.events(rows[0].uid)] == ["running", "pending", "cancelled"]


def test_unreachable_endpoint_is_one_clear_message(tmp_path, capsys):
    from animstudio.cli import main

    pool = tmp_path / "pool.yaml"
    pool.write_text("endpoints: [{name: gone, url: 'http://127.0.0.1:9'}]\n")
    board = film_storyboard(tmp_path / "a", "Alpha", shots=1)
    code = main(["batch", str(board), "--pool", str(pool), "-o", str(tmp_path / "out"), "-q"])
    captured = capsys.readouterr()
    assert code == 4 and "Traceback" not in captured.err
    assert "no endpoint of the pool answers" in captured.err
    assert "endpoint gone: http://127.0.0.1:9 does not answer /system_stats" in captured.err


# ------------------------------------------------------------------------------------------ real ComfyUI

comfyui = pytest.mark.comfyui


@pytest.fixture()
def two_servers(comfyui_base, tmp_path):
    """Two fresh ComfyUI instances with the tiny checkpoint (the session's own server is left alone)."""
    servers = []
    for name in ("a", "b"):
        base = tmp_path / f"comfy-{name}"
        (base / "models" / "checkpoints").mkdir(parents=True)
        (base / "models" / "checkpoints" / TINY_CHECKPOINT).symlink_to(
            comfyui_base / "models" / "checkpoints" / TINY_CHECKPOINT)
        servers.append(start_comfyui(base))
    yield servers
    for server in servers:
        server.stop()


def storyboards(tmp_path) -> list[Path]:
    return [film_storyboard(tmp_path / "one", "Film One", shots=3, seed=1),
            film_storyboard(tmp_path / "two", "Film Two", shots=3, seed=2)]


@comfyui
def test_batch_on_two_endpoints_survives_losing_one(two_servers, tmp_path):
    a, b = two_servers
    endpoints = [Endpoint("a", a.url), Endpoint("b", b.url)]
    journal = Journal(tmp_path / "journal.sqlite")
    films = plan_batch(storyboards(tmp_path))
    assert sum(1 for f in films for j in f.jobs if j.kind != "compose") >= 6
    scheduler = Scheduler(journal, endpoints, tmp_path / "out", Settings(backoff=0.2, probe_every=1.0))
    scheduler.submit("b1", films)
    killed = {}

    def kill_b_when_busy():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            rows = journal.jobs("b1")
            if any(r.endpoint == "b" and r.state == "completed" for r in rows) and \
                    any(r.endpoint == "b" and r.state == "running" for r in rows):
                b.process.kill()
                killed["at"] = time.time()
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_b_when_busy)
    killer.start()
    summary = scheduler.run("b1")
    killer.join()
    assert killed, "endpoint b never ran a job"
    rows = journal.jobs("b1")
    assert {r.state for r in rows} == {"completed"}, [(r.job.label, r.state, r.error) for r in rows]
    # the job b was running when it died went back to the queue and finished on a
    lost = [e for e in journal.events() if e[2] == "pending" and e[3] == "b"]
    assert lost and all(journal.jobs("b1")[[r.uid for r in rows].index(e[1])].endpoint == "a" for e in lost)
    assert summary.ok and summary.retries >= 0 and summary.gpu_seconds > 0
    for film in ("film-one", "film-two"):
        check_film(tmp_path / "out" / summary.films[film], shots=3)
        report = json.loads((tmp_path / "out" / film / "render-report.json").read_text())
        assert report["film"]


@comfyui
def test_killed_scheduler_resumes_without_rerunning_completed_jobs(two_servers, tmp_path):
    a, b = two_servers
    pool = tmp_path / "pool.yaml"
    pool.write_text(f"endpoints:\n  - {{name: a, url: '{a.url}'}}\n  - {{name: b, url: '{b.url}'}}\n")
    out = tmp_path / "out"
    command = [sys.executable, "-m", "animstudio", "batch", *map(str, storyboards(tmp_path)), "--pool", str(pool),
               "-o", str(out), "-q", "--json"]
    journal_path = out / ".animstudio" / "journal.sqlite"
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 180
    completed_before: dict[str, float] = {}
    while time.monotonic() < deadline:
        if journal_path.is_file():
            journal = Journal(journal_path)
            batches = journal.batches()
            rows = journal.jobs(batches[0][0]) if batches else []
            done = [r for r in rows if r.state == "completed"]
            if len(done) >= 3:
                os.killpg(first.pid, signal.SIGKILL)  # no chance to clean up: like a crashed machine
                first.wait()
                break
        time.sleep(0.05)
    else:
        first.kill()
        pytest.fail("the first scheduler never completed 3 jobs")
    journal = Journal(journal_path)
    batch = journal.batches()[0][0]
    for row in journal.jobs(batch):
        if row.state == "completed":
            for name in row.result["files"]:
                completed_before[row.uid] = (out / row.job.film / name).stat().st_mtime_ns
    assert 3 <= len(completed_before) < len(journal.jobs(batch))
    second = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    summary = json.loads(second.stdout)
    assert summary["ok"] and set(summary["jobs"]) == {"completed"}
    journal = Journal(journal_path)
    for uid, mtime in completed_before.items():
        row = next(r for r in journal.jobs(batch) if r.uid == uid)
        assert [e[2] for e in journal.events(uid)].count("running") == 1  # never started again
        assert all((out / row.job.film / name).stat().st_mtime_ns == mtime for name in row.result["files"])
    for film in ("film-one", "film-two"):
        check_film(out / summary["films"][film], shots=3)


@comfyui
def test_no_credential_reaches_logs_journal_or_reports(comfy_server, tmp_path, monkeypatch, caplog, capsys):
    """An endpoint whose header comes from the environment: the secret is sent, and written nowhere."""
    import logging

    from animstudio.cli import main

    secret = "sk-live-DO-NOT-LEAK-42"
    monkeypatch.setenv("BENCH_COMFY_TOKEN", f"Bearer {secret}")
    pool = tmp_path / "pool.yaml"
    pool.write_text(f"endpoints: [{{name: a, url: '{comfy_server.url}', "
                    f"headers_env: {{Authorization: BENCH_COMFY_TOKEN}}}}]\n")
    board = film_storyboard(tmp_path / "s", "Secret Film", shots=1)
    with caplog.at_level(logging.DEBUG):
        code = main(["-vv", "batch", str(board), "--pool", str(pool), "-o", str(tmp_path / "out"), "-q", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert secret not in out + err + caplog.text
    # per endpoint: its jobs (keyframe, two shots, compose) and one model load (the keyframe's checkpoint)
    assert json.loads(out)["endpoints"]["a"] | {"gpu_seconds": 0} == \
        {"jobs": 4, "model_loads": 1, "gpu_seconds": 0, "warm_seconds": 0.0}
    for path in (tmp_path / "out").rglob("*"):
        if path.is_file() and path.suffix in (".json", ".sqlite", ".sqlite-wal", ".key", ".srt", ".vtt", ".ass", ""):
            assert secret.encode() not in path.read_bytes(), path


@comfyui
def test_a_job_no_endpoint_can_run_waits_for_review_saying_why(comfy_server, tmp_path, capsys):
    from animstudio.cli import main

    pool = tmp_path / "pool.yaml"
    pool.write_text(f"endpoints: [{{name: a, url: '{comfy_server.url}'}}]\n")
    folder = tmp_path / "s"
    write_storyboard(folder, {"version": 1, "project": {"title": "Missing", "width": 64, "height": 64, "fps": 8,
                                                        "checkpoint": "not-here.safetensors", "steps": 1},
                              "shots": [{"id": "s1", "description": "x", "duration": 0.5}]})
    code = main(["batch", str(folder / "storyboard.json"), "--pool", str(pool), "-o", str(tmp_path / "out"), "-q"])
    out = capsys.readouterr().out
    assert code == 4
    assert "needs review: missing:keyframe:s1: no endpoint can run it: a lacks model not-here.safetensors " \
           "(models/checkpoints)" in out
    assert "missing: not finished" in out
    assert "endpoint a: 0 job(s), 0 model load(s), 0.0 GPU seconds" in out


@comfyui
def test_batch_on_mission_cloud_instances_closes_them_in_every_path(comfy_server, tmp_path, monkeypatch, caplog):
    """A pool with no endpoints but a mission-style provider: the scheduler starts an instance as jobs wait
    (the test's mission API hands out the URL of a real ComfyUI), renders the batch on it and closes it at the
    end; an instance a crashed scheduler left open in the journal is closed when the next one starts; a
    cancelled batch closes its instance too. The API key is never written anywhere."""
    import logging

    from animstudio.cloud.pool import parse_pool
    from animstudio.cloud.scaling import Scaler
    from test_cloud_providers import KEY, FakeMissionCloud

    cloud = FakeMissionCloud(comfy_server.url)
    monkeypatch.setenv("TEST_MISSION_URL", cloud.url)
    monkeypatch.setenv("TEST_MISSION_KEY", KEY)
    pool = parse_pool({"providers": [{"name": "cephalon", "kind": "mission", "base_url_env": "TEST_MISSION_URL",
                                      "api_key_env": "TEST_MISSION_KEY", "gpu_version": "RTX 4090",
                                      "poll_interval": 0.05, "cost_per_gpu_second": 0.001,
                                      "scaling": {"policy": "on_demand", "max": 1, "idle_timeout": 60}}]})
    journal = Journal(tmp_path / "journal.sqlite")
    journal.instance_opened("cephalon", "m-left-over", "")  # as a crashed scheduler would have left it
    try:
        with caplog.at_level(logging.DEBUG):
            scheduler = Scheduler(journal, [], tmp_path / "out", Settings(backoff=0.2), Scaler.from_pool(pool))
            scheduler.submit("b1", plan_batch([film_storyboard(tmp_path / "one", "Cloud Film", shots=1)]))
            summary = scheduler.run("b1")
        assert summary.ok and summary.cost > 0
        assert "m-left-over" in cloud.closed  # recovered at start
        assert set(cloud.created) <= set(cloud.closed) and cloud.created  # nothing left billing
        assert journal.open_instances() == []
        check_film(tmp_path / "out" / summary.films["cloud-film"], shots=1)

        # cancelled mid-batch: the instance is closed as well
        cancel_journal = Journal(tmp_path / "journal2.sqlite")
        scheduler = Scheduler(cancel_journal, [], tmp_path / "out2", Settings(backoff=0.2), Scaler.from_pool(pool))
        scheduler.submit("b2", plan_batch([film_storyboard(tmp_path / "two", "Cancelled Film", shots=3)]))
        threading.Timer(1.0, lambda: cancel_journal.cancel("b2")).start()
        summary = scheduler.run("b2")
        assert not summary.ok and summary.jobs.get("cancelled")
        assert set(cloud.created) <= set(cloud.closed)
        assert cancel_journal.open_instances() == []
    finally:
        cloud.stop()
    assert KEY not in caplog.text
    for path in tmp_path.rglob("*.sqlite*"):
        assert KEY.encode() not in path.read_bytes()


def test_batch_status_retry_cancel_commands(tmp_path, capsys):
    from animstudio.cli import main

    out = tmp_path / "out"
    films = plan_batch([film_storyboard(tmp_path / "a", "Alpha", shots=1)])
    journal = Journal(out / ".animstudio" / "journal.sqlite")
    journal.add_batch("b7", out, films)
    rows = journal.jobs("b7")
    journal.transition(rows[0].uid, "manual_review", "a", error="the checkpoint is missing")
    assert main(["batch", "status", "-o", str(out), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["batch"] == "b7" and [j["state"] for j in status["jobs"]] == ["manual_review"] + ["pending"] * 3
    assert status["jobs"][0]["error"] == "the checkpoint is missing"
    assert main(["batch", "retry", "keyframe", "-o", str(out)]) == 0
    assert "1 job(s) back in the queue" in capsys.readouterr().out
    assert main(["batch", "cancel", "-o", str(out)]) == 0
    assert "4 job(s) cancelled" in capsys.readouterr().out
    assert {r.state for r in Journal(out / ".animstudio" / "journal.sqlite").jobs("b7")} == {"cancelled"}
    assert main(["batch", "status", "-o", str(tmp_path / "nothing")]) == 1
    assert "no batch journal" in capsys.readouterr().err


@comfyui
def test_a_job_past_its_timeout_is_interrupted_and_counted_as_a_failed_try(comfy_server, tmp_path):
    folder = tmp_path / "slow"
    write_storyboard(folder, {"version": 1, "project": {"title": "Slow", "width": 64, "height": 64, "fps": 8,
                                                        "checkpoint": TINY_CHECKPOINT, "steps": 150},
                              "shots": [{"id": "s1", "description": "x", "duration": 0.5}]})
    journal = Journal(tmp_path / "journal.sqlite")
    scheduler = Scheduler(journal, [Endpoint("a", comfy_server.url)], tmp_path / "out",
                          Settings(max_tries=1, job_timeout=2.0))
    scheduler.submit("slow", plan_batch([folder / "storyboard.json"]))
    started = time.monotonic()
    summary = scheduler.run("slow")
    assert time.monotonic() - started < 60
    keyframe = journal.jobs("slow")[0]
    assert keyframe.state == "manual_review" and keyframe.error.startswith("timed out after 2 s")
    assert summary.jobs == {"manual_review": 3}  # the shot and the compose wait on it
