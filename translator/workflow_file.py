"""Workflow files beside storyboards: ``render``, ``validate`` and ``convert`` take a ComfyUI workflow in either of
its formats (the editor's UI format or the API format), as comfy-cli's ``comfy run`` does.

The UI format needs node definitions to become API format (which widget value is which input), so
conversions take the engine's ``/object_info``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Mapping

from ..common.errors import AnimStudioError
from ..common.jsonio import read_json

WorkflowKind = Literal["ui", "api"]


def workflow_kind(data: Any) -> WorkflowKind | None:
    """``ui`` (nodes and links lists), ``api`` (node id → {class_type, inputs}) or None (not a workflow)."""
    if isinstance(data, Mapping) and isinstance(data.get("nodes"), list) and isinstance(data.get("links"), list):
        return "ui"
    if isinstance(data, Mapping) and data and all(isinstance(v, Mapping) and "class_type" in v for v in data.values()):
        return "api"
    return None


def read_workflow(path: str | Path) -> tuple[WorkflowKind, dict] | None:
    """The workflow in *path* with its kind, or None when the file is something else: a storyboard, or a file
    that cannot be read or parsed (the storyboard loader then reports that, naming the place)."""
    try:
        data = read_json(path)
    except AnimStudioError:
        return None
    kind = workflow_kind(data)
    return (kind, data) if kind else None


def to_api(kind: WorkflowKind, data: dict, object_info: Mapping[str, Any]) -> dict:
    if kind == "api":
        return dict(data)
    from .ui_to_api import ui_to_api

    return ui_to_api(data, object_info)


def to_ui(kind: WorkflowKind, data: dict, object_info: Mapping[str, Any], title: str | None = None) -> dict:
    if kind == "ui":
        return dict(data)
    from .api_to_ui import api_to_ui

    return api_to_ui(data, object_info, None, title)
