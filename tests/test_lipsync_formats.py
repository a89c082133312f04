"""Lip-sync files: Rhubarb's formats to the byte, the rhubarb runner against a real stand-in executable,
and the viseme export for 3D rigs."""
from __future__ import annotations

import json
import os
import stat
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from animstudio.nodes.lipsync.cues import MouthCue, MouthCues, cue_problems
from animstudio.nodes.lipsync.errors import LipSyncError
from animstudio.nodes.lipsync.formats import (
    PRESTON_BLAIR_NAMES, parse_rhubarb_json, parse_tsv, parse_xml, to_dat, to_rhubarb_json, to_tsv, to_xml,
    write_cues,
)
from animstudio.nodes.lipsync.rhubarb import rhubarb_available, run_rhubarb
from animstudio.nodes.lipsync.visemes import (
    ARKIT_CHANNELS, PHONE_VISEME, SHAPE_VISEME, VISEMES, VISEME_WEIGHTS, phone_viseme, to_viseme_json, viseme_track,
)

SOUND = "C:\\Users\\Daniel\\Desktop\\av\\hi\\hi.wav"


def hi(sound_file: str = SOUND, extended_shapes: str = "GHX") -> MouthCues:
    """The README's 'Hi.' example: the cues Rhubarb documents for every format."""
    spans = [(0.0, 0.05, "X"), (0.05, 0.27, "D"), (0.27, 0.31, "C"), (0.31, 0.43, "B"), (0.43, 0.47, "X")]
    return MouthCues(tuple(MouthCue(*s) for s in spans), 0.47, sound_file=sound_file, extended_shapes=extended_shapes)


# The README's examples, verbatim (README.adoc "Output formats").
HI_TSV = "0.00\tX\n0.05\tD\n0.27\tC\n0.31\tB\n0.43\tX\n0.47\tX\n"
HI_JSON = """{
  "metadata": {
    "soundFile": "C:\\\\Users\\\\Daniel\\\\Desktop\\\\av\\\\hi\\\\hi.wav",
    "duration": 0.47
  },
  "mouthCues": [
    { "start": 0.00, "end": 0.05, "value": "X" },
    { "start": 0.05, "end": 0.27, "value": "D" },
    { "start": 0.27, "end": 0.31, "value": "C" },
    { "start": 0.31, "end": 0.43, "value": "B" },
    { "start": 0.43, "end": 0.47, "value": "X" }
  ]
}
"""
HI_XML = """<?xml version="1.0" encoding="utf-8"?>
<rhubarbResult>
  <metadata>
    <soundFile>C:\\Users\\Daniel\\Desktop\\av\\hi\\hi.wav</soundFile>
    <duration>0.47</duration>
  </metadata>
  <mouthCues>
    <mouthCue start="0.00" end="0.05">X</mouthCue>
    <mouthCue start="0.05" end="0.27">D</mouthCue>
    <mouthCue start="0.27" end="0.31">C</mouthCue>
    <mouthCue start="0.31" end="0.43">B</mouthCue>
    <mouthCue start="0.43" end="0.47">X</mouthCue>
  </mouthCues>
</rhubarbResult>
"""


# -- golden text -----------------------------------------------------------------------------------------

def test_tsv_matches_rhubarb_readme():
    assert to_tsv(hi()) == HI_TSV


def test_json_matches_rhubarb_readme():
    assert to_rhubarb_json(hi()) == HI_JSON
    assert json.loads(to_rhubarb_json(hi()))["metadata"]["soundFile"] == SOUND


def test_xml_matches_rhubarb_readme():
    assert to_xml(hi()) == HI_XML


def test_closing_shape_is_a_without_x():
    cues = MouthCues((MouthCue(0, 0.1, "A"), MouthCue(0.1, 0.2, "D")), 0.2, extended_shapes="GH")
    assert to_tsv(cues) == "0.00\tA\n0.10\tD\n0.20\tA\n"
    assert to_dat(cues).splitlines()[-1] == "5 A"


def test_shapes_outside_the_set_fall_back_and_merge():
    # X is not in the set: it becomes A and joins the A after it, as Rhubarb's joining timeline would
    cues = MouthCues((MouthCue(0, 0.1, "X"), MouthCue(0.1, 0.2, "A"), MouthCue(0.2, 0.3, "G")), 0.3,
                     extended_shapes="")
    assert to_tsv(cues) == "0.00\tA\n0.20\tB\n0.30\tA\n"


