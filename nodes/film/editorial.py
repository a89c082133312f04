"""The cut as editors take it: an OpenTimelineIO timeline built from a film's timeline (each shot's time on screen,
each line's time and speaker, as Save Film reports it), written through OTIO's own adapters as FCPXML (Final Cut
Pro), FCP 7 XML (Premiere, Resolve), CMX 3600 EDL or OTIO JSON. One home for the CLI's exports and the Save Film
node's: they differ only in the media each clip names.

How a dissolve or wipe is written: the cut falls where the incoming shot starts in the film, and the transition runs
after it for the frames the two overlap, drawing on the outgoing shot's media past its cut (every shot video holds
those frames). The track's length is then the film's, frame for frame. Dialogue lines go on audio tracks at their
times in the film (a second track where two lines overlap), the music on its own.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

from ...common.errors import AnimStudioError

EXPORTS = {"otio": ("otio_json", ".otio"), "fcpxml": ("fcpx_xml", ".fcpxml"), "xml": ("fcp_xml", ".xml"),
           "edl": ("cmx_3600", ".edl")}
EXPORT_CHOICES = ("none", *EXPORTS, "+".join(EXPORTS))  # the Save Film node's choice
BLENDS = ("dissolve", "wipe_left", "wipe_right")
SMPTE_RATES = (24, 25, 30, 48, 50, 60)  # what an EDL's timecode can count in


@dataclass(frozen=True)
class CutMedia:
    """What each clip of the cut names, relative to the folder the exports are written in: ``shots`` one file per
    timeline entry, each from the shot's first frame (a shot's own video), or one file for all (the film itself:
    each shot is then its stretch of the film, the transitions already in it); ``lines`` one file per line of each
    entry, in order (empty: no dialogue tracks); ``music`` the bed."""

    shots: tuple[str, ...] = ()
    film: str = ""
    lines: tuple[tuple[str, ...], ...] = ()
    music: str = ""


def parse_exports(text: str) -> tuple[str, ...]:
    """``"fcpxml,xml,edl,otio"`` (or ``+``-joined, as a node's choice is) → the export kinds; an unknown one is
    refused by name."""
    kinds = tuple(k.strip().lower() for k in text.replace("+", ",").split(",") if k.strip() and k.strip() != "none")
    unknown = [k for k in kinds if k not in EXPORTS]
    if unknown:
        error = AnimStudioError(f"unknown export {', '.join(unknown)}: choose from {', '.join(EXPORTS)}")
        error.exit_code = 2  # what the user asked for
        raise error
    return kinds


def edl_rate(fps: float) -> int:
    """The timecode rate an editor's export (EDL, FCP 7 XML, FCPXML) of a ``fps`` film is written at: the least SMPTE
    rate that counts each film frame in whole timecode frames (an animatic at 12 fps is written at 24, each frame two)."""
    rate = next((r for r in SMPTE_RATES if float(fps).is_integer() and r % int(fps) == 0), None)
    if rate is None:
        raise AnimStudioError(f"an EDL counts SMPTE timecode ({', '.join(map(str, SMPTE_RATES))} fps), and a "
                              f"{fps:g} fps film fits none of them: export fcpxml, xml or otio instead")
    return rate


def cut_timeline(title: str, fps: float, timeline: list[dict], transitions: list[str], media: CutMedia,
                 rate: float | None = None, seconds: list[float] | None = None, music_gain_db: float = 0.0):
    """The film as an ``opentimelineio`` Timeline counted at ``rate`` (default: the film's own ``fps``):
    ``timeline`` is each shot's time on screen (with its ``lines``), ``transitions`` the kind of each entry's
    transition in, ``seconds`` its length as the film was cut (kept with each clip, with the kind, under
    ``metadata["animstudio"]``, so :func:`film_from_cut` renders the same film from it). Each shot's clip carries a
    marker for each of its lines (the text, ``speaker`` in its metadata) at its time; the music clip its gain. What
    else an entry or a line holds (a shot's camera, a line's emotion and delivery) goes into its clip's or marker's
    metadata as it is."""
    import opentimelineio as otio

    scale = (rate or fps) / fps
    frame = lambda n: otio.opentime.RationalTime(n * scale, rate or fps)  # noqa: E731
    span = lambda a, n: otio.opentime.TimeRange(frame(a), frame(n))  # noqa: E731
    result = otio.schema.Timeline(name=title, global_start_time=frame(0))
    video = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    entries = [(e, round(e["start"] * fps), round(e["end"] * fps)) for e in timeline]
    total = entries[-1][2] if entries else 0
    for index, (entry, start, end) in enumerate(entries):
        following_start = entries[index + 1][1] if index + 1 < len(entries) else end
        if media.film:  # the film itself: each shot from its start to the next one's, the blends already in it
            video.append(otio.schema.Clip(name=entry["shot"], source_range=span(start, following_start - start),
                                          media_reference=otio.schema.ExternalReference(
                                              target_url=media.film, available_range=span(0, total))))
            continue
        if index and transitions[index] in BLENDS and entries[index - 1][2] - start > 0:
            video.append(otio.schema.Transition(
                name=transitions[index], transition_type=otio.schema.TransitionTypes.SMPTE_Dissolve,
                in_offset=frame(0), out_offset=frame(entries[index - 1][2] - start)))
        clip = otio.schema.Clip(name=entry["shot"], source_range=span(0, min(end, following_start) - start),
                                media_reference=otio.schema.ExternalReference(
                                    target_url=media.shots[index], available_range=span(0, end - start)),
                                metadata={"animstudio": {"shot": entry["shot"], "transition": {
                                    "type": transitions[index],
                                    "seconds": seconds[index] if seconds else 0.0}, **_extra(entry, _ENTRY_KEYS)}})
        for line in entry.get("lines", ()):
            at = max(0, round(line["start"] * fps) - start)
            clip.markers.append(otio.schema.Marker(
                name=line.get("text", ""), marked_range=span(at, max(1, round(line["end"] * fps) - start - at)),
                metadata={"animstudio": {"speaker": line.get("speaker", ""), **_extra(line, _LINE_KEYS)}}))
        video.append(clip)
    result.tracks.append(video)
    for track in _dialogue_tracks(timeline, media, fps, frame, span):
        result.tracks.append(track)
    if media.music:
        audio = otio.schema.Track(name="music", kind=otio.schema.TrackKind.Audio)
        audio.append(otio.schema.Clip(name="music", source_range=span(0, total), media_reference=(
            otio.schema.ExternalReference(target_url=media.music, available_range=span(0, total))),
            metadata={"animstudio": {"gain_db": music_gain_db}}))
        result.tracks.append(audio)
    return result


_ENTRY_KEYS = ("shot", "start", "end", "lines")  # what a timeline entry and line are; the rest is their metadata
_LINE_KEYS = ("speaker", "text", "start", "end")


def _extra(item: dict, known: tuple[str, ...]) -> dict:
    return {k: v for k, v in item.items() if k not in known}


def film_from_cut(cut, base: Path):
    """The film a cut describes (one :func:`cut_timeline` made from a film of shot videos): each clip of its video
    track from its media (a video inside ``base``), joined by the transition its metadata keeps; with the music's
    file (inside ``base``) and gain, or None. What the compositor renders."""
    import opentimelineio as otio

    from ...common.paths import PathEscapeError, resolve_inside
    from .clips import Film, Transition, video_clip

    def media(clip) -> Path:
        url = getattr(clip.media_reference, "target_url", "") or ""
        try:
            path = resolve_inside(base, url)
        except PathEscapeError:
            raise AnimStudioError(f"the cut's clip {clip.name!r} names media outside {base}: {url!r}") from None
        if not path.is_file():
            raise AnimStudioError(f"the cut's clip {clip.name!r} names {url!r}, not found in {base}")
        return path

    video = next((t for t in cut.tracks if t.kind == otio.schema.TrackKind.Video), None)
    if video is None or not video.find_clips():
        raise AnimStudioError(f"the cut {cut.name!r} has no shots on a video track")
    film = Film()
    for clip in video.find_clips():
        join = clip.metadata.get("animstudio", {}).get("transition", {})
        film = film.append(video_clip(media(clip), clip.name), Transition(str(join.get("type", "cut")),
                                                                      float(join.get("seconds", 0.0))))
    music = None
    for track in cut.tracks:
        if track.kind == otio.schema.TrackKind.Audio and track.name == "music":
            clip = track.find_clips()[0]
            music = (media(clip),
                     float(clip.metadata.get("animstudio", {}).get("gain_db", 0.0)))
    return film, music


def _dialogue_tracks(timeline: list[dict], media: CutMedia, fps: float, frame, span) -> list:
    """Each line's sound at its time in the film, on the first dialogue track where it overlaps nothing."""
    import opentimelineio as otio

    placed: list[list[tuple[int, int, str, str]]] = []
    for index, entry in enumerate(timeline):
        files = media.lines[index] if index < len(media.lines) else ()
        for number, (line, url) in enumerate(zip(entry.get("lines", ()), files)):
            if not url:
                continue
            start, end = round(line["start"] * fps), max(round(line["end"] * fps), round(line["start"] * fps) + 1)
            lane = next((t for t in placed if t[-1][1] <= start), None)
            if lane is None:
                placed.append(lane := [])
            lane.append((start, end, f"{entry['shot']}-{number + 1} {line.get('speaker', '')}".strip(), url))
    tracks = []
    for n, lane in enumerate(placed):
        track = otio.schema.Track(name=f"dialogue {n + 1}", kind=otio.schema.TrackKind.Audio)
        at = 0
        for start, end, name, url in lane:
            if start > at:
                track.append(otio.schema.Gap(source_range=span(0, start - at)))
            track.append(otio.schema.Clip(name=name, source_range=span(0, end - start), media_reference=(
                otio.schema.ExternalReference(target_url=url, available_range=span(0, end - start)))))
            at = end
        tracks.append(track)
    return tracks


def write_cut(cut, target: Path, kind: str) -> Path:
    """One export of the timeline ``cut`` (counted in an SMPTE rate for the editors' formats) to ``target``. An EDL
    holds one track of events and the FCPXML adapter cannot write an audio-only lane (it reads a frame rate from
    every clip's format), so those two carry the picture only; OTIO and FCP 7 XML carry every track."""
    import opentimelineio as otio

    adapter, _suffix = EXPORTS[kind]
    if adapter in ("cmx_3600", "fcpx_xml"):
        cut = copy.deepcopy(cut)
        for track in list(cut.tracks):
            if track.kind != otio.schema.TrackKind.Video:
                cut.tracks.remove(track)
    otio.adapters.write_to_file(cut, str(target), adapter_name=adapter)
    return target


def export_rate(kind: str, fps: float) -> float | None:
    """The rate an export counts in: OTIO keeps the film's own; the editors' formats an SMPTE rate (:func:`edl_rate`)."""
    return None if EXPORTS[kind][0] == "otio_json" else edl_rate(fps)


def cut_points(path: Path, fps: float) -> tuple[list[int], list[str]]:
    """Read an export back through its adapter: the film frame (at ``fps``) where each shot's clip starts on the
    video track, and each clip's media (what the tests and a round trip compare)."""
    import opentimelineio as otio

    timeline = otio.adapters.read_from_file(str(path))
    track = next(t for t in timeline.tracks if t.kind == otio.schema.TrackKind.Video)
    starts, media = [], []
    for clip in track.find_clips():
        starts.append(round(track.range_of_child(clip).start_time.to_seconds() * fps))
        media.append(getattr(clip.media_reference, "target_url", ""))
    return starts, media


def export_film_cut(film_path: Path, fps: float, timeline: list[dict], transitions: list[str],
                    kinds: tuple[str, ...]) -> list[Path]:
    """Exports of a film made in one graph (the Save Film node): each shot its stretch of the film file itself, cut
    where the shot starts, written beside the film under its name. Returns the files."""
    media = CutMedia(film=Path(film_path).name)
    return [write_cut(cut_timeline(Path(film_path).stem, fps, timeline, transitions, media, export_rate(kind, fps)),
                      Path(film_path).with_suffix(EXPORTS[kind][1]), kind) for kind in kinds]
