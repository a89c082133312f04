"""The edit is one timeline: the translator builds the film's cut as an OpenTimelineIO timeline from the rendered
shots, the compositor renders the film from it, and the cut read back from an .otio file renders the same film."""
from __future__ import annotations

import json

import av
import numpy as np
import opentimelineio as otio
import pytest

from animstudio.cli import main
from animstudio.common.errors import AnimStudioError
from animstudio.nodes.film.editorial import film_from_cut
from animstudio.translator.storyboard import load_storyboard
from animstudio.translator.timeline import shot_cut
from conftest import EXAMPLE


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    out = tmp_path_factory.mktemp("timeline") / "out"
    assert main(["render", str(EXAMPLE), "-o", str(out), "-q"]) == 0
    return out, json.loads((out / "render-report.json").read_text())


def test_the_cut_is_the_films_timeline(rendered):
    out, report = rendered
    board = load_storyboard(EXAMPLE)
    cut = shot_cut(board, out)
    video = next(t for t in cut.tracks if t.kind == otio.schema.TrackKind.Video)
    clips = video.find_clips()
    assert [c.name for c in clips] == [s.id for s in board.shots]
    assert [c.media_reference.target_url for c in clips] == [f"shots/{s.id}.mp4" for s in board.shots]
    assert [c.metadata["animstudio"]["transition"] for c in clips] == [
        {"type": s.transition.type, "seconds": s.transition.duration} for s in board.shots]
    # each shot's place in the film as the film reports it, frame for frame
    fps = board.project.fps
    assert [round(video.range_of_child(c).start_time.to_seconds() * fps) for c in clips] == [
        round(e["start"] * fps) for e in report["timeline"]]
    # a marker for each line, at its time in its shot, with its speaker; each line's own sound on a dialogue track
    lines = [(line["text"], round(line["start"] * fps)) for e in report["timeline"] for line in e["lines"]]
    markers = [(m.name, round((video.range_of_child(c).start_time + m.marked_range.start_time).to_seconds() * fps))
               for c in clips for m in c.markers]
    assert markers == lines and all(m.metadata["animstudio"]["speaker"] for c in clips for m in c.markers)
    dialogue = [t for t in cut.tracks if t.name.startswith("dialogue")]
    assert sum(len(t.find_clips()) for t in dialogue) == len(lines)
    music = next(t for t in cut.tracks if t.name == "music").find_clips()[0]
    assert music.media_reference.target_url == "media/night-pad.ogg" and (out / "media" / "night-pad.ogg").is_file()


def test_the_compositor_renders_the_film_from_the_cut_as_read_back(rendered, tmp_path):
    out, report = rendered
    cut = shot_cut(load_storyboard(EXAMPLE), out)
    saved = tmp_path / "film.otio"
    otio.adapters.write_to_file(cut, str(saved))
    film, music = film_from_cut(otio.adapters.read_from_file(str(saved)), out)
    assert [c.label for c in film.clips] == [e["shot"] for e in report["timeline"]]
    assert music is not None and music[0] == out / "media" / "night-pad.ogg" and music[1] < 0
    with av.open(str(out / report["film"])) as container:
        frames = container.streams.video[0].frames
    assert film.frame_count == frames
    # an edit made on the timeline is what the compositor renders: the last shot cut in instead of wiped
    video = next(t for t in cut.tracks if t.kind == otio.schema.TrackKind.Video)
    video.find_clips()[-1].metadata["animstudio"]["transition"] = {"type": "cut", "seconds": 0.0}
    recut, _ = film_from_cut(cut, out)
    assert recut.frame_count == film.frame_count + round(0.5 * 12)


def test_a_cut_naming_media_outside_its_folder_is_refused(rendered, tmp_path):
    out, _ = rendered
    cut = shot_cut(load_storyboard(EXAMPLE), out)
    next(t for t in cut.tracks if t.kind == otio.schema.TrackKind.Video).find_clips()[0].media_reference.target_url = (
        "../../etc/passwd")
    with pytest.raises(AnimStudioError, match="names media outside"):
        film_from_cut(cut, out)


def test_the_film_decodes_to_its_shots_frames_where_no_transition_touches_them(rendered):
    """Smart rendering, on the example: the frames between transitions are the shots' own, bit for bit."""
    out, report = rendered
    with av.open(str(out / report["film"])) as container:
        film = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    with av.open(str(out / "shots" / "ship-storm.mp4")) as container:
        shot = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    entry = next(e for e in report["timeline"] if e["shot"] == "ship-storm")
    start = round(entry["start"] * 12)
    untouched = len(shot) - 6  # the wipe into the beam changes its last 6 frames
    assert all(np.array_equal(film[start + j], shot[j]) for j in range(untouched))
