"""The finished cut for editors, from the CLI: the film's own timeline (:mod:`.timeline`) with each shot's own video
(``OUT/shots/``), each dialogue line's own sound (the WAV Save Mouth Cues kept beside its cues) and the music bed
(copied to ``OUT/media/``) as separate media, all named relative to the output folder, so the folder can move, an
editor relinks nothing, and the cut can be re-timed and re-mixed."""
from __future__ import annotations

from pathlib import Path

from ..common.errors import AnimStudioError
from ..nodes.film.editorial import EXPORTS, cut_points, edl_rate, export_rate, parse_exports, write_cut
from .render_run import shot_video
from .storyboard_model import Storyboard
from .timeline import line_sounds, shot_cut

__all__ = ["EXPORTS", "parse_exports", "edl_rate", "cut_points", "write_exports", "line_sounds"]


def write_exports(board: Storyboard, out_dir: Path, film: Path, kinds: tuple[str, ...]) -> list[Path]:
    """Each export of ``kinds`` written beside ``film`` (``<title>.fcpxml`` …): the film's cut
    (:func:`.timeline.shot_cut`, the timeline it was composed from) counted at each format's rate; returns the
    files."""
    if not kinds:
        return []
    missing = [s.id for s in board.shots if not shot_video(out_dir, s.id).is_file()]
    if missing:
        raise AnimStudioError(f"exports need each shot's own video (render shot by shot): missing {', '.join(missing)}")
    return [write_cut(shot_cut(board, out_dir, export_rate(kind, board.project.fps)), film.with_suffix(EXPORTS[kind][1]),
                      kind) for kind in kinds]
