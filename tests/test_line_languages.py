"""Languages per line: ``language`` on a character and on a line (falling back to the project's) drives the line's
voice, lip sync and caption; a line written in a script its language cannot speak is refused at its path."""
from __future__ import annotations

import json

import pytest

from animstudio.cli import main
from animstudio.common.errors import StoryboardError
from animstudio.translator.compile import compile_storyboard
from animstudio.translator.storyboard import load_storyboard
from conftest import write_panel, write_storyboard


def story(folder, chinese_language="cmn"):
    write_panel(folder / "a.png")
    line = {"character": "ada", "text": "灯塔在那里。"}
    if chinese_language:
        line["language"] = chinese_language
    return write_storyboard(folder, {
        "version": 1, "project": {"title": "Babel", "width": 96, "height": 64, "fps": 8, "language": "en"},
        "characters": {"ada": {"name": "Ada", "description": "a keeper", "voice": {"engine": "espeak", "name": "en-us"}},
                       "gio": {"name": "Gio", "description": "a sailor", "language": "it"}},
        "shots": [{"id": "s1", "description": "the pier", "keyframe": "a.png", "duration": "fit_to_dialogue",
                   "dialogue": [{"character": "ada", "text": "Look there."}, line,
                                {"character": "gio", "text": "Il faro è acceso."}]}]})


def test_each_line_is_spoken_in_its_own_language(tmp_path):
    graph = compile_storyboard(load_storyboard(story(tmp_path))).graphs[0].graph
    spoken = [(graph[f"s1:line-{k}:tts"]["inputs"]["language"], graph[f"s1:line-{k}:tts"]["inputs"]["voice"])
              for k in (1, 2, 3)]
    # Ada's own line in her voice; her Chinese line by the language (espeak-ng's cmn voice); Gio's in his Italian
    assert spoken == [("en", "en-us"), ("cmn", ""), ("it", "")]
    assert graph["s1:line-2:lipsync"]["inputs"]["language"] == "cmn"


def test_a_line_its_language_cannot_speak_is_refused_at_its_path(tmp_path, capsys):
    with pytest.raises(StoryboardError) as caught:
        load_storyboard(story(tmp_path, chinese_language=None))
    (problem,) = caught.value.problems
    assert problem.where == "$.shots[0].dialogue[1].text"
    assert "Han letters" in problem.message and "'en'" in problem.message


def test_a_film_in_three_languages_renders(tmp_path, capsys):
    """Voices and lip sync per line (the captions go in the sidecar: burning 'Ada: 灯塔…' needs one font with both
    scripts, which the caption check asks of the machine before rendering)."""
    path = story(tmp_path / "story")
    data = json.loads(path.read_text())
    data["project"]["subtitles"] = {"burn": False}
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    out = tmp_path / "out"
    assert main(["render", str(path), "-o", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    srt = (out / report["film"]).with_suffix(".srt").read_text(encoding="utf-8")
    assert "Ada: 灯塔在那里。" in srt and "Gio: Il faro è acceso." in srt
    cues = [json.loads((out / p).read_text()) for p in report["outputs"] if "/lipsync/" in p and p.endswith(".json")]
    assert len(cues) == 3 and all(len({c["value"] for c in cue["mouthCues"]}) > 2 for cue in cues)
