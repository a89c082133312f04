"""Who talks how: the talking family a speaker may use in a shot, a multi-speaker shot cut into its speakers'
close-ups (shot / reverse shot), and the storyboard problems only talking has (models missing or of another
family, shots longer than a family allows)."""
from __future__ import annotations

import re
from typing import Any

from ..common.errors import Problem
from ..common.jsonio import json_path
from .schema_check import FIT_TO_DIALOGUE, known_hint
from .storyboard_model import Camera, DialogueLine, Shot, Storyboard, Transition, estimate_speech_seconds
from .video_models import TALK_FAMILIES, TalkModels, humo_length, s2v_windows

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
    spoken = [sum(estimate_speech_seconds(line.text, board.line_rate(line)) for line in run) for run in runs]
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


def talk_problems(board: Storyboard, data: dict) -> list[Problem]:
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
                                        + known_hint(cid, board.characters)))
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
