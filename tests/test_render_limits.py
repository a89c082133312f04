"""Renders that clean up after themselves and refuse runaway films (issue 15, items 17 and 18).

17: the embedded engine's temporary folder (``animstudio-engine-*``, copies of every input and output) is
removed when the render ends: done, failed or interrupted. 18: a film longer than the limit (``--max-minutes``,
``$ANIMSTUDIO_MAX_FILM_MINUTES``, default 180) is refused before anything is synthesised or submitted.
"""
from __future__ import annotations

import json
import tempfile
import time

import pytest

from animstudio.cli import main
from animstudio.common.errors import ServerError, StoryboardError
from animstudio.translator import film_length
from animstudio.translator import render as pipeline
from animstudio.translator.embedded import EmbeddedEngine
from animstudio.translator.storyboard import load_storyboard
from conftest import odd_width_film, write_panel, write_storyboard

ENV = "ANIMSTUDIO_MAX_FILM_MINUTES"


@pytest.fixture()
def temp_root(tmp_path, monkeypatch):
    """The system temp folder, pointed at a folder of the test's own (as TMPDIR would)."""
    root = tmp_path / "system-tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.delenv("COMFYUI_URL", raising=False)
    return root


def engine_folders(root):
    return sorted(p.name for p in root.glob("animstudio-engine-*"))


def small_story(folder, seconds=(1.0, 1.0)):
    write_panel(folder / "p.png", size=(64, 64))
    data = {"version": 1, "project": {"title": "Small", "width": 64, "height": 64, "fps": 8},
            "shots": [{"id": f"s{i}", "description": "waves", "duration": d, "keyframe": "p.png"}
                      for i, d in enumerate(seconds)]}
    return write_storyboard(folder, data)


def long_story(folder, shots=10_000, seconds=1.1, dialogue_every=10):
    """A generated storyboard of ``shots`` shots on one panel; every tenth speaks (its length is estimated)."""
    write_panel(folder / "p.png", size=(64, 64))
    data = {"version": 1, "project": {"title": "Endless", "width": 64, "height": 64, "fps": 8},
            "characters": {"mara": {"description": "a keeper", "voice": {"engine": "espeak"}}},
            "shots": []}
    for i in range(shots):
        shot = {"id": f"s{i}", "description": "waves", "duration": seconds, "keyframe": "p.png"}
        if dialogue_every and i % dialogue_every == 0:
            shot["characters"] = ["mara"]
            shot["dialogue"] = [{"character": "mara", "text": "Another wave."}]
        data["shots"].append(shot)
    return write_storyboard(folder, data)


class NoEngine:
    """An engine that fails the test if the pipeline touches it."""

    name = "none"

    def __getattr__(self, item):
        raise AssertionError(f"the pipeline used the engine ({item}) for a film it should refuse")


# ---------------------------------------------------------------------------------- 17: temporary folders

