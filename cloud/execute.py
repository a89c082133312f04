"""Running one job on one engine: the render pipeline's own stages (:mod:`animstudio.translator.render`),
so a batch job and ``animstudio render`` make the same files in the same places.

Used by the embedded scheduler's threads and by every Celery worker. A film's folder is
``OUT/<film>/``; the storyboard is read from the path the job names (workers on other machines need the
storyboards and the output folder on a shared file system).
"""
from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict
from pathlib import Path

from ..translator.client import write_atomically
from ..common.errors import AnimStudioError
from ..common.paths import PathEscapeError, resolve_inside
from ..translator.render import (Engine, RenderReport, Reporter, ShotResult, chosen_keyframe, compose_film,
                                 render_keyframe, render_shot, shot_video)
from ..translator.storyboard import load_storyboard
from ..translator.storyboard_model import Storyboard
from .jobs import Job


def film_dir(out_root: Path, job: Job) -> Path:
    """The job's film folder, always inside the batch's output folder."""
    try:
        return resolve_inside(Path(out_root), job.film)
    except PathEscapeError:
        raise AnimStudioError(f"job {job.label}: film folder {job.film!r} leaves the output folder") from None


def _report(board: Storyboard, engine: Engine) -> RenderReport:
    return RenderReport(board.source, engine.name, "per_shot", shots={s.id: ShotResult() for s in board.shots})


def run_job(job: Job, out_root: Path, engine: Engine, reporter: Reporter | None = None,
            board: Storyboard | None = None) -> dict:
    """Render *job* on *engine*; returns what it made (files relative to the film folder, seconds, and for a
    keyframe its attempts). Raises AnimStudioError (or ServerError when the engine fails)."""
    board = board or load_storyboard(job.storyboard)
    folder = film_dir(out_root, job)
    folder.mkdir(parents=True, exist_ok=True)
    reporter = reporter or Reporter()
    report = _report(board, engine)
    started = time.monotonic()
    if job.kind == "keyframe":
        shot = board.shot(job.shot_id)
        path = render_keyframe(board, shot, folder, engine, reporter, report)
        result = {"files": [path.relative_to(folder).as_posix()],
                  "attempts": [asdict(a) for a in report.shots[shot.id].attempts]}
    elif job.kind == "shot":
        shot = board.shot(job.shot_id)
        keyframe = chosen_keyframe(folder, shot.id) if shot.keyframe is None else None
        if keyframe is not None and not keyframe.is_file():
            raise AnimStudioError(f"job {job.label}: its keyframe {keyframe.name} is missing")
        object_info = engine.object_info() if shot.motion else None
        video = render_shot(board, shot, folder, engine, reporter, report, keyframe, object_info)
        result = {"files": [video.relative_to(folder).as_posix()], "cached": report.shots[shot.id].status == "cached"}
    elif job.kind == "train":
        result = _train(job, board, engine, folder, reporter)
    else:
        film = compose_film(board, folder, engine, reporter, report)
        result = {"files": [film.relative_to(folder).as_posix()] if film else []}
        write_atomically(folder / "render-report.json", json.dumps(report.to_json(), indent=2).encode())
    result["seconds"] = round(time.monotonic() - started, 3)
    return result


def _train(job: Job, board: Storyboard, engine: Engine, folder: Path, reporter: Reporter) -> dict:
    """A train job: the character's LoRA trained on the endpoint and registered in the storyboard (as
    ``animstudio train-character`` does); a sheet rendered in the film's folder joins the pictures."""
    from ..translator.render_sheets import sheet_file
    from ..translator.training import TrainingSettings, register_lora, train_character

    settings = TrainingSettings(**json.loads(job.training or "{}"))
    sheet = sheet_file(folder, job.character)
    trained = train_character(board, job.character, engine, folder, reporter, settings,
                              sheet if sheet.is_file() else None)
    where = register_lora(Path(job.storyboard), trained)
    return {"files": [trained.local_copy.relative_to(folder).as_posix()] if trained.local_copy else [],
            "lora": trained.lora_name, "trigger_word": trained.trigger_word, "registered_at": where}


def copy_outputs(job: Job, source_root: Path, source_film: str, out_root: Path) -> dict:
    """The same job completed for another film (or batch): copy its outputs instead of rendering again."""
    source = resolve_inside(Path(source_root), source_film)
    target = film_dir(out_root, job)
    if job.kind == "keyframe":
        paths = [chosen_keyframe(source, job.shot_id)]
        paths.append(paths[0].with_suffix(".json"))
    elif job.kind == "shot":
        video = shot_video(source, job.shot_id)
        paths = [video, video.with_suffix(".key"), video.with_suffix(".srt")]
    else:
        raise AnimStudioError(f"a {job.kind} job is never shared")
    copied = []
    for path in paths:
        if path.is_file():
            destination = target / path.relative_to(source)
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, destination)
            copied.append(destination.relative_to(target).as_posix())
    if not copied:
        raise AnimStudioError(f"job {job.label}: the outputs of its earlier run are gone")
    return {"files": copied, "copied_from": f"{source_film}", "seconds": 0.0}
