"""A storyboard's entries for the project library: its characters, places and style (the series' facts), its
shots and spoken lines (the episode's), and which library character each of its characters is.

Facts the library already holds are the series' canon: a new episode fills what they lack but changes nothing
(a contradiction is a continuity warning, see :mod:`.continuity`), unless the user asks to update them.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ...common.errors import LibraryError
from ...common.jsonio import json_path
from ..emotion import shot_camera
from ..storyboard_model import Character, Storyboard
from .resolve import resolve_characters, series_of
from .store import Entry, Library


def episode_of(board: Storyboard, source: str | Path, episode: int | None = None) -> int:
    """The episode's number: given, else ``project.episode``, else the number in the file's name
    (``episode-03.json``), else one clear message."""
    if episode is not None:
        return episode
    if board.project.episode:
        return board.project.episode
    digits = re.findall(r"\d+", Path(source).stem)
    if digits:
        return int(digits[-1])
    raise LibraryError(f"{source}: which episode is it? Set project.episode in the storyboard (or give --episode N)")


def _rel(path: Path | None, base: Path) -> str | None:
    if path is None:
        return None
    try:
        return str(Path(path).resolve().relative_to(base.resolve()))
    except ValueError:
        return str(path)


def character_data(c: Character, base: Path) -> dict:
    data = {"description": c.description, "name": c.display_name, "wardrobe": c.wardrobe, "age": c.age,
            "language": c.language, "voice": {k: v for k, v in (("engine", c.voice.engine), ("name", c.voice.name),
                                                                ("rate", c.voice.rate), ("pitch", c.voice.pitch))
                                              if v is not None},
            "lora": {"file": c.lora.file, "weight": c.lora.weight, "trigger_words": list(c.lora.trigger_words)}
            if c.lora else None,
            "reference_images": [_rel(p, base) for p in c.reference_images], "sheet": _rel(c.sheet, base),
            "mouth_shapes": c.mouth_shapes}
    return {k: v for k, v in data.items() if v not in (None, [], "")}


def character_text(name: str, data: dict) -> str:
    """What a character is searched by: name, description, wardrobe, age."""
    parts = [f"{name}: {data.get('description', '')}".strip()]
    if data.get("wardrobe"):
        parts.append(f"wears {data['wardrobe']}")
    if data.get("age") not in (None, ""):
        parts.append(f"age {data['age']}")
    return "; ".join(parts)


@dataclass(frozen=True)
class Added:
    series: str
    episode: int
    new: tuple[str, ...]        # labels of series facts the library did not have
    kept: tuple[str, ...]       # series facts it had, kept (filled where they lacked a field)
    shots: int
    lines: int


def storyboard_entries(board: Storyboard, source: str, episode: int, known: dict[str, Entry],
                       rendered: dict[str, list[str]] | None = None, film: str | None = None,
                       faces: dict[str, list[float]] | None = None) -> list[Entry]:
    """Entries for ``board``; a character ``known`` (by its id in the board) keeps the library's facts, filled;
    ``faces`` (character id → the face embedding of their reference pictures) is kept as ``face``; a shot
    ``rendered`` keeps its files (and the episode's ``film``)."""
    rendered, faces = rendered or {}, faces or {}
    base, series, out = board.base_dir, series_of(board), []
    for cid, c in board.characters.items():
        data = character_data(c, base)
        if cid in faces:
            data["face"] = list(faces[cid])
        old = known.get(cid)
        if old is not None:
            data = {**data, **{k: v for k, v in old.data.items() if v not in (None, "", [])}}
        key, name = (old.key, old.name) if old is not None else (cid, c.display_name)
        out.append(Entry("character", key, character_text(name, data), name, series, 0, data,
                         old.source if old is not None else f"{source} {json_path(['characters', cid])}"))
    for sid, s in board.scenes.items():
        data = {k: v for k, v in (("description", s.description), ("location", s.location),
                                  ("time_of_day", s.time_of_day)) if v}
        text = "; ".join(str(v) for v in data.values()) or sid
        out.append(Entry("place", sid, text, s.location or sid, series, 0, data,
                         f"{source} {json_path(['scenes', sid])}"))
    if board.project.style:
        out.append(Entry("style", "style", board.project.style, "style guide", series, 0,
                         {"style": board.project.style, "negative_prompt": board.project.negative_prompt},
                         f"{source} $.project.style"))
    for shot in board.shots:
        where = f"{source} {json_path(['shots', shot.index])}"
        names = [board.characters[c].display_name for c in shot.characters if c in board.characters]
        out.append(Entry("shot", shot.id, shot.description, shot.id, series, episode,
                         {"characters": list(shot.characters), "scene": shot.scene, "camera": shot.camera.shot,
                          "move": shot_camera(board, shot).move, "who": names,
                          **({"rendered": rendered[shot.id], "film": film} if shot.id in rendered else {})}, where))
        for i, line in enumerate(shot.dialogue):
            who = board.characters[line.character].display_name if line.character in board.characters else line.character
            out.append(Entry("line", f"{shot.id}/{i}", line.text, who, series, episode,
                             {"character": line.character, "emotion": line.emotion, "language": line.language,
                              "shot": shot.id}, f"{where}.dialogue[{i}]"))
    return out


def add_storyboard(library: Library, board: Storyboard, source: str, *, episode: int | None = None,
                   update: bool = False, rendered: dict[str, list[str]] | None = None,
                   film: str | None = None, faces: dict[str, list[float]] | None = None) -> Added:
    """Put ``board`` into ``library`` in one transaction; the episode's earlier shots and lines are replaced.
    ``rendered`` (shot id → files) and ``film`` record what a render made of them; ``faces`` (character id → face
    embedding) what their reference pictures show."""
    series, number = series_of(board), episode_of(board, source, episode)
    known = {} if update else {cid: m.entry for cid, m in resolve_characters(library, board).items()}
    entries = storyboard_entries(board, source, number, known, rendered, film, faces)
    if not update:  # places and style the library has are canon too
        entries = [e for e in entries if e.kind not in ("place", "style") or library.get(e.kind, e.key, series) is None]
    library.put(entries, replace_episode=(series, number))
    series_facts = [e for e in entries if e.kind in ("character", "place", "style")]
    new = tuple(e.label() for e in series_facts if not (e.kind == "character" and e.key in {k.key for k in known.values()}))
    kept = tuple(e.label() for e in known.values())
    return Added(series, number, new, kept, sum(e.kind == "shot" for e in entries),
                 sum(e.kind == "line" for e in entries))
