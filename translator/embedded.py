"""The embedded engine: run an API-format graph with no ComfyUI server.

* A graph made only of this pack's nodes (an animatic from supplied panels) runs in this process:
  nodes in dependency order, each output computed once, no torch needed.
* A graph that needs core nodes runs through a real ComfyUI's own execution code, headless, in a
  child process using ComfyUI's Python (``COMFYUI_DIR`` / ``COMFYUI_PYTHON``, else ``~/comfy``):
  see :mod:`.comfy_worker`.
* Otherwise it fails before doing anything, saying which nodes need ComfyUI and how to get it.

Both ways report the same events as a server's ``/ws`` (``executing``, ``progress``, ``executed``,
``execution_error``) and return outputs in ``/history`` form, so the render pipeline treats them alike.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import uuid
import weakref
from pathlib import Path
from typing import Any, Callable, Mapping

from ..common.errors import EngineUnavailableError, GraphValidationError, Problem, RenderInterrupted, ServerError
from .graph_check import CheckOnce, is_link, node_place

log = logging.getLogger(__name__)

PACK_PREFIX = "AnimStudio"
EventHandler = Callable[[str, dict], None]


def pack_node_classes() -> dict[str, type]:
    from .. import nodes  # loaded only when an embedded run needs it

    return dict(nodes.NODE_CLASS_MAPPINGS)


def foreign_node_types(graph: Mapping[str, Any]) -> list[str]:
    """The node types of ``graph`` that are not the pack's (ComfyUI's own, another pack's): what needs ComfyUI."""
    return sorted({n["class_type"] for n in graph.values() if not n["class_type"].startswith(PACK_PREFIX)})


def object_info_from_classes(classes: Mapping[str, type]) -> dict[str, dict]:
    """``/object_info`` entries for node classes (what the validator needs, in ComfyUI's layout)."""
    info = {}
    for name, cls in classes.items():
        outputs = list(getattr(cls, "RETURN_TYPES", ()))
        info[name] = {
            "input": cls.INPUT_TYPES(), "output": outputs,
            "output_name": list(getattr(cls, "RETURN_NAMES", outputs)),
            "output_node": bool(getattr(cls, "OUTPUT_NODE", False)), "name": name,
            "description": getattr(cls, "DESCRIPTION", ""), "category": getattr(cls, "CATEGORY", ""),
            "python_module": "custom_nodes.animstudio",
        }
    return info


def comfyui_location() -> tuple[Path, str] | None:
    """Where a real ComfyUI and its Python are, or ``None``: ``COMFYUI_DIR`` / ``COMFYUI_PYTHON``, else ``~/comfy``."""
    comfy_dir = Path(os.environ.get("COMFYUI_DIR") or Path.home() / "comfy" / "ComfyUI").expanduser()
    if not (comfy_dir / "main.py").is_file():
        return None
    python = os.environ.get("COMFYUI_PYTHON")
    if not python:
        for candidate in (comfy_dir.parent / "venv" / "bin" / "python", comfy_dir / "venv" / "bin" / "python",
                          comfy_dir / ".venv" / "bin" / "python"):
            if candidate.exists():
                python = str(candidate)
                break
    return comfy_dir, python or sys.executable


TEMP_PREFIX = "animstudio-engine-"


def remove_work_dir(folder: Path) -> None:
    """Remove an engine's temporary folder (a finalizer: it must not hold the engine)."""
    shutil.rmtree(folder, ignore_errors=True)
    log.debug("removed the embedded engine's folder %s", folder)


GET_COMFYUI_HINT = ("install ComfyUI (comfy-cli: `comfy install`, or clone it to ~/comfy/ComfyUI with its "
                    "requirements in ~/comfy/venv), set COMFYUI_DIR to it, or pass --server URL of a running one")


