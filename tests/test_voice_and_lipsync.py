"""Voices and lip sync on real speech: espeak-ng synthesis, the built-in aligner, audio utilities,
talking-mouth frames checked by pixels, the CLI, and a voiced film decoded back."""
from __future__ import annotations

import json

import av
import numpy as np
import pytest

from animstudio.cli import main
from animstudio.nodes.audio import mixing
from animstudio.nodes.audio.clip import AudioClip, read_audio, write_wav
from animstudio.nodes.audio.text import normalize_text, split_sentences
from animstudio.nodes.audio.tts import TTSError, VoiceSettings, synthesize
from animstudio.nodes.lipsync.aligner import lipsync
from animstudio.nodes.lipsync.cues import ALL_SHAPES, BASIC_SHAPES, MouthCue, MouthCues, cue_problems
from animstudio.nodes.lipsync.engine import lipsync_audio
from animstudio.nodes.lipsync.mouths import MouthBox, builtin_mouth_set, talking_frames
from conftest import EXAMPLE

LINE = "Hold her steady! Look for the light. We have to reach the harbor before the storm breaks."


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(samples))))


@pytest.fixture(scope="module")
def speech():
    return synthesize(LINE, VoiceSettings())


@pytest.fixture(scope="module")
def speech_with_silence(speech):
    """The line with one second of silence inserted at a word gap near the middle."""
    audio = speech.audio
    gaps = [p for p in speech.phones if p.start > audio.seconds * 0.4]
    cut = int(gaps[0].start * audio.sample_rate)
    samples = np.concatenate([audio.samples[:, :cut], np.zeros((1, audio.sample_rate), np.float32),
                              audio.samples[:, cut:]], axis=1)
    return AudioClip(samples, audio.sample_rate), cut / audio.sample_rate


# ------------------------------------------------------------------------------------------ speech

def test_espeak_speaks_the_line(speech):
    words = len(LINE.split())
    assert speech.audio.sample_rate == 22050 and speech.audio.channels == 1
    assert 0.15 * words < speech.audio.seconds < 0.8 * words
    assert rms(speech.audio.samples) > 0.02
    assert len(speech.phones) > words and speech.notes == ()
    starts = [p.start for p in speech.phones]
    assert starts == sorted(starts) and speech.phones[-1].end <= speech.audio.seconds + 1e-6


def test_sentences_join_without_clicks(speech):
    samples = speech.audio.samples[0]
    assert abs(samples[0]) < 1e-3 and abs(samples[-1]) < 1e-3
    quiet = np.abs(samples) < 1e-4
    runs, longest = 0, 0
    for q in quiet:  # the pause between sentences is real silence, at least 0.15 s of it
        runs = runs + 1 if q else 0
        longest = max(longest, runs)
    assert longest >= 0.15 * speech.audio.sample_rate


def test_rate_emotion_and_language_change_the_voice():
    base = synthesize("The storm is coming.", VoiceSettings())
    fast = synthesize("The storm is coming.", VoiceSettings(rate=1.6))
    sad = synthesize("The storm is coming.", VoiceSettings(emotion="sad"))
    french = synthesize("La tempête arrive, vingt bateaux.", VoiceSettings(language="fr"))
    assert fast.audio.seconds < base.audio.seconds * 0.8
    assert sad.audio.seconds > base.audio.seconds
    assert french.audio.seconds > 1.0 and rms(french.audio.samples) > 0.02


@pytest.mark.parametrize("text,voice,message", [
    ("", VoiceSettings(), "nothing to say"),
    ("   ...  ", VoiceSettings(), "nothing to say"),
    ("hello", VoiceSettings(language="tlh"), "espeak-ng has no voice for 'tlh'"),
    ("hello", VoiceSettings(engine="festival"), "unknown TTS engine 'festival'"),
    ("hello", VoiceSettings(emotion="bored"), "unknown emotion 'bored'"),
    ("hello", VoiceSettings(engine="piper", voice="no-such-voice.onnx"), "models/tts/piper"),
])
def test_voice_errors_are_one_clear_message(text, voice, message):
    with pytest.raises(TTSError, match=message.replace(".", r"\.").replace("(", r"\(")):
        synthesize(text, voice)


