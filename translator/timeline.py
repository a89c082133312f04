"""The film's cut as one OpenTimelineIO timeline, built by the translator from the storyboard and its rendered shots
(``OUT/shots/``): a video track of the shots' own videos joined by the storyboard's transitions (each clip keeps its
transition, and a marker for each of its lines), dialogue tracks of each line's own sound, the music bed on its own
track; each shot's clip keeps its camera (the move, its strength, where it came from: the storyboard or a line's
emotion) and each line's marker its emotion and delivery (prosody, mouth openness). The compositor renders the film
from it (:func:`..nodes.film.editorial.film_from_cut`), the film's record keys on it, and the editors' exports are the
same timeline counted at their rates.

Media are named relative to the output folder (the music is copied to ``OUT/media/``), so the folder can move."""
from __future__ import annotations

import shutil
from pathlib import Path

from .compile import music_gain_db
from .dialogue_graph import cues_prefix
from .emotion import with_emotion
from .render_run import shot_video
from .storyboard_model import Storyboard


def shot_cut(board: Storyboard, out_dir: Path, rate: float | None = None):
    """The cut of ``board`` from its shots rendered into ``out_dir``, counted at ``rate`` (default: the film's)."""
    from ..nodes.film.clips import Film, Transition, video_clip
    from ..nodes.film.cut import film_timeline
    from ..nodes.film.editorial import CutMedia, cut_timeline

    out_dir = Path(out_dir)
    film = Film()
    for shot in board.shots:
        film = film.append(video_clip(shot_video(out_dir, shot.id), shot.id),
                           Transition(shot.transition.type, shot.transition.duration))
    timeline = with_emotion(board, film_timeline(film))  # each shot's camera and each line's delivery kept with it
    sounds = line_sounds(board, out_dir)
    media = CutMedia(shots=tuple(shot_video(out_dir, e["shot"]).relative_to(out_dir).as_posix() for e in timeline),
                     lines=tuple(sounds.get(e["shot"], ()) for e in timeline), music=_music_media(board, out_dir))
    return cut_timeline(board.project.title, float(board.project.fps), timeline, [t.kind for t in film.transitions],
                        media, rate, [t.seconds for t in film.transitions], music_gain_db(board))


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


def _music_media(board: Storyboard, out_dir: Path) -> str:
    """The music bed copied beside the shots (``OUT/media/<file>``), named relative to ``out_dir``; "" for none."""
    if not board.music:
        return ""
    target = out_dir / "media" / board.music[0].file.name
    source = board.music[0].file
    if not target.is_file() or target.stat().st_size != source.stat().st_size \
            or target.stat().st_mtime_ns < source.stat().st_mtime_ns:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    return target.relative_to(out_dir).as_posix()
