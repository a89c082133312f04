"""The storyboard: its typed model, and loading it with errors that name JSON paths.

A storyboard is checked in two passes before anything is compiled or submitted: the JSON Schema
(`schema/storyboard.v1.schema.json`, shipped in the package) for shape and ranges, then the
cross-references a schema cannot express (unknown character or scene ids, duplicate shot ids,
missing or escaping files). Every problem found is reported at once, each with its JSON path.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

from ..common.errors import Problem, StoryboardError
from ..common.inputs import AUDIO_SUFFIXES, FONT_SUFFIXES, IMAGE_SUFFIXES, InputFileProblem, checked_file, checked_folder
from ..common.jsonio import MAX_FILE_BYTES, check_data, json_path, parse_json
from .schema_check import FIT_TO_DIALOGUE, close_match, schema_problems

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

    def __post_init__(self):
        for name, kind in (("subtitles", SubtitleSettings), ("consistency", ConsistencySettings)):
            value = getattr(self, name)
            if value is None:
                object.__setattr__(self, name, kind())
            elif isinstance(value, dict):
                object.__setattr__(self, name, kind(**value))
        if self.motion_models is None or isinstance(self.motion_models, dict):
            object.__setattr__(self, "motion_models", MotionModels.from_json(self.motion_models or {}))
        if self.talk_models is None or isinstance(self.talk_models, dict):
            object.__setattr__(self, "talk_models", TalkModels.from_json(self.talk_models or {}))

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
class ConsistencySettings:
    enabled: bool = True
    threshold: float = 0.62
    max_attempts: int = 3

    def __post_init__(self):
        object.__setattr__(self, "max_attempts", int(self.max_attempts))


@dataclass(frozen=True)
class WanModels:
    unet: str
    text_encoder: str
    vae: str
    clip_vision: str | None = None
    steps: int = 20
    cfg: float = 6.0
    shift: float = 8.0
    fps: int = 16
    max_frames: int = 81


@dataclass(frozen=True)
class LtxModels:
    checkpoint: str
    text_encoder: str
    steps: int = 30
    cfg: float = 3.0
    fps: int = 24
    max_frames: int = 121


@dataclass(frozen=True)
class AnimateDiffModels:
    motion_model: str
    beta_schedule: str = "autoselect"
    fps: int = 8
    max_frames: int = 32


MOTION_FAMILIES = ("wan", "ltx", "animatediff")


@dataclass(frozen=True)
class MotionModels:
    """The image-to-video model files per family (``project.motion_models``); a family left out is not used."""
    wan: WanModels | None = None
    ltx: LtxModels | None = None
    animatediff: AnimateDiffModels | None = None

    @classmethod
    def from_json(cls, raw: dict) -> "MotionModels":
        kinds = {"wan": WanModels, "ltx": LtxModels, "animatediff": AnimateDiffModels}
        # JSON Schema counts 16.0 as an integer; the graph should carry 16
        return cls(**{name: kinds[name](**{k: int(v) if k in ("steps", "fps", "max_frames") else v
                                            for k, v in value.items()}) for name, value in raw.items()})

    @property
    def configured(self) -> tuple[str, ...]:
        return tuple(name for name in MOTION_FAMILIES if getattr(self, name) is not None)


# project.style words that make a project stylized: realistic talking models give cartoon faces real lips
STYLIZED_WORDS = re.compile(r"\b(cartoon\w*|anime|manga|2d|toon\w*|illustrat\w*|storybook|comic\w*|cel[- ]?shad\w*|"
                            r"chibi|pixel[- ]?art|gouache|watercolou?r|flat colou?rs?|hand[- ]drawn|clay\w*|puppet\w*)\b",
                            re.IGNORECASE)
TALK_FAMILIES = ("s2v", "humo")
TALK_CHOICES = ("auto", "s2v", "humo", "mouths")


@dataclass(frozen=True)
class S2VModels:
    """Wan2.2-S2V: frames at 16 fps in windows of ``window_frames`` (4k+1), chained up to ``max_windows``."""
    unet: str
    text_encoder: str
    vae: str
    audio_encoder: str
    steps: int = 20
    cfg: float = 6.0
    shift: float = 8.0
    fps: int = 16
    window_frames: int = 77
    max_windows: int = 12
    sampler: str = "uni_pc"
    scheduler: str = "simple"


@dataclass(frozen=True)
class HuMoModels:
    """HuMo: one window of at most ``max_frames`` (4k+1) at 25 fps."""
    unet: str
    text_encoder: str
    vae: str
    audio_encoder: str
    steps: int = 30
    cfg: float = 5.0
    shift: float = 8.0
    fps: int = 25
    max_frames: int = 97
    sampler: str = "euler"
    scheduler: str = "simple"


@dataclass(frozen=True)
class TalkModels:
    """The audio-driven video model files per talking family (``project.talk_models``)."""
    s2v: S2VModels | None = None
    humo: HuMoModels | None = None

    @classmethod
    def from_json(cls, raw: dict) -> "TalkModels":
        kinds = {"s2v": S2VModels, "humo": HuMoModels}
        ints = ("steps", "fps", "window_frames", "max_windows", "max_frames")
        return cls(**{name: kinds[name](**{k: int(v) if k in ints else v for k, v in value.items()})
                      for name, value in raw.items()})

    @property
    def configured(self) -> tuple[str, ...]:
        return tuple(name for name in TALK_FAMILIES if getattr(self, name) is not None)


def _grid(frames: int) -> int:
    """The least frame count on Wan's 4k+1 grid that holds ``frames``."""
    return 4 * math.ceil((max(1, frames) - 1) / 4) + 1


