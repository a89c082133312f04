"""The cut for editors: ``animstudio render --export fcpxml,xml,edl,otio`` writes the film's timeline through
OpenTimelineIO's own adapters; read back through the same adapters, each gives the cut points of the film (frame
for frame, as the report's timeline and the decoded film have them) and each shot's own video as media."""
from __future__ import annotations

import json

import av
import pytest

from animstudio.cli import main
from animstudio.translator.exports import cut_points, edl_rate
from conftest import EXAMPLE

FPS = 12


def test_exports_read_back_with_the_films_cut_points_and_media(tmp_path, capsys):
    assert main(["render", str(EXAMPLE), "-o", str(tmp_path), "--export", "fcpxml,xml,edl,otio", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    film = tmp_path / report["film"]
    assert report["exports"] == [film.with_suffix(s).name for s in (".fcpxml", ".xml", ".edl", ".otio")]
    expected = [round(e["start"] * FPS) for e in report["timeline"]]  # where each shot's clip begins
    shots = [e["shot"] for e in report["timeline"]]
    with av.open(str(film)) as container:
        frames = sum(1 for _ in container.decode(video=0))
    assert expected == [0, 30, 64, 91] and round(report["timeline"][-1]["end"] * FPS) == frames
    media = [f"shots/{shot}.mp4" for shot in shots]
    for suffix in (".otio", ".fcpxml", ".xml"):
        starts, read_media = cut_points(film.with_suffix(suffix), FPS)
        assert (starts, read_media) == (expected, media), suffix
        assert all((tmp_path / m).is_file() for m in read_media)  # relative to the output folder
    starts, _ = cut_points(film.with_suffix(".edl"), FPS)
    assert starts == expected
    edl = film.with_suffix(".edl").read_text()
    # the EDL counts 24 fps timecode (a 12 fps film's frames are two each); the dissolves are D events
    assert "FCM: NON-DROP FRAME" in edl or "00:00:02:12" in edl
    assert edl.count(" D 012 ") == 2 and all(f"* TO CLIP: {m}" in edl or f"* FROM CLIP: {m}" in edl for m in media)
    otio = json.loads(film.with_suffix(".otio").read_text())
    assert "media/night-pad.ogg" in json.dumps(otio)  # the music bed, its own media, on its own track
    assert (tmp_path / "media" / "night-pad.ogg").is_file()


def test_export_choices_are_checked_before_anything_renders(tmp_path, capsys):
    assert main(["render", str(EXAMPLE), "-o", str(tmp_path / "a"), "--export", "avid"]) == 2
    assert "unknown export avid" in capsys.readouterr().err and not (tmp_path / "a").exists()
    assert main(["render", str(EXAMPLE), "-o", str(tmp_path / "b"), "--export", "edl", "--single-graph"]) == 2
    assert "--export needs each shot's own video" in capsys.readouterr().err
    assert edl_rate(12) == 24 and edl_rate(25) == 25 and edl_rate(10) == 30
    with pytest.raises(Exception, match="fits none of them"):
        edl_rate(7)
