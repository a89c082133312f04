"""Hostile input on the pack's routes (issue 15, items 6 and 16): numbers out of range, bodies larger than one
network read, chunked bodies past the limit. Every refusal is a 4xx with a JSON answer naming the place,
never a 500. Checked on the plain handlers, on the dispatcher served by aiohttp in this process, and
(marker comfyui) on a real ComfyUI with the pack linked in."""
from __future__ import annotations

import asyncio
import http.client
import json
import math
import threading
import time
import urllib.parse

import pytest

from animstudio import routes
from animstudio.nodes.boundary import use_folders
from comfy_env import free_port
from conftest import write_panel

PIECE = 64 << 10


def big_storyboard(size: int) -> bytes:
    """A valid storyboard body of about ``size`` bytes: many shots on one panel."""
    shot = {"id": "s0", "description": "the sea rolls under a grey sky, gulls wheel over the rocks " * 4,
            "keyframe": "panels/p.png", "duration": 1.0}
    count = size // len(json.dumps(shot)) + 1
    shots = [{**shot, "id": f"s{i}"} for i in range(count)]
    body = {"storyboard": {"version": 1, "project": {"title": "Long", "width": 64, "height": 64, "fps": 8},
                           "shots": shots}}
    return json.dumps(body).encode()


def post_pieces(base_url: str, route: str, body: bytes, *, chunked: bool = False, pause: float = 0.01,
                timeout: float = 120) -> tuple[int, dict]:
    """POST ``body`` in 64 KiB pieces with a pause between them, as a slow network delivers it: with
    ``Content-Length``, or chunked without one."""
    url = urllib.parse.urlsplit(base_url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=timeout)
    try:
        conn.putrequest("POST", f"/animstudio/{route}")
        conn.putheader("Content-Type", "application/json")
        if chunked:
            conn.putheader("Transfer-Encoding", "chunked")
        else:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders()
        try:
            for start in range(0, len(body), PIECE):
                piece = body[start:start + PIECE]
                conn.send(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
                time.sleep(pause)
            if chunked:
                conn.send(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered (413) before taking the rest
        answer = conn.getresponse()
        raw = answer.read()
        try:
            return answer.status, json.loads(raw)
        except ValueError:
            return answer.status, {"raw": raw[:300].decode(errors="replace")}
    finally:
        conn.close()


# ------------------------------------------------------------------------------- item 6: camera_path numbers

OUT_OF_RANGE = [
    ({"width": math.inf}, "$.width"), ({"width": -math.inf}, "$.width"), ({"width": math.nan}, "$.width"),
    ({"height": 1e400}, "$.height"), ({"width": True}, "$.width"), ({"width": 512.5}, "$.width"),
    ({"width": 10 ** 30}, "$.width"), ({"width": 0}, "$.width"), ({"width": "512"}, "$.width"),
    ({"seed": math.inf}, "$.seed"), ({"seed": -math.inf}, "$.seed"), ({"seed": -1}, "$.seed"),
    ({"seed": 1 << 64}, "$.seed"), ({"seed": 10 ** 30}, "$.seed"), ({"seed": False}, "$.seed"),
    ({"seed": 0.5}, "$.seed"),
]


@pytest.mark.parametrize("fields, where", OUT_OF_RANGE, ids=[f"{k}={v!r}" for (d, _w) in OUT_OF_RANGE
                                                              for k, v in d.items()])
def test_camera_path_checks_numbers_before_arithmetic(fields, where):
    body = {"move": "shake", "width": 64, "height": 48, "seed": 3, **fields}
    with pytest.raises(routes.RouteError) as caught:
        routes.camera_path(body)
    assert caught.value.problems[0].where == where
    status, answer = routes.handle("POST", "camera_path", body)
    assert status == 400 and not answer["ok"], answer
    assert answer["problems"][0]["where"] == where


def test_camera_path_takes_whole_floats_and_the_full_seed_range():
    status, answer = routes.handle("POST", "camera_path", {"move": "shake", "width": 512.0, "height": 288,
                                                           "seed": (1 << 64) - 1})
    assert status == 200 and answer["aspect"] == 512 / 288
    assert routes.handle("POST", "camera_path", {"move": "zoom_in", "seed": None})[0] == 200  # defaults
    assert routes.handle("POST", "camera_path", {"move": ["zoom_in"]})[1]["problems"][0]["where"] == "$.move"


# ------------------------------------------------------------------------------- the dispatcher, served here

@pytest.fixture(scope="module")
def pack_server(tmp_path_factory):
    """The pack's dispatcher on an aiohttp server in this process (what ComfyUI's PromptServer gives it)."""
    from aiohttp import web

    base = tmp_path_factory.mktemp("routes-server")
    write_panel(base / "input" / "panels" / "p.png", size=(64, 64))
    (base / "output").mkdir()

    class PromptServer:
        routes = web.RouteTableDef()

    @web.middleware
    async def folders(request, handler):
        with use_folders(base / "input", base / "output"):
            return await handler(request)

    server = PromptServer()
    routes.register(server)
    port = free_port()
    loop = asyncio.new_event_loop()
    ready = threading.Event()

    def serve():
        asyncio.set_event_loop(loop)
        app = web.Application(middlewares=[folders])
        app.add_routes(server.routes)
        runner = web.AppRunner(app)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
        ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(30)
    yield f"http://127.0.0.1:{port}"
    loop.call_soon_threadsafe(loop.stop)
    thread.join(30)


def check_large_bodies(base_url: str) -> None:
    """Item 16: a valid body larger than one read is read whole, with or without Content-Length; a chunked
    body past the limit is 413."""
    body = big_storyboard(600 << 10)
    assert 600 << 10 <= len(body) < routes.MAX_BODY
    for chunked in (False, True):
        status, answer = post_pieces(base_url, "validate", body, chunked=chunked)
        assert answer.get("error") != "the body is not JSON", (chunked, answer)
        assert status == 200 and len(answer["shots"]) > 1000, (chunked, status, answer)
    status, answer = post_pieces(base_url, "validate", b"[" + b"1," * (1 << 20) + b"1]", chunked=True)
    assert status == 413 and "over" in answer["error"], (status, answer)


def check_hostile_numbers(base_url: str) -> None:
    """Item 6 through the wire: 1e400, -Infinity and a 30-digit seed are 400s naming their path."""
    for text, where in [(b'{"move": "shake", "width": 1e400, "height": 48}', "$.width"),
                        (b'{"move": "shake", "width": -Infinity, "height": 48}', "$.width"),
                        (b'{"move": "shake", "width": 64, "height": 48, "seed": 1e400}', "$.seed"),
                        (b'{"move": "shake", "width": 64, "height": 48, "seed": -Infinity}', "$.seed"),
                        (b'{"move": "shake", "width": 64, "height": 48, "seed": ' + b"9" * 30 + b"}", "$.seed"),
                        (b'{"move": "shake", "width": 64, "height": 48, "seed": -1}', "$.seed")]:
        status, answer = post_pieces(base_url, "camera_path", text)
        assert status == 400 and answer["problems"][0]["where"] == where, (text, status, answer)


def test_large_bodies_are_read_whole(pack_server):
    check_large_bodies(pack_server)


def test_hostile_numbers_on_the_wire(pack_server):
    check_hostile_numbers(pack_server)


def test_bodies_the_reader_refuses_name_their_place(pack_server):
    status, answer = post_pieces(pack_server, "validate", b'{"storyboard": {"version": NaN}}')
    assert status == 400 and answer["problems"][0]["where"] == "$.storyboard.version", answer
    status, answer = post_pieces(pack_server, "validate", b"[" * 100_000 + b"]" * 100_000)
    assert status == 400 and answer["problems"][0]["where"].startswith("$"), answer
    status, answer = post_pieces(pack_server, "validate", b'{"storyboard": "\xff\xfe"}')
    assert status == 400 and answer["error"] == "the body is not JSON", answer
    status, answer = post_pieces(pack_server, "validate", b"{not json")
    assert status == 400 and answer["error"] == "the body is not JSON" and answer["problems"][0]["where"].startswith(
        "line 1"), answer
    status, answer = post_pieces(pack_server, "validate", b"")
    assert status == 400 and answer["error"] == "the body must be a JSON object", answer


def test_a_body_over_the_limit_with_content_length_is_413_unread(pack_server):
    status, answer = post_pieces(pack_server, "validate", b" " * (routes.MAX_BODY + 1))
    assert status == 413, answer


# ------------------------------------------------------------------------------- a real ComfyUI

@pytest.mark.comfyui
def test_hostile_bodies_on_a_real_comfyui(comfy_server):
    write_panel(comfy_server.base / "input" / "panels" / "p.png", size=(64, 64))
    check_large_bodies(comfy_server.url)
    check_hostile_numbers(comfy_server.url)
    assert "animstudio route" not in comfy_server.log()  # no handler failed with a 500
