"""What a render reports: per-shot results (status, files, keyframe attempts and their likeness, warnings), the
run's stages and timings, and the progress callbacks the CLI draws its bars from."""
from __future__ import annotations

import contextlib
import time
from dataclasses import asdict, dataclass, field
from typing import Literal


class Reporter:
    """Progress callbacks; the CLI draws bars from them. Every method may be left as a no-op."""

    def start(self, shots: list[str], graphs: int) -> None: ...
    def shot_started(self, shot_id: str) -> None: ...
    def shot_progress(self, shot_id: str | None, value: int, maximum: int) -> None: ...
    def shot_done(self, shot_id: str, cached: bool = False) -> None: ...
    def stage(self, text: str) -> None: ...


@dataclass
class KeyframeAttempt:
    """One render of a generated keyframe and how much its characters look like their references."""
    attempt: int
    seed: int
    file: str
    score: float | None  # the lowest character score; None when nothing is scored
    passed: bool
    scores: dict[str, float] = field(default_factory=dict)  # character id -> score
    methods: dict[str, str] = field(default_factory=dict)  # character id -> what decided: "face" or "clip"


@dataclass
class ShotResult:
    status: Literal["rendered", "cached", "failed", "pending"] = "pending"
    files: list[str] = field(default_factory=list)
    seconds: float = 0.0
    keyframe: str | None = None  # the generated keyframe the shot was made from (the best attempt)
    attempts: list[KeyframeAttempt] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # what the nodes said the viewer should know (a mouth not drawn)


@dataclass
class RenderReport:
    storyboard: str
    engine: str
    shape: str
    film: str | None = None
    outputs: list[str] = field(default_factory=list)
    shots: dict[str, ShotResult] = field(default_factory=dict)
    sheets: dict[str, str] = field(default_factory=dict)  # character id -> their sheet (rendered: relative to OUT)
    seconds: float = 0.0
    stages: dict[str, float] = field(default_factory=dict)  # wall seconds per stage: compile, upload, render, download
    film_seconds: float | None = None
    error: dict | None = None
    timeline: list[dict] = field(default_factory=list)  # each shot's time on screen in the film
    qc: dict | None = None  # the finished film's quality control: findings, loudness, true peak, contact sheet
    up_to_date: bool = False  # every shot and the film came from the cache: nothing was rendered or encoded
    # video frames this render encoded (shots and film) and copied from shot videos into the film (smart rendering)
    frames: dict[str, int] = field(default_factory=lambda: {"encoded": 0, "copied": 0})

    def add_frames(self, encoded: int, copied: int) -> None:
        self.frames["encoded"] += int(encoded)
        self.frames["copied"] += int(copied)

    def count_frames(self, outputs) -> None:
        """Add what the graph's Save Film nodes reported in their ``ui.frames``."""
        for ui in outputs.values():
            for counts in (ui.get("frames") or []) if isinstance(ui, dict) else []:
                if isinstance(counts, dict):
                    self.add_frames(counts.get("encoded", 0), counts.get("copied", 0))

    def to_json(self) -> dict:
        return asdict(self)

    @contextlib.contextmanager
    def timed(self, stage: str):
        started = time.monotonic()
        try:
            yield
        finally:
            self.stages[stage] = round(self.stages.get(stage, 0.0) + time.monotonic() - started, 3)
