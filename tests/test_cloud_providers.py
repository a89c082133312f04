"""Cloud providers: the static list, a mission-style GPU cloud, RunPod pods and RunPod serverless.

Each provider's API is played by a small HTTP server the test runs in a thread, so the whole lifecycle (create,
poll through the states, close) is exercised with real HTTP; the ComfyUI behind an instance is a stub that
answers ``/system_stats`` or, in the ``comfyui`` tier, a real ComfyUI. The RunPod worker runs under the runpod
package's own local test server, next to a real ComfyUI, with :class:`RunPodServerlessEngine` in front.
"""
from __future__ import annotations

import _thread
import base64
import io
import json
import logging
import os
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from animstudio.cloud.providers import make_provider, make_serverless_engine
from animstudio.cloud.providers.base import ProviderError
from animstudio.cloud.providers.http import ApiClient, comfy_answers, scrub
from animstudio.cloud.providers.lifecycle import ProviderCancelled
from animstudio.cloud.providers.mission import (MissionProvider, created_mission_ids, mission_phase, mission_url)
from animstudio.cloud.providers.runpod import RunPodPodProvider, pod_cost_per_second, pod_phase
from animstudio.cloud.providers.runpod_serverless import RunPodServerlessEngine, job_failure, job_phase, upload_name
from animstudio.cloud.providers.static import StaticProvider
from animstudio.cloud.runpod_worker import handler as worker
from animstudio.translator.client import ComfyClient, OutputFile
from animstudio.common.errors import GraphValidationError, RenderInterrupted, ServerError
from comfy_env import free_port
from conftest import write_panel

KEY = "sk-test-7f3a9c1e5b2d4f6a"  # must never show up anywhere
REPO = Path(__file__).resolve().parent.parent


# ====================================================================== little servers
class JsonServer:
    """A JSON HTTP server in a thread; ``route(method, path, body, headers)`` answers ``(status, payload)``."""

    def __init__(self):
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw.strip() else None
                code, payload = outer.route(self.command, self.path, body, self.headers)
                data = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = _answer

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def route(self, method, path, body, headers):
        raise NotImplementedError

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class StubComfy(JsonServer):
    """Answers ``/system_stats`` (under any prefix) as ComfyUI does, and nothing else."""

    def route(self, method, path, body, headers):
        if path.endswith("/system_stats"):
            return 200, {"system": {"os": "stub", "comfyui_version": "0.0"}, "devices": []}
        return 404, {"error": "not found"}


class FakeMissionCloud(JsonServer):
    """The mission API: missions walk their plan of states, one step per poll; closes are recorded."""

    def __init__(self, comfy_url, envelope=True):
        super().__init__()
        self.comfy_url = comfy_url
        self.envelope = envelope
        self.default_plan = ["waiting", "doing", "suppyling"]
        self.plans: dict[int, list[str]] = {}  # by the mission's index in its batch
        self.missions: dict[str, dict] = {}
        self.created: list[str] = []
        self.closed: list[str] = []
        self.bodies: list[dict] = []
        self.interrupt_on_poll: int | None = None
        self.polls = 0
        self.lock = threading.Lock()

    def wrap(self, data, code=0, msg="ok"):
        return {"code": code, "msg": msg, "data": data} if self.envelope else data

    def route(self, method, path, body, headers):
        token = headers.get("Authorization", "")
        if token != f"Bearer {KEY}":
            return 401, {"code": 401, "msg": f"token {token!r} is not valid"}  # echoes the token, as some APIs do
        with self.lock:
            if method == "POST" and path == "/user/missions/batch":
                self.bodies.append(body)
                ids = []
                for index in range(body["count"]):
                    mid = f"m{len(self.created) + 1}"
                    self.missions[mid] = {"plan": self.plans.get(index, self.default_plan), "polls": 0}
                    self.created.append(mid)
                    ids.append(mid)
                return 200, self.wrap({"mission_ids": ids})
            if method == "GET" and path.startswith("/user/missions/"):
                mid = path.rsplit("/", 1)[1]
                mission = self.missions[mid]
                plan = mission["plan"]
                state = plan[min(mission["polls"], len(plan) - 1)]
                mission["polls"] += 1
                self.polls += 1
                if state == "500":
                    return 500, {"msg": "internal error"}
                if self.interrupt_on_poll == self.polls:
                    _thread.interrupt_main()  # Ctrl-C in the middle of start
                answer = {"id": mid, "state": state, "gpu_version": body_gpu(self.bodies)}
                if state == "suppyling":
                    answer["comfyui_url"] = self.comfy_url
                return 200, self.wrap(answer)
            if method == "POST" and path == "/user/missions/close":
                self.closed.extend(body["mission_ids"])
                return 200, self.wrap(None)
        return 404, self.wrap(None, 404, "no such call")


