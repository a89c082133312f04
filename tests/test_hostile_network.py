"""Hostile servers on the network side (issue 15, items 10-13), against real loopback HTTP servers.

* 10: a key never follows a redirect to another host or port (planner, speech, ComfyUI client, provider API);
* 11: ``user:password@`` in a URL becomes a Basic header and never reaches the name resolver;
* 12: a 200 answer that is neither JSON nor audio is shown masked, whatever the server echoes;
* 13: a prompt the server no longer knows (it was restarted) ends the wait: ServerError, exit 4, the shots
  already finished kept and a rerun resumes from them.
"""
from __future__ import annotations

import base64
import io
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from animstudio.cli import main
from animstudio.common.errors import ServerError
from animstudio.translator.planning.backends import OpenAICompatibleBackend, PlanError
from animstudio.translator.client import ComfyClient

KEY = "sk-hostile-DO-NOT-LEAK-0123456789"
PASSWORD = "pa55-hostile-word"
BOARD_REPLY = json.dumps({"title": "T", "style": "", "characters": [], "scenes": [],
                          "shots": [{"id": "a", "description": "d"}]})


# ------------------------------------------------------------------------------------------ local servers

class Recorder:
    """A loopback HTTP server answering with ``route(handler, body) -> (status, headers, payload)`` and recording
    every request it gets (method, path, headers)."""

    def __init__(self, route):
        self.requests: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def handle_one(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                outer.requests.append({"method": self.command, "path": self.path, "headers": dict(self.headers)})
                status, headers, payload = route(self, body)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = handle_one

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def headers_text(self) -> str:
        return json.dumps([r["headers"] for r in self.requests])

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve():
    made = []

    def start(route):
        made.append(Recorder(route))
        return made[-1]

    yield start
    for server in made:
        server.close()


@pytest.fixture
def clean_env(monkeypatch):
    for name in ("OPENAI_BASE_URL", "ANIMSTUDIO_TTS_URL", "OPENAI_API_KEY", "GPT_SOVITS_URL", "ANIMSTUDIO_TTS_TIMEOUT",
                 "COMFYUI_URL", "http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)


def json_answer(payload, status=200):
    return status, {"Content-Type": "application/json"}, json.dumps(payload).encode()


def chat_answer(content):
    return json_answer({"object": "chat.completion", "model": "m",
                        "choices": [{"index": 0, "finish_reason": "stop",
                                     "message": {"role": "assistant", "content": content}}]})


def wav_answer():
    import soundfile

    buffer = io.BytesIO()
    tone = (0.3 * np.sin(np.linspace(0, 2 * np.pi * 440 * 0.2, 3200))).astype(np.float32)
    soundfile.write(buffer, tone, 16000, format="WAV", subtype="PCM_16")
    return 200, {"Content-Type": "audio/wav"}, buffer.getvalue()


def echo_answer(handler, _body):
    """A 200 HTML page echoing the request's Authorization header first thing, as debugging proxies do."""
    page = f"<pre>Authorization: {handler.headers.get('Authorization')}</pre><p>hello</p>".encode()
    return 200, {"Content-Type": "text/html"}, page


def redirect_to(url, status=302):
    return lambda handler, body: (status, {"Location": url}, b"")


def assert_no_secret(*texts):
    for text in texts:
        for secret in (KEY, KEY[:16], PASSWORD, base64.b64encode(f"user:{PASSWORD}".encode()).decode()[:12]):
            assert secret not in text, f"{secret!r} leaked in: {text[:400]}"


@pytest.fixture
def resolver_hosts(monkeypatch):
    """Every host name handed to the resolver (recorded, then resolved as usual)."""
    seen: list = []
    real = socket.getaddrinfo

    def recording(host, *args, **kwargs):
        seen.append(host)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", recording)
    return seen


# ------------------------------------------------------------------------------------------ 10: redirects

@pytest.mark.parametrize("status", [301, 302, 303])
def test_plan_key_never_follows_a_redirect_to_another_port(serve, clean_env, monkeypatch, capsys, status):
    other = serve(lambda handler, body: chat_answer(BOARD_REPLY))
    first = serve(redirect_to(other.url + "/v1/chat/completions", status))
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    main(["plan", "a fox", "--backend", "openai", "--model", "m", "--base-url", first.url])
    out = capsys.readouterr()
    assert first.requests[0]["headers"]["Authorization"] == f"Bearer {KEY}"
    assert_no_secret(other.headers_text(), out.out, out.err)


def test_speak_key_never_follows_a_redirect_to_another_port(serve, clean_env, monkeypatch, capsys, tmp_path):
    other = serve(lambda handler, body: wav_answer())
    first = serve(redirect_to(other.url + "/v1/audio/speech"))
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    code = main(["speak", "Hello.", "-o", str(tmp_path / "a.wav"), "--engine", "openai", "--server-url", first.url])
    out = capsys.readouterr()
    assert first.requests[0]["headers"]["Authorization"] == f"Bearer {KEY}"
    assert other.requests, "the redirect was not followed"
    assert_no_secret(other.headers_text(), out.out, out.err)
    assert code == 0 and (tmp_path / "a.wav").stat().st_size > 0  # followed, without the key


def test_a_redirect_on_the_same_server_keeps_the_key(serve, clean_env, monkeypatch):
    def route(handler, body):
        return wav_answer() if handler.path == "/moved" else (302, {"Location": "/moved"}, b"")

    from animstudio.nodes.audio.tts import VoiceSettings, synthesize

    server = serve(route)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    synthesize("Hello.", VoiceSettings(engine="openai", voice="nova", server_url=server.url))
    assert [r["path"] for r in server.requests] == ["/v1/audio/speech", "/moved"]
    assert server.requests[1]["headers"]["Authorization"] == f"Bearer {KEY}"


def test_redirects_to_other_schemes_are_refused_and_handed_credentials_discarded(serve, clean_env, resolver_hosts):
    from animstudio.common.http import Unreachable, send

    other = serve(lambda handler, body: json_answer({"ok": True}))
    to_file = serve(redirect_to("file:///etc/passwd"))
    answer = send(to_file.url + "/x", headers={"Authorization": f"Bearer {KEY}"}, timeout=5)
    assert answer.status == 302 and not answer.ok and b"root:" not in answer.body  # not followed: the 302 itself
    to_ftp = serve(redirect_to(f"ftp://127.0.0.1:{other.port}/x"))
    with pytest.raises(Unreachable, match="refused"):
        send(to_ftp.url + "/x", headers={"Authorization": f"Bearer {KEY}"}, timeout=5)
    with_userinfo = serve(redirect_to(f"http://evil:{PASSWORD}@127.0.0.1:{other.port}/y"))
    answer = send(with_userinfo.url + "/x", timeout=5)
    assert answer.status == 200 and other.requests[0]["path"] == "/y"
    assert "Authorization" not in other.requests[0]["headers"] and set(resolver_hosts) == {"127.0.0.1"}
    with pytest.raises(Unreachable, match="not an http"):
        send("file:///etc/passwd", timeout=5)


def test_comfy_client_headers_never_follow_a_redirect_to_another_port(serve, clean_env):
    other = serve(lambda handler, body: json_answer({"system": {}, "devices": []}))
    first = serve(redirect_to(other.url + "/system_stats"))
    client = ComfyClient(first.url, headers={"Authorization": f"Bearer {KEY}"}, retries=0, timeout=5)
    client.system_stats()
    assert first.requests[0]["headers"]["Authorization"] == f"Bearer {KEY}"
    assert other.requests
    assert_no_secret(other.headers_text())


def test_comfy_websocket_never_follows_a_redirect_to_another_port(serve, clean_env):
    pytest.importorskip("websocket")
    other = serve(lambda handler, body: (404, {}, b""))
    first = serve(redirect_to(f"ws://127.0.0.1:{other.port}/ws"))
    client = ComfyClient(first.url, headers={"Authorization": f"Bearer {KEY}"}, retries=0, timeout=5)
    assert client._connect_ws() is None  # no socket: the client polls instead
    assert first.requests and first.requests[0]["headers"]["Authorization"] == f"Bearer {KEY}"
    assert_no_secret(other.headers_text())


def test_provider_api_key_never_follows_a_redirect_to_another_port(serve, clean_env):
    from animstudio.cloud.providers.http import ApiClient

    other = serve(lambda handler, body: json_answer({"pods": []}))
    first = serve(redirect_to(other.url + "/pods"))
    api = ApiClient("p", first.url, {"Authorization": f"Bearer {KEY}"}, retries=0, secrets=[KEY])
    api.call("GET", "/pods")
    assert first.requests[0]["headers"]["Authorization"] == f"Bearer {KEY}"
    assert_no_secret(other.headers_text())


# ------------------------------------------------------------------------------------------ 11: userinfo

def test_plan_url_credentials_become_basic_auth_and_never_a_host_name(serve, clean_env, resolver_hosts, capsys,
                                                                     tmp_path):
    server = serve(lambda handler, body: chat_answer(BOARD_REPLY))
    url = f"http://user:{PASSWORD}@127.0.0.1:{server.port}/v1"
    out = tmp_path / "story.json"
    code = main(["plan", "a fox", "--backend", "openai", "--model", "m", "--base-url", url, "-o", str(out)])
    printed = capsys.readouterr()
    assert set(resolver_hosts) == {"127.0.0.1"}, resolver_hosts
    expected = "Basic " + base64.b64encode(f"user:{PASSWORD}".encode()).decode()
    assert [r["headers"].get("Authorization") for r in server.requests] == [expected]
    assert code == 0 and json.loads(out.read_text())["shots"]
    assert_no_secret(printed.out, printed.err)


@pytest.mark.parametrize("kind", ["speech", "comfy"])
def test_other_clients_move_url_credentials_into_a_header(serve, clean_env, resolver_hosts, kind):
    """The TTS and ComfyUI clients did this already; they now share the one helper with the planner."""
    server = serve(lambda handler, body: wav_answer() if kind == "speech" else json_answer({"system": {}}))
    url = f"http://user:{PASSWORD}@127.0.0.1:{server.port}"
    if kind == "speech":
        from animstudio.nodes.audio.tts import VoiceSettings, synthesize

        synthesize("Hello.", VoiceSettings(engine="openai", voice="nova", server_url=url))
    else:
        ComfyClient(url, retries=0, timeout=5).system_stats()
    assert set(resolver_hosts) == {"127.0.0.1"}
    assert server.requests[0]["headers"]["Authorization"].startswith("Basic ")


# ------------------------------------------------------------------------------------------ 12: echoed bodies

def test_plan_200_html_echoing_the_key_is_masked(serve, clean_env, monkeypatch, capsys):
    server = serve(echo_answer)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    assert main(["plan", "a fox", "--backend", "openai", "--model", "m", "--base-url", server.url]) == 2
    printed = capsys.readouterr()
    assert "did not answer like an OpenAI-compatible server" in printed.err
    assert "hello" in printed.err  # the body is still shown, masked
    assert_no_secret(printed.out, printed.err)


def test_plan_reply_echoing_the_key_is_masked(serve, clean_env, monkeypatch, capsys):
    server = serve(lambda handler, body: chat_answer(f"Sure! You sent {handler.headers.get('Authorization')}"))
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    assert main(["plan", "a fox", "--backend", "openai", "--model", "m", "--base-url", server.url]) == 2
    printed = capsys.readouterr()
    assert server.requests and "did not answer with JSON" in printed.err and "Sure! You sent" in printed.err
    assert_no_secret(printed.out, printed.err)


def test_plan_200_html_echoing_url_credentials_is_masked(serve, clean_env):
    server = serve(echo_answer)
    backend = OpenAICompatibleBackend(f"http://user:{PASSWORD}@127.0.0.1:{server.port}", "m")
    with pytest.raises(PlanError) as caught:
        backend.complete_json("system", "user", {"type": "object"})
    assert server.requests and "***" in str(caught.value)
    assert_no_secret(str(caught.value))


def test_speak_200_html_echoing_the_key_is_masked(serve, clean_env, monkeypatch, capsys, tmp_path):
    server = serve(echo_answer)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    code = main(["speak", "Hello.", "-o", str(tmp_path / "a.wav"), "--engine", "openai", "--server-url", server.url])
    printed = capsys.readouterr()
    assert code == 2 and "not audio" in printed.err
    assert_no_secret(printed.out, printed.err)


def test_mask_covers_secrets_and_credential_patterns():
    from animstudio.common.http import mask

    text = (f"key {KEY}; Authorization: Bearer abcdefgh12345678; authorization=Basic dXNlcjpwYXNzd29yZA==; "
            f"url http://u:{PASSWORD}@host/x; api_key={KEY[:20]}")
    masked = mask(text, [KEY, PASSWORD])
    for leaked in (KEY, KEY[:16], "abcdefgh12345678", "dXNlcjpwYXNzd29yZA", PASSWORD):
        assert leaked not in masked, masked
    assert "host/x" in masked and mask("plain words stay", [KEY]) == "plain words stay"


# ------------------------------------------------------------------------------------------ 13: lost prompts

class FakeComfy:
    """Just enough of ComfyUI's API: ``/prompt`` queues, ``/queue`` lists what ``queued`` says, ``/history`` has
    the prompt once ``done`` says so (callables, asked on each request)."""

    def __init__(self, serve, queued=lambda: False, done=lambda: False):
        self.queue_calls = 0

        def route(handler, body):
            path = handler.path
            if path == "/prompt":
                return json_answer({"prompt_id": "p-lost", "number": 1, "node_errors": {}})
            if path == "/queue":
                self.queue_calls += 1
                item = [1, "p-lost", {}, {}, []]
                return json_answer({"queue_running": [item] if queued() else [], "queue_pending": []})
            if path.startswith("/history/"):
                if done():
                    return json_answer({"p-lost": {"outputs": {}, "status": {"status_str": "success",
                                                                              "completed": True, "messages": []}}})
                return json_answer({})
            return 404, {}, b"not found"

        self.server = serve(route)
        self.url = self.server.url


def run_in_thread(call):
    result: dict = {}

    def target():
        started = time.monotonic()
        try:
            result["value"] = call()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            result["error"] = exc
        result["seconds"] = time.monotonic() - started

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, result


@pytest.mark.parametrize("websocket", [False, True])
def test_a_prompt_the_server_no_longer_knows_ends_the_wait(serve, clean_env, websocket):
    fake = FakeComfy(serve)
    client = ComfyClient(fake.url, retries=0, timeout=5, use_websocket=websocket)
    thread, result = run_in_thread(lambda: client.run({"1": {"class_type": "X", "inputs": {}}}, poll_interval=0.2))
    thread.join(30)
    assert not thread.is_alive(), "the client still polls /history for a prompt the server does not know"
    error = result.get("error")
    assert isinstance(error, ServerError) and error.exit_code == 4, result
    assert "no longer knows" in str(error) and "p-lost" in str(error)
    assert fake.queue_calls >= 1 and result["seconds"] < 20


def test_a_queued_prompt_is_waited_for(serve, clean_env):
    """No false alarm: a prompt that ``/queue`` lists for a while (longer than the grace) is waited for."""
    started = time.monotonic()
    fake = FakeComfy(serve, queued=lambda: time.monotonic() - started < 4,
                     done=lambda: time.monotonic() - started >= 4)
    client = ComfyClient(fake.url, retries=0, timeout=5, use_websocket=False)
    assert client.run({"1": {"class_type": "X", "inputs": {}}}, poll_interval=0.2) == {}
    assert fake.queue_calls >= 3


# ------------------------------------------------------------------------------------------ 13: real ComfyUI

class SwitchingProxy:
    """A TCP forwarder on a loopback port standing for "the server's address". Once ``switch_after`` POST /prompt
    requests have gone through, the address is taken over: new connections go to ``then_port`` and ``on_switch``
    runs (killing the first server), so the client meets a fresh server that never saw its prompt."""

    def __init__(self, port: int):
        self.target = port
        self.prompts = 0
        self.switch_after: int | None = None
        self.then_port: int | None = None
        self.on_switch = None
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client):
        first = client.recv(65536)
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target))
        except OSError:
            client.close()
            return
        upstream.sendall(first)
        back = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
        back.start()
        _pump(client, upstream)
        back.join()
        if first.startswith(b"POST /prompt "):
            self.prompts += 1
            if self.prompts == self.switch_after:
                self.target = self.then_port
                self.on_switch()

    def close(self):
        self.listener.close()


