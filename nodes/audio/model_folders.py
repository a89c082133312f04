"""Where local TTS models live: ComfyUI's ``models/tts/<engine>`` folders, found without creating any.

Voices are large files the user places once; the pack looks for them where ComfyUI users already put
models (``models/`` and any ``extra_model_paths.yaml`` entries) and never downloads or creates anything.
Outside a ComfyUI process ``folder_paths`` does not exist and the list is empty.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)


def comfy_model_dirs(kind: str) -> list[Path]:
    """ComfyUI's folders for ``kind`` (e.g. ``"tts/piper"``), existing or not, in search order.

    A folder registered under the full name (``tts/piper``) comes first, then ``<registered tts>/piper``
    (the embedded runner registers each top-level models folder by its name), then ComfyUI's own
    ``models/tts/piper``.
    """
    try:
        import folder_paths  # ComfyUI's; present only inside a ComfyUI process
    except ImportError:
        return []
    head, _, tail = kind.partition("/")
    found: list[Path] = []
    for name, sub in ((kind, ""), (head, tail)):
        try:
            registered = folder_paths.get_folder_paths(name)
        except Exception:  # KeyError when nobody registered that name
            continue
        found += [Path(folder, sub) if sub else Path(folder) for folder in registered]
    models_dir = getattr(folder_paths, "models_dir", None)
    if models_dir:
        found.append(Path(models_dir, *kind.split("/")))
    unique: list[Path] = []
    for folder in found:
        if folder not in unique:
            unique.append(folder)
    return unique


def default_model_dir(kind: str) -> str:
    """The folder a missing model belongs in, as a user should read it in an error message."""
    dirs = comfy_model_dirs(kind)
    if dirs:
        return str(dirs[-1])
    return f"ComfyUI's models{os.sep}{kind.replace('/', os.sep)}"
