"""The storyboard's typed model: the project, characters, scenes, shots and what each holds, as frozen dataclasses
built by :mod:`.storyboard` from a validated document; plus how long speech takes. The video model settings (and
the talking families' frame windows) live in :mod:`.video_models`."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Union

from ..common.emotion import DEFAULT_EMOTIONS, Emotion
from ..common.errors import Problem, StoryboardError
from ..common.jsonio import json_path
from .emotion import line_delivery
from .schema_check import FIT_TO_DIALOGUE
from .keyframe_models import REFERENCE_FAMILIES, KeyframeModels
from .video_models import MotionModels, TalkModels

BUILTIN_MOUTH_SETS = ("preston_blair", "simple")


@dataclass(frozen=True)
class Project:
    title: str
    width: int = 512
    height: int = 288
    fps: int = 12
    style: str = ""
    seed: int = 0
    language: str = "en"
    checkpoint: str | None = None
    keyframe_model: str = "checkpoint"   # or a reference family: "qwen_edit", "kontext"
    keyframe_models: "KeyframeModels" = None  # type: ignore[assignment]
    negative_prompt: str = ""
    steps: int = 20
    cfg: float = 7.0
    sampler: str = "euler"
    scheduler: str = "normal"
    subtitles: "SubtitleSettings" = None  # type: ignore[assignment]
    clip_vision: str | None = None
    consistency: "ConsistencySettings" = None  # type: ignore[assignment]
    motion_models: "MotionModels" = None  # type: ignore[assignment]
    talk_models: "TalkModels" = None  # type: ignore[assignment]
    talk_style: str = "auto"
    loudness: float = -14.0   # the film's integrated loudness, LUFS (-14 web, -16 podcasts, -23 EBU R128)
    timing: "TimingSettings" = None  # type: ignore[assignment]
    series: str | None = None     # the series this is an episode of (its project library keeps facts across them)
    episode: int | None = None
    # each emotion's numbers (prosody, mouth openness, camera preset): the defaults with project.emotions over them
    emotions: "dict[str, Emotion]" = None  # type: ignore[assignment]

    def __post_init__(self):
        if self.emotions is None or any(not isinstance(v, Emotion) for v in self.emotions.values()):
            given = self.emotions or {}
            object.__setattr__(self, "emotions", {name: default.with_values(given.get(name) or {})
                                                  for name, default in DEFAULT_EMOTIONS.items()})
        for name, kind in (("subtitles", SubtitleSettings), ("consistency", ConsistencySettings),
                           ("timing", TimingSettings)):
            value = getattr(self, name)
            if value is None:
                object.__setattr__(self, name, kind())
            elif isinstance(value, dict):
                object.__setattr__(self, name, kind(**value))
        if self.motion_models is None or isinstance(self.motion_models, dict):
            object.__setattr__(self, "motion_models", MotionModels.from_json(self.motion_models or {}))
        if self.talk_models is None or isinstance(self.talk_models, dict):
            object.__setattr__(self, "talk_models", TalkModels.from_json(self.talk_models or {}))
        if self.keyframe_models is None or isinstance(self.keyframe_models, dict):
            object.__setattr__(self, "keyframe_models", KeyframeModels.from_json(self.keyframe_models or {}))

    @property
    def edits_keyframes(self) -> bool:
        """Whether keyframes are edited from character sheets (a reference family) rather than drawn by the
        checkpoint."""
        return self.keyframe_model in REFERENCE_FAMILIES

    @property
    def stylized(self) -> bool:
        """Whether ``talk: auto`` keeps 2D mouths: ``talk_style``, else words of ``style`` (cartoon, anime, …)."""
        if self.talk_style != "auto":
            return self.talk_style == "stylized"
        return bool(STYLIZED_WORDS.search(self.style))

    @property
    def scores_consistency(self) -> bool:
        """Keyframes are scored (and re-rendered when they fail) only with a CLIP vision model to score with."""
        return bool(self.clip_vision) and self.consistency.enabled


@dataclass(frozen=True)
class TimingSettings:
    """How dialogue breathes: seconds of silence after a fitted shot's last line, between lines in a shot, and at
    least between two speakers' lines across a cut."""

    tail: float = 0.5
    line_gap: float = 0.35
    speaker_pause: float = 0.5


@dataclass(frozen=True)
class ConsistencySettings:
    enabled: bool = True
    threshold: float = 0.62
    max_attempts: int = 3
    method: str = "auto"          # auto: face identity where faces are found, CLIP similarity elsewhere
    face_threshold: float = 0.4   # 1 - face distance; dlib's model puts one person within 0.6

    def __post_init__(self):
        object.__setattr__(self, "max_attempts", int(self.max_attempts))


