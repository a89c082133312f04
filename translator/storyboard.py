"""Loading a storyboard (its typed model is :mod:`.storyboard_model`), with errors that name JSON paths.

A storyboard is checked in two passes before anything is compiled or submitted: the JSON Schema
(`schema/storyboard.v1.schema.json`, shipped in the package) for shape and ranges, then the
cross-references a schema cannot express (unknown character or scene ids, duplicate shot ids,
missing or escaping files). Every problem found is reported at once, each with its JSON path.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..common.errors import Problem, StoryboardError
from ..common.inputs import AUDIO_SUFFIXES, FONT_SUFFIXES, IMAGE_SUFFIXES, InputFileProblem, checked_file, checked_folder
from ..common.jsonio import MAX_FILE_BYTES, check_data, json_path, parse_json
from .schema_check import FIT_TO_DIALOGUE, known_hint, schema_problems, without_schema_problems
from .storyboard_model import (BUILTIN_MOUTH_SETS, Camera, Character, Control, DialogueLine,
                               IPAdapterSpec, Lora, Motion, MouthBoxSpec, MusicCue, Project, Scene, Shot, Storyboard,
                               Transition, Voice)
from .keyframe_models import QWEN_EDIT_MAX_REFERENCES
from .talk_plan import talk_problems, with_close_ups
from .video_models import MOTION_FAMILIES

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
    base_dir = Path(base_dir).resolve()
    if problems:  # the checks past the schema still run, on what the schema accepts: every problem in one pass
        problems += _problems_past_the_schema(data, base_dir, source, problems)
        raise StoryboardError(f"{source}: {_count(len(problems), 'problem')} in the storyboard", problems)
    problems = []
    board = _build(data, base_dir, source, problems)
    problems += _cross_reference_problems(board, data)
    if problems:
        raise StoryboardError(f"{source}: {_count(len(problems), 'problem')} in the storyboard", problems)
    return with_close_ups(board)


def _problems_past_the_schema(data: Any, base_dir: Path, source: str, found: list[Problem]) -> list[Problem]:
    """The reference, file and setting problems of a storyboard the schema refused, found on a copy without the
    refused values; none where that copy cannot be made (the schema's problems are then all there is to say)."""
    cleaned = without_schema_problems(data)
    if cleaned is None:
        return []
    problems: list[Problem] = []
    try:
        board = _build(cleaned, base_dir, source, problems)
        problems += _cross_reference_problems(board, cleaned)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, OSError):
        return []  # a copy too damaged to build: the schema's problems are reported alone
    refused = {p.where for p in found}
    return [p for p in problems if p.where not in refused and not any(p.where.startswith(w + ".") or
                                                                        p.where.startswith(w + "[") for w in refused)]


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


_INTEGER_FIELDS = ("width", "height", "fps", "seed", "steps", "episode")


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
        sheet = _file(raw["sheet"], f"{where}.sheet", base_dir, IMAGE_SUFFIXES, problems) if "sheet" in raw else None
        mouths = raw.get("mouth_shapes")
        mouth_files = _mouth_files(mouths, f"{where}.mouth_shapes", base_dir, problems)
        characters[cid] = Character(
            id=cid, description=raw["description"], name=raw.get("name"),
            lora=Lora(lora["file"], lora.get("weight", 1.0), tuple(lora.get("trigger_words", ())),
                      tuple(lora["weight_range"]) if "weight_range" in lora else None) if lora else None,
            reference_images=refs, sheet=sheet, voice=_voice(raw.get("voice", {}), f"{where}.voice.name", base_dir, problems), mouth_shapes=mouths,
            mouth_files=mouth_files, talk=raw.get("talk", "auto"), language=raw.get("language"),
            age=int(raw["age"]) if isinstance(raw.get("age"), float) else raw.get("age"), wardrobe=raw.get("wardrobe"),
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
            talk=raw.get("talk"), continuity=raw.get("continuity", "none"),
            close_ups={cid: p for cid, r in raw.get("close_ups", {}).items()
                       if (p := _file(r, f"$.shots[{i}].close_ups.{cid}", base_dir, IMAGE_SUFFIXES, problems))}))
    music = tuple(MusicCue(file=p, start_shot=m.get("start_shot"), volume=m.get("volume", 0.3))
                  for i, m in enumerate(data.get("music", []))
                  if (p := _file(m["file"], f"$.music[{i}].file", base_dir, AUDIO_SUFFIXES, problems)))
    return Storyboard(project, characters, scenes, tuple(shots), music, base_dir, source)


def _continuity_problems(board: Storyboard) -> list[Problem]:
    """``continuity: previous`` needs a shot before it, of the same scene, and the Wan model to run first-last-frame
    video on."""
    problems = []
    for shot in board.shots:
        if shot.continuity != "previous":
            continue
        where = f"{shot.json_path}.continuity"
        before = board.previous_shot(shot)
        if before is None:
            problems.append(Problem(where, "the first shot has no previous shot to continue from"))
            continue
        if before.scene != shot.scene:
            problems.append(Problem(where, f"shot {shot.id!r} (scene {shot.scene!r}) continues from {before.id!r} of "
                                           f"another scene ({before.scene!r}); continuity joins shots of one scene"))
        if board.project.motion_models.wan is None:
            problems.append(Problem(where, "first-last-frame video runs on the Wan image-to-video model: name its "
                                           "files in project.motion_models.wan"))
    return problems


