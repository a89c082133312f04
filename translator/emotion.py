"""What a line's emotion does in the film, worked out from the storyboard: each line's delivery (its voice's rate,
pitch and energy, and how wide its speaker's mouth opens) and each shot's camera move (the shot's own, else the preset
of its first line's emotion that has one). The numbers come from the one table (:mod:`..common.emotion`), with the
storyboard's ``project.emotions`` over it and a line's own ``prosody`` and ``mouth_openness`` over those; the graph
passes them to the nodes as plain values, and the film's timeline and render report record them."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .storyboard_model import DialogueLine, Shot, Storyboard

# what the voice and clip nodes take (their inputs' ranges): an effective value past them is held to them
RATE_RANGE = (0.25, 4.0)
PITCH_RANGE = (-12.0, 12.0)
ENERGY_RANGE = (0.05, 4.0)
OPENNESS_RANGE = (0.1, 3.0)


def _held(value: float, bounds: tuple[float, float]) -> float:
    return round(min(max(float(value), bounds[0]), bounds[1]), 4)


@dataclass(frozen=True)
class Delivery:
    """How one line is said: its emotion, the voice's rate (× normal), pitch (semitones) and energy (× level) with
    the emotion's prosody in them, and the openness of the speaker's mouth (× the open shapes' height)."""

    emotion: str
    rate: float
    pitch: float
    energy: float
    mouth_openness: float

    def to_json(self) -> dict:
        return {"emotion": self.emotion, "prosody": {"rate": self.rate, "pitch": self.pitch, "energy": self.energy},
                "mouth_openness": self.mouth_openness}


@dataclass(frozen=True)
class ShotCamera:
    """A shot's camera move and its strength, and where it came from: ``storyboard`` (the shot's ``camera.move``),
    ``emotion:<name>`` (that line emotion's preset), or ``default`` (static: no move given and no preset)."""

    move: str
    strength: float
    source: str

    def to_json(self) -> dict:
        return {"move": self.move, "strength": self.strength, "source": self.source}


def line_delivery(board: "Storyboard", line: "DialogueLine") -> Delivery:
    """The line's delivery: its character's voice with the emotion's numbers (the project's table), the line's own
    overrides on top; each held to what the nodes take."""
    character = board.characters.get(line.character)
    voice_rate, voice_pitch = (character.voice.rate, character.voice.pitch) if character else (1.0, 0.0)
    emotion = board.project.emotions[line.emotion]
    own = line.prosody
    rate = own.rate if own and own.rate is not None else emotion.rate
    pitch = own.pitch if own and own.pitch is not None else emotion.pitch
    energy = own.energy if own and own.energy is not None else emotion.energy
    openness = line.mouth_openness if line.mouth_openness is not None else emotion.mouth_openness
    return Delivery(line.emotion, _held(voice_rate * rate, RATE_RANGE), _held(voice_pitch + pitch, PITCH_RANGE),
                    _held(energy, ENERGY_RANGE), _held(openness, OPENNESS_RANGE))


def shot_camera(board: "Storyboard", shot: "Shot") -> ShotCamera:
    """The shot's own ``camera.move`` when written; else the preset of the first of its lines whose emotion has one
    (a sad line's gentle push-in, a shout's shake); else static."""
    if shot.camera.move is not None:
        return ShotCamera(shot.camera.move, 1.0, "storyboard")
    for line in shot.dialogue:
        preset = board.project.emotions[line.emotion].camera
        if preset.move != "static":
            return ShotCamera(preset.move, _held(preset.strength, (0.0, 2.0)), f"emotion:{line.emotion}")
    return ShotCamera("static", 1.0, "default")


def with_emotion(board: "Storyboard", timeline: list[dict]) -> list[dict]:
    """A film's timeline (each shot's time on screen with its lines, as the film reports it) with each shot's camera
    and each line's delivery beside them: what the render report and the cut's metadata show."""
    shots = {shot.id: shot for shot in board.shots}
    out = []
    for entry in timeline:
        shot = shots.get(entry.get("shot"))
        if shot is None:
            out.append(entry)
            continue
        lines, at = [], 0
        for line in entry.get("lines", ()):
            at = _said_in(shot, line.get("text", ""), at)
            lines.append({**line, **line_delivery(board, shot.dialogue[at]).to_json()} if at < len(shot.dialogue)
                         else line)
        out.append({**entry, "camera": shot_camera(board, shot).to_json(), "lines": lines})
    return out


def _said_in(shot: "Shot", caption: str, start: int) -> int:
    """The shot's line (from ``start`` on) that a caption is, or is part of (a long line's captions come in parts)."""
    words = " ".join(caption.split())
    for index in range(start, len(shot.dialogue)):
        if words and words in " ".join(shot.dialogue[index].text.split()):
            return index
    return start
