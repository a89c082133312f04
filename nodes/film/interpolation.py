"""Frame interpolation: raise a clip's frame rate by an integer factor, or fill frames between two keyframes.

Why it streams: a shot can be minutes long at film resolution, so :func:`interpolate_frames` reads
its source one frame at a time and holds only the previous frame (the "flow" engine) or a short run
of frames batched for the GPU (the "rife" engine, ``chunk`` frames); memory does not grow with the
clip. :func:`interpolate_clip` wraps a :class:`~.clips.Clip` lazily, so nothing is computed until
the film is saved.

Frame counts: ``n`` source frames become ``(n - 1)·factor + 1`` (``factor - 1`` new frames between
each pair, the source frames kept exactly). A clip keeps its length in seconds instead: its last
frame is held ``factor - 1`` more times, so its sound and subtitles stay in sync.

Scene cuts are never blended across. Between two frames whose :func:`scene_change_score` exceeds
``scene_threshold``, the in-between frames repeat the earlier frame (the cut then falls where it fell
in the source, and no frame shows half of each shot).

Engines: ``"flow"`` (:mod:`.optical_flow`, OpenCV only, no weights) and ``"rife"`` (:mod:`.rife`,
a Practical-RIFE v4.x model; needs torch and the weights file).
"""
from __future__ import annotations

import dataclasses
import logging
from typing import Callable, Iterable, Iterator, Sequence

import cv2
import numpy as np

from .clips import Clip

log = logging.getLogger(__name__)

ENGINES = ("flow", "rife")
#: Scene-change score above which two frames are taken to be a cut (see :func:`scene_change_score`).
DEFAULT_SCENE_THRESHOLD = 0.3
#: Source frames batched together by the RIFE engine (the flow engine works pair by pair).
DEFAULT_CHUNK = 8
_THUMB_WIDTH = 96


def _thumb(frame: np.ndarray) -> np.ndarray:
    """A small, slightly blurred copy of a frame, for the cut test (cheap, and blind to fine motion)."""
    h, w = frame.shape[:2]
    size = (_THUMB_WIDTH, max(1, round(h * _THUMB_WIDTH / w))) if w > _THUMB_WIDTH else (w, h)
    small = cv2.resize(np.ascontiguousarray(frame[..., :3]), size, interpolation=cv2.INTER_AREA)
    return cv2.GaussianBlur(small, (0, 0), 1.0).astype(np.float32)


def _histograms(thumb: np.ndarray) -> np.ndarray:
    """Per-channel 16-bin histograms of a thumbnail, each summing to 1."""
    bins = np.clip((thumb / 16.0).astype(np.int64), 0, 15)
    hist = np.stack([np.bincount(bins[..., c].ravel(), minlength=16) for c in range(3)]).astype(np.float64)
    return hist / hist.sum(axis=1, keepdims=True)


def _score(thumb_a: np.ndarray, thumb_b: np.ndarray) -> float:
    colour = 0.5 * np.abs(_histograms(thumb_a) - _histograms(thumb_b)).sum(axis=1).mean()
    picture = float(np.abs(thumb_a - thumb_b).mean()) / 255.0 * 4.0
    return float(min(1.0, 0.5 * colour + 0.5 * min(1.0, picture)))


def scene_change_score(a: np.ndarray, b: np.ndarray) -> float:
    """How unlike two frames are, 0 (the same) .. 1, for telling a cut from motion.

    The rule: both frames are shrunk to 96 px wide and blurred (so motion of a few pixels barely
    counts), then ``score = ½·H + ½·min(1, 4·D)`` where ``H`` is the histogram distance (half the L1
    distance between 16-bin colour histograms, averaged over R, G, B: 0 same colours, 1 disjoint)
    and ``D`` the mean absolute difference of the thumbnails as a fraction of full scale. Motion
    within a shot keeps the colours (``H`` small) and moves the picture a little (``D`` small); a
    cut changes both. Measured on the bench's clip: consecutive frames at most 0.10 (two frames
    apart, 0.10); a cut to another scene 0.42–0.61; to another view of the same set 0.32; a 20 %
    brightness jump 0.37. Hence the default threshold of 0.3.
    """
    return _score(_thumb(a), _thumb(b))


# --- engines ---------------------------------------------------------------------------------------------

#: An engine makes, for each pair of frames, the in-betweens at the given times (0 < t < 1).
Engine = Callable[[Sequence[tuple[np.ndarray, np.ndarray]], Sequence[float]], list[list[np.ndarray]]]


def _flow_engine(pairs, times):
    from .optical_flow import flow_between

    return [flow_between(a, b, times) for a, b in pairs]


def make_engine(engine: str = "flow", rife_model: str = "") -> Engine:
    """The named engine, ready to run (for RIFE this loads the model, once per process and file)."""
    if engine == "flow":
        return _flow_engine
    if engine == "rife":
        from .rife import load_rife

        return load_rife(rife_model).between
    raise ValueError(f"unknown interpolation engine {engine!r}: use one of {', '.join(ENGINES)}")