def body_gpu(bodies):
    return bodies[-1].get("gpu_version") if bodies else ""


class FakeRunPodRest(JsonServer):
    """RunPod's REST API for pods: a pod walks its plan of desiredStatus values; DELETEs are recorded."""

    def __init__(self):
        super().__init__()
        self.plans: dict[int, list[str]] = {}
        self.pods: dict[str, dict] = {}
        self.created: list[str] = []
        self.terminated: list[str] = []
        self.bodies: list[dict] = []

    def route(self, method, path, body, headers):
        if headers.get("Authorization") != f"Bearer {KEY}":
            return 401, {"error": "unauthorized"}
        if method == "POST" and path == "/pods":
            pod_id = f"pod{len(self.created)}x"
            self.pods[pod_id] = {"plan": self.plans.get(len(self.created), ["CREATED", "RUNNING"]), "polls": 0}
            self.created.append(pod_id)
            self.bodies.append(body)
            return 201, {"id": pod_id, "costPerHr": "0.72", "desiredStatus": "CREATED"}
        pod_id = path.rsplit("/", 1)[1]
        if method == "GET" and pod_id in self.pods:
            pod = self.pods[pod_id]
            status = pod["plan"][min(pod["polls"], len(pod["plan"]) - 1)]
            pod["polls"] += 1
            return 200, {"id": pod_id, "desiredStatus": status, "gpu": {"displayName": "RTX 4090"}}
        if method == "DELETE":
            self.terminated.append(pod_id)
            return 200, {}
        return 404, {"error": "not found"}


class FakeServerless(JsonServer):
    """RunPod's serverless API (``/runsync``, ``GET /status``, ``/cancel``) with scripted job answers: /runsync
    answers a queued job (as RunPod does when the job outlasts its wait), which the engine then polls."""

    def __init__(self, statuses, status_method="GET"):
        super().__init__()
        self.statuses = list(statuses)  # what successive status calls answer
        self.status_method = status_method
        self.runs: list[dict] = []
        self.cancelled: list[str] = []

    def route(self, method, path, body, headers):
        if headers.get("Authorization") != f"Bearer {KEY}":
            return 401, {"error": "unauthorized"}
        if method == "POST" and path.split("?")[0] == "/runsync":
            assert "wait=" in path
            self.runs.append(body)
            return 200, {"id": f"job{len(self.runs)}", "status": "IN_QUEUE"}
        if path.startswith("/status/"):
            if method != self.status_method:
                return 405, {"detail": "Method Not Allowed"}
            answer = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
            return 200, {"id": path.rsplit("/", 1)[1], **answer}
        if method == "POST" and path.startswith("/cancel/"):
            self.cancelled.append(path.rsplit("/", 1)[1])
            return 200, {"status": "CANCELLED"}
        return 404, {"error": "not found"}


@pytest.fixture(scope="module")
def stub_comfy():
    server = StubComfy()
    yield server
    server.stop()


@pytest.fixture
def cloud(stub_comfy):
    server = FakeMissionCloud(stub_comfy.url)
    yield server
    server.stop()


def mission_provider(url, **options):
    options = {"gpu_version": "RTX 4090", "poll_interval": 0.02, "cost_per_gpu_second": 0.0005, **options}
    return MissionProvider("cephalon", url, KEY, **options)


