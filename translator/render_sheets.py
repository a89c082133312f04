"""Rendering character sheets (reference keyframe families): each made once, kept as ``OUT/sheets/<character>.png``
with the hash of the graph that made it (``.key``), so a re-run, or another keyframe of the same film, reuses it;
a character's own sheet (``characters.<id>.sheet``) is used as it is."""
from __future__ import annotations

import os
from pathlib import Path

from ..common.errors import AnimStudioError
from ..common.inputs import image_problem
from .client import write_atomically
from .compile import compile_sheet
from .engines import Engine
from .render_report import RenderReport, Reporter
from .render_run import fetch_outputs, graph_key, run_unscoped_graph
from .storyboard_model import Storyboard


def sheet_file(out_dir: Path, cid: str) -> Path:
    """Where a character's rendered sheet is kept."""
    return Path(out_dir) / "sheets" / f"{cid}.png"


def render_sheets(board: Storyboard, characters: tuple[str, ...], out_dir: Path, engine: Engine, reporter: Reporter,
                  report: RenderReport) -> dict[str, Path]:
    """The sheets of ``characters`` that a reference family edits from (character id → file), each rendered unless
    the same graph made the one kept already; the character's own sheet is named in the report, not rendered."""
    sheets: dict[str, Path] = {}
    for cid in characters:
        if cid not in board.sheet_characters():
            continue
        own = board.characters[cid].sheet
        if own is not None:
            report.sheets[cid] = str(own)
            continue
        sheets[cid] = _render_sheet(board, cid, out_dir, engine, reporter, report)
        report.sheets[cid] = sheets[cid].relative_to(out_dir).as_posix()
    return sheets


def _render_sheet(board: Storyboard, cid: str, out_dir: Path, engine: Engine, reporter: Reporter,
                  report: RenderReport) -> Path:
    compiled = compile_sheet(board, cid)
    target = sheet_file(out_dir, cid)
    key_file = target.with_suffix(".key")
    key = graph_key(compiled)
    if target.is_file() and key_file.is_file() and key_file.read_text().strip() == key \
            and image_problem(target) is None:  # a sheet damaged since is made again, not uploaded
        return target
    name = board.characters[cid].display_name
    reporter.stage(f"character sheet: {name}")
    outputs = run_unscoped_graph(compiled, "sheets", engine, reporter, report)
    with report.timed("download"):
        files = fetch_outputs(outputs, engine, out_dir)
    pictures = [f for f in files if f.suffix == ".png"]
    if not pictures:
        raise AnimStudioError(f"character {cid!r}: the sheet graph ran but saved no picture")
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(pictures[-1], target)
    write_atomically(key_file, (key + "\n").encode())
    report.outputs.append(target.relative_to(out_dir).as_posix())
    return target