class EmbeddedEngine:
    """Runs graphs in-process (pack-only) or through a local ComfyUI's execution code (anything else)."""

    name = "embedded"

    def __init__(self, models_dir: str | Path | None = None, work_dir: str | Path | None = None):
        """``work_dir`` holds the engine's input and output folders and is kept; without one the engine makes a
        temporary folder (``animstudio-engine-*``) and removes it on :meth:`close` (or ``with``), and, should
        nobody close it, when the engine is dropped or Python exits."""
        self.models_dir = Path(models_dir) if models_dir else None
        self._cleanup: weakref.finalize | None = None
        if work_dir:
            self._work_dir = Path(work_dir).resolve()  # resolved: files inside it are named relative to it
        else:
            self._work_dir = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX))
            self._cleanup = weakref.finalize(self, remove_work_dir, self._work_dir)
        self.input_dir = self._work_dir / "input"
        self.output_dir = self._work_dir / "output"
        self.input_dir.mkdir(parents=True, exist_ok=True)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self._classes: dict[str, type] | None = None
        self._checked = CheckOnce()

    def close(self) -> None:
        """Remove the temporary folder with every copy of the inputs and outputs (fetch what you need first);
        a ``work_dir`` the caller gave is left alone. Safe to call twice."""
        if self._cleanup is not None:
            self._cleanup()

    def __enter__(self) -> "EmbeddedEngine":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # ------------------------------------------------------------------ what the engine offers
    @property
    def classes(self) -> dict[str, type]:
        if self._classes is None:
            self._classes = pack_node_classes()
        return self._classes

    def pack_object_info(self) -> dict[str, dict]:
        from ..nodes.boundary import use_folders

        with use_folders(self.input_dir, self.output_dir):
            return object_info_from_classes(self.classes)

    def object_info(self) -> dict[str, dict]:
        """The pack's nodes, plus every node of a local ComfyUI when one is installed."""
        info = self.pack_object_info()
        if comfyui_location() is not None:
            info.update(self._worker(["--object-info"], None, None)["object_info"])
        return info

    # ------------------------------------------------------------------ files in and out
    def upload(self, local_path: str | Path, subfolder: str, filename: str) -> str:
        from ..common.paths import link_or_copy, resolve_inside

        target = resolve_inside(self.input_dir, f"{subfolder}/{filename}" if subfolder else filename)
        target.parent.mkdir(parents=True, exist_ok=True)
        link_or_copy(local_path, target)  # nodes only read their inputs: a link where it can be, no bytes copied
        return target.relative_to(self.input_dir).as_posix()

    def output_file(self, item: Mapping[str, str]) -> Path:
        """The file a history output item names, inside this engine's output folder."""
        from ..common.paths import resolve_inside

        sub = item.get("subfolder") or ""
        return resolve_inside(self.output_dir, f"{sub}/{item['filename']}" if sub else item["filename"])

    # ------------------------------------------------------------------ running
    def check(self, graph: Mapping[str, Any], node_shots=None, uploads=(), name: str = "graph") -> None:
        """Refuse a graph of the pack's nodes alone that does not fit them, before anything is uploaded; a graph
        with ComfyUI's nodes is checked by ComfyUI's own validation when it runs."""
        if not foreign_node_types(graph):
            self._checked.check(graph, self.pack_object_info(), node_shots, uploads, name)

    def run(self, graph: Mapping[str, Any], node_shots: Mapping[str, str | None] | None = None,
            on_event: EventHandler | None = None, uploads=()) -> dict[str, dict]:
        """Run ``graph``; returns its outputs as ``/history`` does (node id → ui dict)."""
        on_event = on_event or (lambda event, data: None)
        foreign = foreign_node_types(graph)
        if not foreign:
            self._checked.before_run(graph, self.pack_object_info, node_shots, uploads)
            return self._run_pack_only(graph, node_shots, on_event)
        if comfyui_location() is None:
            raise EngineUnavailableError(
                f"this graph needs ComfyUI's core nodes ({', '.join(foreign[:6])}), and no ComfyUI was found: "
                + GET_COMFYUI_HINT)
        return self._worker(["--run"], graph, on_event, node_shots)["outputs"]

    def _run_pack_only(self, graph: Mapping[str, Any], node_shots, on_event: EventHandler) -> dict[str, dict]:
        from ..nodes.boundary import progress_hook, use_folders

        prompt_id = str(uuid.uuid4())
        order = execution_order(graph, self.classes)
        results: dict[str, tuple] = {}
        # outputs are dropped once their last consumer has run: a long film does not keep every keyframe
        waiting: dict[str, int] = {}
        for node_id in order:
            for value in graph[node_id]["inputs"].values():
                if is_link(value):
                    waiting[value[0]] = waiting.get(value[0], 0) + 1
        outputs: dict[str, dict] = {}
        on_event("execution_start", {"prompt_id": prompt_id})
        with use_folders(self.input_dir, self.output_dir):
            for node_id in order:
                node = graph[node_id]
                cls = self.classes[node["class_type"]]
                kwargs = {name: (results[value[0]][value[1]] if is_link(value) else value)
                          for name, value in node["inputs"].items()}
                on_event("executing", {"node": node_id, "prompt_id": prompt_id})
                hook = (lambda done, total, _n=node_id:
                        on_event("progress", {"value": done, "max": total, "node": _n, "prompt_id": prompt_id}))
                try:
                    with progress_hook(hook):
                        returned = getattr(cls(), cls.FUNCTION)(**kwargs)
                except KeyboardInterrupt:
                    on_event("execution_interrupted", {"prompt_id": prompt_id, "node_id": node_id})
                    raise RenderInterrupted("interrupted; files already written are kept") from None
                except Exception as exc:  # a node failed: report it at the node, as ComfyUI does
                    log.debug("node %s failed", node_id, exc_info=True)
                    on_event("execution_error", {"prompt_id": prompt_id, "node_id": node_id,
                                                 "node_type": node["class_type"], "exception_message": str(exc),
                                                 "exception_type": type(exc).__name__})
                    raise ServerError("the graph failed while running",
                                      [Problem(node_place(node_id, node["class_type"], node_shots),
                                               f"{type(exc).__name__}: {exc}")]) from None
                if isinstance(returned, dict):
                    ui, returned = returned.get("ui"), returned.get("result", ())
                    if ui:
                        outputs[node_id] = {k: list(v) for k, v in ui.items()}
                        on_event("executed", {"node": node_id, "output": outputs[node_id], "prompt_id": prompt_id})
                results[node_id] = tuple(returned or ())
                for value in node["inputs"].values():
                    if is_link(value):
                        waiting[value[0]] -= 1
                        if not waiting[value[0]]:
                            results.pop(value[0], None)
                del kwargs, returned
        on_event("execution_success", {"prompt_id": prompt_id})
        return outputs

    def _worker(self, mode: list[str], graph, on_event: EventHandler | None, node_shots=None) -> dict:
        """Run :mod:`.comfy_worker` under ComfyUI's Python; relay its events; return its final message."""
        comfy_dir, python = comfyui_location()
        pack_dir = Path(__file__).resolve().parent.parent
        args = [python, str(Path(__file__).with_name("comfy_worker.py")), "--comfyui", str(comfy_dir),
                "--pack", str(pack_dir), "--input", str(self.input_dir), "--output", str(self.output_dir), *mode]
        if self.models_dir:
            args += ["--models", str(self.models_dir)]
        graph_file = None
        if graph is not None:
            graph_file = self._work_dir / f"graph-{uuid.uuid4().hex}.json"
            graph_file.write_text(json.dumps(graph))
            args += ["--graph", str(graph_file)]
        stderr_lines: list[str] = []
        proc = subprocess.Popen(args, cwd=comfy_dir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        drain = threading.Thread(target=lambda: stderr_lines.extend(proc.stderr), daemon=True)
        drain.start()
        final: dict | None = None
        try:
            for line in proc.stdout:
                try:
                    message = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if message.get("type") == "final":
                    final = message
                elif on_event is not None:
                    on_event(message["type"], message.get("data", {}))
            proc.wait()
        except KeyboardInterrupt:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:  # gone before the engine's folder is removed under it
                proc.kill()
                proc.wait()
            raise RenderInterrupted("interrupted; files already written are kept") from None
        finally:
            drain.join(5)
            if graph_file is not None:
                graph_file.unlink(missing_ok=True)
        if final is None:
            tail = "".join(stderr_lines[-15:])
            raise EngineUnavailableError(f"the embedded ComfyUI ({comfy_dir}) stopped without an answer "
                                         f"(exit {proc.returncode}); the end of its log:\n{tail}")
        if final.get("node_errors") or final.get("error"):
            raise _worker_error(final, node_shots)
        return final


def _worker_error(final: dict, node_shots) -> Exception:
    from .client import prompt_error_problems

    problems = prompt_error_problems(final.get("error") or {}, final.get("node_errors") or {}, node_shots)
    if final.get("stage") == "validate":
        return GraphValidationError("ComfyUI refused the graph", problems)
    return ServerError("the graph failed while running in the embedded ComfyUI", problems)


def execution_order(graph: Mapping[str, Any], classes: Mapping[str, type]) -> list[str]:
    """The nodes the output nodes need, dependencies first (each node once), in a stable order."""
    needed: list[str] = []
    seen: set[str] = set()

    def visit(node_id: str) -> None:
        stack = [(node_id, False)]
        while stack:
            current, expanded = stack.pop()
            if expanded:
                needed.append(current)
                continue
            if current in seen:
                continue
            seen.add(current)
            stack.append((current, True))
            for value in reversed(list(graph[current]["inputs"].values())):
                if is_link(value) and value[0] not in seen:
                    stack.append((value[0], False))

    for node_id, node in graph.items():
        if getattr(classes.get(node["class_type"]), "OUTPUT_NODE", False):
            visit(node_id)
    return needed
