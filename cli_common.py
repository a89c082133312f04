"""What every command module of the CLI shares: printing a result (text, or JSON with ``--json``) and the
error for a mistake in what the user asked for. The CLI owns the terminal; nothing else prints."""
from __future__ import annotations

import json

from .common.errors import AnimStudioError


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
