"""The one ComfyUI client: upload, queue, follow, download, interrupt.

Used by the CLI, the render pipeline and (later) every cloud worker, so retries, timeouts and
error mapping are written once. Blocking and thread-safe enough for one render per client.

* Follows a prompt on ``/ws`` (websocket-client), connected *before* queueing so no event is
  missed; if the socket drops it falls back to polling ``/history/{id}``. A prompt that is neither in the
  history nor in ``/queue`` for a few polls (the server was restarted) ends the wait with a ServerError.
* Every request goes through :func:`animstudio.common.http.send`: credentials never follow a redirect to another
  address, and nothing the server says is shown unmasked.
* Connection faults are retried with exponential backoff; a refused graph (HTTP 400 with
  ``node_errors``) is not, and comes back as problems naming node id, class and shot.
* Downloads go to ``<file>.partial`` then are renamed, under names made safe, inside the chosen
  folder: a crash never leaves a truncated file, and nothing already downloaded is overwritten.
"""
from __future__ import annotations

import json
import logging
import mimetypes
import os
import time
import urllib.parse
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from ..common.errors import GraphValidationError, Problem, RenderInterrupted, ServerError
from .graph_check import node_place
from ..common.paths import safe_filename
from ..common.http import Answer, Refused, Unreachable, fetch_file, mask, secrets_of, send
from ..common.urls import redact, split_credentials

log = logging.getLogger(__name__)

EventHandler = Callable[[str, dict], None]
# a prompt neither in /history nor in /queue this many polls in a row, over at least this long, is lost: the
# server was restarted (or its history cleared) and will never finish it
LOST_PROMPT_POLLS = 3
LOST_PROMPT_SECONDS = 2.0


@dataclass(frozen=True)
class OutputFile:
    node_id: str
    filename: str
    subfolder: str
    type: str
    kind: str  # the ui key it came under: images, gifs, audio, ...


def prompt_error_problems(error: Mapping[str, Any], node_errors: Mapping[str, Any],
                          node_shots: Mapping[str, str | None] | None) -> list[Problem]:
    """ComfyUI's ``/prompt`` refusal or ``execution_error`` as problems per node, mapped to shots."""
    problems = []
    for node_id, entry in (node_errors or {}).items():
        for item in entry.get("errors", []):
            detail = item.get("details") or ""
            message = item.get("message", "error") + (f": {detail}" if detail else "")
            problems.append(Problem(node_place(node_id, entry.get("class_type"), node_shots), message))
    if error and error.get("node_id") is not None:  # an execution_error message
        problems.append(Problem(node_place(str(error["node_id"]), error.get("node_type"), node_shots),
                                f"{error.get('exception_type', 'Error')}: {error.get('exception_message', '').strip()}"))
    elif error and not problems:
        message = error.get("message", "refused")
        detail = error.get("details")
        problems.append(Problem("graph", message + (f": {detail}" if detail else "")))
    return problems