def test_text_is_normalised_for_reading():
    assert normalize_text("Dr. Reyes saw 3 ships on the 2nd of May, 1999, for $4.50 & 20%.") == (
        "doctor Reyes saw three ships on the second of May, nineteen ninety-nine, for four dollars, fifty cents "
        "and twenty percent.")
    assert normalize_text("Il y a 21 bateaux.", "fr") == "Il y a vingt et un bateaux."
    long = "word, " * 80 + "end."
    pieces = split_sentences(long, max_chars=100)
    assert all(len(p) <= 101 for p in pieces) and " ".join(pieces).replace("  ", " ").startswith("word, word")


# ------------------------------------------------------------------------------------------ lip sync

def test_aligner_output_is_well_formed_rhubarb(speech_with_silence):
    audio, _ = speech_with_silence
    cues = lipsync(audio, LINE)
    assert cue_problems(cues) == []
    assert cues.engine == "animstudio-forced" and cues.duration == pytest.approx(audio.seconds)
    assert {c.shape for c in cues.cues} <= set(ALL_SHAPES)
    assert all(c.seconds >= 0.0399 for c in cues.cues[1:-1])


def test_cues_move_with_the_audio(speech_with_silence):
    audio, silence_start = speech_with_silence
    cues = lipsync(audio, LINE)
    # X throughout the inserted second of silence (its edges may belong to the neighbouring words)
    for t in np.arange(silence_start + 0.15, silence_start + 0.85, 0.01):
        assert cues.shape_at(t) == "X", t
    speaking = [c for c in cues.cues if c.shape != "X"]
    assert len({c.shape for c in speaking}) >= 5
    assert len(speaking) / (audio.seconds - 1.0) > 4  # shapes change several times a second while speaking
    assert cues.shape_at(0.3) != "X"


def test_aligner_without_text_uses_phone_recognition_and_is_deterministic(speech_with_silence):
    audio, silence_start = speech_with_silence
    first, second = lipsync(audio), lipsync(audio)
    assert first == second and first.engine == "animstudio-phonetic"
    assert cue_problems(first) == []
    assert first.shape_at(silence_start + 0.5) == "X"


def test_basic_shapes_only(speech):
    cues = lipsync(speech.audio, LINE, extended_shapes="")
    assert {c.shape for c in cues.cues} <= set(BASIC_SHAPES)
    assert cue_problems(cues) == []


def test_auto_engine_uses_the_builtin_aligner_without_rhubarb(speech, monkeypatch, tmp_path):
    monkeypatch.setenv("RHUBARB_PATH", str(tmp_path / "no-rhubarb"))
    monkeypatch.setenv("PATH", str(tmp_path))
    cues = lipsync_audio(speech.audio, LINE)
    assert cues.engine.startswith("animstudio-") and cue_problems(cues) == []


def test_rhubarb_binary_is_used_when_present(speech, monkeypatch, tmp_path):
    """A stand-in rhubarb that records its arguments and answers in Rhubarb's JSON."""
    script = tmp_path / "rhubarb"
    script.write_text(
        "#!/usr/bin/env python3\n"
        "import json, sys\n"
        "args = sys.argv[1:]\n"
        "open(%r, 'w').write(json.dumps(args))\n"
        "out = args[args.index('-o') + 1]\n"
        "open(out, 'w').write(json.dumps({'metadata': {'soundFile': args[-1], 'duration': 1.0}, 'mouthCues': [\n"
        "  {'start': 0.0, 'end': 0.4, 'value': 'X'}, {'start': 0.4, 'end': 1.0, 'value': 'D'}]}))\n"
        % str(tmp_path / "args.json"))
    script.chmod(0o755)
    monkeypatch.setenv("RHUBARB_PATH", str(script))
    cues = lipsync_audio(speech.audio, LINE, engine="auto", work_dir=tmp_path)
    args = json.loads((tmp_path / "args.json").read_text())
    assert cues.engine == "rhubarb" and [c.shape for c in cues.cues] == ["X", "D"]
    assert "-d" in args and "--extendedShapes" in args and args[-1].endswith(".wav")