def assert_no_key(*texts):
    for text in texts:
        assert KEY not in text
        assert KEY[3:] not in text


# ====================================================================== mission provider
def test_mission_start_walks_the_states_and_close_stops_billing(cloud, caplog):
    caplog.set_level(logging.DEBUG)
    provider = mission_provider(cloud.url)
    instances = provider.start(2, timeout=10)
    assert [i.instance_id for i in instances] == cloud.created == ["m1", "m2"]
    assert cloud.bodies == [{"type": "comfyui_time", "gpu_version": "RTX 4090", "gpu_num": 1, "count": 2}]
    assert all(m["polls"] == 3 for m in cloud.missions.values())  # waiting, doing, suppyling
    for instance in instances:
        assert comfy_answers(instance.url, instance.headers) is None
        assert instance.provider == "cephalon" and instance.gpu == "RTX 4090" and instance.started_at <= time.time()
    assert {i.instance_id for i in provider.opened()} == {"m1", "m2"}
    assert provider.cost_per_gpu_second == 0.0005
    for instance in instances:
        provider.close(instance.instance_id)
    provider.close("m1")  # closing one already closed is not an error
    assert set(cloud.closed) == {"m1", "m2"} and provider.opened() == []
    assert_no_key(caplog.text, repr(instances), repr(provider), repr(provider.api))


def test_mission_that_fails_mid_start_closes_every_mission(cloud, caplog):
    caplog.set_level(logging.DEBUG)
    cloud.plans = {1: ["waiting", "doing", "failed"]}
    with pytest.raises(ProviderError) as failure:
        mission_provider(cloud.url).start(3, timeout=10)
    message = str(failure.value)
    assert "'cephalon'" in message and "mission m2" in message and "'failed'" in message
    assert sorted(cloud.created) == sorted(set(cloud.closed)) == ["m1", "m2", "m3"]
    assert_no_key(caplog.text, message)


def test_mission_start_timeout_closes_every_mission(cloud):
    cloud.plans = {0: ["waiting", "doing"]}  # the first never gets a machine
    started = time.monotonic()
    with pytest.raises(ProviderError) as failure:
        mission_provider(cloud.url).start(2, timeout=0.5)
    assert time.monotonic() - started < 5
    message = str(failure.value)
    assert "provider 'cephalon': 1 of 2 mission(s) not ready within 0.5 s" in message
    assert "mission m1: state 'doing'" in message
    assert sorted(set(cloud.closed)) == cloud.created == ["m1", "m2"]


def test_mission_whose_comfyui_does_not_answer_times_out_naming_it(stub_comfy):
    dead = f"http://127.0.0.1:{free_port()}"
    cloud = FakeMissionCloud(dead, envelope=False)
    try:
        with pytest.raises(ProviderError) as failure:
            mission_provider(cloud.url).start(1, timeout=0.4)
        assert f"ComfyUI at {dead}" in str(failure.value)
        assert cloud.closed == ["m1"]
    finally:
        cloud.stop()


def test_api_failure_while_polling_names_the_call_and_closes(cloud):
    cloud.plans = {1: ["waiting", "500"]}
    provider = mission_provider(cloud.url)
    provider.api.backoff = 0.01
    with pytest.raises(ProviderError) as failure:
        provider.start(2, timeout=10)
    error = failure.value
    assert error.summary.startswith(f"provider 'cephalon': could not read mission m2: {cloud.url} answered 500")
    assert error.problems[0].where == "GET /user/missions/m2" and error.problems[0].message == "internal error"
    assert sorted(set(cloud.closed)) == cloud.created == ["m1", "m2"]


def test_cancel_event_closes_every_mission(cloud):
    cloud.default_plan = ["waiting"]
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    with pytest.raises(ProviderCancelled) as failure:
        mission_provider(cloud.url, poll_interval=5.0).start(2, timeout=60, cancel=cancel)
    assert "'cephalon'" in str(failure.value) and "cancelled" in str(failure.value)
    assert sorted(set(cloud.closed)) == cloud.created == ["m1", "m2"]