# project.style words that make a project stylized: realistic talking models give cartoon faces real lips
STYLIZED_WORDS = re.compile(r"\b(cartoon\w*|anime|manga|2d|toon\w*|illustrat\w*|storybook|comic\w*|cel[- ]?shad\w*|"
                            r"chibi|pixel[- ]?art|gouache|watercolou?r|flat colou?rs?|hand[- ]drawn|clay\w*|puppet\w*)\b",
                            re.IGNORECASE)
@dataclass(frozen=True)
class SubtitleSettings:
    burn: bool = True
    files: str = "srt+vtt+ass"
    size: int = 0
    font: str = ""               # a font family by name, or a font file in the storyboard's folder
    position: str = "bottom"
    speaker: bool = True           # captions start with the speaker's name
    font_file: Path | None = None  # the checked file, when ``font`` names one


@dataclass(frozen=True)
class MouthBoxSpec:
    x: int
    y: int
    width: int
    height: int


@dataclass(frozen=True)
class Lora:
    file: str
    weight: float = 1.0
    trigger_words: tuple[str, ...] = ()
    weight_range: tuple[float, float] | None = None  # the author's recommended [low, high]


@dataclass(frozen=True)
class IPAdapterSpec:
    file: str
    weight: float = 0.7
    start_at: float = 0.0
    end_at: float = 1.0


@dataclass(frozen=True)
class Voice:
    engine: str = "espeak"
    name: str | None = None
    rate: float = 1.0
    pitch: float = 0.0


@dataclass(frozen=True)
class Character:
    id: str
    description: str
    name: str | None = None
    lora: Lora | None = None
    reference_images: tuple[Path, ...] = ()
    sheet: Path | None = None           # the user's own character sheet (else one is made for reference families)
    voice: Voice = field(default_factory=Voice)
    mouth_shapes: str | None = None
    ip_adapter: IPAdapterSpec | None = None
    mouth_files: tuple[Path, ...] = ()  # a mouth-set folder's shape pictures, each checked at load
    talk: str = "auto"
    language: str | None = None         # default: the project's
    age: int | str | None = None        # years or words, checked against the project library
    wardrobe: str | None = None

    @property
    def display_name(self) -> str:
        return self.name or self.id


@dataclass(frozen=True)
class Scene:
    id: str
    description: str = ""
    location: str | None = None
    time_of_day: str | None = None


@dataclass(frozen=True)
class Camera:
    shot: str = "medium"
    move: str | None = None  # None: not written (the dialogue's emotion may pick a preset; else static)


@dataclass(frozen=True)
class Prosody:
    """A line's own prosody, over its emotion's: a rate factor, a pitch shift in semitones, an energy factor."""

    rate: float | None = None
    pitch: float | None = None
    energy: float | None = None


@dataclass(frozen=True)
class DialogueLine:
    character: str
    text: str
    emotion: str = "neutral"
    language: str | None = None   # default: the character's, else the project's
    prosody: Prosody | None = None
    mouth_openness: float | None = None  # × the open mouth shapes' height (default: the emotion's)

    def __post_init__(self):
        if isinstance(self.prosody, dict):
            object.__setattr__(self, "prosody", Prosody(**self.prosody))


@dataclass(frozen=True)
class Transition:
    type: Literal["cut", "dissolve", "fade_black", "wipe_left", "wipe_right"] = "cut"
    duration: float = 0.5

    @property
    def seconds(self) -> float:
        """How long the transition overlaps the cut; a cut takes no time."""
        return 0.0 if self.type == "cut" else self.duration


@dataclass(frozen=True)
class Motion:
    family: Literal["auto", "wan", "ltx", "animatediff"] = "auto"
    prompt: str | None = None
    strength: float = 1.0


@dataclass(frozen=True)
class Control:
    image: Path
    model: str
    kind: str = "other"
    strength: float = 1.0
    start_at: float = 0.0
    end_at: float = 1.0


@dataclass(frozen=True)
class Shot:
    id: str
    description: str
    index: int
    scene: str | None = None
    characters: tuple[str, ...] = ()
    camera: Camera = field(default_factory=Camera)
    duration: Union[float, Literal["fit_to_dialogue"]] = 3.0
    dialogue: tuple[DialogueLine, ...] = ()
    transition: Transition = field(default_factory=Transition)
    keyframe: Path | None = None
    seed: int | None = None
    mouths: dict[str, MouthBoxSpec] = field(default_factory=dict)
    motion: Motion | None = None
    control: Control | None = None
    talk: str | None = None                 # overrides the speaking characters' own choice
    close_ups: dict[str, Path] = field(default_factory=dict)  # speaker → close-up panel (shot / reverse shot)
    parent: str | None = None               # set on a close-up derived from a shot with several speakers
    continuity: str = "none"                # "previous": starts from the previous shot's last frame (Wan FLF)

    @property
    def json_path(self) -> str:
        return f"$.shots[{self.index}]"