def test_float_times_snap_to_centiseconds():
    # boundaries round (0.1049 → 0.10, 0.2951 → 0.30), the duration truncates (0.4789 → 0.47), and a cue
    # that rounds to nothing (0.2951-0.2953) disappears
    spans = [(0, 0.1049, "X"), (0.1049, 0.2951, "D"), (0.2951, 0.2953, "E"), (0.2953, 0.4789, "B")]
    cues = MouthCues(tuple(MouthCue(*s) for s in spans), 0.4789)
    assert to_tsv(cues) == "0.00\tX\n0.10\tD\n0.30\tB\n0.47\tX\n"
    assert '"duration": 0.47' in to_rhubarb_json(cues)
    assert '{ "start": 0.30, "end": 0.47, "value": "B" }' in to_rhubarb_json(cues)


def test_unknown_shape_is_refused():
    with pytest.raises(ValueError, match="not Rhubarb shapes"):
        to_tsv(MouthCues((MouthCue(0, 0.1, "Q"),), 0.1))


def test_empty_animation():
    empty = MouthCues((), 0.0, sound_file="")
    assert to_tsv(empty) == "0.00\tX\n"
    assert '    { "start": 0.00, "end": 0.00, "value": "X" }\n' in to_rhubarb_json(empty)
    assert '    <soundFile/>\n' in to_xml(empty)
    assert '<mouthCue start="0.00" end="0.00">X</mouthCue>' in to_xml(empty)
    assert parse_rhubarb_json(to_rhubarb_json(empty)).cues == ()


def test_escaping_like_rhubarb():
    cues = hi(sound_file='/tmp/a "b"\\c\té<&>\x7f.wav')
    line = to_rhubarb_json(cues).splitlines()[2]
    assert line == '    "soundFile": "/tmp/a \\"b\\"\\\\c\\t\\u00e9<&>\x7f.wav",'
    assert "<soundFile>/tmp/a &quot;b&quot;\\c\té&lt;&amp;&gt;\x7f.wav</soundFile>" in to_xml(cues)
    assert parse_rhubarb_json(to_rhubarb_json(cues)).sound_file == cues.sound_file
    # characters beyond the BMP are written as UTF-16 surrogate pairs, as Rhubarb does
    assert "\\ud83d\\ude00" in to_rhubarb_json(hi(sound_file="\U0001f600.wav"))


# -- DAT -------------------------------------------------------------------------------------------------

def test_dat_at_24_fps():
    assert to_dat(hi()) == "MohoSwitch1\n1 X\n2 D\n7 C\n8 B\n11 X\n12 X\n"


def test_dat_at_30_fps():
    # each frame shows the cue covering most of it: frame 2 (1/30-2/30 s) is half X, half D, and a tie goes
    # to the later cue; frame 13 (0.400-0.433 s) is mostly B (Rhubarb writes X there, as X starts in it);
    # the end line is Rhubarb's 1 + int(fps * duration) = 1 + int(14.1) = 15
    assert to_dat(hi(), frame_rate=30) == "MohoSwitch1\n1 X\n2 D\n9 C\n10 B\n14 X\n15 X\n"


def test_dat_preston_blair_names():
    assert to_dat(hi(), prestonBlair=True) == "MohoSwitch1\n1 rest\n2 AI\n7 E\n8 etc\n11 rest\n12 rest\n"
    assert PRESTON_BLAIR_NAMES == {"A": "MBP", "B": "etc", "C": "E", "D": "AI", "E": "O", "F": "U",
                                   "G": "FV", "H": "L", "X": "rest"}
    every = MouthCues(tuple(MouthCue(i * 0.1, (i + 1) * 0.1, s) for i, s in enumerate("ABCDEFGHX")), 0.9)
    names = [line.split()[1] for line in to_dat(every, prestonBlair=True).splitlines()[1:]]
    assert names == ["MBP", "etc", "E", "AI", "O", "U", "FV", "L", "rest", "rest"]


def test_dat_same_frame_keeps_the_earlier_cue_and_bumps_the_end():
    # at 24 fps the only frame (0-0.042 s) is mostly X (0.02 s against D's 0.01 s), so D is not written;
    # the end (0.03 s, frame 1) moves to frame 2
    cues = MouthCues((MouthCue(0, 0.02, "X"), MouthCue(0.02, 0.03, "D")), 0.03)
    assert to_dat(cues) == "MohoSwitch1\n1 X\n2 X\n"


