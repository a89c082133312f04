"""Warming an endpoint before it takes jobs: the models a pool file lists under ``warm:`` are loaded by one small
graph, so the first jobs find them in ComfyUI's cache instead of paying a cold load each.

    endpoints:
      - name: a
        url: http://10.0.0.5:8188
        warm: [checkpoints/sd15.safetensors, diffusion_models/wan2.1_i2v_480p_14B_fp16.safetensors,
               {node: CLIPLoader, clip_name: umt5_xxl_fp8_e4m3fn_scaled.safetensors, type: ltxv}]
    providers:
      - {name: cloud, kind: runpod_pod, ..., warm: [checkpoints/sd15.safetensors]}

An entry is ``folder/file`` (loaded by the loader node this pack's own graphs use for that folder, with the same
settings, so the jobs' loader nodes hit ComfyUI's cache) or a mapping naming the loader node and its inputs. The
warm-up graph is those loaders, each read by core's ``PreviewAny`` (an output node, so ComfyUI runs them); ComfyUI
keeps a loader's output for the next prompt that has the same loader with the same inputs. A model the endpoint
lacks is named (file and folder) and skipped: the endpoint still takes the jobs it can run.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Mapping

from ..common.errors import AnimStudioError, Problem
from ..translator.engines import ServerEngine
from ..translator.graph_check import combo_options, model_folder
from .attempts import describe, mark_down

log = logging.getLogger(__name__)

# folder → the loader node and settings this pack's graphs use (workflows/templates/*.json)
FOLDER_LOADERS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "checkpoints": ("CheckpointLoaderSimple", "ckpt_name", {}),
    "diffusion_models": ("UNETLoader", "unet_name", {"weight_dtype": "default"}),
    "unet": ("UNETLoader", "unet_name", {"weight_dtype": "default"}),
    "vae": ("VAELoader", "vae_name", {}),
    "text_encoders": ("CLIPLoader", "clip_name", {"type": "wan"}),
    "clip": ("CLIPLoader", "clip_name", {"type": "wan"}),
    "controlnet": ("ControlNetLoader", "control_net_name", {}),
    "clip_vision": ("CLIPVisionLoader", "clip_name", {}),
}
SINK = "PreviewAny"  # core (comfy_extras/nodes_preview_any.py): an output node that takes any type


@dataclass(frozen=True)
class WarmModel:
    """One loader node to run: its type and inputs (one of which names the model file)."""
    node: str
    inputs: tuple[tuple[str, Any], ...]

    def files(self) -> frozenset[str]:
        """The model files it loads, as ``folder/file`` (the form :func:`.routing.model_set` uses)."""
        return frozenset(f"{folder}/{value}" for name, value in self.inputs
                         if isinstance(value, str) and (folder := model_folder(self.node, name)))


def parse_warm(raw: Any, where: str) -> tuple[tuple[WarmModel, ...], list[Problem]]:
    """A pool file's ``warm:`` list; every problem at its place (``$.endpoints[0].warm[1]``)."""
    if raw is None:
        return (), []
    if not isinstance(raw, list):
        return (), [Problem(where, "must be a list of models: folder/file, or {node: LoaderNode, input: file}")]
    models, problems = [], []
    for i, entry in enumerate(raw):
        place = f"{where}[{i}]"
        if isinstance(entry, str):
            folder, _, file = entry.partition("/")
            if folder not in FOLDER_LOADERS or not file:
                problems.append(Problem(place, f"{entry!r}: write folder/file with a folder of "
                                               f"{', '.join(sorted(FOLDER_LOADERS))}, or name the loader node "
                                               "({node: CLIPLoader, clip_name: FILE, type: ltxv})"))
                continue
            node, input_name, settings = FOLDER_LOADERS[folder]
            models.append(WarmModel(node, tuple(sorted({input_name: file, **settings}.items()))))
        elif isinstance(entry, Mapping) and isinstance(entry.get("node"), str):
            inputs = {k: v for k, v in entry.items() if k != "node"}
            model = WarmModel(entry["node"], tuple(sorted(inputs.items())))
            if not model.files():
                problems.append(Problem(place, f"no input of {entry['node']} names a model file"))
                continue
            models.append(model)
        else:
            problems.append(Problem(place, "must be folder/file or a mapping with node: and the loader's inputs"))
    return tuple(models), problems


def warm_graph(models: tuple[WarmModel, ...]) -> dict:
    """The warm-up prompt: each loader read by a ``PreviewAny``."""
    graph = {}
    for i, model in enumerate(models):
        graph[f"load-{i}"] = {"class_type": model.node, "inputs": dict(model.inputs)}
        graph[f"hold-{i}"] = {"class_type": SINK, "inputs": {"source": [f"load-{i}", 0]}}
    return graph


def warm_up(endpoint, models: tuple[WarmModel, ...], timeout: float = 3600.0) -> float:
    """Load ``models`` on ``endpoint`` before it takes jobs; returns the seconds it took. A model the endpoint
    lacks is logged with its file and folder and left out; the endpoint then holds what was loaded. Raises what the
    client raises (ServerError, OSError) when the warm-up fails or the endpoint does not answer."""
    info = endpoint.object_info()
    usable, missing = [], []
    for model in models:
        spec = info.get(model.node, {}).get("input", {})
        declared = {**(spec.get("required") or {}), **(spec.get("optional") or {})}
        options = {name: combo_options(kind[0], kind[1] if len(kind) > 1 and isinstance(kind[1], dict) else {})
                   for name, kind in declared.items() if kind}
        absent = [f"{name}={value!r}" for name, value in model.inputs
                  if options.get(name) is not None and value not in options[name]]
        if model.node not in info or SINK not in info or absent:
            missing.append(model)
        else:
            usable.append(model)
    for model in missing:
        files = ", ".join(f"{f.split('/', 1)[1]} (models/{f.split('/', 1)[0]})" for f in sorted(model.files()))
        log.warning("endpoint %s cannot warm %s: %s", endpoint.name, files,
                    "its ComfyUI lacks node " + (model.node if model.node not in info else SINK)
                    if model.node not in info or SINK not in info else "the file is not there")
    if not usable:
        return 0.0
    started = time.monotonic()
    client = endpoint.client(timeout=60)
    engine = ServerEngine(client, object_info=endpoint.object_info)
    engine.run(warm_graph(tuple(usable)), {}, lambda kind, data: None)
    seconds = time.monotonic() - started
    endpoint.loaded = frozenset().union(*(m.files() for m in usable))
    endpoint.model_loads += 1
    log.info("endpoint %s warmed in %.1f s: %s", endpoint.name, seconds, ", ".join(sorted(endpoint.loaded)))
    return seconds


def warm_before_jobs(endpoint, timeout: float) -> float | None:
    """:func:`warm_up` for a scheduler: the seconds it took (0 when it failed on an endpoint that still answers:
    then the endpoint takes jobs cold, said in the log), or None when the endpoint stopped answering (it is marked
    down; it is warmed when it is back)."""
    try:
        return warm_up(endpoint, endpoint.warm, timeout)
    except (AnimStudioError, OSError) as exc:
        first = describe(exc).splitlines()[0]
        if not endpoint.probe():
            mark_down(endpoint, f"it stopped answering while warming up ({first})")
            return None
        log.warning("endpoint %s: the warm-up failed, it takes jobs cold: %s", endpoint.name, first)
        return 0.0