def _pump(source, sink):
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    for sock in (sink, source):
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


@pytest.fixture
def doomed_server(comfy_server, tmp_path):
    """A second real ComfyUI behind a proxy whose address the session's server takes over when it is killed."""
    from comfy_env import start_comfyui

    doomed = start_comfyui(tmp_path / "doomed-base")
    proxy = SwitchingProxy(int(doomed.url.rsplit(":", 1)[1]))
    proxy.then_port = int(comfy_server.url.rsplit(":", 1)[1])
    proxy.on_switch = lambda: (doomed.process.kill(), doomed.process.wait(15))
    yield proxy, doomed
    proxy.close()
    if doomed.process.poll() is None:
        doomed.stop()


def panel_storyboard(folder):
    from conftest import write_panel, write_storyboard

    for name, color in (("a", (200, 80, 40)), ("b", (40, 80, 200))):
        write_panel(folder / "panels" / f"{name}.png", color)
    return write_storyboard(folder, {
        "version": 1,
        "project": {"title": "Lost Prompt", "width": 64, "height": 64, "fps": 8, "seed": 7},
        "shots": [{"id": "a", "description": "the sea", "duration": 1.0, "keyframe": "panels/a.png"},
                  {"id": "b", "description": "the shore", "duration": 1.0, "keyframe": "panels/b.png",
                   "camera": {"move": "zoom_in"}}],
    })


