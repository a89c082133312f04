"""Video files through PyAV (ffmpeg's libraries as wheels): frames are streamed in and out, never held.

Writing: H.264 in MP4, ``yuv420p`` so every player opens it, ``+faststart`` so a browser can start
playing before it has the whole file. Odd sizes are refused up front (4:2:0 needs even sizes).
"""
from __future__ import annotations

import contextvars
import logging
import queue
import threading
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from ...common.paths import written_atomically

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    fps: float
    frame_count: int
    seconds: float
    codec: str
    has_audio: bool


def _fps_fraction(fps: float) -> Fraction:
    """The stream's time base: the same exact rate the mouths are timed on (29.97 is 30000/1001)."""
    from ..lipsync.cues import frame_rate

    return frame_rate(fps)


@dataclass(frozen=True)
class Container:
    """A delivery format: container, video codec and pixel format, audio codec."""

    format: str
    video: str
    pix_fmt: str
    audio: str
    options: tuple[tuple[str, str], ...] = ()


# mp4: plays everywhere; webm: the open web; mov: ProRes 422 HQ for editing suites
CONTAINERS = {
    "mp4": Container("mp4", "libx264", "yuv420p", "aac", (("movflags", "+faststart"),)),
    "webm": Container("webm", "libvpx-vp9", "yuv420p", "libopus"),
    "mov": Container("mov", "prores_ks", "yuv422p10le", "pcm_s16le"),
}


# x264 settings under which videos can be joined by copying their packets (smart rendering): frames stored in the
# order they are shown (no B-frames, so a video can be cut after any frame), headers that never depend on the
# content (``stitchable``), and a forced key frame is an IDR frame (nothing after it looks back past it)
JOINABLE_X264 = {"x264-params": "bframes=0:stitchable=1", "forced-idr": "1"}


def _video_options(container: Container, crf: int, joinable: bool = False) -> dict[str, str]:
    if container.video == "libx264":
        return {"crf": str(crf), "preset": "veryfast", **(JOINABLE_X264 if joinable else {})}
    if container.video == "libvpx-vp9":
        return {"crf": str(min(63, crf + 13)), "b": "0", "row-mt": "1", "deadline": "good", "cpu-used": "4"}
    return {"profile": "3"}  # ProRes 422 HQ


PREFETCH_FRAMES = 4  # frames made ahead of the encoder: the picture work and the encoding overlap, memory stays flat


def prefetched(items: Iterable, depth: int = PREFETCH_FRAMES) -> Iterator:
    """``items`` made in a thread of their own, up to ``depth`` ahead of the consumer, in order: drawing a frame
    (camera moves, blends, captions, the colour conversion) runs while the encoder works on the one before, both
    releasing the GIL in their C code. The producer sees the caller's context (ComfyUI's folders for the embedded
    engine); an error in it is raised here, in order; a consumer that stops early stops it."""
    done = object()
    slots: queue.Queue = queue.Queue(maxsize=max(depth, 1))
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                slots.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            put((None, exc))
            return
        put((done, None))

    worker = threading.Thread(target=contextvars.copy_context().run, args=(produce,), name="animstudio-frames",
                              daemon=True)
    worker.start()
    try:
        while True:
            item, error = slots.get()
            if error is not None:
                raise error
            if item is done:
                return
            yield item
    finally:
        stop.set()
        worker.join(timeout=5)


def write_video(frames: Iterable[np.ndarray], path: str | Path, fps: float, width: int, height: int,
                crf: int = 18, on_frame: Callable[[int], None] | None = None, audio=None,
                container_format: str = "", key_frames: Iterable[int] | None = None) -> VideoInfo:
    """Encode ``frames`` (``uint8 [H, W, 3]``) to ``path`` with ``audio`` (a Soundtrack), streaming both.

    The format follows ``container_format`` or the file's suffix: ``.mp4`` H.264 + AAC (default),
    ``.webm`` VP9 + Opus, ``.mov`` ProRes 422 HQ + PCM. Audio is encoded alongside the frames, a frame's
    worth at a time, so the file is interleaved.

    With ``key_frames`` (frame numbers) an H.264 video is written to be joined by stream copy: each of those frames
    starts a fresh picture group (an IDR frame) and no frame is stored out of order (see ``JOINABLE_X264``).

    The file is written next to its final name and renamed when complete, so a crash or an
    interrupt never leaves a half-written film under the real name.
    """
    import av

    if width % 2 or height % 2:
        raise ValueError(f"video size {width}x{height} must be even in both directions")
    path = Path(path)
    kind = CONTAINERS.get(container_format or path.suffix.lower().lstrip(".") or "mp4")
    if kind is None:
        raise ValueError(f"unknown video format {container_format or path.suffix!r}; one of {', '.join(CONTAINERS)}")
    keys = set(key_frames) if key_frames is not None and kind.video == "libx264" else None
    count = 0
    with written_atomically(path) as partial:
        with av.open(str(partial), mode="w", format=kind.format, options=dict(kind.options)) as container:
            stream = container.add_stream(kind.video, rate=_fps_fraction(fps))
            stream.width, stream.height, stream.pix_fmt = width, height, kind.pix_fmt
            stream.options = _video_options(kind, crf, keys is not None)
            _tag_bt709(stream)
            sound = AudioWriter(container, audio, kind.audio) if audio is not None else None

            def converted():
                for index, frame in enumerate(frames):
                    if frame.shape[:2] != (height, width):
                        raise ValueError(f"frame {index} is {frame.shape[1]}x{frame.shape[0]}, expected "
                                         f"{width}x{height}")
                    yield av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24").reformat(
                        format=kind.pix_fmt, dst_colorspace="ITU709", dst_color_range="MPEG")  # HD's matrix, as tagged

            for video_frame in prefetched(converted()):
                if keys is not None and count in keys:
                    video_frame.pict_type = av.video.frame.PictureType.I
                container.mux(stream.encode(video_frame))
                count += 1
                if sound is not None:
                    sound.write_until(count / fps)
                if on_frame is not None:
                    on_frame(count)
            container.mux(stream.encode(None))
            if sound is not None:
                sound.finish(count / fps)
    log.info("wrote %s: %d frames, %dx%d at %s fps", path, count, width, height, fps)
    return VideoInfo(width, height, float(fps), count, count / fps, kind.video, audio is not None)


