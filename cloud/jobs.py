"""A batch as jobs: each storyboard becomes keyframe, shot and compose jobs, a DAG per film.

A job's id is the hash of what it renders (its graph, whose uploads are named by their content, and the ids
of the jobs it reads from), so the same shot in two films, two batches or two runs is one job: it is
rendered once and its outputs are copied where they are needed. The outputs follow the layout of
``animstudio render`` (``FILM/keyframes``, ``FILM/shots`` with the graph hash in ``.key``), so a batch and
a single render share one cache.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Iterable, Literal, Mapping

from ..translator.compile import CompiledGraph, compile_compose, compile_keyframe, compile_sheet, compile_shot, slug
from ..translator.graph_check import model_folder
from ..translator.film_length import check_film_length
from ..translator.storyboard import load_storyboard
from ..translator.storyboard_model import Storyboard
from ..translator.training import TrainingSettings, compile_training, training_pictures

JobKind = Literal["train", "keyframe", "shot", "compose"]
KIND_PRIORITY = {"train": 30, "keyframe": 20, "shot": 10, "compose": 0}  # earlier stages first: films finish sooner


@dataclass(frozen=True)
class ModelNeed:
    """A model file a job's graph loads: which node input names it, and the folder it lives in."""
    class_type: str
    input_name: str
    file: str
    folder: str


@dataclass(frozen=True)
class Job:
    id: str
    kind: JobKind
    film: str                      # the film's folder under the batch's output folder
    storyboard: str                # the storyboard file (absolute)
    shot_id: str | None
    depends_on: tuple[str, ...] = ()
    priority: int = 0
    models: tuple[ModelNeed, ...] = ()
    node_types: tuple[str, ...] = ()  # every node type the graph uses
    character: str | None = None   # a train job's character
    training: str | None = None    # a train job's settings (TrainingSettings as JSON)

    @property
    def uid(self) -> str:
        """The job's place in a batch: a job id can serve several films."""
        return f"{self.film}/{self.id}"

    @property
    def label(self) -> str:
        return f"{self.film}:{self.kind}" + (f":{self.shot_id or self.character}" if self.shot_id or self.character
                                              else "")

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping) -> "Job":
        data = dict(data)
        data["depends_on"] = tuple(data.get("depends_on", ()))
        data["models"] = tuple(ModelNeed(**m) for m in data.get("models", ()))
        data["node_types"] = tuple(data.get("node_types", ()))
        return cls(**data)


@dataclass
class Film:
    name: str
    storyboard: str
    jobs: list[Job] = field(default_factory=list)


def _digest(*parts: str) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:32]


def model_needs(graph: Mapping[str, Mapping]) -> tuple[ModelNeed, ...]:
    needs = []
    for node in graph.values():
        for name, value in node.get("inputs", {}).items():
            folder = model_folder(node["class_type"], name)
            if folder and isinstance(value, str):
                needs.append(ModelNeed(node["class_type"], name, value, folder))
    return tuple(sorted(set(needs), key=lambda n: (n.folder, n.file, n.class_type, n.input_name)))


def _job(kind: JobKind, film: str, board: Storyboard, compiled: CompiledGraph, shot_id: str | None,
         depends_on: tuple[str, ...], extra: str = "") -> Job:
    return Job(id=_digest(kind, compiled.to_json(), *depends_on, extra), kind=kind, film=film,
               storyboard=str(Path(board.source).resolve()), shot_id=shot_id, depends_on=depends_on,
               priority=KIND_PRIORITY[kind], models=model_needs(compiled.graph),
               node_types=tuple(sorted({n["class_type"] for n in compiled.graph.values()})))


def film_jobs(board: Storyboard, film: str) -> list[Job]:
    """One storyboard's jobs in dependency order: each generated shot's keyframe, every shot, the compose."""
    jobs: list[Job] = []
    shot_jobs = []
    settings = board.project.consistency
    for shot in board.shots:
        depends: tuple[str, ...] = ()
        if shot.keyframe is None:
            # a reference family's keyframe job makes the sheets it edits from (once per film folder): they are
            # part of what it depends on
            sheets = "".join(compile_sheet(board, cid).to_json() for cid in shot.characters
                             if cid in board.sheet_characters() and board.characters[cid].sheet is None)
            keyframe = _job("keyframe", film, board, compile_keyframe(board, shot), shot.id, (),
                            f"{settings.enabled}:{settings.threshold}:{settings.max_attempts}{sheets}")
            jobs.append(keyframe)
            depends = (keyframe.id,)
        shot_job = _job("shot", film, board, compile_shot(board, shot), shot.id, depends)
        jobs.append(shot_job)
        shot_jobs.append(shot_job.id)
    jobs.append(_job("compose", film, board, compile_compose(board), None, tuple(shot_jobs)))
    return jobs


def train_jobs(board: Storyboard, film: str, characters: Iterable[str], settings: TrainingSettings) -> list[Job]:
    """One train job per character (``animstudio train-character`` as a batch job): the LoRA trained on the
    pool and registered in the storyboard; a character the storyboard lacks, or one with no picture, is refused
    here, before anything is queued."""
    jobs = []
    for cid in characters:
        compiled = compile_training(board, cid, training_pictures(board, cid), settings)
        settings_json = json.dumps(asdict(settings), sort_keys=True)
        job = _job("train", film, board, compiled, None, (), f"{cid}:{settings_json}")
        jobs.append(replace(job, character=cid, training=settings_json))
    return jobs


def plan_batch(storyboards: Iterable[str | Path], max_minutes: float | None = None, train: Iterable[str] = (),
               training: TrainingSettings | None = None) -> list[Film]:
    """Load and check every storyboard first (a bad one, or a film longer than the render limit, stops the batch
    before anything is queued), then name each film's folder after its title (``-2``, ``-3`` when titles repeat)
    and make its jobs."""
    boards = [load_storyboard(path) for path in storyboards]
    for board in boards:
        check_film_length(board, max_minutes)
    films: list[Film] = []
    used: dict[str, int] = {}
    for board in boards:
        base = slug(board.project.title)
        used[base] = used.get(base, 0) + 1
        name = base if used[base] == 1 else f"{base}-{used[base]}"
        jobs = (train_jobs(board, name, train, training or TrainingSettings()) if train else film_jobs(board, name))
        films.append(Film(name, str(Path(board.source).resolve()), jobs))
    return films


def jobs_json(films: list[Film]) -> str:
    return json.dumps([{"film": f.name, "storyboard": f.storyboard, "jobs": [j.to_json() for j in f.jobs]}
                       for f in films], indent=2)
