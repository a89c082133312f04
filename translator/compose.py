"""The film composed from its rendered shots (``OUT/shots/``): joined with transitions, subtitles and music, kept as it
is when nothing it is made of changed, then checked (quality control)."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path


from ..common.errors import AnimStudioError
from .client import write_atomically
from .compile import FINAL_CRF, SHOT_VIDEO_SUBFOLDER, CompiledGraph, compile_compose, slug
from .embedded import foreign_node_types
from .engines import Engine
from .render_qc import film_qc, reported_timeline
from .render_report import RenderReport, Reporter
from .render_run import (SHOT_SIDECAR, check_before_upload, fetch_outputs, graph_key, node_warnings, progress_events,
                         shot_video, upload_all)
from .storyboard_model import Storyboard
from .emotion import with_emotion
from .timeline import shot_cut


def compose_film(board: Storyboard, out_dir: Path, engine: Engine, reporter: Reporter,
                 report: RenderReport) -> Path | None:
    """Join the shots' videos into the film, with transitions, subtitles and music: here, from the film's cut
    (:func:`.timeline.shot_cut`, rendered by :func:`render_cut` reading the shots where they lie), or on ``engine``
    by the compose graph when it needs nodes of ComfyUI's own. A film already composed from the same shots, captions,
    cut and graph is kept as it is (nothing encoded: the report says it is up to date)."""
    videos = {shot.id: shot_video(out_dir, shot.id) for shot in board.shots}
    missing = [shot_id for shot_id, path in videos.items() if not path.is_file()]
    if missing:
        raise AnimStudioError(f"{board.source}: cannot compose the film before every shot is rendered "
                              f"(missing: {', '.join(missing)})")
    compose = compile_compose(board, videos)
    cut = None if foreign_node_types(compose.graph) else shot_cut(board, out_dir)
    key = _compose_key(compose, videos.values(), cut)
    if _up_to_date(out_dir, key, reporter, report):
        return out_dir / report.film
    reporter.stage("composing the film")
    if cut is not None:
        with report.timed("compose"):
            done = render_cut(board, cut, out_dir, reporter)
        files, timeline = list(done.files), done.timeline
        report.add_frames(done.frames.encoded, done.frames.copied)
    else:
        files, timeline = _compose_on(engine, compose, out_dir, reporter, report)
    film = film_file(files, out_dir, board)
    report.outputs += [f.relative_to(out_dir).as_posix() for f in files]
    report.film = film.relative_to(out_dir).as_posix() if film else None
    check_film(film, timeline, out_dir, board, report)
    if film is not None:
        write_atomically(_compose_record(out_dir), json.dumps({
            "key": key, "film": report.film, "timeline": report.timeline, "qc": report.qc,
            "outputs": [f.relative_to(out_dir).as_posix() for f in files]}, indent=2).encode())
    return film


def render_cut(board: Storyboard, cut, out_dir: Path, reporter: Reporter):
    """The compositor: the film ``cut`` describes, rendered into ``out_dir`` (``<title>.mp4`` and its subtitle
    sidecars) from the shot videos it names, streaming, with the storyboard's finishing: captions as the shots carry
    them, the music bed, the loudness target; its transitions are the only frames encoded again when the shots were
    encoded to be joined (smart rendering, re-encoded stretches kept in ``OUT/shots/.segments/``)."""
    from ..nodes.audio.clip import read_audio
    from ..nodes.boundary import progress_hook
    from ..nodes.film.cut import finish_film
    from ..nodes.film.editorial import film_from_cut
    from ..nodes.film.subtitles import SubtitleStyle, system_font

    film, music = film_from_cut(cut, out_dir)
    subtitles = board.project.subtitles
    font = str(subtitles.font_file) if subtitles.font_file else system_font(subtitles.font) if subtitles.font else ""
    style = SubtitleStyle(font=font, size=subtitles.size, position=subtitles.position)
    path = Path(out_dir) / f"{slug(board.project.title)}.mp4"
    with progress_hook(lambda done, total: reporter.shot_progress(None, done, total)):
        return finish_film(film, path, style, False, subtitles.files, subtitles.speaker,
                           read_audio(music[0]) if music else None, music[1] if music else -60.0, -10.0, FINAL_CRF,
                           board.project.loudness or None, segments=Path(out_dir) / "shots" / ".segments")


def _compose_on(engine: Engine, compose: CompiledGraph, out_dir: Path, reporter: Reporter,
                report: RenderReport) -> tuple[list[Path], list[dict]]:
    """The compose graph run on ``engine`` (the shots uploaded under names of their content, so films sharing a server
    never mix, each with its captions beside it); the files it saved, downloaded, and the film's timeline."""
    check_before_upload(compose, engine, report)
    with report.timed("upload"):
        names = upload_all(compose, engine)
        for upload in compose.uploads:
            sidecar = upload.local_path.with_suffix(SHOT_SIDECAR)
            if upload.subfolder == SHOT_VIDEO_SUBFOLDER and sidecar.is_file():
                engine.upload(sidecar, upload.subfolder, Path(upload.filename).with_suffix(SHOT_SIDECAR).name)
    with report.timed("compose"):
        outputs = engine.run(compose.graph, compose.node_shots, progress_events(compose, reporter, report), names)
    report.count_frames(outputs)
    for shot_id, texts in node_warnings(outputs, compose.node_shots).items():
        report.shots[shot_id].warnings += [t for t in texts if t not in report.shots[shot_id].warnings]
    with report.timed("download"):
        return fetch_outputs(outputs, engine, out_dir), reported_timeline(outputs)


