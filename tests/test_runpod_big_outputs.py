"""The RunPod worker answers big outputs by location (issue 20 item 4): past the answer's limit a file is PUT,
streamed, to the worker's output store and answered as {url, size, sha256}; the client fetches it streamed and
checks both. A real ComfyUI renders, a real HTTP store (a small PUT/GET server in the test) keeps the files."""
from __future__ import annotations

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from animstudio.cloud.providers.runpod_serverless import RunPodServerlessEngine
from animstudio.cloud.runpod_worker import handler as worker
from animstudio.common.errors import ServerError
from animstudio.translator.client import ComfyClient

GRAPH = {"1": {"class_type": "EmptyImage", "inputs": {"width": 96, "height": 64, "batch_size": 1, "color": 0x3366cc}},
         "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "runpod-big/blue"}}}


class _Store(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_PUT(self):
        size = int(self.headers["Content-Length"])
        path = self.server.root / self.path.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as out:
            while size:
                piece = self.rfile.read(min(size, 1 << 16))
                out.write(piece)
                size -= len(piece)
        self.server.puts.append((self.path, self.headers.get("Authorization")))
        self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self):
        path = self.server.root / self.path.lstrip("/")
        if not path.is_file():
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = path.read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture()
def store(tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Store)
    server.root, server.puts = tmp_path / "store", []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


@pytest.mark.comfyui
def test_outputs_past_the_limit_come_back_by_location_and_are_checked(comfy_server, store, tmp_path, monkeypatch):
    monkeypatch.setenv("ANIMSTUDIO_INLINE_LIMIT", "0")
    monkeypatch.setenv("ANIMSTUDIO_OUTPUT_UPLOAD_URL", f"http://127.0.0.1:{store.server_address[1]}/renders")
    monkeypatch.setenv("ANIMSTUDIO_OUTPUT_UPLOAD_AUTH", "Bearer store-secret-token")
    answer = worker.handle({"workflow": GRAPH, "job_id": "job-1"}, ComfyClient(comfy_server.url))
    assert "error" not in answer, answer
    [sent] = answer["files"]
    assert "data" not in sent and sent["url"].startswith(f"http://127.0.0.1:{store.server_address[1]}/renders/job-1/")
    rendered = comfy_server.base / "output" / sent["subfolder"] / sent["filename"]
    assert sent["size"] == rendered.stat().st_size
    assert sent["sha256"] == hashlib.sha256(rendered.read_bytes()).hexdigest()
    assert store.puts == [(sent["url"].split(str(store.server_address[1]))[1], "Bearer store-secret-token")]
    assert "store-secret-token" not in str(answer)
    engine = RunPodServerlessEngine("http://127.0.0.1:9/unused", poll_interval=0.1, timeout=5, check_graphs=False)
    engine.keep_files(answer["files"])
    [item] = ComfyClient.output_files(answer["outputs"])
    fetched = engine.fetch(item, tmp_path / "out")
    assert fetched.read_bytes() == rendered.read_bytes() and (tmp_path / "out") in fetched.parents
    # what the store hands back is checked against what the worker announced
    stored = store.root / sent["url"].split("/", 3)[3]
    stored.write_bytes(stored.read_bytes()[:-1] + b"x")
    with pytest.raises(ServerError) as failure:
        engine.fetch(item, tmp_path / "again")
    assert "SHA-256" in str(failure.value.problems)
    assert not [p for p in (tmp_path / "again").rglob("*") if p.is_file()]  # nothing half-checked is left


@pytest.mark.comfyui
def test_without_a_store_a_job_past_the_limit_says_so(comfy_server, monkeypatch):
    monkeypatch.setenv("ANIMSTUDIO_INLINE_LIMIT", "0")
    monkeypatch.delenv("ANIMSTUDIO_OUTPUT_UPLOAD_URL", raising=False)
    answer = worker.handle({"workflow": GRAPH}, ComfyClient(comfy_server.url))
    assert answer["problems"][0]["where"] == "ANIMSTUDIO_OUTPUT_UPLOAD_URL", answer
    assert "pass the answer's limit" in answer["error"]
    # under the default limit the same file comes back inline, as before
    monkeypatch.delenv("ANIMSTUDIO_INLINE_LIMIT")
    answer = worker.handle({"workflow": GRAPH}, ComfyClient(comfy_server.url))
    assert isinstance(answer["files"][0]["data"], str)