@dataclass(frozen=True)
class MusicCue:
    file: Path
    start_shot: str | None = None
    volume: float = 0.3


@dataclass(frozen=True)
class Storyboard:
    """A validated storyboard. File paths are absolute and known to lie inside ``base_dir``."""

    project: Project
    characters: dict[str, Character]
    scenes: dict[str, Scene]
    shots: tuple[Shot, ...]
    music: tuple[MusicCue, ...]
    base_dir: Path
    source: str

    def shot(self, shot_id: str) -> Shot:
        return next(s for s in self.shots if s.id == shot_id)

    def previous_shot(self, shot: Shot) -> Shot | None:
        """The shot played before ``shot`` (close-ups counted as the shots they are), None for the first."""
        at = next(i for i, s in enumerate(self.shots) if s.id == shot.id)
        return self.shots[at - 1] if at else None

    def line_language(self, line: DialogueLine) -> str:
        """The language a line is spoken in: its own, else its character's, else the project's."""
        character = self.characters.get(line.character)
        return line.language or (character.language if character else None) or self.project.language

    def next_shot(self, shot: Shot) -> Shot | None:
        """The shot played after ``shot``, None for the last."""
        at = next(i for i, s in enumerate(self.shots) if s.id == shot.id)
        return self.shots[at + 1] if at + 1 < len(self.shots) else None

    def shot_seconds(self, shot: Shot) -> float:
        """The shot's length on screen: its own duration, or the time its dialogue takes to say."""
        if shot.duration != FIT_TO_DIALOGUE:
            return float(shot.duration)
        total = sum(estimate_speech_seconds(line.text, self.line_rate(line)) for line in shot.dialogue)
        return round(total + self.project.timing.tail, 3)  # a breath before the cut

    def line_rate(self, line: DialogueLine) -> float:
        """How fast a line is said: its voice's rate with its emotion's pace (:func:`.emotion.line_delivery`)."""
        return line_delivery(self, line).rate

    def generated(self, checkpoint: str | None = None, steps: int | None = None) -> "Storyboard":
        """The same film with every keyframe generated from a checkpoint instead of taken from its panel.

        Mouth boxes are dropped: they were placed on the panels, and a generated picture puts faces elsewhere.
        """
        from dataclasses import replace

        checkpoint = checkpoint or self.project.checkpoint
        if not checkpoint and not self.project.edits_keyframes:
            raise StoryboardError(f"{self.source}: generating keyframes needs a checkpoint",
                                  [Problem("$.project.checkpoint", "required (or pass --checkpoint NAME)")])
        board = replace(self, project=replace(self.project, checkpoint=checkpoint, steps=steps or self.project.steps),
                        shots=tuple(replace(shot, keyframe=None, mouths={}) for shot in self.shots))
        bare = [cid for cid in board.sheet_characters()
                if board.characters[cid].sheet is None and not board.characters[cid].reference_images]
        if bare:
            raise StoryboardError(f"{self.source}: generating keyframes with {self.project.keyframe_model!r} edits "
                                  "them from character sheets", [Problem(
                                      json_path(["characters", cid, "reference_images"]), "give at least one reference image "
                                      "(or their own sheet in 'sheet') to make the sheet from") for cid in bare])
        return board

    @property
    def needs_generation(self) -> bool:
        return any(s.keyframe is None for s in self.shots)

    def sheet_characters(self) -> tuple[str, ...]:
        """The characters whose sheets a reference family edits keyframes from: those in generated shots, in the
        order they first appear."""
        if not self.project.edits_keyframes:
            return ()
        seen: dict[str, None] = {}
        for shot in self.shots:
            if shot.keyframe is None:
                seen.update((cid, None) for cid in shot.characters if cid in self.characters)
        return tuple(seen)


def estimate_speech_seconds(text: str, rate: float = 1.0) -> float:
    """Seconds an unhurried voice takes to say ``text``: about 2.6 words a second, plus pauses.

    Used to size "fit_to_dialogue" shots at compile time, before any voice is synthesised.
    """
    words = len(re.findall(r"\w+", text))
    pauses = len(re.findall(r"[,;:]", text)) * 0.2 + len(re.findall(r"[.!?]+", text)) * 0.35
    return round(max(0.6, words / 2.6 + pauses) / rate, 3)
