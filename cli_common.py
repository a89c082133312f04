"""What every command module of the CLI shares: the engine it runs on, printing a result (text, or JSON with
``--json``) and the error for a mistake in what the user asked for. The CLI owns the terminal; nothing else prints."""
from __future__ import annotations

import json
import os

from .common.errors import AnimStudioError


def _server_url(args) -> str | None:
    return getattr(args, "server", None) or os.environ.get("COMFYUI_URL") or None


def _engine(args):
    """The engine a command runs on: ``--server`` (or ``$COMFYUI_URL``), else the embedded ComfyUI."""
    from .translator.engines import LocalEngine, ServerEngine

    url = _server_url(args)
    if url:
        from .translator.client import ComfyClient

        return ServerEngine(ComfyClient(url, timeout=args.timeout))
    from .translator.embedded import EmbeddedEngine

    return LocalEngine(EmbeddedEngine(models_dir=getattr(args, "models_dir", None)))


def _emit(args, payload: dict, text: str) -> None:
    if args.json:
        print(json.dumps(payload, indent=2))
    else:
        print(text)


def _input_error(message: str) -> AnimStudioError:
    """An error in what the user asked for (a language no voice speaks, a missing voice): exit status 2."""
    error = AnimStudioError(message)
    error.exit_code = 2
    return error