class ComfyClient:
    def __init__(self, base_url: str, timeout: float = 30.0, retries: int = 4, backoff: float = 0.5,
                 client_id: str | None = None, headers: Mapping[str, str] | None = None,
                 use_websocket: bool = True):
        self.base_url = base_url.rstrip("/")
        if "://" not in self.base_url:  # host:port (urlsplit would take "localhost:" for a scheme)
            self.base_url = "http://" + self.base_url
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.client_id = client_id or uuid.uuid4().hex
        self.headers = dict(headers or {})
        self._secrets = tuple(secrets_of(self.base_url, self.headers))  # masked in whatever the server says back
        self.base_url, basic = split_credentials(self.base_url)  # user:password@ never stays in a URL
        if basic:
            self.headers.setdefault("Authorization", basic)
        self.use_websocket = use_websocket  # off behind proxies that do not pass websockets: poll /history
        self.socket = None  # the websocket of the run in progress, if any
        self.name = redact(self.base_url)

    # ------------------------------------------------------------------ HTTP with retries
    def _request(self, method: str, path: str, body: bytes | None = None, content_type: str | None = None,
                 idempotent: bool = True) -> bytes:
        """One HTTP call through the project's one helper (credentials never follow a redirect to another
        address). Connection faults and 5xx answers are retried with backoff; for a call that must not happen
        twice (queueing a graph) only faults where the request surely never arrived (refused) are."""
        headers = dict(self.headers)
        if content_type:
            headers["Content-Type"] = content_type

        def retry(outcome: Answer | Unreachable) -> bool:
            return outcome.status >= 500 if isinstance(outcome, Answer) else (idempotent or outcome.refused)

        try:
            answer = send(self.base_url + path, method=method, body=body, headers=headers, timeout=self.timeout,
                          retries=self.retries, backoff=self.backoff, retry_if=retry, service="ComfyUI")
        except Unreachable as fault:
            raise ServerError(f"cannot reach ComfyUI at {self.name}",
                              [Problem(f"{method} {path.split('?')[0]}", fault.reason)]) from None
        if not answer.ok:
            raise _HTTPFailure(answer.status, answer.body)
        return answer.body

    def get_json(self, path: str) -> Any:
        try:
            raw = self._request("GET", path)
        except _HTTPFailure as exc:
            raise ServerError(f"ComfyUI at {self.name} answered {exc.code} to GET {path}") from None
        try:
            return json.loads(raw)
        except ValueError:
            raise ServerError(f"ComfyUI at {self.name} did not answer JSON to GET {path.split('?')[0]}",
                              [Problem("answer", self._mask(raw[:4096].decode("utf-8", "replace"))[:200])]) from None

    def post_json(self, path: str, payload: Any, idempotent: bool = True) -> Any:
        raw = self._request("POST", path, json.dumps(payload).encode(), "application/json", idempotent=idempotent)
        return json.loads(raw) if raw.strip() else None

    def _mask(self, text: str) -> str:
        return mask(text, self._secrets)

    def _masked(self, problems: list[Problem]) -> list[Problem]:
        """Problems built from what the server said, with nothing of the credentials left in them."""
        return [Problem(p.where, self._mask(p.message)) for p in problems]

    # ------------------------------------------------------------------ the API
    def system_stats(self) -> dict:
        return self.get_json("/system_stats")

    def object_info(self) -> dict:
        return self.get_json("/object_info")

    def upload(self, local_path: str | Path, subfolder: str = "", filename: str | None = None,
               overwrite: bool = True) -> str:
        """Upload a file to the input folder (``/upload/image`` takes any file); returns the name to use in graphs."""
        local_path = Path(local_path)
        filename = filename or local_path.name
        boundary = uuid.uuid4().hex
        mime = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        fields = [("overwrite", "true" if overwrite else "false"), ("type", "input"), ("subfolder", subfolder)]
        body = b"".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode() for k, v in fields)
        body += (f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{filename}"\r\n'
                 f"Content-Type: {mime}\r\n\r\n").encode() + local_path.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
        try:
            answer = json.loads(self._request("POST", "/upload/image", body, f"multipart/form-data; boundary={boundary}"))
        except _HTTPFailure as exc:
            raise ServerError(f"ComfyUI at {self.name} refused the upload of {local_path.name} ({exc.code})") from None
        return f"{answer['subfolder']}/{answer['name']}" if answer.get("subfolder") else answer["name"]

    def queue(self, graph: Mapping[str, Any], node_shots: Mapping[str, str | None] | None = None,
              extra_data: Mapping[str, Any] | None = None) -> str:
        """``POST /prompt``; returns the prompt id, or raises with the server's ``node_errors`` mapped to shots."""
        payload = {"prompt": graph, "client_id": self.client_id}
        if extra_data:
            payload["extra_data"] = dict(extra_data)
        try:
            answer = self.post_json("/prompt", payload, idempotent=False)  # a retry could queue it twice
        except _HTTPFailure as exc:
            try:
                refusal = json.loads(exc.payload)
            except ValueError:
                refusal = None
            if not isinstance(refusal, dict):
                raise ServerError(f"ComfyUI at {self.name} answered {exc.code} to the graph") from None
            problems = prompt_error_problems(refusal.get("error") or {}, refusal.get("node_errors") or {}, node_shots)
            raise GraphValidationError(f"ComfyUI at {self.name} refused the graph", self._masked(problems)) from None
        if not isinstance(answer, dict) or not isinstance(answer.get("prompt_id"), str):
            raise ServerError(f"ComfyUI at {self.name} queued the graph without naming a prompt id")
        return answer["prompt_id"]

    def history(self, prompt_id: str) -> dict | None:
        found = self.get_json(f"/history/{urllib.parse.quote(prompt_id)}")
        entry = found.get(prompt_id) if isinstance(found, dict) else None
        return entry if isinstance(entry, dict) else None

    def queued(self) -> set[str] | None:
        """The ids of the prompts the server is running or holds in its queue (``GET /queue``: each item's index 1);
        None when it cannot say."""
        try:
            queue = json.loads(self._request("GET", "/queue"))
        except (_HTTPFailure, ValueError):
            log.info("ComfyUI at %s cannot list its queue", self.name)
            return None
        lists = [queue.get(key) for key in ("queue_running", "queue_pending")] if isinstance(queue, dict) else []
        if not all(isinstance(items, list) for items in lists) or not lists:
            return None
        return {str(item[1]) for items in lists for item in items if isinstance(item, list) and len(item) > 1}

    def interrupt(self, prompt_id: str | None = None) -> None:
        """Stop the running prompt (and drop ``prompt_id`` from the queue if it has not started)."""
        try:
            if prompt_id:
                self.post_json("/queue", {"delete": [prompt_id]})
            self.post_json("/interrupt", {"prompt_id": prompt_id} if prompt_id else {})
        except (ServerError, _HTTPFailure) as exc:
            log.warning("could not interrupt ComfyUI at %s: %s", self.name, exc)

    def free(self) -> None:
        """Ask the server to unload its models and free memory (``POST /free``): between render stages
        that use different heavy models, so only one is resident on a small GPU."""
        try:
            self.post_json("/free", {"unload_models": True, "free_memory": True})
        except (ServerError, _HTTPFailure) as exc:
            log.warning("could not ask ComfyUI at %s to free memory: %s", self.name, exc)

    # ------------------------------------------------------------------ following a prompt
    def _ws_url(self) -> str:
        parts = urllib.parse.urlsplit(self.base_url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        return urllib.parse.urlunsplit((scheme, parts.netloc, parts.path + "/ws", f"clientId={self.client_id}", ""))

    def run(self, graph: Mapping[str, Any], node_shots: Mapping[str, str | None] | None = None,
            on_event: EventHandler | None = None, poll_interval: float = 1.0,
            timeout: float | None = None) -> dict:
        """Queue ``graph`` and wait for it; returns its ``/history`` outputs. Ctrl-C interrupts it on the server."""
        on_event = on_event or (lambda event, data: None)
        socket = self.socket = self._connect_ws()
        prompt_id = None
        try:
            prompt_id = self.queue(graph, node_shots)
            entry = self._follow(socket, prompt_id, on_event, poll_interval, timeout)
        except KeyboardInterrupt:
            if prompt_id:
                self.interrupt(prompt_id)
            raise RenderInterrupted("interrupted; the server was told to stop, files already downloaded are kept") from None
        finally:
            if socket is not None:
                socket.close()
        status = entry.get("status") or {}
        messages = status.get("messages") or []
        if any(event == "execution_interrupted" for event, _ in messages):
            raise RenderInterrupted(f"the render was interrupted on ComfyUI at {self.name}")
        failure = next((data for event, data in messages if event == "execution_error"), None)
        if failure or status.get("status_str") == "error":
            problems = prompt_error_problems(failure or {"message": "failed"}, {}, node_shots)
            raise ServerError(f"the graph failed on ComfyUI at {self.name}", self._masked(problems))
        return entry.get("outputs", {})

    def _connect_ws(self):
        if not self.use_websocket:
            return None
        try:
            import websocket

            # no redirects: websocket-client would send every header, credentials too, to wherever they point
            socket = websocket.create_connection(self._ws_url(), timeout=self.timeout, redirect_limit=0,
                                                 header=[f"{k}: {v}" for k, v in self.headers.items()])
            socket.settimeout(1.0)
            return socket
        except Exception as exc:  # noqa: BLE001 - any socket trouble means: poll instead
            log.info("no websocket to %s (%s); following by polling /history", self.name, self._mask(_reason(exc)))
            return None

    def _follow(self, socket, prompt_id: str, on_event: EventHandler, poll_interval: float,
                timeout: float | None) -> dict:
        deadline = time.monotonic() + timeout if timeout else None
        last_poll = time.monotonic() if socket is not None else 0.0  # with a socket, /history only as a fallback
        lost = _LostPrompt(prompt_id, self.name)
        while True:
            if deadline and time.monotonic() > deadline:
                self.interrupt(prompt_id)
                raise ServerError(f"the graph did not finish within {timeout:.0f} s on {self.name}; it was interrupted")
            if socket is not None:
                socket = self._read_ws(socket, prompt_id, on_event)
                if socket is not None and socket.done:  # type: ignore[attr-defined]
                    entry = self._history_when_ready(prompt_id)
                    if entry is not None:
                        return entry
            if socket is None or time.monotonic() - last_poll > max(poll_interval, 5.0 if socket else 0):
                last_poll = time.monotonic()
                entry = self.history(prompt_id)
                if entry is not None and (entry.get("status") or {}).get("completed") is not None:
                    return entry
                # not in the history: the server must still hold it, else it was restarted and never will finish it
                lost.check(entry is not None or self._still_queued(prompt_id))
                if socket is None:
                    time.sleep(poll_interval)

    def _still_queued(self, prompt_id: str) -> bool:
        queued = self.queued()
        return queued is None or prompt_id in queued  # a server that cannot say is given the benefit of the doubt

    def _history_when_ready(self, prompt_id: str, attempts: int = 20) -> dict | None:
        for _ in range(attempts):
            entry = self.history(prompt_id)
            if entry is not None:
                return entry
            time.sleep(0.1)
        return None

    @staticmethod
    def _read_ws(socket, prompt_id: str, on_event: EventHandler):
        import websocket

        socket.done = getattr(socket, "done", False)
        try:
            message = socket.recv()
        except websocket.WebSocketTimeoutException:
            return socket
        except Exception as exc:  # noqa: BLE001 - dropped: fall back to polling
            log.info("websocket dropped (%s); following by polling /history", _reason(exc))
            return None
        if not isinstance(message, str):
            return socket  # binary preview images
        try:
            event = json.loads(message)
        except ValueError:
            return socket
        kind, data = event.get("type"), event.get("data") or {}
        if data.get("prompt_id") not in (None, prompt_id):
            return socket
        if kind == "status":
            return socket
        on_event(kind, data)
        if kind in ("execution_success", "execution_error", "execution_interrupted") or (
                kind == "executing" and data.get("node") is None and data.get("prompt_id") == prompt_id):
            socket.done = True
        return socket

    # ------------------------------------------------------------------ outputs
    @staticmethod
    def output_files(outputs: Mapping[str, Any], include_temp: bool = False) -> list[OutputFile]:
        """The files a run's nodes report. Previews in the server's temp folder (core PreviewImage, the pack's
        shot thumbnails and line previews) are left out unless asked for: they are for the editor."""
        files = []
        for node_id, ui in outputs.items():
            for kind, items in (ui or {}).items():
                for item in items if isinstance(items, list) else ():
                    if isinstance(item, dict) and "filename" in item \
                            and (include_temp or item.get("type", "output") != "temp"):
                        files.append(OutputFile(node_id, item["filename"], item.get("subfolder", ""),
                                                item.get("type", "output"), kind))
        return files

    def download(self, item: OutputFile, dest_dir: str | Path) -> Path:
        """Fetch one output into ``dest_dir`` (keeping its subfolder, made safe; never leaving ``dest_dir``),
        streamed to disk and resumed where a dropped connection broke it (a film of gigabytes is never held in
        memory, and comes back whole or not at all)."""
        target = local_output_path(dest_dir, item.subfolder, item.filename)
        query = urllib.parse.urlencode({"filename": item.filename, "subfolder": item.subfolder, "type": item.type})
        try:
            fetch_file(f"{self.base_url}/view?{query}", target, headers=self.headers, secrets=self._secrets,
                       timeout=max(self.timeout, 60.0), tries=max(3, self.retries + 1), backoff=self.backoff,
                       service="ComfyUI")
        except Refused as exc:
            raise ServerError(f"could not download {item.filename} from {self.name} ({exc.answer.status})") from None
        except Unreachable as fault:
            raise ServerError(f"could not download {item.filename} from {self.name}",
                              [Problem("GET /view", fault.reason)]) from None
        return target


def local_output_path(dest_dir: str | Path, subfolder: str, filename: str) -> Path:
    """Where an output named by a server lands locally: each part sanitised, always inside ``dest_dir``."""
    parts = [safe_filename(p, "_") for p in subfolder.replace("\\", "/").split("/") if p not in ("", ".", "..")]
    target = Path(dest_dir).joinpath(*parts, safe_filename(filename))
    target.parent.mkdir(parents=True, exist_ok=True)
    return target


def write_atomically(target: Path, data: bytes) -> Path:
    partial = target.with_name(target.name + ".partial")
    partial.write_bytes(data)
    os.replace(partial, target)
    return target


class _LostPrompt:
    """Counts the polls in a row in which the server knew nothing of the prompt; past the grace it is lost."""

    def __init__(self, prompt_id: str, server: str):
        self.prompt_id, self.server = prompt_id, server
        self.misses, self.since = 0, 0.0

    def check(self, known: bool) -> None:
        if known:
            self.misses = 0
            return
        self.misses += 1
        if self.misses == 1:
            self.since = time.monotonic()
        if self.misses >= LOST_PROMPT_POLLS and time.monotonic() - self.since >= LOST_PROMPT_SECONDS:
            raise ServerError(
                f"ComfyUI at {self.server} no longer knows prompt {self.prompt_id}: it is neither running, queued nor "
                "in its history (the server was probably restarted)",
                [Problem(f"prompt {self.prompt_id}", "render again: what already finished is kept and not redone")])


class _HTTPFailure(Exception):
    def __init__(self, code: int, payload: bytes):
        super().__init__(code)
        self.code = code
        self.payload = payload


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    return str(reason or exc) or type(exc).__name__