def test_ctrl_c_during_start_closes_every_mission(cloud):
    cloud.default_plan = ["waiting"]
    cloud.interrupt_on_poll = 3
    created = []
    with pytest.raises(KeyboardInterrupt):
        mission_provider(cloud.url).start(2, timeout=60, on_created=created.extend)
    assert created == cloud.created == ["m1", "m2"]
    assert sorted(set(cloud.closed)) == ["m1", "m2"]


def test_refused_key_is_never_echoed(cloud, caplog):
    caplog.set_level(logging.DEBUG)
    provider = MissionProvider("cephalon", cloud.url, KEY + "-wrong", poll_interval=0.02)
    with pytest.raises(ProviderError) as failure:
        provider.start(1, timeout=5)
    message = str(failure.value)
    assert "'cephalon'" in message and "401" in message and "POST /user/missions/batch" in message
    assert "***" in message  # the server echoed the token; it was scrubbed
    assert_no_key(message, caplog.text, repr(provider))
    assert cloud.created == []


def test_unreachable_provider_is_one_clear_error():
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    provider = mission_provider(url)
    provider.api.backoff = 0.01
    with pytest.raises(ProviderError) as failure:
        provider.start(1, timeout=5)
    error = failure.value
    assert error.summary == f"provider 'cephalon': could not create 1 mission(s): cannot reach {url}"
    assert error.__cause__ is None and error.__suppress_context__
    assert len(error.problems) == 1 and error.problems[0].where == "POST /user/missions/batch"
    assert_no_key(str(error))


def test_provider_from_pool_entry_reads_the_environment(monkeypatch, cloud):
    entry = {"kind": "mission", "base_url_env": "TEST_MISSION_URL", "api_key_env": "TEST_MISSION_KEY",
             "type": "comfyui_advance_time", "gpu_version": "A100", "cost_per_gpu_second": 0.001,
             "poll_interval": 0.02, "body": {"region": "sh"}}
    monkeypatch.delenv("TEST_MISSION_KEY", raising=False)
    monkeypatch.setenv("TEST_MISSION_URL", cloud.url)
    with pytest.raises(ProviderError, match=r"\$TEST_MISSION_KEY, which is not set"):
        make_provider("cephalon", entry)
    monkeypatch.setenv("TEST_MISSION_KEY", KEY)
    provider = make_provider("cephalon", entry)
    assert provider.kind == "mission" and provider.cost_per_gpu_second == 0.001
    [instance] = provider.start(1, timeout=10)
    assert cloud.bodies[0] == {"type": "comfyui_advance_time", "gpu_version": "A100", "gpu_num": 1, "count": 1,
                               "region": "sh"}
    provider.close(instance.instance_id)
    with pytest.raises(ProviderError, match="unknown kind 'ftp'"):
        make_provider("x", {"kind": "ftp"})


# ====================================================================== static provider
def test_static_provider_hands_out_answering_servers(stub_comfy, monkeypatch):
    dead = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("TEST_STATIC_TOKEN", "Bearer " + KEY)
    provider = StaticProvider("studio", [dead, stub_comfy.url + "/"], {"Authorization": "TEST_STATIC_TOKEN"})
    [instance] = provider.start(2)
    assert instance.url == stub_comfy.url and instance.instance_id == stub_comfy.url
    assert instance.headers == {"Authorization": "Bearer " + KEY}
    assert provider.cost_per_gpu_second == 0.0
    assert_no_key(repr(instance), repr(provider))
    with pytest.raises(ProviderError) as failure:  # the one that answers is taken; the other does not answer
        provider.start(1)
    assert "provider 'studio': none of its servers answers" in str(failure.value) and dead in str(failure.value)
    provider.close(instance.instance_id)
    assert provider.opened() == [] and provider.start(1)[0].url == stub_comfy.url


