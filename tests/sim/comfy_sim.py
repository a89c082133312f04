"""A cheap ComfyUI-API simulator: many endpoints in one asyncio process, execution a timed sleep.

Why: the scheduler's figures at 16, 64 and 256 endpoints (issue 20, item 5) cannot come from real ComfyUI
servers on a 2-core machine. Each simulated endpoint speaks what :class:`animstudio.translator.client.ComfyClient`
and :class:`animstudio.cloud.pool.Endpoint` use: ``/prompt``, ``/ws``, ``/history``, ``/view``, ``/object_info``,
``/queue``, ``/free``, ``/interrupt``, ``/system_stats`` (plus ``/sim/stats`` for the tests). An endpoint runs one
prompt at a time, like ComfyUI: a model-load delay when the prompt's checkpoint is not the loaded one (``/free``
unloads it), then ``seconds × speed`` of sleep (``kind_seconds`` sets it per job kind, ``jitter`` spreads it
around that); at the chosen rates it fails the prompt (``execution_error`` in ``/history`` and on ``/ws``) or drops
the websocket mid-run (the client must fall back to polling ``/history``).

The cost clock: each endpoint counts the seconds it was busy executing prompts (model load and run, failed runs
included), what a provider bills a GPU for, independent of what the scheduler measures; ``pool.stats()`` gives
them per endpoint (``busy_seconds_per_endpoint``, by index) and in all (``busy_seconds``).

The simulator runs in its own process (:class:`SimPool`), so the scheduler's CPU figures exclude it::

    with SimPool(16, seconds=0.2, fail_rate=0.05) as pool:
        pool.urls          # one base URL per endpoint
        pool.stats()       # executions per job, requests per path, failures, disconnects, model loads,
                           # busy seconds (the cost clock) per endpoint and in all
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import subprocess
import sys
import urllib.request
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

NODE = "SimRender"           # the simulated render node; its ``job`` input names the job (counted per run)
LOADER = "CheckpointLoaderSimple"
MODELS = ["sim-a.safetensors", "sim-b.safetensors", "sim-c.safetensors"]
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 56    # small bytes are enough: the scheduler only moves files


@dataclass
class Knobs:
    seconds: float = 0.2          # execution time of one prompt (times the endpoint's speed factor)
    load_seconds: float = 0.1     # model load when the checkpoint differs from the loaded one
    fail_rate: float = 0.0        # chance a prompt ends in execution_error
    disconnect_rate: float = 0.0  # chance the websocket is dropped mid-run (the prompt still finishes)
    seed: int = 0
    speeds: list[float] = field(default_factory=list)  # per endpoint; missing entries are 1.0
    kind_seconds: dict[str, float] = field(default_factory=dict)  # per job kind, instead of ``seconds``
    jitter: float = 0.0           # each execution takes its seconds times a uniform 1 ± jitter


def object_info() -> dict:
    """Just enough of ``/object_info`` for the pool's ``lacks`` and the engine's graph check."""
    return {
        LOADER: {"input": {"required": {"ckpt_name": [list(MODELS)]}}, "output": ["MODEL", "CLIP", "VAE"],
                 "output_name": ["MODEL", "CLIP", "VAE"], "output_node": False, "name": LOADER},
        NODE: {"input": {"required": {"model": ["MODEL"], "job": ["STRING", {}], "kind": [["keyframe", "shot"]]}},
               "output": [], "output_name": [], "output_node": True, "name": NODE},
    }


class SimEndpoint:
    """One simulated ComfyUI: a prompt queue worked one at a time, its history, its sockets, its loaded model."""

    def __init__(self, index: int, knobs: Knobs):
        self.index, self.knobs = index, knobs
        self.speed = knobs.speeds[index] if index < len(knobs.speeds) else 1.0
        self.rng = random.Random(knobs.seed * 100003 + index)
        self.queue: asyncio.Queue = asyncio.Queue()
        self.pending: list[str] = []
        self.running: str | None = None
        self.history: dict[str, dict] = {}
        self.files: dict[str, bytes] = {}
        self.sockets: dict[str, object] = {}
        self.loaded: str | None = None
        self.stats = {"runs": {}, "requests": {}, "executions": 0, "failures": 0, "disconnects": 0, "loads": 0,
                      "busy_seconds": 0.0}

    async def send(self, client_id: str, kind: str, data: dict) -> None:
        socket = self.sockets.get(client_id)
        if socket is not None and not socket.closed:
            try:
                await socket.send_str(json.dumps({"type": kind, "data": data}))
            except ConnectionError:
                pass

    async def worker(self) -> None:
        while True:
            prompt_id, graph, client_id = await self.queue.get()
            self.pending.remove(prompt_id)
            self.running = prompt_id
            started = asyncio.get_running_loop().time()
            try:
                await self.execute(prompt_id, graph, client_id)
            finally:
                self.running = None
                self.stats["busy_seconds"] += asyncio.get_running_loop().time() - started  # the cost clock

    async def execute(self, prompt_id: str, graph: dict, client_id: str) -> None:
        node = next(n for n in graph.values() if n["class_type"] == NODE)
        model = next((n["inputs"]["ckpt_name"] for n in graph.values() if n["class_type"] == LOADER), None)
        job, kind = node["inputs"]["job"], node["inputs"]["kind"]
        await self.send(client_id, "execution_start", {"prompt_id": prompt_id})
        if model != self.loaded:
            self.stats["loads"] += 1
            await asyncio.sleep(self.knobs.load_seconds * self.speed)
            self.loaded = model
        self.stats["executions"] += 1
        half = self.knobs.kind_seconds.get(kind, self.knobs.seconds) * self.speed / 2
        if self.knobs.jitter:
            half *= 1 + self.knobs.jitter * (2 * self.rng.random() - 1)
        await asyncio.sleep(half)
        if self.rng.random() < self.knobs.disconnect_rate and client_id in self.sockets:
            self.stats["disconnects"] += 1
            await self.sockets.pop(client_id).close()
        await asyncio.sleep(half)
        if self.rng.random() < self.knobs.fail_rate:
            self.stats["failures"] += 1
            error = {"prompt_id": prompt_id, "node_id": "2", "node_type": NODE,
                     "exception_message": "simulated failure", "exception_type": "RuntimeError"}
            self.history[prompt_id] = {"outputs": {}, "status": {"status_str": "error", "completed": False,
                                                                  "messages": [["execution_error", error]]}}
            await self.send(client_id, "execution_error", error)
            return
        name = f"{job}.{'png' if kind == 'keyframe' else 'mp4'}"
        self.files[name] = PNG
        self.stats["runs"][job] = self.stats["runs"].get(job, 0) + 1
        key = "images" if kind == "keyframe" else "gifs"
        self.history[prompt_id] = {
            "outputs": {"2": {key: [{"filename": name, "subfolder": "", "type": "output"}]}},
            "status": {"status_str": "success", "completed": True, "messages": [["execution_success", {}]]}}
        await self.send(client_id, "executing", {"node": None, "prompt_id": prompt_id})
        await self.send(client_id, "execution_success", {"prompt_id": prompt_id})


def routes(sim: SimEndpoint):
    """The aiohttp application of one endpoint."""
    from aiohttp import WSMsgType, web

    async def prompt(request):
        body = await request.json()
        graph, client_id = body.get("prompt") or {}, body.get("client_id", "")
        if not any(isinstance(n, dict) and n.get("class_type") == NODE for n in graph.values()):
            return web.json_response({"error": {"type": "prompt_no_outputs", "message": "no output node"},
                                      "node_errors": {}}, status=400)
        prompt_id = str(uuid.uuid4())
        sim.pending.append(prompt_id)
        await sim.queue.put((prompt_id, graph, client_id))
        return web.json_response({"prompt_id": prompt_id, "number": len(sim.history), "node_errors": {}})

    async def socket(request):
        ws = web.WebSocketResponse(heartbeat=None)
        await ws.prepare(request)
        client_id = request.query.get("clientId", "")
        sim.sockets[client_id] = ws
        await ws.send_str(json.dumps({"type": "status", "data": {"status": {"exec_info": {"queue_remaining": 0}}}}))
        async for message in ws:
            if message.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
                break
        if sim.sockets.get(client_id) is ws:
            del sim.sockets[client_id]
        return ws

    async def history(request):
        prompt_id = request.match_info["prompt_id"]
        entry = sim.history.get(prompt_id)
        return web.json_response({prompt_id: entry} if entry else {})

    async def queue(request):
        if request.method == "POST":
            return web.json_response({})
        return web.json_response({"queue_running": [[0, sim.running, {}, {}, []]] if sim.running else [],
                                  "queue_pending": [[0, p, {}, {}, []] for p in sim.pending]})

    async def view(request):
        data = sim.files.get(request.query.get("filename", ""))
        if data is None:
            return web.Response(status=404)
        return web.Response(body=data, content_type="application/octet-stream")

    async def free(request):
        sim.loaded = None
        return web.json_response({})

    async def ok(request):
        return web.json_response({})

    async def system_stats(request):
        return web.json_response({"system": {"os": "sim", "comfyui_version": "sim", "python_version": sys.version},
                                  "devices": [{"name": f"sim{sim.index}", "type": "cuda", "vram_total": 1 << 34,
                                               "vram_free": 1 << 34}]})

    async def info(request):
        return web.json_response(object_info())

    async def stats(request):
        return web.json_response(sim.stats)

    @web.middleware
    async def count(request, handler):
        key = request.path if not request.path.startswith("/history/") else "/history"
        sim.stats["requests"][key] = sim.stats["requests"].get(key, 0) + 1
        return await handler(request)

    app = web.Application(middlewares=[count])
    app.add_routes([web.post("/prompt", prompt), web.get("/ws", socket), web.get("/history/{prompt_id}", history),
                    web.get("/queue", queue), web.post("/queue", queue), web.get("/view", view),
                    web.post("/free", free), web.post("/interrupt", ok), web.get("/system_stats", system_stats),
                    web.get("/object_info", info), web.get("/sim/stats", stats)])
    return app


async def serve(count: int, knobs: Knobs) -> None:
    """Start ``count`` endpoints on free loopback ports, print their URLs as one JSON line, serve until stdin
    closes (the parent went away or stopped the pool)."""
    from aiohttp import web

    urls, runners = [], []
    for index in range(count):
        sim = SimEndpoint(index, knobs)
        runner = web.AppRunner(routes(sim), access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=512)
        await site.start()
        urls.append(f"http://127.0.0.1:{runner.addresses[-1][1]}")
        runners.append(runner)
        asyncio.get_running_loop().create_task(sim.worker())
    print(json.dumps(urls), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    for runner in runners:
        await runner.cleanup()


class SimPool:
    """The simulator as a child process (its CPU stays out of the scheduler's figures)."""

    def __init__(self, count: int, **knobs):
        self.count, self.knobs = count, Knobs(**knobs)
        self.process: subprocess.Popen | None = None
        self.urls: list[str] = []

    def start(self) -> "SimPool":
        self.process = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), str(self.count),
                                         json.dumps(asdict(self.knobs))],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the simulator did not start (exit {self.process.wait()})")
        self.urls = json.loads(line)
        log.info("simulator: %d endpoint(s) up", len(self.urls))
        return self

    def stats(self) -> dict:
        """Every endpoint's counters summed; ``runs``: successful executions per job (a re-run shows as 2);
        ``busy_seconds``: the cost clock, in all and per endpoint (``busy_seconds_per_endpoint``, by index)."""
        total = {"runs": {}, "requests": {}, "executions": 0, "failures": 0, "disconnects": 0, "loads": 0,
                 "busy_seconds": 0.0, "busy_seconds_per_endpoint": []}
        for url in self.urls:
            with urllib.request.urlopen(url + "/sim/stats", timeout=30) as answer:
                part = json.load(answer)
            total["busy_seconds_per_endpoint"].append(part["busy_seconds"])
            for key in ("runs", "requests"):
                for name, n in part.pop(key).items():
                    total[key][name] = total[key].get(name, 0) + n
            for key, value in part.items():
                total[key] += value
        return total

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def __enter__(self) -> "SimPool":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("count", type=int)
    parser.add_argument("knobs", nargs="?", default="{}")
    args = parser.parse_args()
    asyncio.run(serve(args.count, Knobs(**json.loads(args.knobs))))


if __name__ == "__main__":
    main()
