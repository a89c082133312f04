"""Checks that depend on the machine that renders, not on the storyboard alone, run before anything renders so a
film does not fail halfway or at its last step: that every voice the dialogue asks for is here (an espeak-ng voice
or language, a Piper voice file), and that a font this machine has can draw every burned-in caption (the speaker's
name and the line). Used by ``validate`` and by renders on the embedded engine (a server's voices and fonts are its
own)."""
from __future__ import annotations

from ..common.errors import Problem
from ..common.jsonio import json_path
from .storyboard_model import Storyboard


def machine_problems(board: Storyboard) -> list[Problem]:
    """Every voice and caption problem of ``board`` on this machine."""
    return voice_problems(board) + caption_problems(board)


def voice_problems(board: Storyboard) -> list[Problem]:
    """A character's voice this machine does not have, at ``$.characters.<id>.voice``: an espeak-ng voice or
    language it lacks (also for a line in its own language), a Piper voice file that is not in the voices folders or
    without the piper-tts package. Engines that run elsewhere (OpenAI, GPT-SoVITS) or check their own files at load
    (XTTS) are left to their engines."""
    import importlib.util

    from ..nodes.audio.engines import EspeakEngine
    from ..nodes.audio.tts import TTSError, VoiceSettings

    problems: list[Problem] = []
    checked: set[tuple] = set()
    for shot in board.shots:
        for line in shot.dialogue:
            character = board.characters.get(line.character)
            if character is None:
                continue
            voice, language = character.voice, board.line_language(line)
            name = "" if line.language and voice.engine == "espeak" else voice.name
            key = (line.character, voice.engine, name, language)
            if key in checked:
                continue
            checked.add(key)
            where = json_path(["characters", line.character, "voice"])
            try:
                if voice.engine == "espeak":
                    EspeakEngine().resolve_voice(VoiceSettings("espeak", name or None, language))
                elif voice.engine == "piper":
                    from ..nodes.audio.piper_engine import resolve_voice

                    resolve_voice(voice.name)
                    if importlib.util.find_spec("piper") is None:
                        raise TTSError("the piper engine needs the piper-tts package (pip install 'animstudio[voices]')")
            except TTSError as exc:
                problem = Problem(where, str(exc))
                if problem not in problems:
                    problems.append(problem)
    return problems


def caption_problems(board: Storyboard) -> list[Problem]:
    """Each dialogue line whose burned-in caption no font of this machine can draw (the project's font when it names
    one), at the line's JSON path; the project's font itself when this machine lacks it."""
    subtitles = board.project.subtitles
    if not subtitles.burn or not any(shot.dialogue for shot in board.shots):
        return []
    from ..nodes.film.subtitles import FontError, find_font, system_font

    preferred = ""
    if subtitles.font_file is not None:
        preferred = str(subtitles.font_file)
    elif subtitles.font:
        try:
            preferred = system_font(subtitles.font)
        except FontError as exc:
            return [Problem("$.project.subtitles.font", str(exc))]
    problems: list[Problem] = []
    seen: dict[str, str | None] = {}
    for shot in board.shots:
        for j, line in enumerate(shot.dialogue):
            character = board.characters.get(line.character)
            text = f"{character.display_name}: {line.text}" if character else line.text
            if text not in seen:
                try:
                    find_font(text, preferred)
                    seen[text] = None
                except FontError as exc:
                    seen[text] = str(exc)
            problem = Problem(f"{shot.json_path}.dialogue[{j}].text", seen[text]) if seen[text] else None
            if problem and problem not in problems:  # a close-up's lines are its shot's: said once
                problems.append(problem)
    return problems
