"""The project's RunPod serverless worker: runs one API graph on the ComfyUI in its own container.

Started as ``python cloud/runpod_worker/handler.py`` (RunPod's worker loop) or, to try it locally, with the
runpod package's test server: ``... handler.py --rp_serve_api --rp_api_port 8000 --rp_api_host 127.0.0.1``.
It speaks the worker-comfyui input format, so :class:`~animstudio.cloud.providers.runpod_serverless.RunPodServerlessEngine`
(and other clients of that format) can use it::

    {"input": {"workflow": {<API graph>}, "images": [{"name": "sub/folder/file.png", "image": "<base64>"}]}}
      → {"outputs": {node_id: ui}, "files": [{"node", "filename", "subfolder", "type", "data": "<base64>"}]}
    {"input": {"object_info": true}}  → {"object_info": {...ComfyUI's /object_info}}

A failure answers ``{"error": "<the error as JSON: {error, summary, problems}>", "error_type": "...",
"problems": [{"where", "message"}]}`` (the runpod package marks the job FAILED). ``images`` are uploaded to ComfyUI's
input folder under their names (any file type, not only images); a name that would leave that folder is
refused. Output files (images, videos, audio, subtitles) come back as base64 while the answer stays under
``ANIMSTUDIO_INLINE_LIMIT`` bytes of it (default 15 MB; RunPod refuses answers over 20 MB); a file past that is PUT,
streamed, to ``ANIMSTUDIO_OUTPUT_UPLOAD_URL/<job>/<n>-<name>`` (an HTTP(S) store: a bucket's upload endpoint, a
WebDAV folder) and answered by location instead, with its size and SHA-256 so the client checks what it fetches:
``{"node", "filename", "subfolder", "type", "url", "size", "sha256"}``. Without an upload location a job whose
files would pass the limit fails, saying so, instead of sending an answer RunPod would refuse.

Environment: ``COMFYUI_URL`` (default ``http://127.0.0.1:8188``), ``COMFYUI_START_TIMEOUT`` (seconds to wait
for that ComfyUI to answer, default 600), ``COMFYUI_RUN_TIMEOUT`` (seconds per graph, default none),
``ANIMSTUDIO_INLINE_LIMIT``, ``ANIMSTUDIO_OUTPUT_UPLOAD_URL`` (its credentials in the URL or in
``ANIMSTUDIO_OUTPUT_UPLOAD_AUTH``, an ``Authorization`` header value; never logged).
"""
from __future__ import annotations

import base64
import binascii
import importlib.util
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Mapping

if __package__:
    from ...translator.client import ComfyClient
    from ...common.errors import AnimStudioError, Problem, ServerError
    from ...common.http import Unreachable, file_digest, put_file
    from ...common.paths import safe_filename
    from ...common.urls import split_credentials
else:  # run as a script (RunPod's CMD): import the package this file belongs to, installed or not
    def _load_package() -> None:
        try:
            import animstudio  # noqa: F401
            return
        except ImportError:
            pass
        root = Path(__file__).resolve().parents[2]
        spec = importlib.util.spec_from_file_location("animstudio", root / "__init__.py",
                                                      submodule_search_locations=[str(root)])
        module = importlib.util.module_from_spec(spec)
        sys.modules["animstudio"] = module
        spec.loader.exec_module(module)

    _load_package()
    from animstudio.translator.client import ComfyClient
    from animstudio.common.errors import AnimStudioError, Problem, ServerError
    from animstudio.common.http import Unreachable, file_digest, put_file
    from animstudio.common.paths import safe_filename
    from animstudio.common.urls import split_credentials

log = logging.getLogger("animstudio.runpod_worker")

DEFAULT_COMFYUI_URL = "http://127.0.0.1:8188"


class WorkerInputError(AnimStudioError):
    """The job's input is not something this worker can run (no workflow, a bad file name, bad base64)."""

    exit_code = 2


def input_target(name: Any) -> tuple[str, str]:
    """``"sub/folder/file.png"`` → (``"sub/folder"``, ``"file.png"``); refuses names that leave the input folder
    (absolute, ``..``, backslashes, drive letters, empty)."""
    if not isinstance(name, str) or not name.strip():
        raise WorkerInputError("an image has no name", [Problem("images[].name", "must be a non-empty string")])
    if name.startswith(("/", "\\")) or "\\" in name or "\x00" in name or ":" in name.split("/")[0]:
        raise WorkerInputError(f"refused the image name {name!r}", [Problem(name, "must be a relative path inside "
                                                                                  "the input folder")])
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if not parts or any(p == ".." for p in parts):
        raise WorkerInputError(f"refused the image name {name!r}", [Problem(name, "must not leave the input folder")])
    return "/".join(parts[:-1]), parts[-1]


def decode_base64(data: Any, name: str) -> bytes:
    """A file's content from base64, with or without a ``data:...;base64,`` prefix."""
    if not isinstance(data, str):
        raise WorkerInputError(f"image {name!r} has no base64 data", [Problem(name, "image must be a base64 string")])
    if data.startswith("data:") and "," in data:
        data = data.split(",", 1)[1]
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise WorkerInputError(f"image {name!r} is not valid base64", [Problem(name, "image is not base64")]) from None


def error_output(exc: AnimStudioError) -> dict:
    """A failure as the job's answer. The runpod package turns ``error`` into a FAILED job and keeps the rest as
    output, but its local test server drops that output: so ``error`` itself is the error as JSON
    (:meth:`AnimStudioError.to_json`: its type, summary and problems), which every client can read back."""
    details = exc.to_json()
    return {"error": json.dumps(details), "error_type": details["error"], "problems": details["problems"]}


