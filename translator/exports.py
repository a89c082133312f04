"""The finished cut for editors, from the CLI: :mod:`..nodes.film.editorial`'s timeline with each shot's own video
(``OUT/shots/``), each dialogue line's own sound (the WAV Save Mouth Cues kept beside its cues) and the music bed
(copied to ``OUT/media/``) as separate media, all named relative to the output folder, so the folder can move, an
editor relinks nothing, and the cut can be re-timed and re-mixed."""
from __future__ import annotations

import shutil
from pathlib import Path

from ..common.errors import AnimStudioError
from ..nodes.film.editorial import (EXPORTS, CutMedia, cut_points, cut_timeline, edl_rate, export_rate,
                                    parse_exports, write_cut)
from .dialogue_graph import cues_prefix
from .storyboard_model import Storyboard

__all__ = ["EXPORTS", "parse_exports", "edl_rate", "cut_points", "write_exports", "line_sounds"]


def line_sounds(board: Storyboard, out_dir: Path) -> dict[str, tuple[str, ...]]:
    """Each shot's lines' own sounds, relative to ``out_dir`` (the newest WAV saved under each line's cue prefix;
    "" where none was kept)."""
    out: dict[str, tuple[str, ...]] = {}
    for shot in board.shots:
        found = []
        for index in range(len(shot.dialogue)):
            prefix = Path(out_dir) / "outputs" / cues_prefix(shot, index)
            saved = sorted(prefix.parent.glob(f"{prefix.name}_*_.wav"))
            found.append(saved[-1].relative_to(out_dir).as_posix() if saved else "")
        out[shot.id] = tuple(found)
    return out


def write_exports(board: Storyboard, out_dir: Path, film: Path, timeline: list[dict], kinds: tuple[str, ...],
                  shot_files: dict[str, Path]) -> list[Path]:
    """Each export of ``kinds`` written beside ``film`` (``<title>.fcpxml`` …); returns the files."""
    if not kinds:
        return []
    missing = [e["shot"] for e in timeline if e["shot"] not in shot_files or not shot_files[e["shot"]].is_file()]
    if missing or not timeline:
        raise AnimStudioError(f"exports need each shot's own video (render shot by shot): missing {', '.join(missing)}"
                              if missing else "exports need the film's timeline, which the render did not report")
    music = ""
    if board.music:
        target = out_dir / "media" / board.music[0].file.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(board.music[0].file, target)
        music = target.relative_to(out_dir).as_posix()
    sounds = line_sounds(board, out_dir)
    media = CutMedia(shots=tuple(shot_files[e["shot"]].relative_to(out_dir).as_posix() for e in timeline),
                     lines=tuple(sounds.get(e["shot"], ()) for e in timeline), music=music)
    transitions = [board.shot(e["shot"]).transition.type for e in timeline]
    return [write_cut(cut_timeline(board.project.title, float(board.project.fps), timeline, transitions, media,
                                   export_rate(kind, board.project.fps)), film.with_suffix(EXPORTS[kind][1]), kind)
            for kind in kinds]