def test_static_provider_errors_name_the_provider(monkeypatch):
    monkeypatch.delenv("TEST_STATIC_HEADERS", raising=False)
    with pytest.raises(ProviderError, match=r"provider 'studio'.*\$TEST_STATIC_HEADERS, which is not set"):
        StaticProvider("studio", ["http://127.0.0.1:1"], "TEST_STATIC_HEADERS")
    monkeypatch.setenv("TEST_STATIC_HEADERS", json.dumps({"X-Token": KEY}))
    provider = make_provider("studio", {"kind": "static", "urls": [f"http://u:{KEY}@127.0.0.1:{free_port()}"],
                                        "headers_env": "TEST_STATIC_HEADERS"})
    with pytest.raises(ProviderError) as failure:
        provider.start(1)
    assert str(failure.value).startswith("provider 'studio': none of its servers answers")
    assert_no_key(str(failure.value), repr(provider))


# ====================================================================== RunPod pods
@pytest.fixture
def runpod_rest():
    server = FakeRunPodRest()
    yield server
    server.stop()


def pod_provider(runpod_rest, stub_comfy, **options):
    return RunPodPodProvider("runpod", KEY, image="ghcr.io/x/comfy:1", gpu_types=["NVIDIA GeForce RTX 4090"],
                             api_base=runpod_rest.url, url_template=stub_comfy.url + "/proxy/{pod_id}-{port}",
                             poll_interval=0.02, env={"COMFYUI_ARGS": "--lowvram"}, **options)


def test_runpod_pods_start_answer_and_terminate(runpod_rest, stub_comfy, caplog):
    caplog.set_level(logging.DEBUG)
    provider = pod_provider(runpod_rest, stub_comfy)
    instances = provider.start(2, timeout=10)
    assert [i.instance_id for i in instances] == runpod_rest.created == ["pod0x", "pod1x"]
    body = runpod_rest.bodies[0]
    assert body["imageName"] == "ghcr.io/x/comfy:1" and body["gpuTypeIds"] == ["NVIDIA GeForce RTX 4090"]
    assert body["ports"] == ["8188/http"] and body["env"] == {"COMFYUI_ARGS": "--lowvram"}
    assert instances[0].url == f"{stub_comfy.url}/proxy/pod0x-8188" and instances[0].gpu == "RTX 4090"
    assert all(comfy_answers(i.url) is None for i in instances)
    assert provider.cost_per_gpu_second == pytest.approx(0.72 / 3600)
    for instance in instances:
        provider.close(instance.instance_id)
    assert runpod_rest.terminated == ["pod0x", "pod1x"] and provider.opened() == []
    assert_no_key(caplog.text, repr(instances), repr(provider))


def test_runpod_pod_that_exits_terminates_every_pod(runpod_rest, stub_comfy):
    runpod_rest.plans = {1: ["CREATED", "EXITED"]}
    with pytest.raises(ProviderError) as failure:
        pod_provider(runpod_rest, stub_comfy).start(3, timeout=10)
    assert "provider 'runpod'" in str(failure.value) and "pod pod1x went 'EXITED'" in str(failure.value)
    assert sorted(runpod_rest.terminated) == runpod_rest.created == ["pod0x", "pod1x", "pod2x"]


def test_runpod_pod_start_timeout_terminates(runpod_rest, stub_comfy):
    runpod_rest.plans = {0: ["CREATED"]}
    with pytest.raises(ProviderError, match="not ready within"):
        pod_provider(runpod_rest, stub_comfy).start(1, timeout=0.3)
    assert runpod_rest.terminated == ["pod0x"]


# ====================================================================== RunPod serverless engine (scripted API)
def completed(outputs, files=()):
    return {"status": "COMPLETED", "output": {"outputs": outputs, "files": list(files)}}


