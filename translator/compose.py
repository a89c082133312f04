"""The film composed from its rendered shots (``OUT/shots/``): joined with transitions, subtitles and music, kept as it
is when nothing it is made of changed, then checked (quality control)."""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any, Mapping

from ..common.errors import AnimStudioError
from .client import write_atomically
from .compile import SHOT_VIDEO_SUBFOLDER, CompiledGraph, compile_compose, slug
from .embedded import EmbeddedEngine, foreign_node_types
from .engines import Engine, LocalEngine
from .render_qc import film_qc, reported_timeline
from .render_report import RenderReport, Reporter
from .render_run import (SHOT_SIDECAR, check_before_upload, fetch_outputs, graph_key, node_warnings, progress_events,
                         shot_video, upload_all)
from .storyboard_model import Storyboard


def compose_film(board: Storyboard, out_dir: Path, engine: Engine, reporter: Reporter,
                 report: RenderReport) -> Path | None:
    """Join the shots' videos (uploaded under names of their content, so films sharing a server never mix)
    into the film, with transitions, subtitles and music; a film already composed from the same shots, captions and
    graph is kept as it is (nothing encoded: the report says it is up to date)."""
    videos = {shot.id: shot_video(out_dir, shot.id) for shot in board.shots}
    missing = [shot_id for shot_id, path in videos.items() if not path.is_file()]
    if missing:
        raise AnimStudioError(f"{board.source}: cannot compose the film before every shot is rendered "
                              f"(missing: {', '.join(missing)})")
    compose = compile_compose(board, videos)
    key = _compose_key(compose, videos.values())
    if _up_to_date(out_dir, key, reporter, report):
        return out_dir / report.film
    reporter.stage("composing the film")
    with compositor(compose, out_dir, engine) as composer:
        check_before_upload(compose, composer, report)
        with report.timed("upload"):
            names = upload_all(compose, composer)
            for upload in compose.uploads:
                sidecar = upload.local_path.with_suffix(SHOT_SIDECAR)
                if upload.subfolder == SHOT_VIDEO_SUBFOLDER and sidecar.is_file():
                    composer.upload(sidecar, upload.subfolder, Path(upload.filename).with_suffix(SHOT_SIDECAR).name)
        with report.timed("compose"):
            outputs = composer.run(compose.graph, compose.node_shots, progress_events(compose, reporter, report), names)
        report.count_frames(outputs)
        for shot_id, texts in node_warnings(outputs, compose.node_shots).items():
            report.shots[shot_id].warnings += [t for t in texts if t not in report.shots[shot_id].warnings]
        with report.timed("download"):
            files = fetch_outputs(outputs, composer, out_dir)
    film = film_file(files, out_dir, board)
    report.outputs += [f.relative_to(out_dir).as_posix() for f in files]
    report.film = film.relative_to(out_dir).as_posix() if film else None
    check_film(film, outputs, out_dir, board, report)
    if film is not None:
        write_atomically(_compose_record(out_dir), json.dumps({
            "key": key, "film": report.film, "timeline": report.timeline, "qc": report.qc,
            "outputs": [f.relative_to(out_dir).as_posix() for f in files]}, indent=2).encode())
    return film


@contextlib.contextmanager
def compositor(compose: CompiledGraph, out_dir: Path, engine: Engine):
    """Where the film is composed: here, by the pack's own nodes in this process, reading the shots where they lie in
    ``OUT/shots/`` (linked into a working folder beside them, not uploaded anywhere) and writing the film beside
    them; on ``engine`` only when the compose graph needs nodes of ComfyUI's own. The working folder's ``temp``
    stays: it keeps the film's re-encoded transitions for the next compose (smart rendering)."""
    if foreign_node_types(compose.graph):
        yield engine
        return
    work = Path(out_dir) / "shots" / ".compose"

    def clear() -> None:
        for entry in work.iterdir() if work.is_dir() else ():
            if entry.is_dir() and entry.name != "temp":
                shutil.rmtree(entry, ignore_errors=True)
            elif not entry.is_dir():
                entry.unlink(missing_ok=True)

    clear()
    local = LocalEngine(EmbeddedEngine(work_dir=work))
    try:
        yield local
    finally:
        local.close()
        clear()


def _compose_record(out_dir: Path) -> Path:
    """What the last compose made and from what (``OUT/shots/film.json``): the key, the film, its timeline and QC."""
    return Path(out_dir) / "shots" / "film.json"


def _compose_key(compose: CompiledGraph, videos) -> str:
    """What the film depends on: the compose graph (the shot videos are in it by their content) and each shot's
    caption sidecar, uploaded beside its video."""
    from .templates import path_digest

    sidecars = [v.with_suffix(SHOT_SIDECAR) for v in videos]
    digests = [path_digest(p) if p.is_file() else "-" for p in sidecars]
    return hashlib.sha256("|".join([graph_key(compose), *digests]).encode()).hexdigest()


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


def check_film(film: Path | None, outputs: Mapping[str, Any], out_dir: Path, board: Storyboard,
                report: RenderReport) -> None:
    """The finished film's timeline (as its Save Film node reported it) and quality control, into the report."""
    if film is None:
        return
    report.timeline = reported_timeline(outputs)
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