def keyframe_model_problems(board: Storyboard, data: dict, generated: list[str]) -> list[Problem]:
    """A reference family needs its files in ``project.keyframe_models`` and, for every character in a generated
    shot, a sheet or a reference picture to make one from; Qwen-Image-Edit reads at most three sheets a shot."""
    family = board.project.keyframe_model
    if family == "checkpoint" or not generated:
        return []
    problems = []
    if getattr(board.project.keyframe_models, family) is None:
        problems.append(Problem(f"$.project.keyframe_models.{family}",
                                f"required: keyframe_model is {family!r} and shot {generated[0]!r} has no keyframe, "
                                "so it is edited by that model: name its files here"))
    for cid in board.sheet_characters():
        character = board.characters[cid]
        if character.sheet is None and not character.reference_images and "sheet" not in data["characters"][cid]:
            problems.append(Problem(json_path(["characters", cid, "reference_images"]),
                                    f"keyframe_model {family!r} edits every keyframe from the sheets of the characters "
                                    f"in it, and character {cid!r} has no picture to make a sheet from: give at least "
                                    "one reference image (or their own sheet in 'sheet')"))
    for shot in board.shots:
        if shot.keyframe is None and shot.control is not None:
            problems.append(Problem(f"{shot.json_path}.control", f"ControlNet guides the checkpoint family; "
                                    f"keyframe_model {family!r} edits from character sheets and cannot use it"))
    if family == "qwen_edit":
        for shot in board.shots:
            if shot.keyframe is None and len(shot.characters) > QWEN_EDIT_MAX_REFERENCES:
                problems.append(Problem(f"{shot.json_path}.characters",
                                        f"Qwen-Image-Edit reads at most {QWEN_EDIT_MAX_REFERENCES} reference pictures "
                                        f"and this shot has {len(shot.characters)} characters: use keyframe_model "
                                        "'kontext', or give the shot a keyframe"))
    return problems


# letters of these scripts say which languages can speak them (Unicode blocks; Latin is everyone's)
_SCRIPTS = (
    ("Han", ((0x4E00, 0x9FFF), (0x3400, 0x4DBF)), ("zh", "cmn", "yue", "hak", "ja")),
    ("kana", ((0x3040, 0x30FF),), ("ja",)),
    ("Hangul", ((0xAC00, 0xD7AF), (0x1100, 0x11FF)), ("ko",)),
    ("Cyrillic", ((0x0400, 0x04FF),), ("ru", "uk", "be", "bg", "sr", "mk", "kk", "ky", "tt", "ba", "cv", "mn")),
    ("Greek", ((0x0370, 0x03FF),), ("el", "grc")),
    ("Arabic", ((0x0600, 0x06FF),), ("ar", "fa", "ur", "ps", "sd", "ug")),
    ("Hebrew", ((0x0590, 0x05FF),), ("he", "yi")),
    ("Devanagari", ((0x0900, 0x097F),), ("hi", "mr", "ne", "sa", "kok")),
    ("Thai", ((0x0E00, 0x0E7F),), ("th",)),
)


def _script_problems(board: Storyboard) -> list[Problem]:
    """A line written in a script its language cannot speak (Chinese characters spoken as English), at its path."""
    problems = []
    for shot in board.shots:
        if shot.parent is not None:  # a close-up's lines are its shot's: checked there
            continue
        for j, line in enumerate(shot.dialogue):
            language = board.line_language(line)
            base = language.split("-")[0].lower()
            for name, blocks, speakers in _SCRIPTS:
                if base not in speakers and any(lo <= ord(ch) <= hi for ch in line.text for lo, hi in blocks):
                    problems.append(Problem(f"{shot.json_path}.dialogue[{j}].text", (
                        f"written in {name} letters, which the line's language {language!r} cannot speak: set the "
                        f"line's 'language' (or its character's) to one that does ({', '.join(speakers[:4])}, …)")))
                    break
    return problems


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
                                    + known_hint(shot.scene, board.scenes)))
        for j, cid in enumerate(shot.characters):
            if cid not in board.characters:
                problems.append(Problem(f"{where}.characters[{j}]", f"unknown character {cid!r}"
                                        + known_hint(cid, board.characters)))
        for j, line in enumerate(shot.dialogue):
            if line.character not in board.characters:
                problems.append(Problem(f"{where}.dialogue[{j}].character",
                                        f"unknown character {line.character!r}" + known_hint(line.character, board.characters)))
        for cid in shot.mouths:
            if cid not in board.characters:
                problems.append(Problem(f"{where}.mouths.{cid}", f"unknown character {cid!r}"
                                        + known_hint(cid, board.characters)))
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
    if generated and not board.project.checkpoint and not board.project.edits_keyframes:
        problems.append(Problem("$.project.checkpoint",
                                f"required: shot {generated[0]!r} has no keyframe, so it is generated from a checkpoint"))
    problems += keyframe_model_problems(board, data, generated)
    if "consistency" in data["project"] and not board.project.clip_vision:
        problems.append(Problem("$.project.clip_vision", "required: the consistency score compares CLIP vision "
                                                         "image embeddings"))
    problems += _character_problems(board)
    problems += _continuity_problems(board)
    problems += _script_problems(board)
    problems += talk_problems(board, data)
    for i, cue in enumerate(board.music):
        if cue.start_shot is not None and cue.start_shot not in first_seen:
            problems.append(Problem(f"$.music[{i}].start_shot", f"unknown shot {cue.start_shot!r}"
                                    + known_hint(cue.start_shot, first_seen)))
        elif cue.start_shot is not None and cue.start_shot != board.shots[0].id:
            problems.append(Problem(f"$.music[{i}].start_shot", "a music bed starts with the first shot in format v1 "
                                                                "(leave start_shot out, or name the first shot)"))
        if i > 0:
            problems.append(Problem(f"$.music[{i}]", "format v1 has one music bed per film; mix the others into it"))
    return problems
