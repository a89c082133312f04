"""Run one API-format graph through a real ComfyUI's own execution code, headless (no server, no port).

Started by :class:`animstudio.translator.embedded.EmbeddedEngine` with ComfyUI's Python and ComfyUI's
folder as working directory; it imports nothing of animstudio (the pack is loaded the way ComfyUI
loads any custom-node folder). It speaks JSON lines on stdout: ``{"type": event, "data": {...}}``
for the events a server would send on ``/ws``, then one ``{"type": "final", ...}`` with the outputs
or the errors. ComfyUI's own log goes to stderr.

    python comfy_worker.py --comfyui DIR --pack DIR --input DIR --output DIR [--models DIR]
                           (--run --graph FILE | --object-info)
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import uuid

PROTOCOL = sys.stdout  # kept before anything can print into it; everything else goes to stderr


def emit(message: dict) -> None:
    PROTOCOL.write(json.dumps(message, default=str) + "\n")
    PROTOCOL.flush()


class HeadlessServer:
    """What ``PromptExecutor`` needs of a server: a client id and ``send_sync``; events go to stdout."""

    def __init__(self):
        self.client_id = "animstudio-embedded"
        self.last_node_id = None
        self.last_prompt_id = None
        self.sockets_metadata: dict = {}

    def send_sync(self, event, data, sid=None):
        if isinstance(event, str) and isinstance(data, dict):
            emit({"type": event, "data": data})

    def queue_updated(self):
        pass


def parse_args(argv):
    parser = argparse.ArgumentParser()
    parser.add_argument("--comfyui", required=True)
    parser.add_argument("--pack", required=True)
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--models")
    parser.add_argument("--graph")
    parser.add_argument("--run", action="store_true")
    parser.add_argument("--object-info", action="store_true")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    options = parse_args(sys.argv[1:] if argv is None else argv)
    sys.stdout = sys.stderr  # ComfyUI and custom nodes print; keep the protocol stream clean
    os.chdir(options.comfyui)
    sys.path.insert(0, options.comfyui)

    comfy_args = ["main.py", "--disable-auto-launch", "--database-url", "sqlite:///:memory:"]
    import torch

    if not torch.cuda.is_available():
        comfy_args.append("--cpu")
    comfy_args += os.environ.get("ANIMSTUDIO_COMFY_ARGS", "").split()
    sys.argv = comfy_args

    import comfy.options

    comfy.options.enable_args_parsing()
    import folder_paths
    import utils.install_util  # noqa: F401  (before execution/nodes: see ComfyUI's main.py import order)
    import server

    extra_paths = os.path.join(options.comfyui, "extra_model_paths.yaml")
    if os.path.isfile(extra_paths):  # the user's extra model folders, as main.py would load them
        import utils.extra_config

        utils.extra_config.load_extra_path_config(extra_paths)
    folder_paths.set_input_directory(options.input)
    folder_paths.set_output_directory(options.output)
    if options.models:
        for entry in sorted(os.scandir(options.models), key=lambda e: e.name):
            if entry.is_dir():
                folder_paths.add_model_folder_path(entry.name, entry.path, is_default=True)

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    server.PromptServer(loop)  # custom nodes register routes on PromptServer.instance at import
    import execution
    import nodes

    loop.run_until_complete(nodes.init_extra_nodes(init_custom_nodes=True, init_api_nodes=False))
    if "AnimStudioSaveFilm" not in nodes.NODE_CLASS_MAPPINGS:
        loop.run_until_complete(nodes.load_custom_node(os.path.abspath(options.pack)))

    import comfy.utils

    if options.object_info:
        emit({"type": "final", "object_info": {name: node_info(nodes, name) for name in nodes.NODE_CLASS_MAPPINGS}})
        return 0

    with open(options.graph, encoding="utf-8") as fh:
        prompt = json.load(fh)
    prompt_id = str(uuid.uuid4())
    valid, error, outputs, node_errors = loop.run_until_complete(execution.validate_prompt(prompt_id, prompt, None))
    if not valid:
        emit({"type": "final", "stage": "validate", "error": error, "node_errors": node_errors})
        return 0

    headless = HeadlessServer()

    def progress_hook(value, total, preview_image=None, prompt_id=None, node_id=None):
        headless.send_sync("progress", {"value": value, "max": total, "prompt_id": prompt_id, "node": node_id})

    comfy.utils.set_progress_bar_global_hook(progress_hook)
    executor = execution.PromptExecutor(headless, cache_type=False)
    executor.execute(prompt, prompt_id, {"client_id": headless.client_id}, outputs)
    failure = next((data for event, data in executor.status_messages if event == "execution_error"), None)
    emit({"type": "final", "stage": "execute", "prompt_id": prompt_id,
          "outputs": executor.history_result.get("outputs", {}), "error": failure})
    return 0


def node_info(nodes, name: str) -> dict:
    cls = nodes.NODE_CLASS_MAPPINGS[name]
    if hasattr(cls, "GET_NODE_INFO_V1"):
        return cls.GET_NODE_INFO_V1()
    return {"input": cls.INPUT_TYPES(), "output": list(cls.RETURN_TYPES),
            "output_node": bool(getattr(cls, "OUTPUT_NODE", False)), "name": name,
            "display_name": nodes.NODE_DISPLAY_NAME_MAPPINGS.get(name, name),
            "description": getattr(cls, "DESCRIPTION", ""), "category": getattr(cls, "CATEGORY", "sd"),
            "python_module": getattr(cls, "RELATIVE_PYTHON_MODULE", "nodes")}


if __name__ == "__main__":
    sys.exit(main())
