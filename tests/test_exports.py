"""The cut for editors: ``animstudio render --export fcpxml,xml,edl,otio`` writes the film's timeline through
OpenTimelineIO's own adapters; read back through the same adapters, each gives the cut points of the film (frame
for frame, as the report's timeline and the decoded film have them) and each shot's own video as media."""
from __future__ import annotations

import json
from pathlib import Path

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
    # each dialogue line is its own medium (the line's WAV kept beside its cues), placed at its time in the film
    lines = [(round(line["start"] * FPS), line["text"]) for e in report["timeline"] for line in e["lines"]]
    assert len(lines) == 2
    for suffix in (".otio", ".xml"):
        placed = dialogue_placements(film.with_suffix(suffix), FPS)
        assert [at for at, _media in placed] == [at for at, _text in lines], suffix
        assert all(m.startswith("outputs/animstudio/lipsync/") and m.endswith(".wav") and (tmp_path / m).is_file()
                   for _at, m in placed)
        assert len({m for _at, m in placed}) == 2
    for (_at, media), (_start, text) in zip(dialogue_placements(film.with_suffix(".otio"), FPS), lines):
        (cues,) = [json.loads(p.read_text()) for p in (tmp_path / media).parent.glob(Path(media).stem + ".json")]
        assert cues["metadata"]["soundFile"] == Path(media).name  # the line's cues name that very sound


def dialogue_placements(path, fps):
    """(film frame, media) of each line's clip on the export's audio tracks (FCP 7 XML keeps no track names: a line is
    the clip whose medium is a line's sound), read back through its adapter."""
    import opentimelineio as otio

    timeline = otio.adapters.read_from_file(str(path))
    placed = []
    for track in timeline.tracks:
        if track.kind == otio.schema.TrackKind.Audio:
            for clip in track.find_clips():
                if "/lipsync/" not in clip.media_reference.target_url:
                    continue
                placed.append((round(track.range_of_child(clip).start_time.to_seconds() * fps),
                               clip.media_reference.target_url))
    return sorted(placed)


def test_save_film_node_exports_the_cut_of_its_own_film(tmp_path):
    """The Save Film node's export choice: each shot its stretch of the film file, cut where the shot starts; read
    back through the adapters, frame for frame."""
    import numpy as np

    from animstudio.nodes.boundary import use_folders
    from animstudio.nodes.film.clips import Film, Transition, still_clip
    from animstudio.nodes.film.film_nodes import AnimStudioSaveFilm

    picture = np.full((36, 64, 3), 90, np.uint8)
    film = Film().append(still_clip(picture, 64, 36, 12, 2.0, label="a")).append(
        still_clip(picture, 64, 36, 12, 1.5, label="b"), Transition("dissolve", 0.5)).append(
        still_clip(picture, 64, 36, 12, 1.0, label="c"), Transition("cut"))
    with use_folders(tmp_path / "in", tmp_path / "out"):
        result = AnimStudioSaveFilm().save(film, "cuts/film", export="otio+fcpxml+xml+edl", loudness_lufs=0.0)
    names = [f["filename"] for f in result["ui"]["files"]]
    saved = tmp_path / "out" / "cuts" / result["ui"]["images"][0]["filename"]
    assert names == [saved.with_suffix(s).name for s in (".otio", ".fcpxml", ".xml", ".edl")]
    for suffix in (".otio", ".fcpxml", ".xml", ".edl"):
        starts, media = cut_points(saved.with_suffix(suffix), 12)
        assert starts == [0, 18, 36], suffix  # b starts where the dissolve begins, c at the cut
        if suffix != ".edl":
            assert media == [saved.name] * 3, suffix
    with pytest.raises(Exception, match="unknown export"):
        with use_folders(tmp_path / "in", tmp_path / "out"):
            AnimStudioSaveFilm().save(film, "cuts/film", export="avid")


def test_export_choices_are_checked_before_anything_renders(tmp_path, capsys):
    assert main(["render", str(EXAMPLE), "-o", str(tmp_path / "a"), "--export", "avid"]) == 2
    assert "unknown export avid" in capsys.readouterr().err and not (tmp_path / "a").exists()
    assert main(["render", str(EXAMPLE), "-o", str(tmp_path / "b"), "--export", "edl", "--single-graph"]) == 2
    assert "--export needs each shot's own video" in capsys.readouterr().err
    assert edl_rate(12) == 24 and edl_rate(25) == 25 and edl_rate(10) == 30
    with pytest.raises(Exception, match="fits none of them"):
        edl_rate(7)
