"""Running one compiled graph on an engine, as every render stage does: check it before anything is uploaded,
upload its files, run it with per-shot progress, fetch what it saved, and collect what its nodes warned about;
and where a render keeps its outputs (``OUT/shots/``, ``OUT/keyframes/``)."""
from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any, Mapping

from ..common.errors import AnimStudioError
from .client import ComfyClient
from .compile import CompiledGraph
from .engines import Engine
from .render_report import RenderReport, Reporter


SHOT_SIDECAR = ".vtt"  # a per-shot video's captions (WebVTT keeps speakers and word times), read by Load Video Clip


def progress_events(compiled: CompiledGraph, reporter: Reporter, report: RenderReport):
    """Turn engine events (ComfyUI's ``/ws`` vocabulary) into per-shot progress."""
    current: dict[str, str | None] = {"shot": None}
    timers: dict[str, float] = {}

    def finish(shot_id: str | None) -> None:
        if shot_id and report.shots[shot_id].status == "pending":
            report.shots[shot_id].status = "rendered"
            report.shots[shot_id].seconds = round(time.monotonic() - timers.get(shot_id, time.monotonic()), 3)
            reporter.shot_done(shot_id)

    def on_event(kind: str, data: dict) -> None:
        if kind == "executing":
            shot = compiled.node_shots.get(data.get("node")) if data.get("node") else None
            if shot != current["shot"]:
                if compiled.shot_id is None:
                    finish(current["shot"])
                if shot is not None and shot not in timers:
                    timers[shot] = time.monotonic()
                    reporter.shot_started(shot)
                current["shot"] = shot
            if data.get("node") and compiled.node_shots.get(data["node"]) is None and compiled.shot_id is None:
                reporter.stage("composing the film")
        elif kind == "progress":
            node = data.get("node")
            reporter.shot_progress(compiled.node_shots.get(node) if node else current["shot"],
                                   int(data.get("value", 0)), int(data.get("max", 1)))

    on_event.finish = finish  # type: ignore[attr-defined]
    return on_event


def upload_all(compiled: CompiledGraph, engine: Engine) -> list[str]:
    names = []
    for upload in compiled.uploads:
        names.append(engine.upload(upload.local_path, upload.subfolder, upload.filename))
    return names


def fetch_outputs(outputs: Mapping[str, Any], engine: Engine, out_dir: Path) -> list[Path]:
    return [engine.fetch(item, out_dir / "outputs") for item in ComfyClient.output_files(outputs)]


def graph_key(compiled: CompiledGraph) -> str:
    """What a shot's render depends on: its graph (uploads are named by content hash, so they are in it)."""
    return hashlib.sha256(compiled.to_json().encode()).hexdigest()


def shot_video(out_dir: Path, shot_id: str) -> Path:
    """Where a shot's rendered video is kept (with ``.key``, the hash of the graph that made it, and ``.srt``)."""
    return Path(out_dir) / "shots" / f"{shot_id}.mp4"


def chosen_keyframe(out_dir: Path, shot_id: str) -> Path:
    """Where a generated shot's chosen keyframe is kept (with ``.json``: its attempts)."""
    return Path(out_dir) / "keyframes" / f"{shot_id}.png"


def node_warnings(outputs: Mapping[str, Any], node_shots: Mapping[str, str | None]) -> dict[str, list[str]]:
    """The warnings the graph's nodes reported in their ``ui`` output (``warnings``: texts), by shot."""
    found: dict[str, list[str]] = {}
    for node, ui in outputs.items():
        texts = ui.get("warnings") if isinstance(ui, Mapping) else None
        shot = node_shots.get(node)
        if shot and isinstance(texts, list):
            found.setdefault(shot, []).extend(str(t) for t in texts)
    return found


def run_shot_graph(compiled: CompiledGraph, stage: str, engine: Engine, reporter: Reporter, report: RenderReport,
                    out_dir: Path) -> tuple[dict, list[Path]]:
    """Upload a shot's files, run its graph (timed as ``stage``) and download what it saved; the shot is marked
    failed when the engine fails."""
    check_before_upload(compiled, engine, report)
    with report.timed("upload"):
        names = upload_all(compiled, engine)
    try:
        with report.timed(stage):
            outputs = engine.run(compiled.graph, compiled.node_shots, progress_events(compiled, reporter, report), names)
    except AnimStudioError:
        report.shots[compiled.shot_id].status = "failed"
        raise
    report.count_frames(outputs)
    with report.timed("download"):
        files = fetch_outputs(outputs, engine, out_dir)
    return outputs, files


def run_unscoped_graph(compiled: CompiledGraph, stage: str, engine: Engine, reporter: Reporter,
                       report: RenderReport) -> dict:
    """Check, upload and run a graph that belongs to no shot (a character's sheet, a LoRA's training), its
    progress shown as the current work's; returns the nodes' outputs (timed as ``stage``)."""
    check_before_upload(compiled, engine, report)
    with report.timed("upload"):
        names = upload_all(compiled, engine)

    def on_event(kind: str, data: dict) -> None:
        if kind == "progress":
            reporter.shot_progress(None, int(data.get("value", 0)), int(data.get("max", 1)))

    with report.timed(stage):
        return engine.run(compiled.graph, compiled.node_shots, on_event, names)


def check_before_upload(compiled: CompiledGraph, engine: Engine, report: RenderReport) -> None:
    """The engine's check of a graph, once, before its files are uploaded (the engine's run then trusts it)."""
    try:
        engine.check(compiled)
    except AnimStudioError:
        if compiled.shot_id:
            report.shots[compiled.shot_id].status = "failed"
        raise