def handle(job_input: Mapping[str, Any], client: ComfyClient, run_timeout: float | None = None) -> dict:
    """One job's input → its output (see the module's docstring); errors the user can act on come back as data."""
    try:
        if not isinstance(job_input, Mapping):
            raise WorkerInputError("the job's input must be an object")
        if job_input.get("object_info"):
            return {"object_info": client.object_info()}
        workflow = job_input.get("workflow")
        if not isinstance(workflow, Mapping) or not workflow:
            raise WorkerInputError("the job has no workflow", [Problem("input.workflow", "an API-format graph "
                                                                                         "(an object of nodes)")])
        images = job_input.get("images") or []
        if not isinstance(images, list):
            raise WorkerInputError("input.images must be a list of {name, image}")
        with tempfile.TemporaryDirectory(prefix="animstudio-job-") as scratch:
            scratch = Path(scratch)
            for index, item in enumerate(images):
                item = item if isinstance(item, Mapping) else {}
                subfolder, filename = input_target(item.get("name"))
                local = scratch / "in" / f"{index}"
                local.mkdir(parents=True)
                local = local / filename
                local.write_bytes(decode_base64(item.get("image"), str(item.get("name"))))
                stored = client.upload(local, subfolder, filename)
                wanted = f"{subfolder}/{filename}" if subfolder else filename
                if stored != wanted:
                    log.warning("ComfyUI stored %s as %s", wanted, stored)
            outputs = client.run(dict(workflow), None, timeout=run_timeout)
            files = returned_files(client, outputs, scratch / "out", str(job_input.get("job_id") or os.getpid()))
        return {"outputs": outputs, "files": files}
    except AnimStudioError as exc:
        log.info("job failed: %s", exc.summary)
        return error_output(exc)


DEFAULT_INLINE_LIMIT = 15_000_000  # bytes of base64 in an answer; RunPod refuses answers over 20 MB


def returned_files(client: ComfyClient, outputs: Mapping[str, Any], scratch: Path, job: str) -> list[dict]:
    """Each output file as the answer carries it: inline (base64) while the answer stays under the limit, else
    uploaded (see the module's docstring)."""
    limit = int(os.environ.get("ANIMSTUDIO_INLINE_LIMIT") or DEFAULT_INLINE_LIMIT)
    store = (os.environ.get("ANIMSTUDIO_OUTPUT_UPLOAD_URL") or "").rstrip("/")
    auth = os.environ.get("ANIMSTUDIO_OUTPUT_UPLOAD_AUTH") or ""
    files, inline = [], 0
    for number, item in enumerate(ComfyClient.output_files(outputs)):
        target = client.download(item, scratch / str(number))
        entry = {"node": item.node_id, "filename": item.filename, "subfolder": item.subfolder, "type": item.type,
                 "kind": item.kind}
        size, sha256 = file_digest(target)
        encoded = 4 * ((size + 2) // 3)
        if inline + encoded <= limit:
            inline += encoded
            files.append({**entry, "data": base64.b64encode(target.read_bytes()).decode()})
            continue
        if not store:
            raise ServerError(f"the job's files pass the answer's limit ({limit} bytes of base64) at "
                              f"{item.filename} ({size} bytes)",
                              [Problem("ANIMSTUDIO_OUTPUT_UPLOAD_URL", "set it to a store the worker can PUT files "
                                                                       "to, and big outputs are answered by location")])
        url = f"{store}/{safe_filename(job)}/{number}-{safe_filename(item.filename)}"
        try:
            answer = put_file(url, target, headers={"Authorization": auth} if auth else None, service="the store")
        except Unreachable as fault:
            raise ServerError(f"could not upload {item.filename} to the output store", [Problem("upload", fault.reason)]
                              ) from None
        if not answer.ok:
            raise ServerError(f"the output store refused {item.filename} (HTTP {answer.status})",
                              [Problem("upload", answer.message())])
        # the location answered carries no user:password (the client reads the store at the same address)
        files.append({**entry, "url": split_credentials(url)[0], "size": size, "sha256": sha256})
    return files


_client: ComfyClient | None = None


def comfy_client() -> ComfyClient:
    """The client of the ComfyUI next to this worker, waiting (once) for it to answer: the container starts
    both at the same time, and ComfyUI takes a while to load."""
    global _client
    if _client is None:
        client = ComfyClient(os.environ.get("COMFYUI_URL", DEFAULT_COMFYUI_URL))
        deadline = time.monotonic() + float(os.environ.get("COMFYUI_START_TIMEOUT", "600"))
        while True:
            try:
                client.system_stats()
                break
            except ServerError as exc:
                if time.monotonic() > deadline:
                    raise ServerError(f"ComfyUI at {client.name} did not answer within the start timeout",
                                      exc.problems) from None
                time.sleep(1.0)
        _client = client
    return _client


def handler(job: Mapping[str, Any]) -> dict:
    """RunPod's entry point: ``job["input"]`` → the job's output."""
    try:
        client = comfy_client()
    except AnimStudioError as exc:
        return error_output(exc)
    timeout = os.environ.get("COMFYUI_RUN_TIMEOUT")
    return handle(job.get("input") or {}, client, float(timeout) if timeout else None)


def main() -> None:
    import runpod  # the optional `runpod` extra: only the worker needs it

    logging.basicConfig(level=os.environ.get("ANIMSTUDIO_LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    runpod.serverless.start({"handler": handler})


if __name__ == "__main__":
    main()
