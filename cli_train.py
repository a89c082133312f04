"""``animstudio train-character``: a character's own LoRA, trained on a ComfyUI server from their sheet and reference
pictures (:mod:`.translator.training`), and registered in the storyboard."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .cli_common import _emit, _engine
from .cli_progress import BarReporter


def _positive(kind):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not value > 0:
            raise argparse.ArgumentTypeError(f"expected a number above 0, got {text!r}")
        return value
    return parse


def add_train_commands(sub, common) -> None:
    p = sub.add_parser("train-character", help="train a character's own LoRA (core's Train LoRA on the project's "
                                               "checkpoint, from their sheet and reference pictures) and register it "
                                               "in the storyboard")
    p.add_argument("storyboard")
    p.add_argument("character", help="the character's id in the storyboard")
    p.add_argument("-o", "--output", help="folder for the render outputs: a rendered sheet is read from OUT/sheets/, "
                                          "a copy of the LoRA written to OUT/loras/ (default: train-<character> "
                                          "beside the storyboard)")
    p.add_argument("--steps", type=_positive(int), default=400, help="training steps (default 400)")
    p.add_argument("--rank", type=_positive(int), default=16, help="LoRA rank (default 16)")
    p.add_argument("--learning-rate", type=_positive(float), default=1e-4, help="(default 0.0001)")
    p.add_argument("--batch-size", type=_positive(int), default=1, help="(default 1)")
    p.add_argument("--training-dtype", choices=["bf16", "fp32"], default="bf16",
                   help="bf16 on a GPU (default); fp32 on a CPU")
    p.add_argument("--no-register", action="store_true", help="train and save, but leave the storyboard as it is")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    common(p)
    p.set_defaults(func=cmd_train_character)


def cmd_train_character(args) -> int:
    from .translator.render_sheets import sheet_file
    from .translator.storyboard import load_storyboard
    from .translator.training import TrainingSettings, register_lora, train_character, training_pictures

    board = load_storyboard(args.storyboard)
    out = Path(args.output) if args.output else Path(args.storyboard).resolve().parent / f"train-{args.character}"
    rendered = sheet_file(out, args.character)
    sheet = rendered if rendered.is_file() else None
    training_pictures(board, args.character, sheet)  # refused before an engine starts
    settings = TrainingSettings(steps=args.steps, rank=args.rank, learning_rate=args.learning_rate,
                                batch_size=args.batch_size, training_dtype=args.training_dtype)
    engine = _engine(args)
    bars = BarReporter(enabled=not args.json and not args.quiet and sys.stderr.isatty())
    try:
        bars.start([], 1)
        trained = train_character(board, args.character, engine, out, bars, settings, sheet)
    finally:
        bars.close()
        engine.close()
    where = None if args.no_register else register_lora(Path(args.storyboard), trained)
    _emit(args, {"ok": True, "character": trained.character, "lora": trained.lora_name,
                 "trigger_word": trained.trigger_word, "pictures": trained.pictures, "steps": settings.steps,
                 "seconds": trained.seconds, "copy": str(trained.local_copy) if trained.local_copy else None,
                 "registered_at": where},
          f"trained {args.character}'s LoRA on {trained.pictures} picture(s), {settings.steps} steps, in "
          f"{trained.seconds:.1f} s: {trained.lora_name} (trigger word {trained.trigger_word!r})"
          + (f"\n  registered in {args.storyboard} at {where}" if where else "")
          + (f"\n  copy: {trained.local_copy}" if trained.local_copy else ""))
    return 0