def test_dat_frame_rate_limits():
    with pytest.raises(ValueError):
        to_dat(hi(), frame_rate=0)
    # outside Rhubarb's 24-100 fps it still writes (animating on twos), just with a warning; at 12 fps each
    # frame shows the cue covering most of it, so D and B keep frames (Rhubarb drops both, their starts
    # sharing frames with earlier cues), and the end (frame 6) is taken
    assert to_dat(hi(), frame_rate=12) == "MohoSwitch1\n1 X\n2 D\n4 C\n5 B\n6 X\n7 X\n"


# -- parsing and round trips ---------------------------------------------------------------------------

def test_round_trips():
    cues = hi()
    for text, parse in ((to_rhubarb_json(cues), parse_rhubarb_json), (to_xml(cues), parse_xml)):
        back = parse(text)
        assert back.cues == cues.cues and back.duration == 0.47 and back.sound_file == SOUND
        assert cue_problems(back) == []
    back = parse_tsv(to_tsv(cues))
    assert back.cues == cues.cues and back.duration == 0.47
    assert to_tsv(back) == HI_TSV


def test_parse_tsv_with_crlf_and_duration():
    back = parse_tsv(HI_TSV.replace("\n", "\r\n"), duration=0.4712)
    assert back.cues == hi().cues and back.duration == 0.4712
    assert cue_problems(back) == []
    with pytest.raises(ValueError, match="line 2"):
        parse_tsv("0.00\tX\n0.05\tQ\n")
    with pytest.raises(ValueError, match="backwards"):
        parse_tsv("0.10\tX\n0.05\tD\n")


def test_parse_rejects_what_is_not_rhubarb_json():
    with pytest.raises(ValueError, match="mouthCues"):
        parse_rhubarb_json('{"metadata": {}}')
    with pytest.raises(ValueError, match="not a Rhubarb mouth shape"):
        parse_rhubarb_json('{"mouthCues": [{"start": 0, "end": 1, "value": "Z"}]}')


def test_write_cues_by_name_and_by_path(tmp_path):
    cues = hi()
    assert write_cues(cues, "JSON") == HI_JSON
    assert write_cues(cues, "dat", frame_rate=30) == to_dat(cues, frame_rate=30)
    for name, expected in (("a.json", HI_JSON), ("b.tsv", HI_TSV), ("c.txt", HI_TSV), ("d.xml", HI_XML),
                           ("sub/e.dat", to_dat(cues))):
        assert write_cues(cues, tmp_path / name) == expected
        assert (tmp_path / name).read_bytes() == expected.encode("utf-8")
    with pytest.raises(ValueError, match="unknown lip-sync format"):
        write_cues(cues, "srt")
    with pytest.raises(ValueError, match="only apply to the dat"):
        write_cues(cues, "json", frame_rate=30)


# -- rhubarb runner, against a real executable standing in for the binary -------------------------------

FAKE_RHUBARB = '''#!{python}
"""Stands in for rhubarb: takes its command line, records it, writes Rhubarb-style JSON to -o."""
import json, os, sys, time
args = sys.argv[1:]
record = {{"args": args}}
if "-d" in args:
    with open(args[args.index("-d") + 1], encoding="utf-8") as f:
        record["dialog"] = f.read()
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "received.json"), "w") as f:
    json.dump(record, f)
mode = os.environ.get("FAKE_RHUBARB_MODE", "")
if mode == "fail":
    sys.stderr.write("Rhubarb Lip Sync 1.14.0 processing file in.wav:\\n[Fatal] Error processing file.\\n"
                     "Found Rhubarb executable, but could not find resource file res/sphinx/cmudict-en-us.dict.\\n")
    sys.exit(1)
if mode == "sleep":
    sys.stderr.write("thinking\\n")
    sys.stderr.flush()
    time.sleep(30)
if mode == "silent":
    sys.exit(0)
out = args[args.index("-o") + 1]
text = """{{
  "metadata": {{
    "soundFile": "%s",
    "duration": 0.47
  }},
  "mouthCues": [
    {{ "start": 0.00, "end": 0.05, "value": "X" }},
    {{ "start": 0.05, "end": 0.27, "value": "D" }},
    {{ "start": 0.27, "end": 0.47, "value": "G" }}
  ]
}}
""" % args[-1]
with open(out, "w", encoding="utf-8") as f:
    f.write(text)
'''


