"""RunPod serverless (:class:`RunPodServerlessEngine`, pool ``kind: runpod_serverless``): not a machine but an
engine (the :class:`~animstudio.translator.render.Engine` protocol) in front of an endpoint running the
project's worker (``cloud/runpod_worker/handler.py``): ``upload`` only collects files, which go with the
next ``run`` as base64 (the worker-comfyui input format); ``run`` posts ``{endpoint}/runsync`` (held until the job ends or 90 s pass) and polls
``{endpoint}/status/{id}``, cancelling the job on timeout or Ctrl-C; the output carries the files, which
``fetch`` writes. It works against RunPod's API (``https://api.runpod.ai/v2/{endpoint_id}``, where status is
a GET) and against the runpod package's local test server (``--rp_serve_api``, where status is a POST that
runs the job, and there is no cancel)::

    runpod-serverless:
      kind: runpod_serverless
      endpoint_id: abc123xyz                 # or endpoint_url: http://127.0.0.1:8000 (a local test server)
      api_key_env: RUNPOD_API_KEY
      timeout: 3600                          # seconds for one graph
      poll_interval: 2
      max_request_mb: 10                     # RunPod refuses /run bodies over 10 MB
"""
from __future__ import annotations

import base64
import json
import logging
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from ...translator.client import OutputFile, local_output_path, write_atomically
from ...common.errors import AnimStudioError, GraphValidationError, Problem, RenderInterrupted, ServerError
from ...translator.graph_check import CheckOnce
from ...common.http import Refused, Unreachable, fetch_file
from ...common.urls import redact
from .base import ProviderError, secret_from_env
from .http import ApiClient

log = logging.getLogger(__name__)

REST_API = "https://rest.runpod.io/v1"
SERVERLESS_API = "https://api.runpod.ai/v2"
PROXY_URL = "https://{pod_id}-{port}.proxy.runpod.net"

log = logging.getLogger(__name__)

SERVERLESS_API = "https://api.runpod.ai/v2"


JOB_PHASES = {"IN_QUEUE": "pending", "IN_PROGRESS": "pending", "COMPLETED": "completed", "FAILED": "failed",
              "CANCELLED": "cancelled", "TIMED_OUT": "timed_out"}


def job_phase(status: Any) -> str:
    """``pending``, ``completed``, ``failed``, ``cancelled``, ``timed_out`` or ``unknown``."""
    return JOB_PHASES.get(str(status or "").upper(), "unknown")


def upload_name(subfolder: str, filename: str) -> str:
    """The name an uploaded file has in graphs (``subfolder/filename``, like ComfyUI's upload answer); refuses
    parts that would leave the input folder."""
    parts = [p for p in (subfolder or "").replace("\\", "/").split("/") if p not in ("", ".")] + [filename]
    if not filename or any(p == ".." or "/" in p or "\\" in p or "\x00" in p for p in parts):
        raise ServerError(f"cannot upload {filename!r} under {subfolder!r}: the name must stay inside the "
                          "input folder")
    return "/".join(parts)


def _problems(items: Any) -> list[Problem]:
    return [Problem(str(p.get("where", "")), str(p.get("message", ""))) for p in items or [] if isinstance(p, dict)]


