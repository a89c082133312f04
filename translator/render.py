"""The render pipeline, one call for the CLI and every worker: compile → check → upload → run → download → report.

Engines (:mod:`.engines`): a ComfyUI server or the embedded engine; both offer ``object_info``, ``upload``,
``run`` and ``fetch``. In the per-shot shape each shot's video is
kept in ``OUT/shots/`` with the hash of the graph that made it, so a re-run (after a crash, a fix to one
shot, Ctrl-C) renders only what changed and never loses what was already rendered.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal, Mapping

from .client import write_atomically
from .compile import CompiledFilm, CompiledGraph, compile_keyframe, compile_shot, compile_storyboard
from .engines import Engine, LocalEngine, ServerEngine
from .render_report import KeyframeAttempt, RenderReport, Reporter, ShotResult
from .render_sheets import render_sheets, sheet_file
from .render_run import (SHOT_SIDECAR, check_before_upload, chosen_keyframe, fetch_outputs, graph_key,
                         node_warnings, progress_events, run_shot_graph, shot_video, upload_all)
from .compose import check_film, compose_film, film_file
from .render_qc import reported_timeline
from ..common.errors import AnimStudioError
from .film_length import check_film_length
from .keyframes import consistency_node, keyframe_seed, scored_characters
from .storyboard_model import Shot, Storyboard

__all__ = ["Engine", "LocalEngine", "ServerEngine", "Reporter", "KeyframeAttempt", "ShotResult", "RenderReport",
           "render", "graph_key", "uses_video_models", "shot_video", "chosen_keyframe", "render_shot", "compose_film",
           "render_keyframe", "node_warnings"]

log = logging.getLogger(__name__)


def render(board: Storyboard, out_dir: str | Path, engine: Engine, shape: Literal["film", "per_shot"] = "film",
           reporter: Reporter | None = None, max_minutes: float | None = None) -> RenderReport:
    """Render ``board`` into ``out_dir``; writes ``render-report.json`` there whatever happens once it starts.
    A film longer than ``max_minutes`` (default: :func:`film_minutes_limit`) is refused before anything is done."""
    check_film_length(board, max_minutes)
    if isinstance(engine, LocalEngine):  # voices and captions are made here: refuse what this machine lacks first
        from ..common.errors import StoryboardError
        from .machine_check import machine_problems

        problems = machine_problems(board)
        if problems:
            raise StoryboardError(f"{board.source}: {len(problems)} problem(s) with this machine's voices or fonts",
                                  problems)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    reporter = reporter or Reporter()
    started = time.monotonic()
    report = RenderReport(board.source, engine.name, shape, shots={s.id: ShotResult() for s in board.shots})
    with report.timed("compile"):
        # the engine's node definitions pick the video family of `auto` motion and talking shots
        object_info = engine.object_info() if uses_video_models(board) else None
        compiled = compile_storyboard(board, shape, object_info)
    reporter.start([s.id for s in board.shots], len(compiled.graphs))
    try:
        if shape == "film":
            _render_film(compiled.graphs[0], board, out_dir, engine, reporter, report)
        else:
            _render_per_shot(compiled, out_dir, engine, reporter, report, object_info)
    except AnimStudioError as exc:
        report.error = exc.to_json()
        raise
    finally:
        report.seconds = round(time.monotonic() - started, 3)
        if report.film:
            from ..nodes.film.video_io import probe_video

            report.film_seconds = round(probe_video(out_dir / report.film).seconds, 3)
        write_atomically(out_dir / "render-report.json", json.dumps(report.to_json(), indent=2).encode())
    return report


def _render_film(compiled: CompiledGraph, board: Storyboard, out_dir: Path, engine: Engine, reporter: Reporter,
                 report: RenderReport) -> None:
    check_before_upload(compiled, engine, report)
    reporter.stage(f"uploading {len(compiled.uploads)} file(s)")
    with report.timed("upload"):
        names = upload_all(compiled, engine)
    reporter.stage(f"running on {engine.name}")
    handler = progress_events(compiled, reporter, report)
    with report.timed("render"):
        outputs = engine.run(compiled.graph, compiled.node_shots, handler, names)
    report.count_frames(outputs)
    for shot in board.shots:
        handler.finish(shot.id)
    for shot_id, texts in node_warnings(outputs, compiled.node_shots).items():
        report.shots[shot_id].warnings += texts
    with report.timed("download"):
        files = fetch_outputs(outputs, engine, out_dir)
    film = film_file(files, out_dir, board)
    report.film = film.relative_to(out_dir).as_posix() if film else None
    check_film(film, reported_timeline(outputs), out_dir, board, report)
    report.outputs = [f.relative_to(out_dir).as_posix() for f in files]
    for f in files:
        if "sheets" in f.parts and f.suffix == ".png":
            report.sheets[f.name.rsplit("_", 2)[0]] = f.relative_to(out_dir).as_posix()
        if "keyframes" in f.parts:
            shot_id = f.parent.name if f.parent.name in report.shots else f.name.split("_")[0]
            if shot_id in report.shots:
                report.shots[shot_id].files.append(f.relative_to(out_dir).as_posix())


def _render_per_shot(compiled: CompiledFilm, out_dir: Path, engine: Engine, reporter: Reporter,
                     report: RenderReport, object_info: dict | None = None) -> None:
    """Stage by stage, so one heavy model is resident at a time: every generated keyframe (the image model),
    then every shot (the video model, when shots move), then the compose graph (no model)."""
    board = compiled.storyboard
    keyframes: dict[str, Path] = {}
    for shot in board.shots:
        if shot.keyframe is None:
            keyframes[shot.id] = render_keyframe(board, shot, out_dir, engine, reporter, report)
    if keyframes and uses_video_models(board):
        engine.free()
    graphs = {g.name: g for g in compiled.graphs}
    for shot in board.shots:
        render_shot(board, shot, out_dir, engine, reporter, report, keyframes.get(shot.id), object_info,
                    graphs.get(f"shot-{shot.id}"))
    compose_film(board, out_dir, engine, reporter, report)


def uses_video_models(board: Storyboard) -> bool:
    """Whether a shot may be made by a video model (motion, continuity, or a talking family configured for its
    lines): the engine's node definitions then settle the family, and the image model is freed before the shots."""
    talking = bool(board.project.talk_models.configured) and any(s.dialogue for s in board.shots)
    return talking or any(s.motion or s.continuity == "previous" for s in board.shots)