@pytest.fixture
def fake_rhubarb(tmp_path, monkeypatch):
    folder = tmp_path / "rhubarb-bin"
    folder.mkdir()
    binary = folder / "rhubarb"
    binary.write_text(FAKE_RHUBARB.format(python=sys.executable))
    binary.chmod(binary.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    monkeypatch.setenv("RHUBARB_PATH", str(binary))
    monkeypatch.delenv("FAKE_RHUBARB_MODE", raising=False)
    wav = tmp_path / "line.wav"
    wav.write_bytes(b"RIFF")  # the stand-in does not read it; the runner only checks that it exists
    return binary, wav


def received(binary: Path) -> dict:
    return json.loads((binary.parent / "received.json").read_text())


def test_run_rhubarb_passes_rhubarbs_arguments_and_parses_its_json(fake_rhubarb):
    binary, wav = fake_rhubarb
    assert rhubarb_available() == str(binary)
    cues = run_rhubarb(wav, "Hi there, Ferris.", extended_shapes="gx", recognizer="phonetic")
    got = received(binary)
    args = got["args"]
    dialog_file, out_file = args[args.index("-d") + 1], args[args.index("-o") + 1]
    assert args == ["-f", "json", "--extendedShapes", "GX", "-d", dialog_file, "-r", "phonetic", "-q",
                    "-o", out_file, str(wav.resolve())]
    assert got["dialog"] == "Hi there, Ferris."
    assert not Path(dialog_file).exists() and not Path(out_file).exists()  # temp files are cleaned up
    assert cues.cues == (MouthCue(0.0, 0.05, "X"), MouthCue(0.05, 0.27, "D"), MouthCue(0.27, 0.47, "G"))
    assert cues.duration == 0.47 and cues.sound_file == str(wav.resolve())
    assert cues.engine == "rhubarb" and cues.extended_shapes == "GX"
    assert cue_problems(cues) == []


def test_run_rhubarb_without_dialog_uses_defaults(fake_rhubarb):
    binary, wav = fake_rhubarb
    run_rhubarb(str(wav))
    args = received(binary)["args"]
    assert "-d" not in args
    assert args[:7] == ["-f", "json", "--extendedShapes", "GHX", "-r", "pocketSphinx", "-q"]
    assert args[-1] == str(wav.resolve())


def test_rhubarb_path_may_be_a_folder_or_on_path(fake_rhubarb, monkeypatch):
    binary, wav = fake_rhubarb
    monkeypatch.setenv("RHUBARB_PATH", str(binary.parent))
    assert rhubarb_available() == str(binary)
    monkeypatch.delenv("RHUBARB_PATH")
    monkeypatch.setenv("PATH", str(binary.parent) + os.pathsep + os.environ.get("PATH", ""))
    assert Path(rhubarb_available()) == binary
    assert run_rhubarb(wav).cues[1].shape == "D"


def test_missing_binary(tmp_path, monkeypatch):
    monkeypatch.setenv("RHUBARB_PATH", str(tmp_path / "nowhere" / "rhubarb"))
    assert rhubarb_available() is None
    with pytest.raises(LipSyncError, match=r"RHUBARB_PATH=.*nowhere.*is not an executable rhubarb binary"):
        run_rhubarb(tmp_path / "x.wav")
    monkeypatch.delenv("RHUBARB_PATH")
    monkeypatch.setenv("PATH", str(tmp_path))
    assert rhubarb_available() is None
    with pytest.raises(LipSyncError, match="not found: set RHUBARB_PATH"):
        run_rhubarb(tmp_path / "x.wav")


def test_non_zero_exit_names_binary_and_stderr(fake_rhubarb, monkeypatch):
    binary, wav = fake_rhubarb
    monkeypatch.setenv("FAKE_RHUBARB_MODE", "fail")
    with pytest.raises(LipSyncError) as caught:
        run_rhubarb(wav, "Hi.")
    message = str(caught.value)
    assert str(binary) in message and "exit code 1" in message
    assert "could not find resource file res/sphinx/cmudict-en-us.dict" in message
    assert "needs its res/ folder next to the binary" in message


def test_timeout_names_binary(fake_rhubarb, monkeypatch):
    binary, wav = fake_rhubarb
    monkeypatch.setenv("FAKE_RHUBARB_MODE", "sleep")
    began = time.monotonic()
    with pytest.raises(LipSyncError, match=r"did not finish within 1 s") as caught:
        run_rhubarb(wav, timeout=1)
    assert time.monotonic() - began < 10
    assert str(binary) in str(caught.value)


def test_no_output_and_bad_arguments(fake_rhubarb, monkeypatch):
    binary, wav = fake_rhubarb
    monkeypatch.setenv("FAKE_RHUBARB_MODE", "silent")
    with pytest.raises(LipSyncError, match="wrote no output file"):
        run_rhubarb(wav)
    with pytest.raises(LipSyncError, match="does not exist"):
        run_rhubarb(wav.with_name("missing.wav"))
    with pytest.raises(ValueError, match="G, H and X"):
        run_rhubarb(wav, extended_shapes="GQ")
    with pytest.raises(ValueError, match="pocketSphinx, phonetic"):
        run_rhubarb(wav, recognizer="sphinx")


# -- visemes ---------------------------------------------------------------------------------------------

def assert_contiguous(track: dict, duration: float):
    entries = track["visemes"]
    assert track["format"] == "animstudio-visemes-1" and track["duration"] == duration
    assert entries[0]["start"] == 0 and entries[-1]["end"] == duration
    for a, b in zip(entries, entries[1:]):
        assert a["end"] == b["start"] and a["viseme"] != b["viseme"]
    for entry in entries:
        assert entry["end"] > entry["start"] and entry["viseme"] in VISEMES
        assert set(entry["weights"]) == set(ARKIT_CHANNELS)
        assert all(0.0 <= w <= 1.0 for w in entry["weights"].values())


def test_visemes_from_shapes():
    track = viseme_track(hi())
    assert_contiguous(track, 0.47)
    assert [(e["start"], e["end"], e["viseme"]) for e in track["visemes"]] == [
        (0.0, 0.05, "sil"), (0.05, 0.27, "aa"), (0.27, 0.31, "E"), (0.31, 0.43, "SS"), (0.43, 0.47, "sil")]
    assert track["visemes"][1]["weights"]["jawOpen"] == 0.7
    assert set(track["visemes"][0]["weights"].values()) == {0.0}
    assert json.loads(to_viseme_json(hi())) == track


def test_visemes_from_phones_fill_gaps_with_silence():
    phones = [("HH", 0.05, 0.1), ("AY1", 0.1, 0.3), ("TH", 0.3, 0.35), ("IY0", 0.35, 0.4), ("sil", 0.4, 0.47)]
    track = viseme_track(hi(), phones)
    assert_contiguous(track, 0.47)
    assert [(e["start"], e["end"], e["viseme"]) for e in track["visemes"]] == [
        (0.0, 0.05, "sil"), (0.05, 0.1, "kk"), (0.1, 0.3, "aa"), (0.3, 0.35, "TH"), (0.35, 0.4, "ih"),
        (0.4, 0.47, "sil")]
    # phones that overlap, run past the end, or leave the tail uncovered
    messy = [("M", 0.0, 0.12), ("B", 0.1, 0.2), ("UW", 0.2, 0.3), ("OW", 0.45, 0.9)]
    track = viseme_track(hi(), messy)
    assert_contiguous(track, 0.47)
    assert [e["viseme"] for e in track["visemes"]] == ["PP", "ou", "sil", "oh"]
    # objects with phone/start/end (the aligner's PhoneSegment) work like tuples
    as_objects = [SimpleNamespace(phone=p, start=a, end=b) for p, a, b in messy]
    assert viseme_track(hi(), as_objects) == track


def test_viseme_tables_cover_everything():
    assert set(SHAPE_VISEME) == set("ABCDEFGHX") and set(SHAPE_VISEME.values()) <= set(VISEMES)
    assert set(VISEME_WEIGHTS) == set(VISEMES) and set(PHONE_VISEME.values()) <= set(VISEMES)
    arpabet = ("AA AE AH AO AW AY B CH D DH EH ER EY F G HH IH IY JH K L M N NG OW OY P R S SH T TH UH UW "
               "V W Y Z ZH").split()
    assert set(PHONE_VISEME) == set(arpabet)
    assert {phone_viseme(p) for p in ("sp", "SIL", "+NSN+", "")} == {"sil"}
    assert phone_viseme("ae1") == "aa"
    for viseme, weights in VISEME_WEIGHTS.items():
        assert set(weights) <= set(ARKIT_CHANNELS), viseme
        assert all(0.0 <= w <= 1.0 for w in weights.values()), viseme
        assert weights.get("mouthClose", 0) <= weights.get("jawOpen", 0), viseme  # ARKit's mouthClose rides on jawOpen
        for name, w in weights.items():  # symmetric: left and right move together
            if name.endswith("Left"):
                assert weights[name[:-4] + "Right"] == w

