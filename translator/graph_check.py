"""Checking an API-format graph against node definitions (``/object_info``), as ComfyUI's ``validate_prompt`` does.

Run before anything is uploaded or queued, so a bad graph fails in milliseconds with every problem
listed, each naming the node id, its class and the shot it belongs to. Definitions come from a live
server, from a snapshot file recorded from a real ComfyUI, or from the pack's own classes (the
embedded engine).
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Iterable, Mapping

from ..common.errors import GraphValidationError, Problem

ObjectInfo = Mapping[str, Mapping[str, Any]]


def is_link(value: Any) -> bool:
    """An API-format input that connects to another node: ``[node_id, output_index]``."""
    return isinstance(value, list) and len(value) == 2 and isinstance(value[0], str) and isinstance(value[1], int)


def load_object_info(path: str | Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def node_place(node_id: str, class_type: str | None, node_shots: Mapping[str, str | None] | None) -> str:
    """How a problem names its node: ``node 's1:sampler' (KSampler, shot s1)``."""
    shot = (node_shots or {}).get(node_id)
    detail = ", ".join(p for p in (class_type, f"shot {shot}" if shot else None) if p)
    return f"node {node_id!r}" + (f" ({detail})" if detail else "")


def _spec_parts(spec: Any) -> tuple[Any, dict]:
    """An input spec ``[TYPE_OR_OPTIONS, {options}]`` split into its type and options."""
    if isinstance(spec, (list, tuple)) and spec:
        return spec[0], (spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {})
    return spec, {}


def combo_options(kind: Any, options: dict) -> list | None:
    """The allowed values of an input declared as a combo (a list, or ``COMBO`` with ``options``); None otherwise."""
    if isinstance(kind, (list, tuple)):
        return list(kind)
    if kind == "COMBO":
        return list(options.get("options", []))
    return None


def _types_match(output_type: str, input_type: str) -> bool:
    """ComfyUI's rule: ``*`` matches anything, otherwise the comma-separated type sets must overlap."""
    if output_type == "*" or input_type == "*":
        return True
    if output_type == input_type:
        return True
    return bool(set(str(output_type).split(",")) & set(str(input_type).split(",")))


# inputs that name a model file, and the folder under ComfyUI's models/ where that file belongs
MODEL_FOLDERS = {
    "ckpt_name": "checkpoints", "lora_name": "loras", "vae_name": "vae", "control_net_name": "controlnet",
    "unet_name": "diffusion_models", "clip_name": "text_encoders", "clip_name1": "text_encoders",
    "clip_name2": "text_encoders", "upscale_model": "upscale_models", "ipadapter_file": "ipadapter",
    "style_model_name": "style_models", "gligen_name": "gligen", "hypernetwork_name": "hypernetworks",
    "ipadapter_name": "ipadapter", "audio_encoder_name": "audio_encoders",
}
# the same input name meaning another folder on some node types
MODEL_FOLDERS_BY_CLASS = {
    ("CLIPVisionLoader", "clip_name"): "clip_vision",
    ("ADE_AnimateDiffLoaderGen1", "model_name"): "animatediff_models",
    ("ADE_LoadAnimateDiffModel", "model_name"): "animatediff_models",
}


def model_folder(class_type: str, input_name: str) -> str | None:
    """The folder under ComfyUI's models/ that a node's file-name input reads from, if it names a model file."""
    return MODEL_FOLDERS_BY_CLASS.get((class_type, input_name)) or MODEL_FOLDERS.get(input_name)


def _check_value(value: Any, kind: Any, options: dict, uploads: frozenset[str], folder: str | None = None) -> str | None:
    combo = combo_options(kind, options)
    if combo is not None:
        if value in combo or (isinstance(value, str) and value in uploads):
            return None
        if folder:
            shown = ", ".join(map(str, combo[:5])) + (", …" if len(combo) > 5 else "")
            return (f"model file {value!r} not found: put it in ComfyUI's models/{folder} folder"
                    + (f" (there now: {shown})" if combo else " (which is empty)"))
        shown = ", ".join(map(str, combo[:8])) + (", …" if len(combo) > 8 else "")
        return f"{value!r} is not one of the allowed values ({shown})" if combo else f"{value!r}: no values are available"
    if kind == "INT":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (isinstance(value, float) and not value.is_integer()):
            return f"expected an integer, got {value!r}"
    elif kind == "FLOAT":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return f"expected a number, got {value!r}"
    elif kind == "STRING":
        if not isinstance(value, str):
            return f"expected a string, got {value!r}"
        return None
    elif kind == "BOOLEAN":
        if not isinstance(value, bool):
            return f"expected true or false, got {value!r}"
        return None
    else:
        return f"expects a link from a {kind} output, got the value {json.dumps(value)[:40]}"
    if "min" in options and value < options["min"]:
        return f"{value} is below the minimum {options['min']}"
    if "max" in options and value > options["max"]:
        return f"{value} is above the maximum {options['max']}"
    return None