@pytest.mark.comfyui
def test_client_gives_up_on_a_prompt_a_restarted_server_does_not_know(doomed_server, tmp_path):
    from animstudio.translator.compile import compile_storyboard
    from animstudio.translator.storyboard import load_storyboard

    proxy, doomed = doomed_server
    compiled = compile_storyboard(load_storyboard(panel_storyboard(tmp_path / "story"))).graphs[0]
    client = ComfyClient(proxy.url, retries=6)
    for upload in compiled.uploads:
        client.upload(upload.local_path, upload.subfolder, upload.filename)
    proxy.switch_after = 1
    thread, result = run_in_thread(lambda: client.run(compiled.graph, compiled.node_shots))
    thread.join(60)
    assert doomed.process.poll() is not None, "the first server was never killed"
    assert not thread.is_alive(), "the client still waits for a prompt the fresh server never saw"
    error = result.get("error")
    assert isinstance(error, ServerError) and "no longer knows" in str(error), result
    assert result["seconds"] < 30


@pytest.mark.comfyui
def test_cli_render_exits_4_keeps_finished_shots_and_resumes(doomed_server, tmp_path, capsys):
    proxy, doomed = doomed_server
    story, out = panel_storyboard(tmp_path / "story"), tmp_path / "out"
    proxy.switch_after = 2  # shot a's graph finishes on the first server; shot b's is lost with it
    started = time.monotonic()
    code = main(["render", str(story), "-o", str(out), "--server", proxy.url])
    err = capsys.readouterr().err
    assert doomed.process.poll() is not None, "the first server was never killed"
    assert code == 4, err
    assert "no longer knows" in err and time.monotonic() - started < 120
    assert (out / "shots" / "a.mp4").stat().st_size > 0 and not (out / "shots" / "b.mp4").exists()
    report = json.loads((out / "render-report.json").read_text())
    assert report["shots"]["a"]["status"] == "rendered" and report["shots"]["b"]["status"] == "failed"
    assert main(["render", str(story), "-o", str(out), "--server", proxy.url, "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["shots"]["a"]["status"] == "cached" and again["shots"]["b"]["status"] == "rendered"
