"""What each emotion does to a line, in one table: the voice's prosody (a speaking-rate factor, a pitch shift in
semitones, an energy factor on its level), how wide the speaker's mouth opens (a factor on the open mouth shapes'
height) and the camera preset a shot takes when its own ``camera.move`` is left out (a move and its strength).

Both sides read it: the voice nodes apply the prosody when a line is spoken with its emotion's defaults, and the
translator works out each line's numbers (with a storyboard's ``project.emotions`` and per-line overrides on top) and
the shot's preset, and passes them to the nodes as plain values."""
from __future__ import annotations

from dataclasses import dataclass, fields, replace

EMOTIONS = ("neutral", "happy", "sad", "angry", "afraid", "surprised", "disgusted", "whisper", "shout")


@dataclass(frozen=True)
class CameraPreset:
    """A camera move (one of the shot clip's moves; ``static`` for none) and how far it goes: 1 the move's full
    travel, 0.5 half of it (a gentle push-in, a subtle shake)."""

    move: str = "static"
    strength: float = 1.0


@dataclass(frozen=True)
class Emotion:
    rate: float = 1.0             # × the voice's speaking rate
    pitch: float = 0.0            # + semitones on the voice's pitch
    energy: float = 1.0           # × the level of the spoken sound
    mouth_openness: float = 1.0   # × the height of the open mouth shapes
    camera: CameraPreset = CameraPreset()

    def with_values(self, values: dict) -> "Emotion":
        """This emotion with some of its numbers replaced (``camera`` as a move, or a dict of move and strength)."""
        known = {f.name for f in fields(self)}
        changes = {k: v for k, v in values.items() if k in known and v is not None}
        camera = changes.get("camera")
        if isinstance(camera, dict):
            changes["camera"] = replace(self.camera, **camera)
        elif isinstance(camera, str):
            changes["camera"] = CameraPreset(camera)
        return replace(self, **changes)


# rate and pitch are the espeak voices' emotion prosody as it was; a sad line is slower, lower, quieter, with a
# gentle push-in; an angry one faster, louder, its mouth wider, with the camera shaking
DEFAULT_EMOTIONS: dict[str, Emotion] = {
    "neutral": Emotion(),
    "happy": Emotion(1.08, 2.0, 1.1, 1.1),
    "sad": Emotion(0.85, -2.0, 0.8, 0.7, CameraPreset("dolly_in", 0.5)),
    "angry": Emotion(1.1, 1.0, 1.3, 1.3, CameraPreset("shake", 1.0)),
    "afraid": Emotion(1.15, 3.0, 0.9, 0.9, CameraPreset("shake", 0.35)),
    "surprised": Emotion(1.05, 4.0, 1.15, 1.4, CameraPreset("zoom_in", 1.0)),
    "disgusted": Emotion(0.92, -1.0, 0.95, 0.8),
    "whisper": Emotion(0.95, 0.0, 0.7, 0.6),
    "shout": Emotion(1.05, 3.0, 1.6, 1.5, CameraPreset("shake", 1.0)),
}


def emotion_defaults(emotion: str) -> Emotion:
    """The table's entry for ``emotion`` (KeyError for a name not in :data:`EMOTIONS`)."""
    return DEFAULT_EMOTIONS[emotion]
