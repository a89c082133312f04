"""Graph templates (``workflows/templates``) and the pieces every subgraph builder shares: node ids scoped by
shot (``<shot id>:<role>``), uploads named by content, the canonical graph text."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..common.paths import path_digest

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "workflows" / "templates"
FILM_SCOPE = "film"

Graph = dict[str, dict[str, Any]]
Link = list  # [node_id, output_index]


@dataclass(frozen=True)
class Upload:
    """A local file the graph expects in the server's input folder as ``subfolder/filename``."""

    local_path: Path
    subfolder: str
    filename: str

    @property
    def name(self) -> str:
        """The name the graph uses for it (ComfyUI's ``subfolder/filename`` convention)."""
        return f"{self.subfolder}/{self.filename}" if self.subfolder else self.filename


def graph_json(graph: Graph) -> str:
    """The canonical text of a graph: what `compile` writes and what determinism is judged on."""
    return json.dumps(graph, indent=2, ensure_ascii=False) + "\n"


@lru_cache(maxsize=None)
def load_template(name: str) -> dict:
    return json.loads((TEMPLATES_DIR / f"{name}.json").read_text(encoding="utf-8"))


def _fill(value: Any, scope: str, params: dict[str, Any], links: dict[str, Link | None]) -> Any:
    if isinstance(value, str):
        if value.startswith("{") and value.endswith("}") and value[1:-1] in params:
            return params[value[1:-1]]
        if value.startswith("$"):
            return links[value[1:]]
        return value
    if isinstance(value, list) and len(value) == 2 and isinstance(value[0], str) and value[0].startswith("@"):
        return [f"{scope}:{value[0][1:]}", value[1]]
    return value


def instantiate(template: str, scope: str, graph: Graph, node_shots: dict[str, str | None], shot_id: str | None,
                params: dict[str, Any] | None = None, links: dict[str, Link | None] | None = None) -> dict[str, Link]:
    """Add a template's nodes to ``graph`` under ``scope``; returns the template's named outputs as links.

    ``{name}`` values come from ``params``; ``$name`` inputs are links from outside the template, and
    an input whose link is ``None`` is left out (an optional input with nothing to connect).
    """
    spec = load_template(template)
    params, links = params or {}, links or {}
    for role, node in spec["nodes"].items():
        node_id = f"{scope}:{role}"
        inputs = {}
        for key, raw in node["inputs"].items():
            value = _fill(raw, scope, params, links)
            if value is not None:
                inputs[key] = value
        graph[node_id] = {"class_type": node["class_type"], "inputs": inputs}
        node_shots[node_id] = shot_id
    return {key: _fill(value, scope, params, links) for key, value in spec.items() if key not in ("nodes", "description")}


def content_upload(path: Path, subfolder: str) -> Upload:
    """A file uploaded under a content-hash name: stable, and two projects never overwrite each other."""
    digest = path_digest(path)
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", path.stem)[:40] or "file"
    return Upload(path, subfolder, f"{digest[:16]}-{stem}{path.suffix.lower()}")
