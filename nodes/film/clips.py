"""Clips and films as lazy frame streams, so a film of any length is rendered in constant memory.

A :class:`Clip` knows its size, rate and length and yields its frames on demand (from a still with
a camera move, or decoded from a video file). A :class:`Film` is clips joined by transitions;
:func:`.transitions.iter_film_frames` yields the cut.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from ..audio.clip import AudioClip
from .camera import crop_window
from .dialogue import Dialogue
from .sidecars import read_sidecar
from .subtitles import SubtitleCue
from .frames import cover_box, crop_resize, pack_picture, unpack_picture

log = logging.getLogger(__name__)

TRANSITIONS = ("cut", "dissolve", "fade_black", "wipe_left", "wipe_right")


@dataclass(frozen=True)
class Clip:
    """``frame_count`` frames of ``width×height`` at ``fps``, produced by ``make_frames`` each time it is iterated."""

    width: int
    height: int
    fps: float
    frame_count: int
    make_frames: Callable[[], Iterator[np.ndarray]] = field(repr=False, compare=False)
    label: str = ""
    audio: AudioClip | None = field(default=None, repr=False, compare=False)  # starts with the clip's first frame
    subtitles: tuple[SubtitleCue, ...] = field(default=(), compare=False)     # times from the clip's first frame
    warnings: tuple[str, ...] = field(default=(), compare=False)  # what the viewer should know (a mouth not drawn)
    source: Path | None = field(default=None, compare=False)  # the video file the frames are decoded from

    @property
    def seconds(self) -> float:
        return self.frame_count / self.fps

    def frames(self, start: int = 0) -> Iterator[np.ndarray]:
        """Frames ``start`` on; a clip read from a video file seeks there (from the key frame before it)."""
        produced = start
        if start and self.source is not None:
            from .video_io import read_frames

            made = read_frames(self.source, start)
        else:
            made = islice(self.make_frames(), start, None)
        frame = None
        for frame in made:
            if produced == self.frame_count:
                return
            produced += 1
            yield frame
        if produced < self.frame_count and frame is None and start:  # the source ends before `start`: its last frame
            for frame in self.make_frames():
                pass
        while produced < self.frame_count:  # a source shorter than promised holds its last frame
            if frame is None:
                frame = np.zeros((self.height, self.width, 3), np.uint8)
            produced += 1
            yield frame


def frame_count_for(seconds: float, fps: float) -> int:
    return max(1, int(round(seconds * fps)))


def still_clip(picture: np.ndarray, width: int, height: int, fps: float, seconds: float,
               move: str = "static", seed: int = 0, label: str = "", audio: AudioClip | None = None,
               dialogue: Dialogue | None = None, rigs: tuple = (), strength: float = 1.0) -> Clip:
    """A clip of a still picture, fitted to ``width×height``, with a camera ``move`` eased over its length (its
    travel × ``strength``).

    With ``dialogue`` the clip carries its sound and subtitles, and each mouth ``rig`` (a character's mouth
    box on the picture) shows that character's mouth shape for every frame (the shape covering most of
    the frame, closures always kept: see ``Dialogue.mouth_shapes``), drawn on the picture before the
    camera moves, so the mouth moves with the face.
    """
    picture = np.ascontiguousarray(picture[..., :3], dtype=np.uint8)
    box = cover_box(picture.shape[1], picture.shape[0], width, height)
    count = frame_count_for(seconds, fps)
    if dialogue is not None and audio is None:
        audio = dialogue.audio(speaker_pans(rigs, box))
    talking = dialogue is not None and bool(rigs)
    warnings = mouth_warnings(rigs, fps, count, label) if talking else ()
    if talking:
        from ..lipsync.mouths import check_box

        for rig in rigs:  # a misplaced mouth fails now, not halfway through the render
            if rig.box is not None and not rig.track:  # a found or tracked box may reach past the edge: clipped
                check_box(rig.box, picture.shape[1], picture.shape[0])
    # kept PNG-compressed until the clip is drawn: a long film holds a few hundred kB per shot, not megabytes
    stored = pack_picture(picture)
    del picture

    def make() -> Iterator[np.ndarray]:
        source = unpack_picture(stored)
        if move == "static" and not talking:
            frame = crop_resize(source, box, width, height)
            for _ in range(count):
                yield frame
            return
        draw = _mouth_drawer(dialogue, rigs, fps, count, label) if talking else None
        for i in range(count):
            t = i / (count - 1) if count > 1 else 1.0
            yield crop_resize(draw(source, i, 0) if draw else source, crop_window(move, t, box, seed, i, strength),
                              width, height)

    subtitles = dialogue.subtitles() if dialogue is not None else ()
    return Clip(width, height, fps, count, make, label, audio, subtitles, warnings)


def sequence_clip(frames, width: int, height: int, fps: float, seconds: float, move: str = "static",
                  seed: int = 0, label: str = "", audio: AudioClip | None = None,
                  dialogue: Dialogue | None = None, rigs: tuple = (), source_fps: float = 0.0,
                  strength: float = 1.0) -> Clip:
    """A clip of a frame sequence (its last frame held when the clip is longer), with a camera ``move`` over it.
    Frames made at ``source_fps`` (a video model's rate) are shown by time: film frame ``i`` shows source frame
    ``floor(i * source_fps / fps)``; 0 shows one source frame per film frame.

    With ``dialogue`` and mouth ``rigs`` (as :func:`still_clip`), each rig's mouth is drawn on source frame
    ``i`` at the rig's box for that frame (its track through the moving shot), and hidden where the
    track was lost.
    """
    stored = [pack_picture(np.ascontiguousarray(f[..., :3], dtype=np.uint8)) for f in frames]
    box = cover_box(frames[0].shape[1], frames[0].shape[0], width, height)
    count = frame_count_for(seconds, fps)
    if dialogue is not None and audio is None:
        audio = dialogue.audio(speaker_pans(rigs, box))
    talking = dialogue is not None and bool(rigs)
    warnings = mouth_warnings(rigs, fps, count, label) if talking else ()

    def make() -> Iterator[np.ndarray]:
        draw = _mouth_drawer(dialogue, rigs, fps, count, label) if talking else None
        for i in range(count):
            t = i / (count - 1) if count > 1 else 1.0
            at = min(int(i * source_fps / fps + 1e-9) if source_fps > 0 else i, len(stored) - 1)
            source = unpack_picture(stored[at])
            if draw:
                source = draw(source, i, at)
            window = box if move == "static" else crop_window(move, t, box, seed, i, strength)
            yield crop_resize(source, window, width, height)

    subtitles = dialogue.subtitles() if dialogue is not None else ()
    return Clip(width, height, fps, count, make, label, audio, subtitles, warnings)


DIALOGUE_PAN_WIDTH = 0.5  # a speaker at the frame's edge sits half way to that side: dialogue stays clear


def speaker_pans(rigs: tuple, window: tuple[float, float, float, float]) -> dict[str, float]:
    """Each rigged speaker's place across the visible ``window`` (the picture's crop, ``(x0, y0, x1, y1)``) as a
    stereo position: -1 left … 1 right, scaled by :data:`DIALOGUE_PAN_WIDTH`; speakers without a box are centred."""
    x0, _, x1, _ = window
    pans = {}
    for rig in rigs:
        where = rig.box_at(0)
        if where is not None and x1 > x0:
            centre = (where.x + where.width / 2 - x0) / (x1 - x0)
            pans[rig.speaker] = float(np.clip(centre * 2 - 1, -1, 1)) * DIALOGUE_PAN_WIDTH
    return pans


def mouth_warnings(rigs: tuple, fps: float, count: int, label: str = "") -> tuple[str, ...]:
    """What a viewer should know about a shot's mouths, each logged once: a rig with no box (no face was found)
    draws nothing; a track lost before the clip ends hides the mouth from there (with its timecode)."""
    from ..lipsync.mouth_track import timecode

    shot = label or "?"
    out = []
    for rig in rigs:
        if rig.box is None and not any(rig.track):
            out.append(f"shot {shot}: {rig.speaker}'s mouth is not drawn: {rig.note or 'it has no box'}")
        elif rig.lost_at is not None and rig.lost_at < count:
            out.append(f"shot {shot}: {rig.speaker}'s mouth track is lost at {timecode(rig.lost_at, fps)} "
                       f"(frame {rig.lost_at}); the mouth is hidden from there")
    for text in out:
        log.warning("%s", text)
    return tuple(out)


def _mouth_drawer(dialogue: Dialogue, rigs: tuple, fps: float, count: int, label: str = ""):
    """A function ``draw(picture, index, source_index)``: the picture with every rigged character's mouth
    on clip frame ``index`` (its shape) at the rig's box for source frame ``source_index`` (a still is
    source frame 0 throughout; a moving shot's frames follow the rig's track).

    Each speaker's shapes for the clip's ``count`` frames are worked out once, on the clip's own frame
    grid (a list of letters; the frames themselves are still drawn one at a time). A rig with no box
    (no face was found) draws nothing; a lost track hides the mouth from there (:func:`mouth_warnings`
    told the viewer when the clip was made).
    """
    from ..lipsync.mouths import ScaledMouths, composite_mouth, opened_box

    prepared = [(rig, ScaledMouths(rig.mouths), dialogue.mouth_shapes(rig.speaker, fps, count),
                 dialogue.mouth_openness(rig.speaker, fps, count))
                for rig in rigs if rig.box is not None or any(rig.track)]

    def draw(picture: np.ndarray, index: int, source_index: int = 0) -> np.ndarray:
        frame = picture
        for rig, scaled, shapes, openness in prepared:
            where = rig.box_at(source_index)
            if where is not None:  # a line's openness draws its open shapes taller or shorter (its emotion)
                where = opened_box(where, shapes[index], openness[index])
                frame = composite_mouth(frame, scaled.for_box(where), shapes[index], where)
        return frame
    return draw


@dataclass(frozen=True)
class Transition:
    kind: str = "cut"
    seconds: float = 0.0


@dataclass(frozen=True)
class Film:
    """Clips in order; ``transitions[i]`` leads *into* ``clips[i]`` (the first one may only cut or fade in)."""

    clips: tuple[Clip, ...] = ()
    transitions: tuple[Transition, ...] = ()

    def append(self, clip: Clip, transition: Transition = Transition()) -> "Film":
        if self.clips:
            first = self.clips[0]
            if (clip.width, clip.height, clip.fps) != (first.width, first.height, first.fps):
                raise ValueError(f"clip {clip.label or len(self.clips)} is {clip.width}x{clip.height}@{clip.fps}, "
                                 f"the film is {first.width}x{first.height}@{first.fps}")
        return Film(self.clips + (clip,), self.transitions + (transition,))

    @property
    def fps(self) -> float:
        return self.clips[0].fps

    def overlap_frames(self, index: int) -> int:
        """Frames that clip ``index`` shares with the one before it (dissolves and wipes overlap)."""
        t = self.transitions[index]
        if index == 0 or t.kind not in ("dissolve", "wipe_left", "wipe_right"):
            return 0
        return min(int(round(t.seconds * self.fps)), self.clips[index - 1].frame_count - 1,
                   self.clips[index].frame_count - 1)

    @property
    def frame_count(self) -> int:
        return sum(c.frame_count for c in self.clips) - sum(self.overlap_frames(i) for i in range(len(self.clips)))

    @property
    def seconds(self) -> float:
        return self.frame_count / self.fps if self.clips else 0.0

    def subtitle_track(self) -> tuple[SubtitleCue, ...]:
        """Every clip's subtitles at the time the clip starts in the cut, each ending by its clip's end."""
        starts = self.clip_starts()
        return tuple(cue for i in range(len(self.clips)) for cue in self.placed_subtitles(i, starts[i]))

    def placed_subtitles(self, index: int, start_frame: int) -> list[SubtitleCue]:
        """Clip ``index``'s subtitles on the film's clock (the clip starting at ``start_frame``), cut at its end."""
        clip = self.clips[index]
        return [cue.moved(start_frame / self.fps, clip.seconds) for cue in clip.subtitles
                if min(cue.end, clip.seconds) > cue.start]

    def clip_starts(self) -> list[int]:
        """The frame each clip starts at in the cut."""
        starts, at = [], 0
        for i, clip in enumerate(self.clips):
            at -= self.overlap_frames(i)
            starts.append(at)
            at += clip.frame_count
        return starts


def video_clip(path: str | Path, label: str = "") -> Clip:
    """A clip decoded lazily from a video file (the per-shot renders of the compose graph)."""
    from ..audio.clip import StreamedAudio
    from .video_io import probe_video, read_frames

    info = probe_video(path)
    audio = StreamedAudio(path) if info.has_audio else None  # read when the mix reaches the clip, not held
    # a per-shot render's subtitles travel beside its video: WebVTT (speakers, word times), else SRT
    sidecar = next((p for p in (Path(path).with_suffix(".vtt"), Path(path).with_suffix(".srt")) if p.is_file()), None)
    subtitles = read_sidecar(sidecar) if sidecar else ()
    return Clip(info.width, info.height, info.fps, info.frame_count, lambda: read_frames(path),
                label or Path(path).stem, audio, subtitles, source=Path(path))


def clip_from_frames(frames: np.ndarray, seconds: float, width: int, height: int, fps: int, camera_move: str = "static",
                    seed: int = 0, label: str = "", audio=None, dialogue=None, rigs: tuple = (),
                    frames_fps: float = 0.0, move_strength: float = 1.0) -> Clip:
    """A shot clip from ``frames`` (``uint8 [N, H, W, 3]``): a still (N = 1) with a camera move (its travel ×
    ``move_strength``), or a batch played as frames (made at ``frames_fps``, resampled to ``fps`` by time; 0: one per
    film frame)."""
    if width % 2 or height % 2:
        raise ValueError(f"film size {width}x{height} must be even: video is stored as 4:2:0, which halves both")
    if seconds <= 0:
        raise ValueError(f"shot {label or '?'} has no length ({seconds} s)")
    if len(frames) == 1:
        return still_clip(frames[0], width, height, fps, seconds, camera_move, seed, label, audio, dialogue, rigs,
                          move_strength)
    return sequence_clip(frames, width, height, fps, seconds, camera_move, seed, label, audio, dialogue, rigs,
                         source_fps=frames_fps, strength=move_strength)


def without_speakers(film: Film) -> Film:
    """The same film with captions of the lines alone (no "Speaker: " before them)."""
    from dataclasses import replace

    return Film(tuple(replace(clip, subtitles=tuple(replace(cue, speaker="") for cue in clip.subtitles))
                      for clip in film.clips), film.transitions)