def render_shot(board: Storyboard, shot: Shot, out_dir: Path, engine: Engine, reporter: Reporter,
                report: RenderReport, keyframe: Path | None = None, object_info: dict | None = None,
                compiled: CompiledGraph | None = None) -> Path:
    """Render one shot's video into ``OUT/shots/`` unless the same graph made the one there already.
    A generated shot needs its ``keyframe`` (from :func:`render_keyframe`). ``compiled``: the shot's graph as the
    whole storyboard was compiled, used as it is where nothing rendered since feeds it (a panel, no continuity frame,
    no Phantom sheets), so each graph is compiled once."""
    if shot.keyframe is None and keyframe is None:
        raise AnimStudioError(f"shot {shot.id}: its keyframe has not been rendered yet")
    phantom = bool(shot.motion and shot.motion.family == "phantom")
    if compiled is not None and keyframe is None and shot.continuity != "previous" and not phantom:
        shot_graph = compiled
    else:
        sheets = {cid: sheet_file(out_dir, cid) for cid in shot.characters if sheet_file(out_dir, cid).is_file()}
        shot_graph = compile_shot(board, shot, keyframe, object_info, _continuity_frame(board, shot, out_dir),
                                  sheets if phantom else None)
    video = shot_video(out_dir, shot.id)
    video.parent.mkdir(parents=True, exist_ok=True)
    key_file, warnings_file = video.with_suffix(".key"), video.with_suffix(".warnings.json")
    key = graph_key(shot_graph)
    result = report.shots[shot.id]
    if video.is_file() and key_file.is_file() and key_file.read_text().strip() == key:
        result.status = "cached"
        result.files.append(video.relative_to(out_dir).as_posix())
        with contextlib.suppress(OSError, ValueError):  # what the render said, kept with its video
            result.warnings = [str(t) for t in json.loads(warnings_file.read_text())]
        reporter.shot_done(shot.id, cached=True)
        return video
    reporter.shot_started(shot.id)
    started = time.monotonic()
    outputs, files = run_shot_graph(shot_graph, "render", engine, reporter, report, out_dir)
    result.warnings = [t for texts in node_warnings(outputs, shot_graph.node_shots).values() for t in texts]
    rendered = [f for f in files if f.suffix == ".mp4"]
    if not rendered:
        raise AnimStudioError(f"shot {shot.id}: the graph ran but produced no video")
    os.replace(rendered[-1], video)
    sidecar = rendered[-1].with_suffix(SHOT_SIDECAR)  # the shot's captions, speakers and word times
    if sidecar.is_file():
        os.replace(sidecar, video.with_suffix(SHOT_SIDECAR))
        files = [f for f in files if f != sidecar]
    else:
        video.with_suffix(SHOT_SIDECAR).unlink(missing_ok=True)
    write_atomically(warnings_file, json.dumps(result.warnings).encode())
    key_file.write_text(key + "\n")
    result.status, result.seconds = "rendered", round(time.monotonic() - started + result.seconds, 3)
    result.files = [video.relative_to(out_dir).as_posix()] + [f.relative_to(out_dir).as_posix()
                                                              for f in files if f.suffix != ".mp4"]
    report.outputs += result.files
    reporter.shot_done(shot.id)
    return video