def _compose_record(out_dir: Path) -> Path:
    """What the last compose made and from what (``OUT/shots/film.json``): the key, the film, its timeline and QC."""
    return Path(out_dir) / "shots" / "film.json"


def _compose_key(compose: CompiledGraph, videos, cut=None) -> str:
    """What the film depends on: the compose graph (the shot videos are in it by their content, and the finishing:
    subtitles, music, loudness), each shot's caption sidecar, uploaded beside its video, and the cut it is rendered
    from (each clip's media, range, transition and markers)."""
    from .templates import path_digest

    sidecars = [v.with_suffix(SHOT_SIDECAR) for v in videos]
    digests = [path_digest(p) if p.is_file() else "-" for p in sidecars]
    edit = cut.to_json_string() if cut is not None else "-"
    return hashlib.sha256("|".join([graph_key(compose), *digests, edit]).encode()).hexdigest()


def _up_to_date(out_dir: Path, key: str, reporter: Reporter, report: RenderReport) -> bool:
    """Whether the film on disk was composed from exactly this: then the report takes its timeline and QC from that
    render, and nothing is uploaded, run or encoded."""
    try:
        record = json.loads(_compose_record(out_dir).read_text())
    except (OSError, ValueError):
        return False
    film = out_dir / str(record.get("film", ""))
    if record.get("key") != key or not record.get("film") or not film.is_file():
        return False
    reporter.stage("nothing changed: the film is up to date")
    report.up_to_date = True
    report.film, report.timeline, report.qc = record["film"], record.get("timeline", []), record.get("qc")
    report.outputs += [p for p in record.get("outputs", []) if (out_dir / p).is_file()]
    return True


def check_film(film: Path | None, timeline: list[dict], out_dir: Path, board: Storyboard,
               report: RenderReport) -> None:
    """The finished film's timeline (each shot's time on screen) and quality control, into the report."""
    if film is None:
        return
    report.timeline = with_emotion(board, timeline)  # each shot's camera, each line's emotion and delivery
    with report.timed("qc"):
        report.qc = film_qc(film, report.timeline, out_dir, board.project.loudness)


def film_file(files: list[Path], out_dir: Path, board: Storyboard) -> Path | None:
    """The film the graph saved, moved to ``OUT/<title>.mp4`` with its subtitle sidecars (one copy of the film, not
    a second one under ``outputs/``); the moved files leave ``files``."""
    films = [f for f in files if f.suffix == ".mp4"]
    if not films:
        return None
    target = out_dir / f"{slug(board.project.title)}.mp4"
    for moved in [films[-1]] + [films[-1].with_suffix(f".{kind}") for kind in ("srt", "vtt", "ass")]:
        if moved in files:
            os.replace(moved, target.with_suffix(moved.suffix))
            files.remove(moved)
    return target