def test_serverless_engine_sends_uploads_and_writes_outputs_inside_dest(tmp_path):
    data = b"\x89PNG fake"
    api = FakeServerless([{"status": "IN_QUEUE"}, {"status": "IN_PROGRESS"}, completed(
        {"9": {"images": [{"filename": "../x.png", "subfolder": "../../evil", "type": "output"}]}},
        [{"node": "9", "filename": "../x.png", "subfolder": "../../evil", "type": "output",
          "data": base64.b64encode(data).decode()}])])
    try:
        engine = RunPodServerlessEngine(api.url, KEY, poll_interval=0.01, check_graphs=False)
        panel = write_panel(tmp_path / "p.png")
        assert engine.upload(panel, "shots/a", "p.png") == "shots/a/p.png"
        events = []
        outputs = engine.run({"1": {"class_type": "LoadImage", "inputs": {"image": "shots/a/p.png"}}}, {},
                             lambda kind, d: events.append(d["status"]), ["shots/a/p.png"])
        sent = api.runs[0]["input"]
        assert sent["images"] == [{"name": "shots/a/p.png", "image": base64.b64encode(panel.read_bytes()).decode()}]
        assert events == ["IN_QUEUE", "IN_PROGRESS", "COMPLETED"]
        [item] = ComfyClient.output_files(outputs)
        written = engine.fetch(item, tmp_path / "out")
        assert written.read_bytes() == data
        assert (tmp_path / "out") in written.parents
        engine.run({"1": {}}, {}, None)  # a second run sends no stale uploads
        assert api.runs[1]["input"]["images"] == []
        with pytest.raises(ServerError, match="no data for"):
            engine.fetch(OutputFile("9", "other.png", "", "output", "images"), tmp_path / "out")
    finally:
        api.stop()


def test_serverless_engine_cancels_on_timeout_and_interrupt():
    api = FakeServerless([{"status": "IN_PROGRESS"}])
    try:
        engine = RunPodServerlessEngine(api.url, KEY, poll_interval=0.02, timeout=0.3, check_graphs=False)
        with pytest.raises(ServerError, match="did not finish within 0.3 s; it was cancelled"):
            engine.run({"1": {}}, {}, None)
        assert api.cancelled == ["job1"]
        engine.timeout = 60
        threading.Timer(0.2, engine.interrupt).start()
        with pytest.raises(RenderInterrupted, match="job2 was cancelled"):
            engine.run({"1": {}}, {}, None)
        assert api.cancelled == ["job1", "job2"]
    finally:
        api.stop()


def test_serverless_engine_maps_worker_failures_and_post_status():
    problems = [{"where": "node 3 (KSampler)", "message": "value_not_in_list: ckpt"}]
    api = FakeServerless([{"status": "FAILED", "error": "refused\n  node 3 (KSampler): value_not_in_list: ckpt",
                           "output": {"error_type": "GraphValidationError", "problems": problems}}],
                         status_method="POST")
    try:
        engine = RunPodServerlessEngine(api.url, KEY, poll_interval=0.01, check_graphs=False)
        with pytest.raises(GraphValidationError) as failure:
            engine.run({"1": {}}, {}, None)
        assert failure.value.problems[0].where == "node 3 (KSampler)"
        assert engine._status_method == "POST"
        assert_no_key(str(failure.value))
    finally:
        api.stop()


# ====================================================================== pure units
def test_mission_answers_parse():
    assert created_mission_ids({"mission_ids": ["a", "b"]}) == ["a", "b"]
    assert created_mission_ids([{"mission_id": 7}, {"id": "x"}]) == ["7", "x"]
    assert created_mission_ids({"missions": [{"id": "q"}]}) == ["q"]
    assert created_mission_ids({"id": "solo"}) == ["solo"]
    assert created_mission_ids(None) == [] and created_mission_ids({"other": 1}) == []
    assert [mission_phase(s) for s in ("waiting", "doing", "suppyling", "supplying", "succeed", "canceled",
                                       "failed", "weird", None)] == \
        ["pending", "pending", "running", "running", "ended", "failed", "failed", "unknown", "unknown"]
    assert mission_url({"comfyui_url": "1.2.3.4:8188/"}) == "http://1.2.3.4:8188"
    assert mission_url({"url": "https://x"}) == "https://x" and mission_url({"comfyui_url": ""}) is None


