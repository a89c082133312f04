"""A character's LoRA trained inside a graph (core's ``TrainLoraNode``), saved where loaders find it.

Core's Save LoRA Weights writes into the output folder and reports nothing, so a headless client cannot find the
file and no LoRA loader lists it. :func:`save_character_lora` writes the trained weights once into
``models/loras/animstudio/<name>.safetensors`` (the first ``loras`` folder ComfyUI knows, so the pack's Character
LoRA node and core's Load LoRA list it at once) and once into the output folder, reported like a saved picture, for
the client to download.
"""
from __future__ import annotations

import logging
from pathlib import Path

from .. import boundary
from ...common.paths import safe_filename, written_atomically

log = logging.getLogger(__name__)

LORA_FOLDER = "loras"
SUBFOLDER = "animstudio"


def save_character_lora(lora_sd: dict, name: str, steps: int | None = None) -> tuple[str, Path, tuple[str, str]]:
    """Save ``lora_sd`` (TrainLoraNode's ``lora`` output: key -> tensor) as ``animstudio/<name>.safetensors`` in
    ComfyUI's loras folder (replacing an earlier training of the same name) and as a copy in the output folder.

    Returns the name loaders take (``animstudio/<name>.safetensors``), the file's path, and the copy's
    (subfolder, filename) for ``/view``."""
    import safetensors.torch

    if not lora_sd:
        raise ValueError("the trained LoRA holds no weights")
    fp = boundary.comfy_folder_paths()
    if fp is None:
        raise RuntimeError("saving a trained LoRA needs ComfyUI's models/loras folder: run inside ComfyUI")
    stem = safe_filename(name, "character").removesuffix(".safetensors")
    folder = Path(fp.get_folder_paths(LORA_FOLDER)[0]) / SUBFOLDER
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{stem}.safetensors"
    metadata = {"animstudio_character": name, **({"training_steps": str(steps)} if steps is not None else {})}
    tensors = {k: v.detach().contiguous() for k, v in lora_sd.items()}
    with written_atomically(target) as partial:
        safetensors.torch.save_file(tensors, str(partial), metadata=metadata)
    copy, subfolder, filename = boundary.next_output_path(f"{SUBFOLDER}/loras/{stem}", "safetensors")
    safetensors.torch.save_file(tensors, str(copy), metadata=metadata)
    log.info("trained LoRA for %s saved as %s (%d tensors)", name, target, len(tensors))
    return f"{SUBFOLDER}/{target.name}", target, (subfolder, filename)