def test_a_render_leaves_no_engine_folder_behind(tmp_path, temp_root, capsys):
    path = small_story(tmp_path / "story")
    out = tmp_path / "out"
    assert main(["render", str(path), "-o", str(out), "-q", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (out / result["film"]).is_file()                         # the outputs were copied out first
    assert engine_folders(temp_root) == []


@pytest.mark.parametrize("failure, code", [(KeyboardInterrupt, 130), (ServerError("the graph failed"), 4)])
def test_a_failed_or_interrupted_render_leaves_no_engine_folder(tmp_path, temp_root, monkeypatch, failure, code):
    path = small_story(tmp_path / "story")

    def fail(self, *args, **kwargs):
        assert engine_folders(temp_root)                             # the folder exists while it runs
        raise failure

    monkeypatch.setattr(EmbeddedEngine, "_run_pack_only", fail)
    assert main(["render", str(path), "-o", str(tmp_path / "out"), "-q"]) == code
    assert engine_folders(temp_root) == []


def test_the_engine_removes_its_folder_on_close_and_keeps_a_given_one(tmp_path, temp_root):
    panel = write_panel(tmp_path / "p.png")
    graph = odd_width_film("x/p.png")
    with pytest.raises(ServerError):
        with pipeline.LocalEngine(EmbeddedEngine()) as engine:
            engine.run(graph, {}, lambda kind, data: None, [engine.upload(panel, "x", "p.png")])
    assert engine_folders(temp_root) == []
    EmbeddedEngine().pack_object_info()                              # nobody closes it: dropped, it goes too
    assert engine_folders(temp_root) == []
    kept = EmbeddedEngine(work_dir=tmp_path / "work")
    kept.close()
    assert (tmp_path / "work" / "input").is_dir()


# ---------------------------------------------------------------------------------- 18: the length limit

def test_a_10000_shot_film_is_refused_before_anything_is_made(tmp_path, temp_root, monkeypatch, capsys):
    path = long_story(tmp_path / "story")
    from animstudio.nodes.audio import tts

    def no_speech(*args, **kwargs):
        raise AssertionError("speech was synthesised for a film that should be refused")

    monkeypatch.setattr(tts, "synthesize", no_speech)
    monkeypatch.setattr(EmbeddedEngine, "__init__", no_speech)
    out = tmp_path / "out"
    started = time.monotonic()
    code = main(["render", str(path), "-o", str(out)])
    elapsed = time.monotonic() - started
    err = capsys.readouterr().err
    assert code == 2, err
    assert elapsed < 10, f"took {elapsed:.1f} s to refuse"
    assert "10000 shots" in err and "longer than the render limit of 3 h 00 min" in err
    assert "--max-minutes" in err and ENV in err and "Traceback" not in err
    assert not out.exists() and engine_folders(temp_root) == []


def test_the_pipeline_checks_first_and_fast(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    board = load_storyboard(long_story(tmp_path / "story"))
    started = time.monotonic()
    with pytest.raises(film_length.FilmTooLong) as caught:
        pipeline.render(board, tmp_path / "out", NoEngine())
    assert time.monotonic() - started < 1.0
    assert isinstance(caught.value, StoryboardError) and caught.value.exit_code == 2
    assert caught.value.problems[0].where == "$.shots"
    assert not (tmp_path / "out").exists()


def test_a_film_just_under_the_limit_passes_the_check(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    # 10,000 one-second shots: 2 h 46 min 40 s, just under the default three hours
    board = load_storyboard(long_story(tmp_path / "story", seconds=1.0, dialogue_every=0))
    assert film_length.film_seconds(board) == 10_000.0
    assert film_length.check_film_length(board) == 10_000.0  # 166.7 minutes: under the default 180
    with pytest.raises(film_length.FilmTooLong, match="2 h 46 min.*2 h 45 min"):
        film_length.check_film_length(board, max_minutes=165)
    monkeypatch.setenv(ENV, "160")
    with pytest.raises(film_length.FilmTooLong, match="2 h 40 min"):
        film_length.check_film_length(board)
    assert film_length.check_film_length(board, max_minutes=170) == 10_000.0  # the flag wins over the variable
    monkeypatch.setenv(ENV, "0")
    assert film_length.check_film_length(board) == 10_000.0  # 0: no limit
    monkeypatch.setenv(ENV, "lots")
    with pytest.raises(StoryboardError, match=ENV):
        film_length.check_film_length(board)


def test_the_flag_through_a_real_render(tmp_path, temp_root, capsys):
    path = small_story(tmp_path / "story")                          # two one-second shots: 2 s
    assert main(["render", str(path), "-o", str(tmp_path / "out"), "-q", "--max-minutes", "0.03"]) == 2
    err = capsys.readouterr().err
    assert "the film is 0 min 02 s long" in err and "--max-minutes" in err
    assert not (tmp_path / "out").exists()
    assert main(["render", str(path), "-o", str(tmp_path / "out"), "-q", "--max-minutes", "0.04"]) == 0
    assert engine_folders(temp_root) == []
    with pytest.raises(SystemExit) as caught:
        main(["render", str(path), "-o", str(tmp_path / "out"), "--max-minutes", "-1"])
    assert caught.value.code == 2


def test_a_batch_refuses_a_film_over_the_limit_before_queueing(tmp_path, monkeypatch, capsys):
    from animstudio.cloud.jobs import plan_batch

    monkeypatch.delenv(ENV, raising=False)
    short = small_story(tmp_path / "short")
    long = long_story(tmp_path / "long", shots=200, seconds=1.0)  # 3 min 20 s
    assert len(plan_batch([short, long])) == 2
    with pytest.raises(film_length.FilmTooLong) as info:
        plan_batch([short, long], max_minutes=3)
    assert "3 min 00 s" in str(info.value) and "--max-minutes" in str(info.value)
    (tmp_path / "pool.yaml").write_text("endpoints: [{name: a, url: 'http://127.0.0.1:9'}]\n")
    out = tmp_path / "out"
    assert main(["batch", str(short), str(long), "--pool", str(tmp_path / "pool.yaml"), "-o", str(out),
                 "--max-minutes", "3", "-q"]) == 2
    err = capsys.readouterr().err
    assert "longer than the render limit of 3 min 00 s" in err and "Traceback" not in err
    assert not (out / "short").exists()  # nothing was queued or made