def test_runpod_answers_parse():
    assert [job_phase(s) for s in ("IN_QUEUE", "IN_PROGRESS", "COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT",
                                   "?")] == ["pending", "pending", "completed", "failed", "cancelled", "timed_out",
                                             "unknown"]
    assert pod_phase({"desiredStatus": "RUNNING"}) == "running" and pod_phase({"desiredStatus": "EXITED"}) == "failed"
    assert pod_phase({}) == "unknown"
    assert pod_cost_per_second({"costPerHr": "0.36"}, 1) == pytest.approx(0.0001)
    assert pod_cost_per_second({"costPerHr": None}, 1) == 0.0
    assert upload_name("a/./b", "c.png") == "a/b/c.png" and upload_name("", "c.png") == "c.png"
    for bad in (("..", "c.png"), ("a", "../c.png"), ("a", "")):
        with pytest.raises(ServerError):
            upload_name(*bad)
    captured = json.dumps({"error_type": "<class 'ValueError'>", "error_message": "boom", "error_traceback": "..."})
    error = job_failure({"status": "FAILED", "error": captured}, "endpoint")
    assert isinstance(error, ServerError) and "ValueError" in error.summary and error.problems[0].message == "boom"
    error = job_failure({"status": "FAILED", "error": "the graph failed\n  node 5 (VAEDecode): RuntimeError: x"}, "e")
    assert error.summary == "e: the graph failed" and error.problems[0].where == "node 5 (VAEDecode)"
    assert error.problems[0].message == "RuntimeError: x"


def test_serverless_engine_from_pool_entry(monkeypatch):
    entry = {"kind": "runpod_serverless", "endpoint_id": "abc123", "api_key_env": "TEST_RUNPOD_KEY"}
    monkeypatch.delenv("TEST_RUNPOD_KEY", raising=False)
    with pytest.raises(ProviderError, match=r"provider 'rp'.*\$TEST_RUNPOD_KEY, which is not set"):
        make_serverless_engine("rp", entry)
    monkeypatch.setenv("TEST_RUNPOD_KEY", KEY)
    engine = make_serverless_engine("rp", entry)
    assert engine.endpoint_url == "https://api.runpod.ai/v2/abc123"
    assert engine.name == "rp (https://api.runpod.ai/v2/abc123)"
    assert_no_key(repr(engine), engine.name)
    local = make_serverless_engine("local", {"kind": "runpod_serverless", "endpoint_url": "http://127.0.0.1:9/"})
    assert local.endpoint_url == "http://127.0.0.1:9" and local.api.headers == {}
    with pytest.raises(ProviderError, match="is an engine"):
        make_provider("rp", entry)


def test_api_client_envelopes_and_scrubbing():
    client = ApiClient("p", "http://127.0.0.1:1", {"Authorization": f"Bearer {KEY}"})
    assert client.unwrap({"code": 0, "msg": "ok", "data": [1]}, "x", "GET /") == [1]
    assert client.unwrap({"id": 1, "code": "abc"}, "x", "GET /") == {"id": 1, "code": "abc"}  # not an envelope
    with pytest.raises(ProviderError) as failure:
        client.unwrap({"code": 40001, "msg": f"bad key {KEY}"}, "list", "GET /x")
    assert "code 40001" in str(failure.value)
    assert_no_key(str(failure.value))
    assert scrub(f"a {KEY} b", [KEY]) == "a *** b" and scrub("abc", ["ab"]) == "abc"


def test_worker_input_names_and_data():
    assert worker.input_target("a/b/c.png") == ("a/b", "c.png") and worker.input_target("c.png") == ("", "c.png")
    for bad in ("../c.png", "/etc/passwd", "a/../../c.png", "a\\b.png", "C:/x.png", "", None, "a/.."):
        with pytest.raises(worker.WorkerInputError):
            worker.input_target(bad)
    assert worker.decode_base64("data:image/png;base64," + base64.b64encode(b"hi").decode(), "x") == b"hi"
    with pytest.raises(worker.WorkerInputError):
        worker.decode_base64("not base64!", "x")


