"""Smart rendering: a film joined from shot videos already encoded at its final settings by copying their packets,
encoding again only the frames a transition changes (as editing suites do), so a one-line edit costs one shot and a
few transition frames, not the whole film.

A video can be joined when x264 wrote it under :data:`.video_io.JOINABLE_X264` (no frame stored out of order, so it
can be cut after any frame; headers that never depend on the picture) at the film's quality, with a key frame
where its copied stretch starts: x264's own record of its settings (the SEI it writes in the first frame) and the
stream headers must match those of the film's re-encoded stretches, or the film is encoded whole as before. The
re-encoded stretches are kept in a folder of their own, named by what they are made of, so an unchanged transition
is not encoded twice.
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable

from .. import boundary
from ..lipsync.cues import frame_rate
from .clips import Film
from .transitions import ClipLayout, clip_layouts, iter_film_frames
from .video_io import AudioWriter, CONTAINERS, FrameIndex, write_video
from ...common.paths import path_digest, written_atomically

log = logging.getLogger(__name__)

# settings that say how this machine ran x264, not what it wrote: they may differ between the shots and the film
MACHINE_SETTINGS = ("threads", "lookahead_threads", "sliced_threads", "slices")
_OPTIONS = re.compile(rb"options: ([ -~]+)")


@dataclass(frozen=True)
class FrameCounts:
    """What a render did with the film's frames: encoded them, or copied them from videos already encoded."""

    encoded: int
    copied: int = 0


@dataclass(frozen=True)
class JoinableVideo:
    path: Path
    width: int
    height: int
    rate: Fraction
    frame_count: int
    key_frames: frozenset[int]
    headers: bytes   # the stream's parameter sets (avcC)
    settings: str    # x264's record of what it wrote, less MACHINE_SETTINGS


@dataclass(frozen=True)
class Span:
    """Film frames ``[start, stop)``: copied from clip ``clip``'s video from its frame ``first``, or (clip None)
    encoded again."""

    start: int
    stop: int
    clip: int | None = None
    first: int = 0


def parse_key_frames(text: str) -> tuple[int, ...] | None:
    """``"0,12,-12"`` as frame numbers; None for an empty text."""
    try:
        return tuple(int(part) for part in text.replace(" ", "").split(",") if part) or None
    except ValueError:
        raise ValueError(f"key_frames {text!r}: expected whole frame numbers separated by commas") from None


def x264_settings(data: bytes) -> str | None:
    """The settings x264 recorded in a frame's SEI (``options: cabac=1 ref=1 …``), less MACHINE_SETTINGS."""
    found = _OPTIONS.search(data)
    if found is None:
        return None
    kept = [t for t in found.group(1).decode("ascii").split() if t.split("=", 1)[0] not in MACHINE_SETTINGS]
    return " ".join(kept)


def scan_joinable(path: str | Path) -> JoinableVideo | None:
    """What joining ``path`` by stream copy needs to know (read from its packets, nothing decoded), or None when
    it cannot be joined: not H.264 4:2:0, frames stored out of order, or no x264 settings to compare."""
    import av

    with av.open(str(path)) as container:
        if not container.streams.video:
            return None
        stream = container.streams.video[0]
        context = stream.codec_context
        if context.name != "h264" or context.pix_fmt != "yuv420p" or not stream.average_rate:
            return None
        index = FrameIndex(stream)
        keys, settings, last, count = set(), None, None, 0
        for packet in container.demux(stream):
            if packet.pts is None:
                continue
            if last is not None and packet.pts <= last:
                return None  # B-frames: cutting after a frame could cut off one it needs
            last = packet.pts
            if settings is None:
                settings = x264_settings(bytes(packet)) or ""
            if packet.is_keyframe:
                keys.add(index(packet.pts))
            count += 1
        if not settings or "bframes=0" not in settings.split():
            return None
        return JoinableVideo(Path(path), context.width, context.height, Fraction(stream.average_rate), count,
                             frozenset(keys), bytes(context.extradata or b""), settings)


def splice_plan(film: Film, layouts: list[ClipLayout], videos: list[JoinableVideo]) -> list[Span]:
    """The film as stretches copied from the clips' videos (each from a key frame to where a transition or a fade
    first changes the clip) and the stretches between them, encoded again."""
    spans: list[Span] = []
    at = 0
    for index, (layout, video) in enumerate(zip(layouts, videos)):
        first, stop = layout.untouched()
        start = min((k for k in video.key_frames if first <= k < stop), default=None)
        if start is None:
            continue
        if layout.start + start > at:
            spans.append(Span(at, layout.start + start))
        spans.append(Span(layout.start + start, layout.start + stop, index, start))
        at = layout.start + stop
    if at < film.frame_count:
        spans.append(Span(at, film.frame_count))
    return spans


