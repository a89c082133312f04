"""A shot's dialogue as one object: who says what, when, with its audio and mouth cues.

The pieces the film needs all derive from it: the shot's sound (the lines placed at their times),
its subtitles, and for each speaker the mouth shape of every frame (X while they are silent).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from ..audio.clip import AudioClip
from ..audio.mixing import pan, place
from ..audio.words import WordTiming, shifted
from ..lipsync.cues import MouthCue, MouthCues, frame_rate, frame_shapes, merge_equal
from .subtitles import SubtitleCue


@dataclass(frozen=True)
class SpokenLine:
    speaker: str
    text: str
    start: float           # seconds from the start of the shot's dialogue
    audio: AudioClip
    cues: MouthCues | None = None
    words: tuple[WordTiming, ...] = ()  # when each word is said, from the line's start
    openness: float = 1.0  # × the height of the speaker's open mouth shapes while the line is said (its emotion)

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

    def audio(self, pans: dict[str, float] | None = None) -> AudioClip | None:
        """The lines at their times; with ``pans`` (speaker → -1 left … 1 right) in stereo, each speaker's lines
        where they are in the frame (a speaker not in ``pans`` in the centre)."""
        if not self.lines:
            return None
        rate = max(line.audio.sample_rate for line in self.lines)
        if pans:
            return place([(line.start, pan(line.audio, pans.get(line.speaker, 0.0))) for line in self.lines],
                         self.seconds, rate, 2)
        channels = max(line.audio.channels for line in self.lines)
        return place([(line.start, line.audio) for line in self.lines], self.seconds, rate, channels)

    def subtitles(self) -> tuple[SubtitleCue, ...]:
        return tuple(SubtitleCue(line.start, line.end, line.text, line.speaker, shifted(line.words, line.start))
                     for line in self.lines)

    def mouth_cues(self, speaker: str, until: float = 0.0) -> MouthCues:
        """The speaker's mouth on the dialogue's clock: each line's cues at the line's time, X (rest) between
        lines and after them up to ``until``. Where two of their lines overlap, the earlier one plays out.

        One timeline per speaker, so frames are sampled on the film's frame grid: a closure at the start
        or end of a line competes with the rest around it like any other cue.
        """
        out, at = [], 0.0
        spoken = sorted((line for line in self.lines if line.speaker == speaker and line.cues is not None
                         and line.cues.cues), key=lambda line: line.start)
        for line in spoken:
            if line.end <= at:
                continue
            if line.start > at:
                out.append(MouthCue(at, line.start, "X"))
            out.extend(_placed(line, at))
            at = line.end
        if until > at:
            out.append(MouthCue(at, until, "X"))
        return MouthCues(tuple(merge_equal(out)), max(until, at))

    def mouth_shapes(self, speaker: str, fps: float, count: int) -> list[str]:
        """The speaker's mouth shape for each of ``count`` frames at ``fps`` from the dialogue's start."""
        return frame_shapes(self.mouth_cues(speaker, float(count / frame_rate(fps))), fps, count)

    def mouth_openness(self, speaker: str, fps: float, count: int) -> list[float]:
        """How wide the speaker's mouth opens on each of ``count`` frames at ``fps``: the openness of their line
        said at the frame's start (1 between lines)."""
        spoken = [line for line in self.lines if line.speaker == speaker and line.openness != 1.0]
        out = []
        for n in range(count):
            at = float(n / frame_rate(fps))
            out.append(next((line.openness for line in spoken if line.start <= at < line.end), 1.0))
        return out

    @property
    def speakers(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(line.speaker for line in self.lines))


def _placed(line: SpokenLine, not_before: float) -> list[MouthCue]:
    """The line's cues moved to its start, as ``shape_at`` plays them: the first from the line's start, each
    until the next begins, the last to the line's end; cut to start at ``not_before``."""
    cues = line.cues.cues
    bounds = [line.start] + [line.start + c.start for c in cues[1:]] + [line.end]
    placed = [MouthCue(max(a, not_before), min(b, line.end), c.shape) for a, b, c in zip(bounds, bounds[1:], cues)]
    return [c for c in placed if c.end > c.start]


def dialogue_sound(dialogue: Dialogue, min_seconds: float = 0.0, sample_rate: int = 16000) -> AudioClip:
    """The dialogue's sound from its start (every line at its time, silence between), mono, at least
    ``min_seconds`` long: what an audio-driven video model listens to. An empty dialogue is silence."""
    seconds = max(dialogue.seconds, min_seconds, 1.0 / sample_rate)
    lines = [(line.start, line.audio) for line in dialogue.lines]
    return place(lines, seconds, max([sample_rate] + [line.audio.sample_rate for line in dialogue.lines]), 1)


def shot_length(seconds: float, spoken: float, fit: bool, tail: float, lead: float = 0.0,
                out: float = 0.0) -> tuple[float, float]:
    """A shot's length and when its lines start, so that speech never overlaps a transition: the lines start once
    the transition into the shot (``lead`` seconds) has ended and end before the one out of it (``out``) begins.
    Fitted to its dialogue, the shot is exactly ``lead + spoken + tail + out``; of a fixed length, it grows as far as
    the transitions need (a sound longer than the shot itself is cut at its end, as before: lines from its start)."""
    if spoken <= 0:
        return seconds, 0.0
    if fit:
        return lead + spoken + tail + out, lead
    if spoken > seconds:
        return seconds, 0.0
    return max(seconds, lead + spoken + out), lead

