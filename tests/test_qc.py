"""Quality control of a finished film: planted faults (a black second, a frozen second, a silent line, a clipped line)
found at their timecodes in a film the test makes, through ``animstudio qc``; the rendered example comes out clean,
with its timeline and a contact sheet of its shots."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from animstudio.cli import main
from animstudio.nodes.film.sidecars import to_srt
from animstudio.nodes.film.subtitles import SubtitleCue
from animstudio.nodes.film.video_io import write_video
from conftest import EXAMPLE

FPS, RATE, SECONDS = 12, 48000, 8.0


class Sound:
    def __init__(self, samples):
        self.samples, self.sample_rate, self.channels = samples.astype(np.float32), RATE, samples.shape[0]
        self.position = 0

    @property
    def seconds(self):
        return self.samples.shape[1] / RATE

    def read(self, count):
        out = self.samples[:, self.position:self.position + count]
        self.position += count
        if out.shape[1] < count:
            out = np.pad(out, ((0, 0), (0, count - out.shape[1])))
        return out


def faulty_film(folder):
    """8 s at 12 fps: a moving picture, black over 2-3 s, frozen over 4-5 s; lines at 0.5-1.5 s (spoken), 5.5-6.5 s
    (no sound under it) and 6.8-7.6 s (hard-clipped)."""
    rng = np.random.default_rng(0)
    base = rng.integers(40, 200, (72, 128, 3), dtype=np.uint8)

    def frames():
        frozen = None
        for i in range(int(SECONDS * FPS)):
            t = i / FPS
            if 2.0 <= t < 3.0:
                yield np.zeros((72, 128, 3), np.uint8)
            elif 4.0 <= t < 5.0:
                frozen = frozen if frozen is not None else np.roll(base, i * 3, axis=1)
                yield frozen
            else:
                yield np.roll(base, i * 3, axis=1)

    t = np.arange(int(SECONDS * RATE)) / RATE
    sound = 0.002 * rng.standard_normal(len(t))  # room tone
    spoken = (t >= 0.5) & (t < 1.5)
    sound[spoken] += 0.3 * np.sin(2 * np.pi * 220 * t[spoken]) * np.abs(np.sin(2 * np.pi * 3 * t[spoken]))
    silent = (t >= 5.4) & (t < 6.6)
    sound[silent] = 0.0
    clipped = (t >= 6.8) & (t < 7.6)
    sound[clipped] = np.clip(3.0 * np.sin(2 * np.pi * 180 * t[clipped]), -1.0, 1.0)
    film = folder / "faulty.mp4"
    write_video(frames(), film, FPS, 128, 72, audio=Sound(np.stack([sound, sound])))
    film.with_suffix(".srt").write_text(to_srt([SubtitleCue(0.5, 1.5, "Look for the light."),
                                                SubtitleCue(5.5, 6.5, "I hope."),
                                                SubtitleCue(6.8, 7.6, "Hold on!")]), encoding="utf-8")
    return film


def test_planted_faults_are_found_at_their_timecodes(tmp_path, capsys):
    film = faulty_film(tmp_path)
    assert main(["qc", str(film), "--json", "--loudness", "-20"]) == 0
    result = json.loads(capsys.readouterr().out)
    found = {}
    for f in result["findings"]:
        found.setdefault(f["kind"], []).append((f["start"], f["end"]))
    frame = 1 / FPS + 1e-6
    assert [(pytest.approx(2.0, abs=frame), pytest.approx(3.0, abs=frame))] == found["black"]
    assert [(pytest.approx(4.0, abs=frame), pytest.approx(5.0, abs=frame))] == found["frozen"]
    assert found["silent_line"] == [(5.5, 6.5)]
    (start, end), = found["clipping"]
    assert abs(start - 6.8) <= 0.06 and abs(end - 7.6) <= 0.06
    assert "length_mismatch" not in found and set(found) <= {"black", "frozen", "silent_line", "clipping",
                                                             "loudness", "true_peak"}
    assert abs(result["video_seconds"] - SECONDS) < 0.01 and abs(result["audio_seconds"] - SECONDS) < 0.05
    # the same file as text: one line per finding with its timecode
    assert main(["qc", str(film)]) == 0
    text = capsys.readouterr().out
    assert "black 00:02.000-00:03.000" in text and "silent_line 00:05.500-00:06.500" in text


def test_qc_refuses_what_is_not_a_film(tmp_path, capsys):
    assert main(["qc", str(tmp_path / "none.mp4")]) == 2
    assert "none.mp4: file not found" in capsys.readouterr().err
    (tmp_path / "notes.mp4").write_text("not a film")
    assert main(["qc", str(tmp_path / "notes.mp4")]) == 2
    assert "not a video file" in capsys.readouterr().err


def test_the_rendered_example_is_clean_with_a_timeline_and_a_contact_sheet(tmp_path, capsys):
    assert main(["render", str(EXAMPLE), "-o", str(tmp_path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["qc"]["findings"] == [], report["qc"]
    assert abs(report["qc"]["loudness"] - (-14.0)) <= 0.5 and report["qc"]["true_peak"] <= -1.0
    shots = [e["shot"] for e in report["timeline"]]
    assert shots == ["opening", "keeper-window", "ship-storm", "beam"]
    assert report["timeline"][-1]["end"] == pytest.approx(report["film_seconds"], abs=0.1)
    # the dissolve into keeper-window overlaps the shot before it
    assert report["timeline"][1]["start"] < report["timeline"][0]["end"]
    sheet = Image.open(tmp_path / report["qc"]["contact_sheet"])
    assert sheet.size == (4 * 256, 144 + 18)
    # animstudio qc on it finds the shots from the report beside it, and nothing wrong
    assert main(["qc", str(tmp_path / report["film"]), "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["findings"] == [] and again["loudness"] == report["qc"]["loudness"]