def test_worker_refuses_bad_input_before_touching_comfyui():
    """Input errors are answered without a call to ComfyUI (the client points at a closed port); the real run is
    tested under the runpod package's own API server below."""
    client = ComfyClient("http://127.0.0.1:9", retries=0, timeout=1)
    refused = worker.handle({"workflow": {"1": {}}, "images": [{"name": "../x.png", "image": ""}]}, client)
    assert refused["error_type"] == "WorkerInputError" and refused["problems"][0]["where"] == "../x.png"
    error = job_failure({"status": "FAILED", "error": refused["error"]}, "endpoint")  # as a client reads it back
    assert error.summary == "endpoint: refused the image name '../x.png'" and error.problems[0].where == "../x.png"
    assert worker.handle({}, client)["problems"][0]["where"] == "input.workflow"


# ====================================================================== real ComfyUI tier
@pytest.mark.comfyui
def test_mission_instance_is_a_real_comfyui(comfy_server):
    cloud = FakeMissionCloud(comfy_server.url)
    try:
        provider = mission_provider(cloud.url)
        [instance] = provider.start(1, timeout=30)
        stats = ComfyClient(instance.url, headers=instance.headers).system_stats()
        assert "system" in stats
        provider.close(instance.instance_id)
        assert cloud.closed == ["m1"]
    finally:
        cloud.stop()


@pytest.fixture(scope="module")
def runpod_worker_api(comfy_server, tmp_path_factory):
    """The project's worker under the runpod package's local test server, next to the session's ComfyUI."""
    pytest.importorskip("runpod")
    port = free_port()
    log_path = tmp_path_factory.mktemp("runpod-worker") / "worker.log"
    env = {**os.environ, "COMFYUI_URL": comfy_server.url, "RUNPOD_WEBHOOK_PING": "", "UVICORN_LOG_LEVEL": "warning"}
    with open(log_path, "w") as log:
        process = subprocess.Popen([sys.executable, str(REPO / "cloud" / "runpod_worker" / "handler.py"),
                                    "--rp_serve_api", "--rp_api_port", str(port), "--rp_api_host", "127.0.0.1"],
                                   env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the worker exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            urllib.request.urlopen(url + "/openapi.json", timeout=2).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"the worker did not answer:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.3)
    yield url
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.mark.comfyui
def test_runpod_worker_runs_a_graph_end_to_end(runpod_worker_api, tmp_path):
    engine = RunPodServerlessEngine(runpod_worker_api, poll_interval=0.1, timeout=120)
    info = engine.object_info()
    assert {"LoadImage", "ImageInvert", "SaveImage", "AnimStudioLoadPanel"} <= set(info)
    panel = write_panel(tmp_path / "panel.png", size=(48, 32))
    name = engine.upload(panel, "cloud-test", "panel.png")
    graph = {"1": {"class_type": "AnimStudioLoadPanel", "inputs": {"image": name}},  # the pack's own loader
             "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
             "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "cloud-test/inv"}}}
    outputs = engine.run(graph, {}, None, [name])
    [item] = ComfyClient.output_files(outputs)
    written = engine.fetch(item, tmp_path / "out")
    assert (tmp_path / "out") in written.parents and written.suffix == ".png"
    got = np.asarray(Image.open(io.BytesIO(written.read_bytes())).convert("RGB")).astype(int)
    want = 255 - np.asarray(Image.open(panel).convert("RGB")).astype(int)
    assert got.shape == want.shape and np.abs(got - want).max() <= 1


@pytest.mark.comfyui
def test_runpod_worker_reports_a_refused_graph(runpod_worker_api):
    engine = RunPodServerlessEngine(runpod_worker_api, poll_interval=0.1, timeout=60, check_graphs=False)
    graph = {"1": {"class_type": "EmptyImage", "inputs": {"width": 0, "height": 8, "batch_size": 1, "color": 0}},
             "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}}}
    with pytest.raises(GraphValidationError) as failure:  # the worker's error type survives the trip
        engine.run(graph, {}, None)
    error = failure.value
    assert error.summary.startswith(f"RunPod endpoint {runpod_worker_api}: job ")
    assert error.summary.endswith("refused the graph")
    assert [(p.where, p.message) for p in error.problems] == [
        ("node '1' (EmptyImage)", "Value 0 smaller than min of 1: width")]