def s2v_windows(settings: S2VModels, seconds: float) -> tuple[int, ...]:
    """S2V window lengths (each 4k+1 frames) covering ``seconds``: the latent frames shared evenly over the fewest
    windows of at most ``window_frames``; the chain decodes to ``4 * (latents - 1) + 1`` frames."""
    latents = (_grid(round(seconds * settings.fps)) - 1) // 4 + 1
    per_window = (settings.window_frames - 1) // 4 + 1
    count = math.ceil(latents / per_window)
    base, extra = divmod(latents, count)
    return tuple(4 * (base + (k < extra) - 1) + 1 for k in range(count))


def humo_length(settings: HuMoModels, seconds: float) -> int:
    """HuMo frames (4k+1) for ``seconds`` at its 25 fps."""
    return _grid(round(seconds * settings.fps))


@dataclass(frozen=True)
class SubtitleSettings:
    burn: bool = True
    files: str = "srt+vtt"
    size: int = 0
    font: str = ""               # a font family by name, or a font file in the storyboard's folder
    position: str = "bottom"
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
    voice: Voice = field(default_factory=Voice)
    mouth_shapes: str | None = None
    ip_adapter: IPAdapterSpec | None = None
    mouth_files: tuple[Path, ...] = ()  # a mouth-set folder's shape pictures, each checked at load
    talk: str = "auto"

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
    move: str = "static"


@dataclass(frozen=True)
class DialogueLine:
    character: str
    text: str
    emotion: str = "neutral"


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

    def shot_seconds(self, shot: Shot) -> float:
        """The shot's length on screen: its own duration, or the time its dialogue takes to say."""
        if shot.duration != FIT_TO_DIALOGUE:
            return float(shot.duration)
        total = sum(estimate_speech_seconds(line.text, self._voice_rate(line.character)) for line in shot.dialogue)
        return round(total + 0.5, 3)  # a breath before the cut

    def _voice_rate(self, character_id: str) -> float:
        character = self.characters.get(character_id)
        return character.voice.rate if character else 1.0

    def generated(self, checkpoint: str | None = None, steps: int | None = None) -> "Storyboard":
        """The same film with every keyframe generated from a checkpoint instead of taken from its panel.

        Mouth boxes are dropped: they were placed on the panels, and a generated picture puts faces elsewhere.
        """
        from dataclasses import replace

        checkpoint = checkpoint or self.project.checkpoint
        if not checkpoint:
            raise StoryboardError(f"{self.source}: generating keyframes needs a checkpoint",
                                  [Problem("$.project.checkpoint", "required (or pass --checkpoint NAME)")])
        return replace(self, project=replace(self.project, checkpoint=checkpoint, steps=steps or self.project.steps),
                       shots=tuple(replace(shot, keyframe=None, mouths={}) for shot in self.shots))

    @property
    def needs_generation(self) -> bool:
        return any(s.keyframe is None for s in self.shots)


