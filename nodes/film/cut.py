"""The cut rendered: a film (its clips and transitions) streamed into a video file with burned-in captions and its
sound (the clips' sound at their times, a ducked music bed, mastered when asked), with progress and ComfyUI's
interrupt; and its timeline, each shot's time on screen."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .. import boundary
from ..audio.mastering import mastered
from .clips import Film
from .transitions import iter_film_frames
from .clips import without_speakers
from .editorial import export_film_cut, export_rate
from .sidecars import sidecar_text
from .soundtrack import Soundtrack
from .splice import FrameCounts, smart_render
from .subtitles import SubtitleStyle, active_caption, burn_in, caption_text, find_font
from .video_io import write_video


def render_film(film: Film, path, subtitles: SubtitleStyle | None = None, music=None, music_gain_db: float = -14.0,
                duck_db: float = -10.0, crf: int = 18, loudness_lufs: float | None = None,
                key_frames: tuple[int, ...] | None = None, segments: Path | None = None) -> FrameCounts:
    """Stream ``film`` into a video at ``path`` (format from its suffix), with progress and ComfyUI's interrupt.

    Burned-in captions are drawn once per line and laid over each frame; the soundtrack is the clips'
    sound placed at their times, with ``music`` ducked under it when given; with ``loudness_lufs`` it is mastered
    (levelled to that integrated loudness, under -1 dBTP, faded at the film's ends).

    With ``segments`` (a folder kept between renders) an MP4 whose clips are videos encoded to be joined at this
    ``crf`` is joined from them by stream copy, only the transitions encoded again (:mod:`.splice`). With
    ``key_frames`` (frame numbers, negative ones from the end) the video is itself encoded to be joined so, a fresh
    picture group starting at each of them. Returns how many frames were encoded and how many copied.
    """
    if not film.clips:
        raise ValueError("the film has no clips")
    first = film.clips[0]
    progress = boundary.Progress(film.frame_count)
    captions = film.subtitle_track() if subtitles is not None else ()
    if captions:
        for cue in captions:  # fail before encoding anything if a caption has no font
            find_font(caption_text(cue), subtitles.font)

    def frames():
        for index, frame in enumerate(iter_film_frames(film)):
            boundary.check_interrupted()
            caption = active_caption(captions, index / film.fps) if captions else None
            yield burn_in(frame, caption, subtitles) if caption else frame

    sound = soundtrack(film, music, music_gain_db, duck_db, loudness_lufs)
    if segments is not None and not captions and Path(path).suffix.lower() == ".mp4":
        joined = smart_render(film, Path(path), sound, crf, segments, lambda: progress.update(1))
        if joined is not None:
            return joined
    keys = None if key_frames is None else {k if k >= 0 else film.frame_count + k for k in key_frames}
    write_video(frames(), path, first.fps, first.width, first.height, crf=crf,
                on_frame=lambda n: progress.update(1), audio=sound, key_frames=keys)
    return FrameCounts(film.frame_count)


@dataclass(frozen=True)
class FinishedFilm:
    """What finishing a film wrote (the film first, then its sidecars and exports), its timeline (see
    :func:`film_timeline`) and how many frames were encoded and copied."""

    files: tuple[Path, ...]
    timeline: list[dict]
    frames: FrameCounts


def finish_film(film: Film, path: Path, style: SubtitleStyle, burn: bool = False, subtitle_files: str = "none",
                speaker: bool = True, music=None, music_gain_db: float = -14.0, duck_db: float = -10.0, crf: int = 18,
                loudness_lufs: float | None = None, key_frames: tuple[int, ...] | None = None,
                segments: Path | None = None, exports: tuple[str, ...] = ()) -> FinishedFilm:
    """The film rendered to ``path`` (:func:`render_film`), its subtitle sidecars (``subtitle_files``: ``srt``,
    ``vtt``, ``ass`` joined by ``+``) and editors' ``exports`` written beside it: what Save Film does, and the
    compositor that renders a cut outside ComfyUI."""
    for kind in exports:  # a rate an editor's format cannot count is refused before anything is encoded
        export_rate(kind, film.fps)
    if not speaker:
        film = without_speakers(film)
    counts = render_film(film, path, style if burn else None, music, music_gain_db, duck_db, crf, loudness_lufs,
                         key_frames, segments)
    files = [Path(path)]
    cues = film.subtitle_track()
    for kind in ("srt", "vtt", "ass"):
        if cues and kind in subtitle_files.split("+"):  # a film without dialogue gets no empty sidecars
            sidecar = Path(path).with_suffix(f".{kind}")
            sidecar.write_text(sidecar_text(kind, cues, film, style), encoding="utf-8")
            files.append(sidecar)
    timeline = film_timeline(film)
    files += export_film_cut(Path(path), film.fps, timeline, [t.kind for t in film.transitions], exports)
    return FinishedFilm(tuple(files), timeline, counts)


def film_timeline(film: Film) -> list[dict]:
    """Each clip's time on screen in the cut and its lines' times in the film, in order:
    ``[{"shot": label, "start": s, "end": s, "lines": [{"speaker": name, "text": t, "start": s, "end": s}]}]``."""
    starts = film.clip_starts()
    out = []
    for i, clip in enumerate(film.clips):
        lines = [{"speaker": cue.speaker, "text": cue.text, "start": round(cue.start, 3), "end": round(cue.end, 3)}
                 for cue in film.placed_subtitles(i, starts[i])]
        out.append({"shot": clip.label, "start": round(starts[i] / film.fps, 3),
                    "end": round((starts[i] + clip.frame_count) / film.fps, 3), "lines": lines})
    return out


def soundtrack(film: Film, music=None, music_gain_db: float = -14.0, duck_db: float = -10.0,
               loudness_lufs: float | None = None):
    """The film's sound, streamed: clip audio at clip times plus a ducked music bed, mastered to ``loudness_lufs``
    when given; None when the film is silent."""
    if music is None and not any(c.audio is not None for c in film.clips):
        return None
    if loudness_lufs is None:
        return Soundtrack(film, music, music_gain_db, duck_db)
    return mastered(lambda: Soundtrack(film, music, music_gain_db, duck_db, soft_clip=False), loudness_lufs)