def job_failure(job: Mapping[str, Any], label: str) -> AnimStudioError:
    """A FAILED job as an error. The project's worker sends its error as JSON (type, summary, problems); the
    runpod package's captured exception is JSON too (type, message, traceback); any other text is read as a
    summary line followed by ``where: message`` lines."""
    output = job.get("output") if isinstance(job.get("output"), dict) else {}
    error = job.get("error") if job.get("error") is not None else output.get("error")
    kind = str(output.get("error_type") or "")
    problems = _problems(output.get("problems"))
    text = error if isinstance(error, str) else json.dumps(error) if error is not None else "failed"
    try:
        details = json.loads(text)
    except ValueError:
        details = None
    if isinstance(details, dict) and "summary" in details:  # the project's worker
        summary = f"{label}: {details['summary']}"
        kind = kind or str(details.get("error") or "")
        problems = problems or _problems(details.get("problems"))
    elif isinstance(details, dict) and "error_message" in details:  # an exception the runpod package caught
        summary = f"{label}: the worker raised {details.get('error_type', 'an error')}"
        problems = problems or [Problem("worker", str(details["error_message"]))]
    else:
        lines = [line for line in text.splitlines() if line.strip()] or ["failed"]
        summary = f"{label}: {lines[0].strip()}"
        if not problems:
            for line in lines[1:]:
                where, sep, message = line.strip().partition(": ")
                problems.append(Problem(where, message) if sep else Problem("", line.strip()))
    error_class = GraphValidationError if kind == "GraphValidationError" else ServerError
    return error_class(summary, problems)


RUNSYNC_WAIT_SECONDS = 90.0  # how long /runsync may hold a request (RunPod's default wait)