def estimate_speech_seconds(text: str, rate: float = 1.0) -> float:
    """Seconds an unhurried voice takes to say ``text``: about 2.6 words a second, plus pauses.

    Used to size "fit_to_dialogue" shots at compile time, before any voice is synthesised.
    """
    words = len(re.findall(r"\w+", text))
    pauses = len(re.findall(r"[,;:]", text)) * 0.2 + len(re.findall(r"[.!?]+", text)) * 0.35
    return round(max(0.6, words / 2.6 + pauses) / rate, 3)


# --------------------------------------------------------------------------------------------- loading

def load_storyboard(path: str | Path) -> Storyboard:
    """Read, validate and type a storyboard file; raise :class:`StoryboardError` listing every problem."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise StoryboardError(f"{path}: too large for a storyboard",
                                  [Problem("$", f"{path.stat().st_size} bytes; the limit is {MAX_FILE_BYTES}")])
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StoryboardError(f"{path}: no such storyboard file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise StoryboardError(f"{path}: cannot read the storyboard ({exc})") from None
    data = parse_json(text, str(path), error=StoryboardError)
    return parse_storyboard(data, base_dir=path.resolve().parent, source=str(path))


def parse_storyboard(data: Any, base_dir: str | Path, source: str = "<storyboard>") -> Storyboard:
    """Validate ``data`` (the parsed JSON) against the schema and the cross-reference rules."""
    check_data(data, source, error=StoryboardError)  # depth, numbers and text no file or graph can hold
    problems = schema_problems(data)
    if problems:
        raise StoryboardError(f"{source}: {_count(len(problems), 'problem')} in the storyboard", problems)
    base_dir = Path(base_dir).resolve()
    problems = []
    board = _build(data, base_dir, source, problems)
    problems += _cross_reference_problems(board, data)
    if problems:
        raise StoryboardError(f"{source}: {_count(len(problems), 'problem')} in the storyboard", problems)
    return with_close_ups(board)


def _count(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


# --------------------------------------------------------------------------------------------- typing

def _file(raw: str, where: str, base_dir: Path, suffixes: tuple[str, ...], problems: list[Problem]) -> Path | None:
    """A storyboard-relative file through the one input check; a problem at ``where`` when it fails."""
    try:
        return checked_file(base_dir, raw, suffixes)
    except InputFileProblem as exc:
        problems.append(Problem(where, str(exc)))
        return None


def _mouth_files(raw: str | None, where: str, base_dir: Path, problems: list[Problem]) -> tuple[Path, ...]:
    """The shape pictures of a mouth-set folder, every one through the input check (a symlink out of the
    storyboard's folder is refused like a path that leaves it); A–F must be there."""
    if not raw or raw in BUILTIN_MOUTH_SETS:
        return ()
    try:
        files = checked_folder(base_dir, raw, IMAGE_SUFFIXES)
    except InputFileProblem as exc:
        missing = str(exc).startswith("folder not found")
        problems.append(Problem(where, f"{raw!r} is neither a built-in mouth set ({', '.join(BUILTIN_MOUTH_SETS)}) "
                                       "nor a folder beside the storyboard" if missing else str(exc)))
        return ()
    shapes = {p.stem.upper() for p in files}
    missing = [s for s in "ABCDEF" if s not in shapes]
    if missing:
        problems.append(Problem(where, f"the mouth set {raw!r} lacks shape(s) {', '.join(missing)} "
                                       "(needs A.png … F.png; G, H, X optional)"))
        return ()
    return tuple(files)


def _voice(raw: dict, where: str, base_dir: Path, problems: list[Problem]) -> Voice:
    """A character's voice. Voices are named, never reached by a path on this machine: a Piper voice by its file
    name in the voices folders; an XTTS reference recording is a file in the storyboard's folder (checked)."""
    voice = Voice(**raw)
    name = voice.name or ""
    if voice.engine == "xtts" and name:
        path = _file(name, where, base_dir, AUDIO_SUFFIXES, problems)
        return Voice(**{**raw, "name": str(path)}) if path else voice
    if voice.engine in ("piper", "espeak", "openai") and ("/" in name or "\\" in name):
        problems.append(Problem(where, f"a {voice.engine} voice is named, not a path: give the voice's name "
                                       f"(a Piper voice: its file name in the voices folder)"))
    return voice


def is_font_file(name: str) -> bool:
    """Whether ``project.subtitles.font`` names a file (beside the storyboard) rather than a font family."""
    return "/" in name or "\\" in name or name.lower().endswith(FONT_SUFFIXES)


def _subtitle_font(project: Project, base_dir: Path, problems: list[Problem]) -> Project:
    """``project.subtitles.font``: a font file in the storyboard's folder (checked now, uploaded with the graph),
    or a font family that the rendering machine's font list is asked for by name."""
    from dataclasses import replace

    font = project.subtitles.font
    if not font or not is_font_file(font):
        return project
    path = _file(font, "$.project.subtitles.font", base_dir, FONT_SUFFIXES, problems)
    return replace(project, subtitles=replace(project.subtitles, font_file=path))


_INTEGER_FIELDS = ("width", "height", "fps", "seed", "steps")


def _build(data: dict, base_dir: Path, source: str, problems: list[Problem]) -> Storyboard:
    # JSON Schema counts 512.0 as an integer; the graph should carry 512
    project = Project(**{k: int(v) if k in _INTEGER_FIELDS else v for k, v in data["project"].items()})
    project = _subtitle_font(project, base_dir, problems)
    characters: dict[str, Character] = {}
    for cid, raw in (data.get("characters") or {}).items():
        where = json_path(["characters", cid])
        lora = raw.get("lora")
        refs = tuple(p for i, r in enumerate(raw.get("reference_images", []))
                     if (p := _file(r, f"{where}.reference_images[{i}]", base_dir, IMAGE_SUFFIXES, problems)))
        mouths = raw.get("mouth_shapes")
        mouth_files = _mouth_files(mouths, f"{where}.mouth_shapes", base_dir, problems)
        characters[cid] = Character(
            id=cid, description=raw["description"], name=raw.get("name"),
            lora=Lora(lora["file"], lora.get("weight", 1.0), tuple(lora.get("trigger_words", ())),
                      tuple(lora["weight_range"]) if "weight_range" in lora else None) if lora else None,
            reference_images=refs, voice=_voice(raw.get("voice", {}), f"{where}.voice.name", base_dir, problems), mouth_shapes=mouths,
            mouth_files=mouth_files, talk=raw.get("talk", "auto"),
            ip_adapter=IPAdapterSpec(**raw["ip_adapter"]) if "ip_adapter" in raw else None)
    scenes = {sid: Scene(id=sid, **raw) for sid, raw in (data.get("scenes") or {}).items()}
    shots = []
    for i, raw in enumerate(data["shots"]):
        keyframe = raw.get("keyframe")
        shots.append(Shot(
            id=raw["id"], description=raw["description"], index=i, scene=raw.get("scene"),
            characters=tuple(raw.get("characters", ())), camera=Camera(**raw.get("camera", {})),
            duration=raw.get("duration", 3.0),
            dialogue=tuple(DialogueLine(**line) for line in raw.get("dialogue", ())),
            transition=Transition(**raw.get("transition", {"type": "cut"})),
            keyframe=_file(keyframe, f"$.shots[{i}].keyframe", base_dir, IMAGE_SUFFIXES, problems) if keyframe else None,
            seed=int(raw["seed"]) if "seed" in raw else None,
            mouths={cid: MouthBoxSpec(**box) for cid, box in raw.get("mouths", {}).items()},
            motion=Motion(**raw["motion"]) if "motion" in raw else None,
            control=_control(raw.get("control"), f"$.shots[{i}].control", base_dir, problems),
            talk=raw.get("talk"),
            close_ups={cid: p for cid, r in raw.get("close_ups", {}).items()
                       if (p := _file(r, f"$.shots[{i}].close_ups.{cid}", base_dir, IMAGE_SUFFIXES, problems))}))
    music = tuple(MusicCue(file=p, start_shot=m.get("start_shot"), volume=m.get("volume", 0.3))
                  for i, m in enumerate(data.get("music", []))
                  if (p := _file(m["file"], f"$.music[{i}].file", base_dir, AUDIO_SUFFIXES, problems)))
    return Storyboard(project, characters, scenes, tuple(shots), music, base_dir, source)


def _control(raw: dict | None, where: str, base_dir: Path, problems: list[Problem]) -> Control | None:
    if raw is None:
        return None
    image = _file(raw["image"], f"{where}.image", base_dir, IMAGE_SUFFIXES, problems)
    return Control(**{**raw, "image": image}) if image else None


def _character_problems(board: Storyboard) -> list[Problem]:
    """What the schema cannot say about characters: a weight outside its own range, an IP-Adapter with
    nothing to look at."""
    problems: list[Problem] = []
    for cid, character in board.characters.items():
        where = json_path(["characters", cid])
        lora = character.lora
        if lora and lora.weight_range:
            low, high = lora.weight_range
            if low > high:
                problems.append(Problem(f"{where}.lora.weight_range", f"[{low}, {high}]: low is above high"))
            elif not low <= lora.weight <= high:
                problems.append(Problem(f"{where}.lora.weight", f"{lora.weight} is outside the LoRA's recommended "
                                                                f"range [{low}, {high}]"))
        if character.ip_adapter:
            if not character.reference_images:
                problems.append(Problem(f"{where}.ip_adapter", "needs reference_images: the adapter keeps the "
                                                               "character looking like them"))
            if not board.project.clip_vision:
                problems.append(Problem("$.project.clip_vision", f"required: character {cid!r} uses an IP-Adapter, "
                                                                 "which reads CLIP vision image embeddings"))
            if character.ip_adapter.start_at > character.ip_adapter.end_at:
                problems.append(Problem(f"{where}.ip_adapter.start_at", "is after end_at"))
    return problems


def _cross_reference_problems(board: Storyboard, data: dict) -> list[Problem]:
    problems: list[Problem] = []
    first_seen: dict[str, int] = {}
    for shot in board.shots:
        where = shot.json_path
        if shot.id in first_seen:
            problems.append(Problem(f"{where}.id", f"duplicate shot id {shot.id!r} "
                                                   f"(first used at $.shots[{first_seen[shot.id]}])"))
        first_seen.setdefault(shot.id, shot.index)
        if shot.scene is not None and shot.scene not in board.scenes:
            problems.append(Problem(f"{where}.scene", f"unknown scene {shot.scene!r}"
                                    + _known(shot.scene, board.scenes)))
        for j, cid in enumerate(shot.characters):
            if cid not in board.characters:
                problems.append(Problem(f"{where}.characters[{j}]", f"unknown character {cid!r}"
                                        + _known(cid, board.characters)))
        for j, line in enumerate(shot.dialogue):
            if line.character not in board.characters:
                problems.append(Problem(f"{where}.dialogue[{j}].character",
                                        f"unknown character {line.character!r}" + _known(line.character, board.characters)))
        for cid in shot.mouths:
            if cid not in board.characters:
                problems.append(Problem(f"{where}.mouths.{cid}", f"unknown character {cid!r}"
                                        + _known(cid, board.characters)))
        if shot.duration == FIT_TO_DIALOGUE and not shot.dialogue:
            problems.append(Problem(f"{where}.duration", f'"{FIT_TO_DIALOGUE}" needs dialogue, and this shot has none'))
        if shot.index == 0 and shot.transition.type not in ("cut", "fade_black"):
            problems.append(Problem(f"{where}.transition.type",
                                    f"the first shot has nothing to {shot.transition.type} from; use cut or fade_black"))
        if shot.motion is not None:
            configured = board.project.motion_models.configured
            if not configured:
                problems.append(Problem(f"{where}.motion", "generated motion needs project.motion_models "
                                                           f"(the model files of one of: {', '.join(MOTION_FAMILIES)})"))
            elif shot.motion.family != "auto" and shot.motion.family not in configured:
                problems.append(Problem(f"{where}.motion.family",
                                        f"{shot.motion.family!r} has no models in project.motion_models "
                                        f"(set there: {', '.join(configured)})"))
        if shot.control is not None and shot.control.start_at > shot.control.end_at:
            problems.append(Problem(f"{where}.control.start_at", "is after end_at"))
        if shot.transition.seconds >= board.shot_seconds(shot):
            problems.append(Problem(f"{where}.transition.duration",
                                    f"{shot.transition.seconds} s is not shorter than the shot "
                                    f"({board.shot_seconds(shot)} s)"))
    generated = [s.id for s in board.shots if s.keyframe is None and "keyframe" not in data["shots"][s.index]]
    if generated and not board.project.checkpoint:
        problems.append(Problem("$.project.checkpoint",
                                f"required: shot {generated[0]!r} has no keyframe, so it is generated from a checkpoint"))
    if "consistency" in data["project"] and not board.project.clip_vision:
        problems.append(Problem("$.project.clip_vision", "required: the consistency score compares CLIP vision "
                                                         "image embeddings"))
    problems += _character_problems(board)
    problems += _talk_problems(board, data)
    for i, cue in enumerate(board.music):
        if cue.start_shot is not None and cue.start_shot not in first_seen:
            problems.append(Problem(f"$.music[{i}].start_shot", f"unknown shot {cue.start_shot!r}"
                                    + _known(cue.start_shot, first_seen)))
        elif cue.start_shot is not None and cue.start_shot != board.shots[0].id:
            problems.append(Problem(f"$.music[{i}].start_shot", "a music bed starts with the first shot in format v1 "
                                                                "(leave start_shot out, or name the first shot)"))
        if i > 0:
            problems.append(Problem(f"$.music[{i}]", "format v1 has one music bed per film; mix the others into it"))
    return problems


def _known(name: str, known) -> str:
    if not known:
        return " (none are defined)"
    return close_match(name, known) or f" (known: {', '.join(sorted(known)[:8])})"


# ----------------------------------------------------------------------------------------------- talking

TALK_NAMES = {"s2v": "Wan2.2-S2V", "humo": "HuMo"}
# words in a file name that give away another model family
_OTHER_FAMILY_WORDS = {"s2v": ("humo", "i2v", "t2v", "ti2v", "vace", "animate", "fun"),
                       "humo": ("s2v", "i2v", "t2v", "ti2v", "vace", "animate", "fun")}
_AUDIO_ENCODERS = {"s2v": ("wav2vec", "whisper"), "humo": ("whisper", "wav2vec")}  # (wanted, wrong)


def shot_speakers(shot: Shot) -> tuple[str, ...]:
    """The characters who speak in a shot, in the order they first speak."""
    return tuple(dict.fromkeys(line.character for line in shot.dialogue))


def talk_candidates(board: Storyboard, shot: Shot, cid: str) -> tuple[str, ...]:
    """The talking families a speaker may use here, best first, before the engine is asked: the one the shot (else
    the character) names; for ``auto`` the configured ones, none for stylized projects. Empty: 2D mouths."""
    character = board.characters.get(cid)
    choice = shot.talk or (character.talk if character else "mouths")
    if choice == "mouths":
        return ()
    if choice != "auto":
        return (choice,)
    return () if board.project.stylized else board.project.talk_models.configured


def cuts_between_speakers(board: Storyboard, shot: Shot) -> bool:
    """A shot where several characters speak through a video model becomes a cut between their close-ups
    (shot / reverse shot); ``camera.shot: two_shot`` keeps them in one frame with 2D mouths."""
    speakers = shot_speakers(shot)
    return (len(speakers) > 1 and shot.parent is None and shot.camera.shot != "two_shot"
            and any(talk_candidates(board, shot, cid) for cid in speakers))


def close_up_shots(board: Storyboard, shot: Shot) -> list[Shot]:
    """The close-ups a multi-speaker shot is cut into: one per run of lines by one speaker, ``<shot>~<speaker>``
    (``-2``, ``-3`` … when they speak again), each with that speaker's lines and close-up panel (else generated).
    A fixed length is shared by the time each run takes to say; the first keeps the shot's transition."""
    from dataclasses import replace

    runs: list[list[DialogueLine]] = []
    for line in shot.dialogue:
        if runs and runs[-1][0].character == line.character:
            runs[-1].append(line)
        else:
            runs.append([line])
    spoken = [sum(estimate_speech_seconds(line.text, board._voice_rate(line.character)) for line in run) for run in runs]
    seen: dict[str, int] = {}
    out: list[Shot] = []
    for k, run in enumerate(runs):
        cid = run[0].character
        seen[cid] = seen.get(cid, 0) + 1
        duration: Any = FIT_TO_DIALOGUE
        if shot.duration != FIT_TO_DIALOGUE:
            duration = round(shot.duration * spoken[k] / sum(spoken), 3) if k < len(runs) - 1 else \
                round(shot.duration - sum(float(s.duration) for s in out), 3)
        out.append(replace(
            shot, id=f"{shot.id}~{cid}" + (f"-{seen[cid]}" if seen[cid] > 1 else ""), characters=(cid,),
            camera=Camera("close_up", "static"), duration=duration, dialogue=tuple(run),
            transition=shot.transition if k == 0 else Transition("cut", shot.transition.duration),
            keyframe=shot.close_ups.get(cid), mouths={}, control=None, close_ups={}, parent=shot.id))
    return out


def with_close_ups(board: Storyboard) -> Storyboard:
    """The storyboard with every multi-speaker talking shot cut into its speakers' close-ups."""
    from dataclasses import replace

    shots: list[Shot] = []
    for shot in board.shots:
        shots += close_up_shots(board, shot) if cuts_between_speakers(board, shot) else [shot]
    return replace(board, shots=tuple(shots)) if len(shots) != len(board.shots) else board


def _talk_problems(board: Storyboard, data: dict) -> list[Problem]:
    """Talking families with no models, model files of another family, shots longer than a family allows,
    close-ups with no picture to start from."""
    problems: list[Problem] = []
    models = board.project.talk_models
    asked: dict[str, str] = {}
    for cid, character in board.characters.items():
        if character.talk in TALK_FAMILIES:
            asked.setdefault(character.talk, f"{json_path(['characters', cid])}.talk")
    for shot in board.shots:
        if shot.talk in TALK_FAMILIES:
            asked.setdefault(shot.talk, f"{shot.json_path}.talk")
        for cid in shot.close_ups:
            if cid not in board.characters:
                problems.append(Problem(f"{shot.json_path}.close_ups.{cid}", f"unknown character {cid!r}"
                                        + _known(cid, board.characters)))
    for family, where in asked.items():
        if getattr(models, family) is None:
            problems.append(Problem(f"$.project.talk_models.{family}",
                                    f"required: {where} asks for {family} ({TALK_NAMES[family]}); name its unet, "
                                    "text_encoder, vae and audio_encoder files here"))
    problems += _talk_model_problems(models)
    if problems or any(line.character not in board.characters for s in board.shots for line in s.dialogue):
        return problems
    for shot in with_close_ups(board).shots:
        problems += _talk_length_problems(board, shot)
        if shot.parent and shot.keyframe is None and not board.project.checkpoint:
            cid = shot.characters[0]
            problems.append(Problem(f"{shot.json_path}.close_ups.{cid}",
                                    f"shot {shot.parent!r} cuts between its speakers' close-ups: give a panel of "
                                    f"{cid!r} here, or project.checkpoint to generate it (or camera.shot two_shot "
                                    "keeps them in one frame with 2D mouths)"))
    return problems


def _talk_model_problems(models: TalkModels) -> list[Problem]:
    problems = []
    for family in models.configured:
        settings = getattr(models, family)
        where = f"$.project.talk_models.{family}"
        name = settings.unet.lower()
        other = next((w for w in _OTHER_FAMILY_WORDS[family] if re.search(rf"(^|[^a-z0-9]){w}([^a-z0-9]|$)", name)), None)
        if other:
            problems.append(Problem(f"{where}.unet", f"{settings.unet!r} looks like a Wan {other} model, not "
                                                     f"{TALK_NAMES[family]}: give the {TALK_NAMES[family]} diffusion model"))
        wanted, wrong = _AUDIO_ENCODERS[family]
        if wrong in settings.audio_encoder.lower():
            problems.append(Problem(f"{where}.audio_encoder", f"{settings.audio_encoder!r} is a {wrong} encoder; "
                                                              f"{TALK_NAMES[family]} reads {wanted} features"))
        if family == "s2v" and (settings.window_frames - 1) % 4:
            problems.append(Problem(f"{where}.window_frames", f"{settings.window_frames} is not on Wan's 4k+1 grid "
                                                              "(e.g. 77 or 81)"))
        if family == "humo" and (settings.max_frames - 1) % 4:
            problems.append(Problem(f"{where}.max_frames", f"{settings.max_frames} is not on Wan's 4k+1 grid (e.g. 97)"))
    return problems


def _talk_length_problems(board: Storyboard, shot: Shot) -> list[Problem]:
    """A speaker who names a family (not ``auto``, which falls back) in a shot longer than that family allows."""
    speakers = shot_speakers(shot)
    if len(speakers) != 1:  # several speakers in one frame talk through 2D mouths
        return []
    seconds = board.shot_seconds(shot)
    family = shot.talk or board.characters[speakers[0]].talk
    settings = getattr(board.project.talk_models, family) if family in TALK_FAMILIES else None
    where = f"{shot.json_path}.dialogue"
    problems = []
    if settings is not None:
        if family == "s2v" and len(s2v_windows(settings, seconds)) > settings.max_windows:
            problems.append(Problem(where, f"shot {shot.id!r} lasts about {seconds:.1f} s: "
                                           f"{len(s2v_windows(settings, seconds))} S2V windows of up to "
                                           f"{settings.window_frames} frames, more than project.talk_models.s2v."
                                           f"max_windows ({settings.max_windows}); split the shot"))
        if family == "humo" and humo_length(settings, seconds) > settings.max_frames:
            problems.append(Problem(where, f"shot {shot.id!r} lasts about {seconds:.1f} s: "
                                           f"{humo_length(settings, seconds)} HuMo frames at {settings.fps} fps, more "
                                           f"than project.talk_models.humo.max_frames ({settings.max_frames}, "
                                           f"{settings.max_frames / settings.fps:.1f} s); split the line or use s2v"))
    return problems