def _tag_bt709(stream) -> None:
    """Tag the stream as BT.709 (primaries, transfer, matrix) in limited range, as the frames are converted: players
    then show the colours as rendered instead of guessing (an untagged HD stream is read as BT.601 by some)."""
    context = stream.codec_context
    context.colorspace = context.color_primaries = context.color_trc = 1  # AVCOL_*_BT709
    context.color_range = 1  # AVCOL_RANGE_MPEG (limited)


class AudioWriter:
    """AAC for the film's sound, fed in step with the video and padded or cut to the video's length."""

    def __init__(self, container, audio, codec: str = "aac"):
        """``audio``: anything with ``sample_rate``, ``channels`` and sequential ``read(count)`` (a Soundtrack)."""
        import av

        self.audio = audio
        self.layout = "mono" if audio.channels == 1 else "stereo"
        # Opus only runs at 48 kHz; the others keep the soundtrack's rate
        self.rate = 48000 if codec == "libopus" else audio.sample_rate
        self.stream = container.add_stream(codec, rate=self.rate)
        self.stream.layout = self.layout
        if codec in ("aac", "libopus"):  # 192 kb/s stereo: transparent, and lossy coding adds little to the peaks
            self.stream.bit_rate = 96000 * len(self.stream.layout.channels)
        self.container = container
        self.written = 0
        self._av = av

    def write_until(self, seconds: float) -> None:
        end = int(round(seconds * self.audio.sample_rate))
        if end <= self.written:
            return
        chunk = self.audio.read(end - self.written)
        if chunk.shape[0] > 2:
            chunk = chunk[:2]
        frame = self._av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format="fltp", layout=self.layout)
        frame.sample_rate = self.audio.sample_rate  # PyAV resamples to the stream's rate and format
        frame.pts = self.written
        self.container.mux(self.stream.encode(frame))
        self.written = end

    def finish(self, seconds: float) -> None:
        self.write_until(seconds)
        self.container.mux(self.stream.encode(None))


def probe_video(path: str | Path) -> VideoInfo:
    """Size, rate, frame count and duration of a video file (frames counted by decoding when the header lacks them)."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate or stream.guessed_rate or 0) or 24.0
        count = stream.frames or sum(1 for _ in container.decode(stream))
        return VideoInfo(stream.codec_context.width, stream.codec_context.height, fps, count,
                         count / fps, stream.codec_context.name, bool(container.streams.audio))


def read_audio_track(path: str | Path):
    """The first audio stream of a video file as an AudioClip (decoded whole: sound is small next to frames)."""
    from ..audio.clip import read_audio_stream

    return read_audio_stream(path)


def read_frames(path: str | Path, start: int = 0) -> Iterator[np.ndarray]:
    """Decode a video's frames one at a time as ``uint8 [H, W, 3]``, from frame ``start`` (reached by seeking to
    the key frame before it and decoding from there; the frames before ``start`` are never converted)."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        index = None
        if start:
            index = FrameIndex(stream)
            container.seek(index.pts(start), stream=stream, backward=True)
        for frame in container.decode(stream):
            if index is not None and frame.pts is not None and index(frame.pts) < start:
                continue
            yield frame.to_ndarray(format="rgb24")


class FrameIndex:
    """A stream's frame numbers from its timestamps (constant frame rate, as the films here are written)."""

    def __init__(self, stream):
        self.origin = stream.start_time or 0
        self.tick = stream.time_base * (stream.average_rate or stream.guessed_rate or 24)

    def __call__(self, pts: int) -> int:
        return int(round((pts - self.origin) * self.tick))

    def pts(self, index: int) -> int:
        return self.origin + int(index / self.tick)


def last_frame(path: str | Path, target: str | Path) -> Path:
    """A video's last frame, written as a PNG to ``target`` (a shot that continues from it starts there). Every
    frame is decoded (H.264 cannot start from the end), only the last is converted."""
    import av
    from PIL import Image

    last = None
    with av.open(str(path)) as container:
        for last in container.decode(video=0):
            pass
        if last is None:
            raise ValueError(f"{path}: the video has no frames")
        Image.fromarray(last.to_ndarray(format="rgb24")).save(target)
    return Path(target)
