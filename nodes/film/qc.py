"""Quality control of a finished film, as a broadcaster's QC pass does it: black and frozen runs in the picture,
silence under a line and clipping in the sound, sound and picture of different lengths, integrated loudness and
true peak. Each finding has a kind, a start and an end in seconds, and the shot it falls in where the film's
timeline is known. The picture is decoded a frame at a time and looked at small, the sound a packet at a time: memory
stays flat with the film's length (the sound kept is one loudness energy per 100 ms and one level per 50 ms).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

BLACK_LEVEL = 0.06       # mean luma (0-1) at or below which a frame is black ...
BLACK_PEAK = 0.12        # ... with nothing in it brighter than this
MIN_BLACK_SECONDS = 0.5
FROZEN_DIFFERENCE = 0.002  # mean absolute change (0-1) between frames, at a 64-pixel-wide look, below which the
MIN_FROZEN_SECONDS = 1.0   # picture has not moved
SILENCE_DB = -50.0       # a line whose loudest 50 ms stays below this (dBFS, RMS) is silent
CLIP_LOUD = 0.5          # a loud 50 ms window (peak at least this) ...
CLIP_FLAT = 0.9          # ... with this share of its peak reached ...
CLIP_SHARE = 0.4         # ... by this share of its samples is flat-topped: clipped. A sine spends 29 % of its time
                         # above 0.9 of its peak, speech far less; a clipped one most of it. The test holds after
                         # lossy coding, which rounds the flat tops but keeps them flat (full scale is not kept)
LEVEL_SECONDS = 0.05
LOUDNESS_TOLERANCE = 1.0  # LU off the target before it is a finding
TRUE_PEAK_CEILING = -1.0
SHEET_WIDTH = 256          # the contact sheet's picture of each shot, in pixels across


@dataclass(frozen=True)
class Finding:
    kind: str                 # black, frozen, silent_line, clipping, length_mismatch, loudness, true_peak
    start: float
    end: float
    detail: str
    shot: str | None = None


@dataclass
class QcResult:
    findings: list[Finding] = field(default_factory=list)
    video_seconds: float = 0.0
    audio_seconds: float | None = None
    loudness: float | None = None      # integrated, LUFS
    true_peak: float | None = None     # dBTP

    def to_json(self) -> dict:
        return {**{k: v for k, v in asdict(self).items() if k != "findings"},
                "findings": [asdict(f) for f in self.findings]}


def _runs(flags: list[bool], times: list[float], minimum: float, step: float) -> list[tuple[float, float]]:
    """(start, end) of the runs of True lasting at least ``minimum`` seconds."""
    runs, start = [], None
    for flag, t in zip(flags + [False], times + [times[-1] + step if times else 0.0]):
        if flag and start is None:
            start = t
        elif not flag and start is not None:
            if t - start >= minimum - 1e-6:
                runs.append((start, t))
            start = None
    return runs


def _picture(path: Path, timeline: list[dict] | None = None):
    """Per frame: black, frozen (unchanged since the frame before), its time; the frame rate, the length; and, with
    a ``timeline``, each shot's middle frame for the contact sheet, taken in the same pass."""
    import av

    black, frozen, times, previous = [], [], [], None
    wanted = _sheet_times(timeline)
    pictures: dict = {}
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate or stream.guessed_rate or 24)
        for index, frame in enumerate(container.decode(stream)):
            small = frame.reformat(width=64, height=max(2, round(64 * frame.height / frame.width)),
                                   format="gray").to_ndarray().astype(np.float32) / 255.0
            black.append(float(small.mean()) <= BLACK_LEVEL and float(np.percentile(small, 98)) <= BLACK_PEAK)
            # a black run is reported as black, not as a frozen picture too
            frozen.append(previous is not None and not black[-1]
                          and float(np.abs(small - previous).mean()) < FROZEN_DIFFERENCE)
            times.append(frame.time if frame.time is not None else index / fps)
            previous = small
            while len(pictures) < len(wanted) and times[-1] + 0.5 / fps >= wanted[len(pictures)][0]:
                pictures[wanted[len(pictures)][1]] = _thumbnail(frame)
    return black, frozen, times, fps, (len(times) / fps if times else 0.0), pictures


def _sheet_times(timeline: list[dict] | None) -> list[tuple[float, str]]:
    """``(time, shot)`` of each shot's middle frame (the middle of its time on screen), in order."""
    middles = {entry["shot"]: (entry["start"] + entry["end"]) / 2 for entry in timeline or ()}
    return sorted((t, shot) for shot, t in middles.items())


def _sound(path: Path):
    """Per 50 ms window: RMS level (dBFS) and, when loud, the share of samples near its peak; loudness, true peak,
    length."""
    import av
    from ..audio.clip import _planar
    from ..audio.mastering import LoudnessMeter, true_peaks

    with av.open(str(path)) as container:
        if not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate
        meter, window = None, int(LEVEL_SECONDS * rate)
        levels, clipped, peak, total, tail = [], [], 0.0, 0, None
        carry = np.zeros((0, 0), np.float32)
        for frame in container.decode(stream):
            samples = _planar(frame)
            if meter is None:
                meter = LoudnessMeter(rate, samples.shape[0])
                carry = np.zeros((samples.shape[0], 0), np.float32)
            meter.feed(samples)
            if samples.size:  # oversampled with the end of the packet before as context (no ringing at the join)
                joined = np.concatenate([tail, samples], axis=1) if tail is not None else samples
                peak = max(peak, float(true_peaks(joined)[joined.shape[1] - samples.shape[1]:].max()))
                tail = joined[:, -32:]
            total += samples.shape[1]
            carry = np.concatenate([carry, samples], axis=1)
            while carry.shape[1] >= window:
                part, carry = carry[:, :window], carry[:, window:]
                rms = float(np.sqrt(np.mean(np.square(part))))
                levels.append(20 * np.log10(max(rms, 1e-9)))
                top = float(np.abs(part).max())
                clipped.append(float(np.mean(np.abs(part) >= CLIP_FLAT * top)) if top >= CLIP_LOUD else 0.0)
    if meter is None:
        return None
    return levels, clipped, meter.integrated(), 20 * np.log10(max(peak, 1e-9)), total / rate