# ------------------------------------------------------------------------------------------ audio utilities

def test_concatenate_fit_and_place():
    a = AudioClip(np.ones((1, 100), np.float32) * 0.5, 100)
    b = AudioClip(np.ones((2, 50), np.float32) * 0.25, 100)
    joined = mixing.concatenate([a, b], gap_seconds=0.3, lead_seconds=0.1)
    assert joined.channels == 2 and joined.frames == 10 + 100 + 30 + 50
    assert joined.samples[0, 5] == 0 and joined.samples[0, 50] == 0.5 and joined.samples[1, 120] == 0
    assert mixing.fit_length(a, 2.0).frames == 200 and mixing.fit_length(a, 0.5).frames == 50
    track = mixing.place([(0.0, a), (0.5, a)], 2.0, 100)
    assert track.samples[0, 75] == pytest.approx(1.0) and track.samples[0, 160] == 0


def test_resample_keeps_duration_and_pitch(speech):
    up = mixing.resample(speech.audio, 48000)
    assert up.sample_rate == 48000 and up.seconds == pytest.approx(speech.audio.seconds, abs=1e-3)


def test_loudness_normalisation_hits_the_target(speech):
    quiet = AudioClip(speech.audio.samples * 0.05, speech.audio.sample_rate)
    levelled = mixing.normalize_loudness(quiet, -20.0)
    assert mixing.loudness(levelled) == pytest.approx(-20.0, abs=0.5)
    assert np.abs(levelled.samples).max() <= 0.98 + 1e-6


def test_music_ducks_under_dialogue(speech_with_silence):
    dialogue, silence_start = speech_with_silence
    t = np.arange(dialogue.frames) / dialogue.sample_rate
    music = AudioClip((0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), dialogue.sample_rate)
    mixed = mixing.mix_with_ducking(dialogue, music, music_gain_db=-6, duck_db=-18)
    rate = dialogue.sample_rate
    in_silence = mixed.samples[0, int((silence_start + 0.7) * rate):int((silence_start + 0.95) * rate)]
    music_alone = 0.3 * 10 ** (-6 / 20) / np.sqrt(2)
    assert rms(in_silence) == pytest.approx(music_alone, rel=0.25)  # back up within 0.7 s of the last word
    residue = mixed.samples - dialogue.samples  # what the music contributes, sample by sample
    speaking = residue[0, int(0.3 * rate):int(0.8 * rate)]
    assert rms(speaking) < music_alone * 10 ** (-12 / 20)


# ------------------------------------------------------------------------------------------ talking mouth

def test_talking_mouth_frames_show_the_cue_covering_most_of_each_frame():
    # frame 2 (0.2-0.3 s) is 0.02 s X and 0.08 s D: it shows D, where sampling at 0.2 s would show X
    cues = MouthCues((MouthCue(0.0, 0.22, "X"), MouthCue(0.22, 0.5, "D"), MouthCue(0.5, 0.6, "A"),
                      MouthCue(0.6, 1.0, "F")), 1.0)
    mouths = builtin_mouth_set(32)
    base = np.full((60, 80, 3), 90, np.uint8)
    box = MouthBox(20, 10, 32, 32)
    frames = list(talking_frames(cues, mouths, [base], box, fps=10))
    assert len(frames) == 10
    reference = {shape: next(talking_frames(MouthCues((MouthCue(0, 1, shape),), 1.0), mouths, [base], box, 10))
                 for shape in "XDAF"}
    for n, (frame, expected) in enumerate(zip(frames, "XXDDDAFFFF")):
        assert np.array_equal(frame, reference[expected]), (n, expected)
        assert np.array_equal(frame[:, :20], base[:, :20]) and np.array_equal(frame[45:], base[45:])
    assert not np.array_equal(reference["D"], reference["A"])