def _span_key(span: Span, film: Film, layouts: list[ClipLayout], digests: list[str], crf: int) -> str:
    """What an encoded stretch is made of: the clips it shows (by content), where it cuts them, how they join."""
    parts: list = [crf, film.clips[0].width, film.clips[0].height, str(frame_rate(film.fps))]
    for index, layout in enumerate(layouts):
        if layout.start + layout.shown <= span.start or layout.start >= span.stop:
            continue
        involved = [index - 1, index] if layout.blend_in else [index]
        parts.append([span.start - layout.start, span.stop - layout.start, film.transitions[index].kind,
                      [layouts[i].frame_count for i in involved], [digests[i] for i in involved],
                      [layout.blend_in, layout.fade_in, layout.fade_out, layout.held]])
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:32]


def smart_render(film: Film, path: Path, audio, crf: int, segments: Path,
                 on_frame: Callable[[], None] = lambda: None) -> FrameCounts | None:
    """Write ``film`` to ``path`` (MP4) by copying its clips' packets and encoding only the stretches a transition
    or a fade changes (kept in ``segments`` for the next render; the ones this film no longer uses are removed).
    None, with nothing written and ``audio`` untouched, when its clips cannot be joined so: then encode it whole."""
    if any(clip.source is None for clip in film.clips):
        return None
    videos = [scan_joinable(clip.source) for clip in film.clips]
    reason = _unjoinable(film, videos, crf)
    if reason:
        log.info("the film is encoded whole: %s", reason)
        return None
    layouts = clip_layouts(film)
    spans = splice_plan(film, layouts, videos)
    digests = [path_digest(video.path) for video in videos]
    segments.mkdir(parents=True, exist_ok=True)
    encoded, files = 0, []
    for span in spans:
        if span.clip is not None:
            files.append(videos[span.clip].path)
            continue
        target = segments / f"{_span_key(span, film, layouts, digests, crf)}.mp4"
        if not target.is_file():
            write_video(_interruptible(iter_film_frames(film, span.start, span.stop)), target, film.fps, film.clips[0].width, film.clips[0].height, crf=crf,
                        key_frames=(0,))
            encoded += span.stop - span.start
        files.append(target)
    for stale in set(segments.glob("*.mp4")) - set(files):
        stale.unlink(missing_ok=True)
    stretches = [scan_joinable(f) for f, span in zip(files, spans) if span.clip is None]
    if any(s is None or (s.settings, s.headers) != (videos[0].settings, videos[0].headers) for s in stretches):
        log.info("the film is encoded whole: its re-encoded stretches do not match its shots' encoding")
        return None
    _join(spans, files, videos[0], path, audio, frame_rate(film.fps), on_frame)
    log.info("joined %s: %d frames copied, %d encoded", path, film.frame_count - encoded, encoded)
    return FrameCounts(encoded, film.frame_count - encoded)


def _interruptible(frames):
    for frame in frames:
        boundary.check_interrupted()
        yield frame


def _unjoinable(film: Film, videos: list[JoinableVideo | None], crf: int) -> str:
    """Why these videos cannot be joined into ``film`` by copy; empty when they can."""
    rate = frame_rate(film.fps)
    for clip, video in zip(film.clips, videos):
        if video is None:
            return f"{clip.label or clip.source.name} is not encoded to be joined (H.264 without B-frames)"
        if (video.width, video.height, video.rate) != (clip.width, clip.height, rate):
            return f"{clip.label} is {video.width}x{video.height} at {video.rate} fps"
        if video.frame_count < clip.frame_count:
            return f"{clip.label} has fewer frames than the film shows"
        if (video.settings, video.headers) != (videos[0].settings, videos[0].headers):
            return f"{clip.label} was encoded with other settings than {film.clips[0].label}"
    if f"crf={crf:.1f}" not in videos[0].settings.split():
        return f"the shots were encoded at another quality than crf {crf}"
    return ""


def _join(spans: list[Span], files: list[Path], template: JoinableVideo, path: Path, audio, rate: Fraction,
          on_frame: Callable[[], None]) -> None:
    """Copy each span's packets from its file into one MP4 at the film's times, the sound encoded alongside."""
    import av

    kind = CONTAINERS["mp4"]
    tick = 1 / rate
    with written_atomically(path) as partial, av.open(str(template.path)) as source, \
            av.open(str(partial), mode="w", format=kind.format, options=dict(kind.options)) as out:
        stream = out.add_stream_from_template(source.streams.video[0])
        sound = AudioWriter(out, audio, kind.audio) if audio is not None else None
        written = 0
        for span, file in zip(spans, files):
            with av.open(str(file)) as container:
                video = container.streams.video[0]
                index = FrameIndex(video)
                first = span.first if span.clip is not None else 0
                container.seek(index.pts(first), stream=video, backward=True)
                for packet in container.demux(video):
                    if packet.pts is None or index(packet.pts) < first:
                        continue
                    at = span.start + index(packet.pts) - first
                    if at >= span.stop:
                        break
                    boundary.check_interrupted()
                    packet.stream = stream
                    packet.time_base = tick
                    packet.pts = packet.dts = at
                    packet.duration = 1
                    out.mux(packet)
                    written += 1
                    if sound is not None:
                        sound.write_until(float(written * tick))
                    on_frame()
        if sound is not None:
            sound.finish(float(written * tick))