def shot_at(timeline: list[dict] | None, seconds: float) -> str | None:
    """The shot on screen at ``seconds`` (the later one where a transition overlaps two)."""
    found = None
    for entry in timeline or ():
        if entry["start"] <= seconds < entry["end"]:
            found = entry["shot"]
    return found


def check_film(path: str | Path, cues=(), timeline: list[dict] | None = None,
               loudness_target: float | None = -14.0, sheet: str | Path | None = None) -> QcResult:
    """QC a film file. ``cues``: its lines (``start``, ``end``, ``text``: a subtitle track) for silence under a line;
    ``timeline``: ``[{"shot", "start", "end"}]`` to name the shot of each finding; ``loudness_target``: LUFS the film
    should measure (None: reported, not judged). With ``sheet`` and a timeline, the contact sheet (see
    :func:`contact_sheet`) is drawn there from the same decoding of the picture."""
    path = Path(path)
    black, frozen, times, fps, video_seconds, pictures = _picture(path, timeline if sheet else None)
    if sheet is not None and timeline:
        _draw_sheet(pictures, _sheet_times(timeline), sheet)
    result = QcResult(video_seconds=round(video_seconds, 3))

    def add(kind: str, start: float, end: float, detail: str) -> None:
        middle = (start + end) / 2
        result.findings.append(Finding(kind, round(start, 3), round(end, 3), detail, shot_at(timeline, middle)))

    for start, end in _runs(black, times, MIN_BLACK_SECONDS, 1 / fps):
        add("black", start, end, f"black picture for {end - start:.2f} s")
    # a frame is frozen when unchanged since the one before: the run starts one frame earlier
    for start, end in _runs(frozen, times, MIN_FROZEN_SECONDS - 1 / fps, 1 / fps):
        add("frozen", max(0.0, start - 1 / fps), end, f"the picture does not move for {end - start + 1 / fps:.2f} s")
    sound = _sound(path)
    if sound is None:
        if cues:
            add("silent_line", 0.0, video_seconds, "the film has no sound, and it has lines")
        return result
    levels, clipped, loudness, true_peak, audio_seconds = sound
    result.audio_seconds, result.true_peak = round(audio_seconds, 3), round(true_peak, 2)
    result.loudness = round(loudness, 2) if np.isfinite(loudness) else None
    for cue in cues:
        lo, hi = int(cue.start / LEVEL_SECONDS), max(int(cue.start / LEVEL_SECONDS) + 1, int(cue.end / LEVEL_SECONDS))
        window = levels[lo:hi]
        if window and max(window) < SILENCE_DB:
            add("silent_line", cue.start, cue.end, f"no sound under the line {cue.text[:60]!r} "
                                                    f"(loudest {max(window):.1f} dBFS)")
    flags = [share >= CLIP_SHARE for share in clipped]
    for start, end in _runs(flags, [i * LEVEL_SECONDS for i in range(len(flags))], LEVEL_SECONDS, LEVEL_SECONDS):
        add("clipping", start, end, f"the sound is flat-topped (clipped) for {end - start:.2f} s")
    if abs(audio_seconds - video_seconds) > 1.5 / fps:
        add("length_mismatch", min(audio_seconds, video_seconds), max(audio_seconds, video_seconds),
            f"sound {audio_seconds:.3f} s, picture {video_seconds:.3f} s")
    if loudness_target is not None and result.loudness is not None \
            and abs(result.loudness - loudness_target) > LOUDNESS_TOLERANCE:
        add("loudness", 0.0, audio_seconds, f"{result.loudness:.1f} LUFS integrated, the target is "
                                            f"{loudness_target:.1f}")
    if true_peak > TRUE_PEAK_CEILING:
        add("true_peak", 0.0, audio_seconds, f"true peak {true_peak:.2f} dBTP, above {TRUE_PEAK_CEILING:.0f}")
    result.findings.sort(key=lambda f: (f.start, f.kind))
    return result


def _thumbnail(frame, width: int = SHEET_WIDTH):
    """A decoded frame as the contact sheet's picture, scaled down at once: a film of hundreds of shots holds
    kilobytes per shot, not a full frame each."""
    return frame.reformat(width=width, height=max(2, round(width * frame.height / frame.width)),
                          format="rgb24").to_image()


def _draw_sheet(pictures: dict, wanted: list[tuple[float, str]], target: str | Path, width: int = SHEET_WIDTH) -> Path:
    """One picture per shot (the frame in the middle of its time on screen), labelled, in a grid; a PNG."""
    from PIL import Image, ImageDraw

    if not pictures:
        raise ValueError(f"{target}: no frames to make a contact sheet from")
    first = next(iter(pictures.values()))
    height = round(width * first.height / first.width)
    columns = min(4, len(pictures))
    rows = -(-len(pictures) // columns)
    sheet = Image.new("RGB", (columns * width, rows * (height + 18)), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    for k, (_t, shot) in enumerate(w for w in wanted if w[1] in pictures):
        x, y = (k % columns) * width, (k // columns) * (height + 18)
        sheet.paste(pictures[shot].resize((width, height)), (x, y))
        draw.text((x + 4, y + height + 3), shot[:40], fill=(230, 230, 230))
    sheet.save(target)
    return Path(target)