def graph_problems(graph: Mapping[str, Any], object_info: ObjectInfo,
                   node_shots: Mapping[str, str | None] | None = None,
                   uploads: Iterable[str] = ()) -> list[Problem]:
    """Every way ``graph`` does not fit ``object_info``; empty when it would pass ``validate_prompt``.

    ``uploads`` are input-file names that will be uploaded before the graph is queued, so a combo
    of input files may name them although the definitions were taken before they existed.
    """
    uploaded = frozenset(uploads)
    problems: list[Problem] = []
    if not isinstance(graph, Mapping) or not graph:
        return [Problem("graph", "is empty or not an object of nodes")]
    has_output = False
    for node_id, node in graph.items():
        class_type = node.get("class_type") if isinstance(node, Mapping) else None
        where = node_place(node_id, class_type, node_shots)
        if not isinstance(node, Mapping) or not isinstance(class_type, str):
            problems.append(Problem(where, "has no class_type"))
            continue
        definition = object_info.get(class_type)
        if definition is None:
            problems.append(Problem(where, f"unknown node type {class_type!r}: the engine does not offer it "
                                           "(a custom-node pack not installed, or a typo)"))
            continue
        has_output = has_output or bool(definition.get("output_node"))
        inputs = node.get("inputs", {})
        if not isinstance(inputs, Mapping):
            problems.append(Problem(where, "inputs must be an object"))
            continue
        declared = definition.get("input", {})
        required = declared.get("required", {}) or {}
        optional = declared.get("optional", {}) or {}
        for name in required:
            if name not in inputs:
                problems.append(Problem(where, f"required input {name!r} is missing"))
        for name, value in inputs.items():
            spec = required.get(name, optional.get(name))
            if spec is None:
                continue  # ComfyUI ignores inputs a node does not declare (hidden ones among them)
            kind, options = _spec_parts(spec)
            if is_link(value):
                message = _link_problem(graph, object_info, value, kind)
            elif options.get("forceInput"):
                message = f"must be linked from a {kind} output"
            else:
                message = _check_value(value, kind, options, uploaded, model_folder(class_type, name))
            if message:
                problems.append(Problem(where, f"input {name!r}: {message}"))
    if not has_output:
        problems.append(Problem("graph", "has no output node (such as SaveImage or AnimStudioSaveFilm), "
                                         "so ComfyUI would run nothing"))
    cycle = find_cycle(graph)
    if cycle:
        problems.append(Problem(node_place(cycle[0], graph[cycle[0]].get("class_type"), node_shots),
                                "is part of a cycle: " + " -> ".join(cycle)))
    return problems


def _link_problem(graph: Mapping[str, Any], object_info: ObjectInfo, link: list, input_kind: Any) -> str | None:
    source_id, index = link
    source = graph.get(source_id)
    if not isinstance(source, Mapping):
        return f"links to node {source_id!r}, which is not in the graph"
    source_def = object_info.get(source.get("class_type"))
    if source_def is None:
        return None  # reported on the source node itself
    outputs = source_def.get("output", [])
    if not 0 <= index < len(outputs):
        return f"links to output {index} of {source_id!r}, which has {len(outputs)} output(s)"
    output_type = outputs[index]
    expected = "COMBO" if isinstance(input_kind, (list, tuple)) else input_kind
    if isinstance(output_type, (list, tuple)):
        output_type = "COMBO"
    if not _types_match(str(output_type), str(expected)):
        return f"links a {output_type} output of {source_id!r} into a {expected} input"
    return None


def find_cycle(graph: Mapping[str, Any]) -> list[str] | None:
    """A dependency cycle in the graph as a list of node ids, or ``None``."""
    state: dict[str, int] = {}
    for start in graph:
        if state.get(start):
            continue
        stack = [(start, iter(_dependencies(graph, start)))]
        path = [start]
        state[start] = 1
        while stack:
            node, deps = stack[-1]
            for dep in deps:
                if dep not in graph:
                    continue
                if state.get(dep) == 1:
                    return path[path.index(dep):] + [dep]
                if not state.get(dep):
                    state[dep] = 1
                    path.append(dep)
                    stack.append((dep, iter(_dependencies(graph, dep))))
                    break
            else:
                state[node] = 2
                stack.pop()
                path.pop()
    return None


def _dependencies(graph: Mapping[str, Any], node_id: str) -> list[str]:
    node = graph.get(node_id)
    inputs = node.get("inputs", {}) if isinstance(node, Mapping) else {}
    return [v[0] for v in (inputs.values() if isinstance(inputs, Mapping) else ()) if is_link(v)]


def check_graph(graph: Mapping[str, Any], object_info: ObjectInfo, node_shots: Mapping[str, str | None] | None = None,
                uploads: Iterable[str] = (), name: str = "graph") -> None:
    """Raise :class:`GraphValidationError` listing every problem, if there are any."""
    problems = graph_problems(graph, object_info, node_shots, uploads)
    if problems:
        raise GraphValidationError(f"{name}: {len(problems)} problem(s) against the node definitions", problems)


class CheckOnce:
    """An engine's memory of the graph its ``check`` passed, so that its ``run`` does not check that same graph
    again (a render checks each graph once, before uploading its files); a graph run unchecked is checked there."""

    def __init__(self) -> None:
        self._passed: Mapping[str, Any] | None = None

    def check(self, graph: Mapping[str, Any], object_info: ObjectInfo, node_shots=None, uploads: Iterable[str] = (),
              name: str = "graph") -> None:
        check_graph(graph, object_info, node_shots, uploads, name)
        self._passed = graph

    def before_run(self, graph: Mapping[str, Any], object_info, node_shots=None, uploads: Iterable[str] = ()) -> None:
        """Check ``graph`` unless it is the one just checked; either way the next run checks again."""
        passed, self._passed = self._passed, None
        if graph is not passed:
            check_graph(graph, object_info() if callable(object_info) else object_info, node_shots, uploads, "graph")
