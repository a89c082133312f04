"""A character's own LoRA, trained as a job: the graph (core's ``TrainLoraNode`` on the project's checkpoint, the
character's sheet and reference pictures as the data set, the pack's Save Character LoRA), running it, and
registering the saved LoRA in the storyboard's character so every generated keyframe of the checkpoint family
loads it through the Character LoRA node."""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from ..common.errors import AnimStudioError, Problem, StoryboardError
from ..common.jsonio import json_path, read_json
from .client import write_atomically
from .compile import CompiledGraph
from .engines import Engine
from .keyframes import REFERENCE_SUBFOLDER
from .render_run import fetch_outputs, run_unscoped_graph
from .storyboard_model import Storyboard
from .templates import FILM_SCOPE, Graph, Upload, content_upload, instantiate

TRAINING_DTYPES = ("bf16", "fp32")


@dataclass(frozen=True)
class TrainingSettings:
    steps: int = 400
    rank: int = 16
    learning_rate: float = 1e-4
    batch_size: int = 1
    training_dtype: str = "bf16"  # fp32 on a CPU


@dataclass(frozen=True)
class TrainedLora:
    character: str
    lora_name: str          # as loaders take it: animstudio/<character>-<digest>.safetensors
    trigger_word: str
    pictures: int
    local_copy: Path | None
    seconds: float = 0.0


def trigger_word(board: Storyboard, cid: str) -> str:
    """The word that calls the character up: the LoRA's first trigger word when it has one, else ``<id>_char``."""
    lora = board.characters[cid].lora
    return lora.trigger_words[0] if lora and lora.trigger_words else f"{cid}_char"


def training_pictures(board: Storyboard, cid: str, sheet: Path | None = None) -> list[Path]:
    """What the LoRA learns from: the character's sheet (their own, else ``sheet``, one rendered for a reference
    family) and their reference pictures; refused at the character's JSON path when there is none."""
    if cid not in board.characters:
        known = ", ".join(sorted(board.characters)) or "none"
        raise StoryboardError(f"{board.source}: no character {cid!r} to train", [Problem(
            "$.characters", f"unknown character {cid!r} (known: {known})")])
    character = board.characters[cid]
    pictures = [p for p in (character.sheet or sheet,) if p is not None] + list(character.reference_images)
    if not pictures:
        raise StoryboardError(f"{board.source}: nothing to train {cid!r}'s LoRA on", [Problem(
            json_path(["characters", cid, "reference_images"]), "give at least one reference image (or a sheet)")])
    if not board.project.checkpoint:
        raise StoryboardError(f"{board.source}: a character LoRA is trained on the project's checkpoint", [Problem(
            "$.project.checkpoint", "required to train a character's LoRA")])
    return pictures


def lora_stem(board: Storyboard, cid: str, pictures: list[Path], settings: TrainingSettings) -> str:
    """``<character>-<digest>``: a new name whenever the pictures, checkpoint or settings change, so a render
    cached with the earlier LoRA is never mistaken for one made with the new."""
    digest = hashlib.sha256(json.dumps([board.project.checkpoint, asdict(settings), trigger_word(board, cid),
                                        [content_upload(p, "").filename for p in pictures]]).encode())
    return f"{cid}-{digest.hexdigest()[:10]}"


