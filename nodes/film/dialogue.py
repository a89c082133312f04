"""A shot's dialogue as one object: who says what, when, with its audio and mouth cues.

The pieces the film needs all derive from it: the shot's sound (the lines placed at their times),
its subtitles, and for each speaker the mouth shape at any moment (X while they are silent).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from ..audio.clip import AudioClip
from ..audio.mixing import place
from ..lipsync.cues import MouthCues
from .subtitles import SubtitleCue


@dataclass(frozen=True)
class SpokenLine:
    speaker: str
    text: str
    start: float           # seconds from the start of the shot's dialogue
    audio: AudioClip
    cues: MouthCues | None = None

    @property
    def end(self) -> float:
        return self.start + self.audio.seconds


@dataclass(frozen=True)
class Dialogue:
    lines: tuple[SpokenLine, ...] = ()

    @property
    def seconds(self) -> float:
        return max((line.end for line in self.lines), default=0.0)

    def then(self, other: "Dialogue", gap_seconds: float) -> "Dialogue":
        """This dialogue, a pause, then ``other``'s lines shifted to follow."""
        offset = self.seconds + gap_seconds if self.lines else 0.0
        return Dialogue(self.lines + tuple(replace(line, start=line.start + offset) for line in other.lines))

    def shifted(self, seconds: float) -> "Dialogue":
        return Dialogue(tuple(replace(line, start=line.start + seconds) for line in self.lines))

    def audio(self) -> AudioClip | None:
        if not self.lines:
            return None
        rate = max(line.audio.sample_rate for line in self.lines)
        channels = max(line.audio.channels for line in self.lines)
        return place([(line.start, line.audio) for line in self.lines], self.seconds, rate, channels)

    def subtitles(self) -> tuple[SubtitleCue, ...]:
        return tuple(SubtitleCue(line.start, line.end, line.text, line.speaker) for line in self.lines)

    def mouth_shape(self, speaker: str, seconds: float) -> str:
        """The speaker's mouth shape at ``seconds``: from the cues of the line they are saying, else X (rest)."""
        for line in self.lines:
            if line.speaker == speaker and line.cues is not None and line.start <= seconds < line.end:
                return line.cues.shape_at(seconds - line.start)
        return "X"

    @property
    def speakers(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(line.speaker for line in self.lines))