class RunPodServerlessEngine:
    """The render pipeline's engine on a RunPod serverless endpoint that runs the project's worker."""

    def __init__(self, endpoint_url: str, api_key: str = "", *, poll_interval: float = 1.0, timeout: float = 3600.0,
                 request_timeout: float = 60.0, max_request_mb: float = 10.0, name: str | None = None,
                 check_graphs: bool = True):
        endpoint_url = endpoint_url.rstrip("/")
        self.endpoint_url = endpoint_url if "://" in endpoint_url else "http://" + endpoint_url
        self.name = name or f"runpod:{redact(self.endpoint_url)}"
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.api = ApiClient(self.name, self.endpoint_url, headers, timeout=request_timeout, secrets=[api_key],
                             label=f"RunPod endpoint {redact(self.endpoint_url)}", error_type=ServerError)
        self.poll_interval = float(poll_interval)
        self.timeout = float(timeout)
        self.request_timeout = float(request_timeout)
        self.max_request_bytes = int(max_request_mb * 1_000_000)
        self.check_graphs = check_graphs
        self._checked = CheckOnce()
        self._status_method = "GET"  # RunPod's API; the runpod package's local test server takes POST
        self._pending: dict[str, Path] = {}  # name in the graph → local file, sent with the next run
        self._files: dict[tuple[str, str, str, str], str] = {}  # (node, subfolder, filename, type) → base64
        self._object_info: dict | None = None
        self._interrupt = threading.Event()

    @classmethod
    def from_entry(cls, name: str, entry: Mapping[str, Any]) -> "RunPodServerlessEngine":
        url = entry.get("endpoint_url") or (f"{SERVERLESS_API}/{entry['endpoint_id']}" if entry.get("endpoint_id")
                                            else "")
        if not url:
            raise ProviderError(f"provider {name!r}: give endpoint_id (or endpoint_url) in its pool entry")
        api_key = secret_from_env(entry.get("api_key_env", "RUNPOD_API_KEY" if "endpoint_id" in entry else None),
                                  name)
        return cls(url, api_key, poll_interval=float(entry.get("poll_interval", 2.0)),
                   timeout=float(entry.get("timeout", 3600.0)),
                   request_timeout=float(entry.get("request_timeout", 60.0)),
                   max_request_mb=float(entry.get("max_request_mb", 10.0)), name=f"{name} ({redact(url)})")

    def __repr__(self) -> str:
        return f"RunPodServerlessEngine({redact(self.endpoint_url)!r})"

    # ------------------------------------------------------------------ the Engine protocol
    def object_info(self) -> dict:
        """The node definitions of the endpoint's ComfyUI, asked of a worker once (a job of its own)."""
        if self._object_info is None:
            output = self._job({"object_info": True}, "read the node definitions", self.timeout)
            info = output.get("object_info") if isinstance(output, dict) else None
            if not isinstance(info, dict):
                raise ServerError(f"{self.api.label}: the worker answered no object_info (is it the animstudio "
                                  "worker, cloud/runpod_worker/handler.py?)")
            self._object_info = info
        return self._object_info

    def check(self, compiled) -> None:
        """Refuse a graph that does not fit the endpoint before anything is sent (as the server engine does)."""
        if self.check_graphs:
            self._checked.check(compiled.graph, self.object_info(), compiled.node_shots,
                                [u.name for u in compiled.uploads], name=compiled.name)

    def upload(self, local_path: Path, subfolder: str = "", filename: str | None = None) -> str:
        """Nothing leaves yet: the file goes with the next run (a serverless job may land on any worker)."""
        local_path = Path(local_path)
        if not local_path.is_file():
            raise ServerError(f"cannot upload {local_path}: no such file")
        name = upload_name(subfolder, filename or local_path.name)
        self._pending[name] = local_path
        return name

    def run(self, graph: Mapping[str, Any], node_shots: Mapping | None = None,
            on_event: Callable[[str, dict], None] | None = None, uploads: Sequence[str] = ()) -> dict:
        """One job: the graph and the files uploaded since the last run; returns ComfyUI's outputs per node."""
        on_event = on_event or (lambda kind, data: None)
        pending, self._pending = self._pending, {}  # sent with this run, whatever becomes of it
        if self.check_graphs:
            self._checked.before_run(graph, self.object_info, node_shots, list(uploads) + list(pending))
        images = [{"name": name, "image": base64.b64encode(path.read_bytes()).decode()}
                  for name, path in pending.items()]
        output = self._job({"workflow": dict(graph), "images": images}, "run the graph", self.timeout, on_event)
        if not isinstance(output, dict) or not isinstance(output.get("outputs"), dict):
            raise ServerError(f"{self.api.label}: the worker answered no outputs", [
                Problem("output", str(output)[:200])])
        self.keep_files(output.get("files") or [])
        return output["outputs"]

    def keep_files(self, files: Sequence[Any]) -> None:
        """The files a run's answer carries: inline (``data``, base64) or by location (``url`` with ``size`` and
        ``sha256``, for outputs too big for an answer)."""
        self._files = {}
        for item in files:
            if isinstance(item, dict) and item.get("filename") and (isinstance(item.get("data"), str)
                                                                    or isinstance(item.get("url"), str)):
                key = (str(item.get("node", "")), str(item.get("subfolder", "")), str(item["filename"]),
                       str(item.get("type", "output")))
                self._files[key] = item

    def fetch(self, item: OutputFile, dest_dir: Path) -> Path:
        """Write one output the last run brought back into ``dest_dir`` (never outside it)."""
        sent = self._files.get((item.node_id, item.subfolder, item.filename, item.type))
        if sent is None:
            raise ServerError(f"{self.api.label}: the worker sent no data for {item.filename} (node {item.node_id})")
        target = local_output_path(dest_dir, item.subfolder, item.filename)
        if "url" in sent:  # a big output, left in the worker's store: streamed, resumed, its size and hash checked
            try:
                fetch_file(sent["url"], target, expected_size=sent.get("size"), expected_sha256=sent.get("sha256"),
                           service="the output store")
            except (Refused, Unreachable) as exc:
                why = f"HTTP {exc.answer.status}" if isinstance(exc, Refused) else exc.reason
                raise ServerError(f"{self.api.label}: could not fetch {item.filename} from the worker's store",
                                  [Problem("url", why)]) from None
            return target
        try:
            content = base64.b64decode(sent["data"], validate=True)
        except ValueError:
            raise ServerError(f"{self.api.label}: the data sent for {item.filename} is not base64") from None
        return write_atomically(target, content)

    def free(self) -> None:
        """Nothing to do: a serverless worker is not ours to keep warm, and the next job may land on another."""

    def interrupt(self) -> None:
        """Ask the run in progress (on another thread) to cancel its job and raise RenderInterrupted."""
        self._interrupt.set()

    # ------------------------------------------------------------------ jobs
    def _job(self, job_input: dict, what: str, timeout: float,
             on_event: Callable[[str, dict], None] | None = None) -> Any:
        body = {"input": job_input}
        size = len(json.dumps(body))
        if size > self.max_request_bytes:
            images = sorted(job_input.get("images") or [], key=lambda i: -len(i["image"]))
            raise ServerError(f"{self.api.label}: the job would send {size / 1e6:.1f} MB, over the "
                              f"{self.max_request_bytes / 1e6:.0f} MB a request may carry; put large inputs on a "
                              "network volume, or render on pods", [Problem(f"upload {i['name']}",
                                                                            f"{len(i['image']) / 1e6:.1f} MB as base64")
                                                                    for i in images[:5]])
        self._interrupt.clear()
        started = time.monotonic()
        # /runsync holds the request until the job ends or ``wait`` passes, then answers its status like /status
        # (an unfinished job is then polled): most jobs take one call, and the runpod package's local test
        # server, whose POST /status runs the job inside the call, is never asked twice
        wait = min(timeout, RUNSYNC_WAIT_SECONDS)
        answer = self.api.call("POST", f"/runsync?wait={int(wait * 1000)}", body, what=what, idempotent=False,
                               timeout=wait + self.request_timeout) or {}
        job_id = str(answer.get("id") or "")
        if not job_id:
            raise ServerError(f"{self.api.label}: /runsync answered no job id",
                              [Problem("POST /runsync", str(answer)[:200])])
        log.info("%s: job %s queued (%s)", self.name, job_id, what)
        status, last, first = answer, None, True
        try:
            while True:
                phase = job_phase(status.get("status"))
                if status.get("status") != last and on_event is not None:
                    last = status.get("status")
                    on_event("runpod_status", {"job": job_id, "status": last})
                if phase == "completed":
                    return status.get("output")
                if phase == "failed":
                    raise job_failure(status, f"{self.api.label}: job {job_id} failed")
                if phase in ("cancelled", "timed_out"):
                    raise ServerError(f"{self.api.label}: job {job_id} was {phase.replace('_', ' ')} by RunPod")
                left = timeout - (time.monotonic() - started)
                if left <= 0:
                    self._cancel(job_id)
                    raise ServerError(f"{self.api.label}: job {job_id} did not finish within {timeout:g} s; "
                                      "it was cancelled")
                if self._interrupt.wait(0 if first else min(self.poll_interval, left)):
                    raise KeyboardInterrupt
                first = False
                # the local test server runs the job inside the status call: allow it the time that is left
                status = self._status(job_id, max(self.request_timeout, left)) or {}
        except KeyboardInterrupt:
            self._cancel(job_id)
            raise RenderInterrupted(f"interrupted; RunPod job {job_id} was cancelled") from None

    def _status(self, job_id: str, timeout: float) -> dict:
        path = f"/status/{urllib.parse.quote(job_id, safe='')}"
        try:
            # the local test server's POST /status runs the job and forgets it: never send it twice
            return self.api.call(self._status_method, path, {} if self._status_method == "POST" else None,
                                 what=f"read the status of job {job_id}",
                                 idempotent=self._status_method != "POST", timeout=timeout)
        except ServerError as exc:
            if getattr(exc, "status", None) != 405 or self._status_method == "POST":
                raise
        self._status_method = "POST"  # the runpod package's local test server
        log.debug("%s: /status takes POST here (a local test server)", self.name)
        return self._status(job_id, timeout)

    def _cancel(self, job_id: str) -> None:
        try:
            self.api.call("POST", f"/cancel/{urllib.parse.quote(job_id, safe='')}", {}, what=f"cancel job {job_id}",
                          idempotent=True, missing_ok=True, timeout=self.request_timeout)
            log.info("%s: job %s cancelled", self.name, job_id)
        except ServerError as exc:
            log.warning("%s: could not cancel job %s: %s", self.name, job_id, exc.summary)