# --- streaming -------------------------------------------------------------------------------------------

def _check_frame(frame: np.ndarray, shape: tuple | None, index: int) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[2] < 3 or frame.dtype != np.uint8:
        raise ValueError(f"frame {index}: expected uint8 [H, W, 3], got {frame.dtype} {frame.shape}")
    if shape is not None and frame.shape[:2] != shape:
        raise ValueError(f"frame {index} is {frame.shape[1]}x{frame.shape[0]}, earlier frames are "
                         f"{shape[1]}x{shape[0]}: all frames of a clip must be one size")
    return frame if frame.shape[2] == 3 else frame[..., :3]  # source frames pass through as they are


def interpolate_frames(frames: Iterable[np.ndarray], factor: int, engine: str = "flow",
                       scene_threshold: float = DEFAULT_SCENE_THRESHOLD, chunk: int = DEFAULT_CHUNK,
                       rife_model: str = "") -> Iterator[np.ndarray]:
    """Yield ``frames`` with ``factor - 1`` in-between frames after each but the last (frame rate × ``factor``).

    Streams: the source is read lazily, one frame (flow) or ``chunk`` frames (RIFE) ahead of what has
    been yielded. Source frames are yielded unchanged. Between frames whose
    :func:`scene_change_score` exceeds ``scene_threshold`` (a cut; 1.0 or more turns detection off) the
    in-betweens repeat the earlier frame exactly.
    """
    factor = int(factor)
    if factor < 1:
        raise ValueError(f"factor must be 1 or more, got {factor}")
    if factor == 1:
        yield from frames
        return
    run = make_engine(engine, rife_model)
    batch = 1 if engine == "flow" else max(1, int(chunk))
    times = [i / factor for i in range(1, factor)]
    source = iter(frames)
    try:
        first = next(source)
    except StopIteration:
        return
    previous = _check_frame(first, None, 0)
    shape = previous.shape[:2]
    previous_thumb = _thumb(previous) if scene_threshold < 1.0 else None
    yield previous
    pending: list[tuple[np.ndarray, np.ndarray, bool]] = []  # (a, b, is_cut), waiting for a full batch
    index = 0
    cuts = 0

    def flush() -> Iterator[np.ndarray]:
        moving = [(a, b) for a, b, cut in pending if not cut]
        made = iter(run(moving, times)) if moving else iter(())
        for a, b, cut in pending:
            yield from ([a] * len(times) if cut else next(made))
            yield b
        pending.clear()

    for frame in source:
        index += 1
        frame = _check_frame(frame, shape, index)
        cut = False
        if previous_thumb is not None:
            thumb = _thumb(frame)
            score = _score(previous_thumb, thumb)
            cut = score > scene_threshold
            previous_thumb = thumb
            if cut:
                cuts += 1
                log.debug("scene cut between frames %d and %d (score %.2f): not interpolated", index - 1, index, score)
        pending.append((previous, frame, cut))
        previous = frame
        if len(pending) >= batch:
            yield from flush()
    if pending:
        yield from flush()
    if cuts:
        log.info("interpolation: %d scene cut(s) held rather than blended", cuts)


def fill_between(a: np.ndarray, b: np.ndarray, count: int, engine: str = "flow",
                 rife_model: str = "") -> list[np.ndarray]:
    """``count`` frames evenly spaced in time strictly between keyframes ``a`` and ``b`` (neither included).

    No cut test here: the caller asked for these two keyframes to be joined.
    """
    count = int(count)
    if count < 0:
        raise ValueError(f"count must be 0 or more, got {count}")
    if count == 0:
        return []
    a = _check_frame(a, None, 0)
    b = _check_frame(b, a.shape[:2], 1)
    times = [i / (count + 1) for i in range(1, count + 1)]
    return make_engine(engine, rife_model)([(a, b)], times)[0]


def interpolate_clip(clip: Clip, factor: int, engine: str = "flow",
                     scene_threshold: float = DEFAULT_SCENE_THRESHOLD, rife_model: str = "") -> Clip:
    """A lazy clip at ``fps × factor`` with the same length in seconds (the last frame held at the end).

    Nothing is computed here: frames are interpolated as the new clip is iterated. Sound and
    subtitles carry over unchanged, since the clip's timing does not change.
    """
    factor = int(factor)
    if factor < 1:
        raise ValueError(f"factor must be 1 or more, got {factor}")
    if factor == 1:
        return clip
    if engine not in ENGINES:
        raise ValueError(f"unknown interpolation engine {engine!r}: use one of {', '.join(ENGINES)}")

    def make() -> Iterator[np.ndarray]:
        return interpolate_frames(clip.frames(), factor, engine, scene_threshold, rife_model=rife_model)

    # Clip.frames() holds the last frame to fill the promised count: n·factor frames, the clip's length.
    # replace() keeps whatever else the clip carries (label, sound, subtitles).
    return dataclasses.replace(clip, fps=clip.fps * factor, frame_count=clip.frame_count * factor, make_frames=make)