def test_mouth_box_outside_the_frame_is_refused():
    cues = MouthCues((MouthCue(0.0, 1.0, "X"),), 1.0)
    with pytest.raises(ValueError, match="does not fit"):
        next(talking_frames(cues, builtin_mouth_set(16), [np.zeros((20, 20, 3), np.uint8)], MouthBox(10, 10, 16, 16), 10))


# ------------------------------------------------------------------------------------------ CLI and film

def test_cli_speak_and_lipsync(tmp_path, capsys):
    wav = tmp_path / "line.wav"
    assert main(["speak", "Look for the light.", "-o", str(wav), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["sample_rate"] == 22050
    (tmp_path / "line.txt").write_text("Look for the light.")
    assert main(["lipsync", str(wav), "-d", str(tmp_path / "line.txt")]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["metadata"]["soundFile"] == str(wav.resolve())
    assert result["mouthCues"][0]["start"] == 0 and result["mouthCues"][-1]["end"] == result["metadata"]["duration"]
    assert main(["lipsync", str(wav), "-f", "dat", "--datFrameRate", "30", "-o", str(tmp_path / "cues.dat")]) == 0
    assert (tmp_path / "cues.dat").read_text().startswith("MohoSwitch1\n")
    assert main(["lipsync", str(tmp_path / "missing.wav")]) == 2  # the user's mistake, said plainly
    assert "missing.wav: file not found" in capsys.readouterr().err


def test_example_film_is_voiced_where_characters_speak(tmp_path, capsys):
    from animstudio.translator.storyboard import load_storyboard
    from conftest import check_example_film

    assert main(["render", str(EXAMPLE), "-o", str(tmp_path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    film = tmp_path / report["film"]
    check_example_film(film, load_storyboard(EXAMPLE))
    with av.open(str(film)) as container:
        assert [s.type for s in container.streams] == ["video", "audio"]
        video_seconds = float(container.streams.video[0].duration * container.streams.video[0].time_base)
    sound = read_audio_via_av(film)
    assert sound.seconds == pytest.approx(video_seconds, abs=0.1)
    rate = sound.sample_rate
    opening = sound.samples[:, int(0.5 * rate):int(2.5 * rate)]  # the first shot: the music bed alone
    keeper = sound.samples[:, int(3.0 * rate):int(4.5 * rate)]   # the keeper speaks in the second shot
    # mastered to -14 LUFS the bed is louder and the limiter holds the voice's peaks down: measured 0.099 and
    # 1.5x (without speech the keeper's window would be the bed alone, about 1x)
    assert 0.005 < rms(opening) < 0.15 and rms(keeper) > 1.3 * rms(opening)
    cue_files = [p for p in report["outputs"] if "/lipsync/" in p and p.endswith(".json")]
    assert len(cue_files) == 2 and sorted(p for p in report["outputs"] if p.endswith(".wav")) == sorted(
        p[:-len(".json")] + ".wav" for p in cue_files)  # each line's sound beside its cues
    cues = json.loads((tmp_path / cue_files[0]).read_text())
    assert cues["mouthCues"][-1]["end"] == cues["metadata"]["duration"]


def read_audio_via_av(path):
    from animstudio.nodes.film.video_io import read_audio_track

    return read_audio_track(path)


def test_wav_round_trip(tmp_path, speech):
    path = write_wav(speech.audio, tmp_path / "x.wav")
    back = read_audio(path)
    assert back.sample_rate == 22050 and back.frames == speech.audio.frames
    assert np.abs(back.samples - speech.audio.samples).max() < 1e-3


def test_mouth_region_mask_gives_the_box():
    from animstudio.nodes.lipsync.mouths import box_from_mask

    mask = np.zeros((1, 60, 80), np.float32)
    mask[0, 12:30, 40:70] = 1.0
    assert box_from_mask(mask) == MouthBox(40, 12, 30, 18)
    with pytest.raises(ValueError, match="empty"):
        box_from_mask(np.zeros((60, 80)))