def compile_training(board: Storyboard, cid: str, pictures: list[Path],
                     settings: TrainingSettings = TrainingSettings()) -> CompiledGraph:
    """The training graph: each picture loaded and scaled (centre crop) to the project's size, batched, encoded
    with the checkpoint's VAE; the trigger word and description as the prompt; TrainLoraNode; Save Character LoRA."""
    graph: Graph = {}
    node_shots: dict[str, str | None] = {}
    uploads: list[Upload] = []
    scope = f"train-{cid}"
    instantiate("checkpoint", FILM_SCOPE, graph, node_shots, None, {"checkpoint": board.project.checkpoint})
    checkpoint = f"{FILM_SCOPE}:checkpoint"
    width, height = (board.project.width // 8) * 8, (board.project.height // 8) * 8
    batch = None
    for k, path in enumerate(pictures):
        upload = content_upload(path, REFERENCE_SUBFOLDER)
        uploads.append(upload)
        image = instantiate("training_picture", f"{scope}:picture-{k + 1}", graph, node_shots, None,
                            {"image": upload.name, "width": width, "height": height})["image"]
        batch = image if batch is None else instantiate(
            "image_batch", f"{scope}:picture-{k + 1}", graph, node_shots, None, {},
            {"first": batch, "second": image})["image"]
    character = board.characters[cid]
    seed = int.from_bytes(hashlib.sha256(f"{board.project.seed}:train:{cid}".encode()).digest()[:6], "big")
    instantiate("train_lora", scope, graph, node_shots, None, {
        "prompt": f"{trigger_word(board, cid)}, {character.display_name}: {character.description}",
        "steps": settings.steps, "rank": settings.rank, "learning_rate": settings.learning_rate,
        "batch_size": settings.batch_size, "training_dtype": settings.training_dtype, "seed": seed,
        "name": lora_stem(board, cid, pictures, settings),
    }, {"model": [checkpoint, 0], "clip": [checkpoint, 1], "vae": [checkpoint, 2], "pictures": batch})
    return CompiledGraph(f"train-{cid}", graph, node_shots, uploads, kind="train")


def train_character(board: Storyboard, cid: str, engine: Engine, out_dir: Path, reporter,
                    settings: TrainingSettings = TrainingSettings(), sheet: Path | None = None) -> TrainedLora:
    """Run the training graph on ``engine``; the LoRA stays in the server's ``models/loras/animstudio/``, a copy
    comes to ``OUT/loras/``."""
    import time

    from .render_report import RenderReport

    pictures = training_pictures(board, cid, sheet)
    compiled = compile_training(board, cid, pictures, settings)
    report = RenderReport(board.source, engine.name, "train")
    started = time.monotonic()
    reporter.stage(f"training {board.characters[cid].display_name}'s LoRA: {settings.steps} steps on "
                   f"{len(pictures)} picture(s)")
    outputs = run_unscoped_graph(compiled, "train", engine, reporter, report)
    saved = (outputs.get(f"train-{cid}:save") or {}).get("loras") or []
    if not saved or "lora_name" not in saved[0]:
        raise AnimStudioError(f"character {cid!r}: the training graph ran but reported no saved LoRA")
    files = fetch_outputs({f"train-{cid}:save": {"loras": saved}}, engine, Path(out_dir))
    local = None
    if files:
        local = Path(out_dir) / "loras" / f"{lora_stem(board, cid, pictures, settings)}.safetensors"
        local.parent.mkdir(parents=True, exist_ok=True)
        files[0].replace(local)
    return TrainedLora(cid, saved[0]["lora_name"], trigger_word(board, cid), len(pictures), local,
                       round(time.monotonic() - started, 3))


def register_lora(storyboard_path: Path, trained: TrainedLora) -> str:
    """Write the trained LoRA into the storyboard's character (``lora.file``, the trigger word first; weight and
    weight range kept), atomically; returns the JSON path written."""
    import fcntl
    import os

    path = Path(storyboard_path)
    folder = os.open(path.parent, os.O_RDONLY)  # its folder's lock: two train jobs of a batch write one at a time
    try:
        fcntl.flock(folder, fcntl.LOCK_EX)
        data = read_json(path, error=StoryboardError)
        character = data["characters"][trained.character]
        lora = dict(character.get("lora") or {})
        words = [w for w in lora.get("trigger_words", []) if w != trained.trigger_word]
        lora.update(file=trained.lora_name, trigger_words=[trained.trigger_word, *words])
        lora.setdefault("weight", 1.0)
        character["lora"] = lora
        write_atomically(path, (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode())
    finally:
        os.close(folder)  # and with it the lock
    return json_path(["characters", trained.character, "lora"])