def _continuity_frame(board: Storyboard, shot: Shot, out_dir: Path) -> Path | None:
    """For a ``continuity: previous`` shot, the previous shot's last frame (``OUT/continuity/<shot>.png``, taken
    from that shot's video, which must be rendered first)."""
    if shot.continuity != "previous":
        return None
    previous = board.previous_shot(shot)
    video = shot_video(out_dir, previous.id)
    if not video.is_file():
        raise AnimStudioError(f"shot {shot.id}: continues from shot {previous.id!r}, which is not rendered yet")
    from ..nodes.film.video_io import last_frame

    target = out_dir / "continuity" / f"{shot.id}.png"
    target.parent.mkdir(parents=True, exist_ok=True)
    return last_frame(video, target)


def render_keyframe(board: Storyboard, shot: Shot, out_dir: Path, engine: Engine, reporter: Reporter,
                    report: RenderReport) -> Path:
    """Render a generated shot's keyframe (first the sheets of its characters, for a reference family), re-rendering
    with new seeds while its characters' consistency score fails, up to ``project.consistency.max_attempts`` in all;
    every attempt goes in the report and the best is kept as ``OUT/keyframes/<shot>.png``. A keyframe already chosen for the same graph and settings is reused."""
    settings = board.project.consistency
    scored = scored_characters(board, shot)
    allowed = settings.max_attempts if scored else 1
    sheets = render_sheets(board, shot.characters, out_dir, engine, reporter, report)
    first = compile_keyframe(board, shot, 0, sheets)
    key = hashlib.sha256(f"{first.to_json()}|{allowed}|{settings.threshold}".encode()).hexdigest()
    chosen = chosen_keyframe(out_dir, shot.id)
    folder, record = chosen.parent, chosen.with_suffix(".json")
    folder.mkdir(parents=True, exist_ok=True)
    result = report.shots[shot.id]
    if chosen.is_file() and record.is_file():
        kept = json.loads(record.read_text())
        if kept.get("key") == key:
            result.keyframe = chosen.relative_to(out_dir).as_posix()
            result.attempts = [KeyframeAttempt(**a) for a in kept["attempts"]]
            return chosen
    reporter.shot_started(shot.id)
    started = time.monotonic()
    attempts: list[KeyframeAttempt] = []
    for attempt in range(allowed):
        compiled = first if attempt == 0 else compile_keyframe(board, shot, attempt, sheets)
        reporter.stage(f"shot {shot.id}: keyframe" + (f", attempt {attempt + 1} of {allowed}" if attempt else ""))
        outputs, files = run_shot_graph(compiled, "keyframes", engine, reporter, report, out_dir)
        pictures = [f for f in files if f.suffix == ".png"]
        if not pictures:
            raise AnimStudioError(f"shot {shot.id}: the keyframe graph ran but saved no picture")
        kept_as = folder / f"{shot.id}-attempt{attempt + 1}.png"
        os.replace(pictures[-1], kept_as)
        scores = {cid: _consistency(outputs, shot.id, cid) for cid in scored}
        attempts.append(KeyframeAttempt(
            attempt=attempt + 1, seed=keyframe_seed(board, shot, attempt), file=kept_as.relative_to(out_dir).as_posix(),
            score=min((s["score"] for s in scores.values()), default=None),
            passed=all(s["passed"] for s in scores.values()),
            scores={cid: round(float(s["score"]), 6) for cid, s in scores.items()},
            methods={cid: s["method"] for cid, s in scores.items()}))
        if attempts[-1].passed:
            break
        log.info("shot %s: keyframe attempt %d scored %.3f (%s), below its threshold", shot.id, attempt + 1,
                 attempts[-1].score, ", ".join(f"{c}: {m}" for c, m in attempts[-1].methods.items()))
    best = max(attempts, key=lambda a: (a.passed, a.score if a.score is not None else 0.0, -a.attempt))
    if not best.passed:
        log.warning("shot %s: no keyframe reached the likeness threshold in %d attempt(s); keeping attempt %d "
                    "(score %.3f)", shot.id, len(attempts), best.attempt, best.score)
    shutil.copyfile(out_dir / best.file, chosen)
    write_atomically(record, json.dumps({"key": key, "chosen": best.attempt,
                                         "attempts": [asdict(a) for a in attempts]}, indent=2).encode())
    result.keyframe = chosen.relative_to(out_dir).as_posix()
    result.attempts = attempts
    report.outputs += [a.file for a in attempts] + [result.keyframe]
    result.seconds = round(time.monotonic() - started, 3)
    return chosen


def _consistency(outputs: Mapping[str, Any], shot_id: str, character_id: str) -> dict:
    """The score a keyframe graph's consistency node reported for one character (its ``ui`` output)."""
    node = consistency_node(shot_id, character_id)
    try:
        found = outputs[node]["consistency"][0]
        return {"score": float(found["score"]), "passed": bool(found["passed"]),
                "method": str(found.get("method", "clip"))}
    except (KeyError, IndexError, TypeError, ValueError):
        raise AnimStudioError(f"shot {shot_id}: node {node!r} reported no consistency score for character "
                              f"{character_id!r}") from None
