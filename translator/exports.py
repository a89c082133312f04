"""The finished cut for editors: an OpenTimelineIO timeline of the film (a video track of the shots' own videos with
their transitions, an audio track of the music bed), written through OTIO's own adapters as FCPXML (Final Cut Pro),
FCP 7 XML (Premiere, Resolve), CMX 3600 EDL and OTIO JSON beside the film. Media are named relative to the output
folder, so the folder can move and an editor relinks nothing; each shot is its own media, so the cut can be
re-timed and re-mixed.

How a dissolve or wipe is written: the cut falls where the incoming shot starts in the film, and the transition runs
after it for the frames the two overlap, drawing on the outgoing shot's video past its cut (every shot video holds
those frames). The track's length is then the film's, frame for frame."""
from __future__ import annotations

import shutil
from pathlib import Path

from ..common.errors import AnimStudioError
from .storyboard_model import Storyboard

EXPORTS = {"otio": ("otio_json", ".otio"), "fcpxml": ("fcpx_xml", ".fcpxml"), "xml": ("fcp_xml", ".xml"),
           "edl": ("cmx_3600", ".edl")}
BLENDS = ("dissolve", "wipe_left", "wipe_right")


def parse_exports(text: str) -> tuple[str, ...]:
    """``"fcpxml,xml,edl,otio"`` → the export kinds; an unknown one is refused by name."""
    kinds = tuple(k.strip().lower() for k in text.split(",") if k.strip())
    unknown = [k for k in kinds if k not in EXPORTS]
    if unknown:
        error = AnimStudioError(f"unknown export {', '.join(unknown)}: choose from {', '.join(EXPORTS)}")
        error.exit_code = 2  # what the user asked for
        raise error
    return kinds


SMPTE_RATES = (24, 25, 30, 48, 50, 60)  # what an EDL's timecode can count in


def edl_rate(fps: int) -> int:
    """The timecode rate an editor's export (EDL, FCP 7 XML, FCPXML) of a ``fps`` film is written at: the least SMPTE rate that counts each film frame
    in whole timecode frames (an animatic at 12 fps is written at 24, each frame two)."""
    rate = next((r for r in SMPTE_RATES if r % fps == 0), None)
    if rate is None:
        raise AnimStudioError(f"an EDL counts SMPTE timecode ({', '.join(map(str, SMPTE_RATES))} fps), and a "
                              f"{fps} fps film fits none of them: export fcpxml, xml or otio instead")
    return rate


def cut_timeline(board: Storyboard, out_dir: Path, timeline: list[dict], shot_files: dict[str, Path],
                 music: Path | None = None, rate: int | None = None):
    """The film as an ``opentimelineio`` Timeline: ``timeline`` is each shot's time on screen (the report's),
    ``shot_files`` each shot's video in ``out_dir``; counted at ``rate`` (default: the film's own)."""
    import opentimelineio as otio

    fps = float(board.project.fps)
    scale = (rate or fps) / fps
    frame = lambda n: otio.opentime.RationalTime(n * scale, rate or fps)  # noqa: E731
    result = otio.schema.Timeline(name=board.project.title, global_start_time=frame(0))
    video = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    entries = [(e, round(e["start"] * fps), round(e["end"] * fps)) for e in timeline]
    for index, (entry, start, end) in enumerate(entries):
        shot = board.shot(entry["shot"])
        following_start = entries[index + 1][1] if index + 1 < len(entries) else end
        visible = min(end, following_start) - start  # to the next cut
        media = shot_files[shot.id]
        reference = otio.schema.ExternalReference(
            target_url=media.relative_to(out_dir).as_posix(),
            available_range=otio.opentime.TimeRange(frame(0), frame(end - start)))
        if index and shot.transition.type in BLENDS:
            overlap = entries[index - 1][2] - start
            if overlap > 0:
                video.append(otio.schema.Transition(
                    name=shot.transition.type, transition_type=otio.schema.TransitionTypes.SMPTE_Dissolve,
                    in_offset=frame(0), out_offset=frame(overlap)))
        video.append(otio.schema.Clip(name=shot.id, media_reference=reference,
                                      source_range=otio.opentime.TimeRange(frame(0), frame(visible))))
    result.tracks.append(video)
    if music is not None:
        total = entries[-1][2] if entries else 0
        target = out_dir / "media" / music.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(music, target)
        audio = otio.schema.Track(name="A2 music", kind=otio.schema.TrackKind.Audio)
        audio.append(otio.schema.Clip(name="music", media_reference=otio.schema.ExternalReference(
            target_url=target.relative_to(out_dir).as_posix(),
            available_range=otio.opentime.TimeRange(frame(0), frame(total))),
            source_range=otio.opentime.TimeRange(frame(0), frame(total))))
        result.tracks.append(audio)
    return result


def write_exports(board: Storyboard, out_dir: Path, film: Path, timeline: list[dict], kinds: tuple[str, ...],
                  shot_files: dict[str, Path]) -> list[Path]:
    """Each export of ``kinds`` written beside ``film`` (``<title>.fcpxml`` …); returns the files."""
    import opentimelineio as otio

    if not kinds:
        return []
    missing = [e["shot"] for e in timeline if e["shot"] not in shot_files or not shot_files[e["shot"]].is_file()]
    if missing or not timeline:
        raise AnimStudioError(f"exports need each shot's own video (render shot by shot): missing {', '.join(missing)}"
                              if missing else "exports need the film's timeline, which the render did not report")
    music = board.music[0].file if board.music else None
    written = []
    for kind in kinds:
        adapter, suffix = EXPORTS[kind]
        target = film.with_suffix(suffix)
        # the editors' formats count in SMPTE rates (FCPXML names its frame duration from a table of them): a 12 fps
        # animatic is written at 24, each frame two; OTIO keeps the film's own rate
        cut = cut_timeline(board, out_dir, timeline, shot_files, music,
                           edl_rate(board.project.fps) if adapter != "otio_json" else None)
        # an EDL holds one track of events; the FCPXML adapter cannot write an audio-only lane (it reads a frame
        # rate from every clip's format), so the music bed goes in the OTIO and FCP 7 XML exports only
        only_video = adapter in ("cmx_3600", "fcpx_xml")
        otio.adapters.write_to_file(_video_only(cut) if only_video else cut, str(target), adapter_name=adapter)
        written.append(target)
    return written


def _video_only(timeline):
    import copy

    result = copy.deepcopy(timeline)
    for track in list(result.tracks):
        if track.kind != "Video":
            result.tracks.remove(track)
    return result


def cut_points(path: Path, fps: float) -> tuple[list[int], list[str]]:
    """Read an export back through its adapter: the film frame (at ``fps``) where each shot's clip starts on the
    video track, and each clip's media (what the tests and a round trip compare)."""
    import opentimelineio as otio

    timeline = otio.adapters.read_from_file(str(path))
    track = next(t for t in timeline.tracks if t.kind == "Video")
    starts, media = [], []
    for clip in track.find_clips():
        starts.append(round(track.range_of_child(clip).start_time.to_seconds() * fps))
        media.append(getattr(clip.media_reference, "target_url", ""))
    return starts, media
