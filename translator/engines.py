"""Engines a render runs on, one face for both: a ComfyUI server (through :class:`~.client.ComfyClient`), whose
``/object_info`` every graph is checked against before upload, or the :class:`~.embedded.EmbeddedEngine`."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping, Protocol

from ..common.paths import link_or_copy
from .client import ComfyClient, OutputFile, local_output_path
from .compile import CompiledGraph
from .embedded import EmbeddedEngine
from .graph_check import CheckOnce


class Engine(Protocol):
    name: str

    def object_info(self) -> dict: ...
    def check(self, compiled: CompiledGraph) -> None:
        """Refuse a graph that does not fit this engine (every problem, by node id) before anything of it is uploaded;
        ``run`` then does not check that graph again."""
    def upload(self, local_path: Path, subfolder: str, filename: str) -> str: ...
    def run(self, graph: Mapping[str, Any], node_shots: Mapping, on_event: Callable, uploads=()) -> dict: ...
    def fetch(self, item: OutputFile, dest_dir: Path) -> Path: ...
    def free(self) -> None: ...
    def close(self) -> None: ...


class ServerEngine:
    """A running ComfyUI, local or remote. Graphs are checked against its ``/object_info`` before upload."""

    def __init__(self, client: ComfyClient, object_info: Callable[[], dict] | None = None):
        """``object_info``: where to read the server's ``/object_info`` when someone already holds it (a batch
        endpoint's copy: about half a megabyte from a real ComfyUI, not fetched again for every job)."""
        self.client = client
        self.name = client.name
        self._object_info: dict | None = None
        self._object_info_source = object_info or client.object_info
        self._checked = CheckOnce()

    def object_info(self) -> dict:
        if self._object_info is None:
            self._object_info = self._object_info_source()
        return self._object_info

    def upload(self, local_path: Path, subfolder: str, filename: str) -> str:
        return self.client.upload(local_path, subfolder, filename)

    def check(self, compiled: CompiledGraph) -> None:
        """Refuse a graph that does not fit the server before anything of it is uploaded (its uploads are
        named by content, so their names are known in advance)."""
        self._checked.check(compiled.graph, self.object_info(), compiled.node_shots,
                            [u.name for u in compiled.uploads], name=compiled.name)

    def run(self, graph, node_shots, on_event, uploads=()) -> dict:
        self._checked.before_run(graph, self.object_info, node_shots, uploads)
        return self.client.run(graph, node_shots, on_event)

    def fetch(self, item: OutputFile, dest_dir: Path) -> Path:
        return self.client.download(item, dest_dir)

    def free(self) -> None:
        self.client.free()

    def close(self) -> None:
        """Nothing is kept here: what the server made stays on the server, what was fetched is the caller's."""


class LocalEngine:
    """The embedded engine with the same face as a server."""

    def __init__(self, engine: EmbeddedEngine | None = None):
        self.engine = engine or EmbeddedEngine()
        self.name = "embedded"

    def object_info(self) -> dict:
        return self.engine.object_info()

    def check(self, compiled: CompiledGraph) -> None:
        self.engine.check(compiled.graph, compiled.node_shots, [u.name for u in compiled.uploads], compiled.name)

    def upload(self, local_path: Path, subfolder: str, filename: str) -> str:
        return self.engine.upload(local_path, subfolder, filename)

    def run(self, graph, node_shots, on_event, uploads=()) -> dict:
        return self.engine.run(graph, node_shots, on_event, uploads)

    def fetch(self, item: OutputFile, dest_dir: Path) -> Path:
        target = local_output_path(dest_dir, item.subfolder, item.filename)
        source = self.engine.output_file({"filename": item.filename, "subfolder": item.subfolder})
        return link_or_copy(source, target)

    def free(self) -> None:
        """Nothing to do: each embedded run is its own worker process, and its memory goes with it."""

    def close(self) -> None:
        """Remove the engine's temporary folder (the copies of every input and output); call it when the render
        is over, fetched outputs are already in the render's own folder."""
        self.engine.close()

    def __enter__(self) -> "LocalEngine":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
