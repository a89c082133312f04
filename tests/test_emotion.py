"""Emotion that moves things: a line's emotion sets its voice's rate, pitch and energy, its speaker's mouth openness and
the shot's camera preset (where the shot's move is left out), all overridable in the storyboard. The same line said
angrily and sadly, rendered through the animatic path (espeak voices, a supplied panel, drawn mouths), is measured on
its decoded sound, on the film's frames and on the render's timeline."""
from __future__ import annotations

import json

import av
import numpy as np
import opentimelineio as otio
import pytest
from PIL import Image

from animstudio.cli import main
from animstudio.common.emotion import DEFAULT_EMOTIONS
from animstudio.common.errors import StoryboardError
from animstudio.nodes.audio.clip import read_audio
from animstudio.nodes.audio.tts import VoiceSettings, line_prosody, synthesize
from animstudio.nodes.lipsync.cues import MouthCue, MouthCues, frame_shapes
from animstudio.nodes.lipsync.formats import parse_rhubarb_json
from animstudio.translator.compile import compile_storyboard
from animstudio.translator.storyboard import load_storyboard, parse_storyboard
from animstudio.translator.timeline import shot_cut
from conftest import write_storyboard

LINE = "Nobody is coming back for us tonight."
BOX = {"x": 24, "y": 40, "width": 56, "height": 40}  # the keeper's mouth on the panel
BLOCK = (slice(8, 24), slice(92, 116))  # a dark blue block on it, clear of the mouth


def write_flat_panel(path, size=(128, 96)):
    """A pale panel (the drawn mouth is the only dark thing near the box) with a dark block far from the mouth, so
    camera moves show in the frames."""
    image = np.full((size[1], size[0], 3), 215, np.uint8)
    image[BLOCK] = (30, 60, 160)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path)


def shot(shot_id: str, emotion: str, move: str | None = None) -> dict:
    out = {"id": shot_id, "description": "the keeper speaks", "characters": ["keeper"], "keyframe": "panel.png",
           "duration": "fit_to_dialogue", "mouths": {"keeper": BOX},
           "dialogue": [{"character": "keeper", "text": LINE, "emotion": emotion}]}
    if move is not None:
        out["camera"] = {"move": move}
    return out


def board_data(shots: list[dict], **project) -> dict:
    return {"version": 1, "project": {"title": "Moods", "width": 128, "height": 96, "fps": 12,
                                      "subtitles": {"burn": False}, **project},  # no caption over the mouth
            "characters": {"keeper": {"name": "Ada", "description": "a lighthouse keeper",
                                      "voice": {"engine": "espeak", "name": "en-us"}}},
            "shots": shots}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """Four shots of one line: sad and angry with their moves left out (the presets), then sad and angry held
    still by an explicit ``camera.move: static`` (the mouths measured there, where the camera does not move)."""
    story = tmp_path_factory.mktemp("emotion") / "story"
    write_flat_panel(story / "panel.png")
    path = write_storyboard(story, board_data([shot("sad", "sad"), shot("angry", "angry"),
                                              shot("sad-still", "sad", "static"),
                                              shot("angry-still", "angry", "static")]))
    out = story.parent / "out"
    assert main(["render", str(path), "-o", str(out), "-q"]) == 0
    return load_storyboard(path), out, json.loads((out / "render-report.json").read_text())


def line_sound(out, shot_id: str):
    """The line's own sound as the render saved it beside its mouth cues."""
    (wav,) = sorted((out / "outputs" / "animstudio" / "lipsync").glob(f"{shot_id}-1-keeper_*.wav"))
    return read_audio(wav)


def voiced_pitch(sound) -> float:
    """The median fundamental frequency (Hz) over the voiced 40 ms windows, by autocorrelation (60..400 Hz)."""
    samples, rate = sound.mono().astype(np.float64), sound.sample_rate
    size, found = int(0.04 * rate), []
    lo, hi = int(rate / 400), int(rate / 60)
    loud = 0.3 * np.sqrt(np.mean(samples ** 2))
    for start in range(0, len(samples) - size, size // 2):
        window = samples[start:start + size] - samples[start:start + size].mean()
        if np.sqrt(np.mean(window ** 2)) < loud:
            continue
        corr = np.correlate(window, window, "full")[size - 1:]
        lag = lo + int(np.argmax(corr[lo:hi]))
        if corr[lag] > 0.5 * corr[0]:
            found.append(rate / lag)
    return float(np.median(found))


def rms(sound) -> float:
    samples = sound.mono()
    voiced = samples[np.abs(samples) > 0.01]
    return float(np.sqrt(np.mean(voiced ** 2)))


def shot_frames(out, shot_id: str) -> list[np.ndarray]:
    with av.open(str(out / "shots" / f"{shot_id}.mp4")) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def mouth_heights(frames: list[np.ndarray]) -> list[int]:
    """Each frame's drawn mouth height in pixels: the rows around the mouth box holding dark (mouth) pixels."""
    x0, x1 = BOX["x"], BOX["x"] + BOX["width"]
    y0, y1 = 30, 96
    heights = []
    for frame in frames:
        dark = frame[y0:y1, x0:x1].astype(int).sum(axis=2) < 330
        rows = np.nonzero(dark.sum(axis=1) >= 2)[0]
        heights.append(int(rows.max() - rows.min() + 1) if len(rows) else 0)
    return heights


def test_an_angry_line_is_faster_higher_and_louder_than_a_sad_one(rendered):
    _board, out, _report = rendered
    sad, angry = line_sound(out, "sad"), line_sound(out, "angry")
    # espeak at 1.1x and 0.85x the voice's rate: the same words take about 0.77 times as long (measured 0.78)
    assert 0.70 < angry.seconds / sad.seconds < 0.85, (angry.seconds, sad.seconds)
    # +1 and -2 semitones on the voice's pitch: the angry line's voice is measurably higher (measured 1.12x)
    assert voiced_pitch(angry) > 1.08 * voiced_pitch(sad), (voiced_pitch(angry), voiced_pitch(sad))
    # energy 1.3 against 0.8 (measured 1.5x on the voiced samples)
    assert rms(angry) > 1.3 * rms(sad), (rms(angry), rms(sad))
    # the explicit move changes nothing of the voice: the still shots' lines are the same sounds
    assert line_sound(out, "sad-still").seconds == pytest.approx(sad.seconds, abs=1e-3)


def frame_shapes_of(out, shot_id: str, count: int) -> list[str]:
    """The mouth shape of each of the shot's frames, from the line's saved cues (the line starts with the shot; the
    mouth rests after it)."""
    (saved,) = sorted((out / "outputs" / "animstudio" / "lipsync").glob(f"{shot_id}-1-keeper_*.json"))
    line = parse_rhubarb_json(saved.read_text())
    rest = MouthCue(line.duration, count / 12, "X")
    return frame_shapes(MouthCues(line.cues + (rest,), count / 12), 12, count)


def test_the_angry_mouth_opens_wider_than_the_sad_one(rendered):
    """Measured on the still shots' frames, shape by shape: an open shape is drawn 1.3 times as tall as it is in the
    drawn set when angry, 0.7 times when sad; a closed or resting mouth is drawn alike."""
    _board, out, _report = rendered
    heights = {}
    for mood in ("sad", "angry"):
        frames = shot_frames(out, f"{mood}-still")
        by_shape: dict[str, list[int]] = {}
        for shape, height in zip(frame_shapes_of(out, f"{mood}-still", len(frames)), mouth_heights(frames)):
            by_shape.setdefault(shape, []).append(height)
        heights[mood] = {shape: float(np.median(hs)) for shape, hs in by_shape.items()}
    opened = sorted(set(heights["sad"]) & set(heights["angry"]) - {"A", "X"})
    assert len(opened) >= 3, heights  # the same words: most open shapes are said in both
    ratios = {shape: heights["angry"][shape] / heights["sad"][shape] for shape in opened}
    # 1.3 / 0.7 = 1.86 on the open height (measured 2.0 to 2.5: a few pixels' mouths, counted in whole rows)
    assert all(1.5 < r < 2.8 for r in ratios.values()) and 1.6 < np.mean(list(ratios.values())) < 2.5, (
        ratios, heights)
    resting = set(heights["sad"]) & set(heights["angry"]) & {"A", "X"}
    assert resting and all(heights["angry"][s] == pytest.approx(heights["sad"][s], abs=1) for s in resting), heights


def test_each_shot_picks_its_emotions_preset_unless_its_move_is_written(rendered):
    board, out, report = rendered
    cut = shot_cut(board, out)
    video = next(t for t in cut.tracks if t.kind == otio.schema.TrackKind.Video)
    cameras = {c.name: dict(c.metadata["animstudio"]["camera"]) for c in video.find_clips()}
    assert cameras == {
        "sad": {"move": "dolly_in", "strength": 0.5, "source": "emotion:sad"},
        "angry": {"move": "shake", "strength": 1.0, "source": "emotion:angry"},
        "sad-still": {"move": "static", "strength": 1.0, "source": "storyboard"},
        "angry-still": {"move": "static", "strength": 1.0, "source": "storyboard"}}
    # each line's marker carries its emotion and the delivery it was spoken with
    deliveries = {c.name: dict(m.metadata["animstudio"]) for c in video.find_clips() for m in c.markers}
    assert deliveries["sad"]["emotion"] == "sad" and deliveries["angry"]["emotion"] == "angry"
    assert dict(deliveries["sad"]["prosody"]) == {"rate": 0.85, "pitch": -2.0, "energy": 0.8}
    assert dict(deliveries["angry"]["prosody"]) == {"rate": 1.1, "pitch": 1.0, "energy": 1.3}
    assert (deliveries["sad"]["mouth_openness"], deliveries["angry"]["mouth_openness"]) == (0.7, 1.3)
    # the render report says the same
    entries = {e["shot"]: e for e in report["timeline"]}
    assert entries["sad"]["camera"]["move"] == "dolly_in" and entries["angry"]["camera"]["move"] == "shake"
    assert entries["angry"]["lines"][0]["prosody"]["rate"] == 1.1
    assert entries["sad"]["lines"][0]["mouth_openness"] == 0.7
    # and the frames move so: the sad shot pushes in (its block grows), the angry one shakes, the still ones hold
    sad, angry, still = shot_frames(out, "sad"), shot_frames(out, "angry"), shot_frames(out, "sad-still")
    assert block(sad[-1])[0] > 1.15 * block(sad[0])[0], (block(sad[0]), block(sad[-1]))
    jitter = [np.hypot(*np.subtract(block(a)[1], block(b)[1])) for a, b in zip(angry, angry[1:])]
    assert np.median(jitter) > 1.0, jitter
    assert max(np.hypot(*np.subtract(block(f)[1], block(still[0])[1])) for f in still) < 0.3


def block(frame: np.ndarray) -> tuple[int, tuple[float, float]]:
    """The dark blue block on a frame: its area in pixels and its centre."""
    ys, xs = np.nonzero((frame[..., 2] > 110) & (frame[..., 0] < 100))
    return len(xs), (float(xs.mean()), float(ys.mean()))


def test_project_emotions_and_line_overrides_change_the_numbers(tmp_path):
    write_flat_panel(tmp_path / "panel.png")
    sad_line = shot("a", "sad")
    own = shot("b", "angry")
    own["dialogue"][0].update({"prosody": {"rate": 0.9, "energy": 0.5}, "mouth_openness": 2.0})
    data = board_data([sad_line, own], emotions={
        "sad": {"rate": 0.6, "pitch": -4, "mouth_openness": 0.4, "camera": {"move": "zoom_out", "strength": 0.3}}})
    graph = compile_storyboard(parse_storyboard(data, tmp_path)).graphs[0].graph
    tts = graph["a:line-1:tts"]["inputs"]
    assert (tts["rate"], tts["pitch"], tts["energy"], tts["emotion_prosody"]) == (0.6, -4.0, 0.8, False)
    assert graph["a:line-1:line"]["inputs"]["mouth_openness"] == 0.4
    assert (graph["a:clip"]["inputs"]["camera_move"], graph["a:clip"]["inputs"]["move_strength"]) == ("zoom_out", 0.3)
    # the line's own prosody and openness over its emotion's (the angry pitch and preset stay)
    tts = graph["b:line-1:tts"]["inputs"]
    assert (tts["rate"], tts["pitch"], tts["energy"]) == (0.9, 1.0, 0.5)
    assert graph["b:line-1:line"]["inputs"]["mouth_openness"] == 2.0
    assert graph["b:clip"]["inputs"]["camera_move"] == "shake" and "move_strength" not in graph["b:clip"]["inputs"]
    # the numbers are what the voice speaks: the project's sad is slower than the default sad
    spoken = synthesize(LINE, VoiceSettings(voice="en-us", rate=0.6, pitch=-4.0, emotion="sad", energy=0.8,
                                            emotion_prosody=False))
    default = synthesize(LINE, VoiceSettings(voice="en-us", emotion="sad"))
    assert spoken.audio.seconds > 1.25 * default.audio.seconds
    # a move written in the shot wins over the preset, whatever it is
    data["shots"].append(shot("c", "sad", "pan_left"))
    board = parse_storyboard(data, tmp_path)
    clip = compile_storyboard(board).graphs[0].graph["c:clip"]["inputs"]
    assert clip["camera_move"] == "pan_left" and "move_strength" not in clip
    # a shot fitted to its dialogue is sized, before any voice speaks, at the line's pace: the project's sad line (rate
    # 0.6) is estimated 1.5 times as long as the same words at the angry line's own 0.9 (the 0.5 s tail apart)
    said = {k: board.shot_seconds(board.shot(k)) - board.project.timing.tail for k in ("a", "b")}
    assert said["a"] / said["b"] == pytest.approx(0.9 / 0.6, rel=0.01) and said["b"] > 3
    # a character's own voice rate multiplies with the emotion's (held to what the voice node takes)
    data["characters"]["keeper"]["voice"]["rate"] = 4.0
    graph = compile_storyboard(parse_storyboard(data, tmp_path)).graphs[0].graph
    assert graph["a:line-1:tts"]["inputs"]["rate"] == 2.4 and graph["b:line-1:tts"]["inputs"]["rate"] == 3.6


def test_the_defaults_are_one_table_the_voice_node_applies_itself():
    """Spoken outside a storyboard (the TTS node with its emotion's prosody on), a line gets the table's numbers."""
    sad = DEFAULT_EMOTIONS["sad"]
    by_hand = VoiceSettings(voice="en-gb", emotion="sad", rate=1.2 * sad.rate, pitch=1.0 + sad.pitch,
                            energy=sad.energy, emotion_prosody=False)
    assert line_prosody(VoiceSettings(voice="en-gb", emotion="sad", rate=1.2, pitch=1.0)) == by_hand
    assert line_prosody(by_hand) == by_hand  # the line's own numbers are spoken as they are
    # espeak-ng's length varies by a few samples from call to call: the same speech to a millisecond
    assert synthesize(LINE, VoiceSettings(voice="en-gb", emotion="sad", rate=1.2, pitch=1.0)).audio.seconds == \
        pytest.approx(synthesize(LINE, by_hand).audio.seconds, abs=0.002)


@pytest.mark.parametrize("change,where,message", [
    (lambda d: d["project"].update(emotions={"sad": {"rate": 0}}), "$.project.emotions.sad.rate", "must be > 0"),
    (lambda d: d["project"].update(emotions={"angy": {"rate": 1.2}}), "$.project.emotions",
     "unknown property 'angy' (did you mean 'angry'?)"),
    (lambda d: d["project"].update(emotions={"shout": {"camera": {"move": "quake"}}}),
     "$.project.emotions.shout.camera.move", "expected one of static"),
    (lambda d: d["project"].update(emotions={"sad": {"mouth_openness": 9}}), "$.project.emotions.sad.mouth_openness",
     "must be <= 3"),
    (lambda d: d["shots"][0]["dialogue"][0].update(prosody={"pitch": 20}), "$.shots[0].dialogue[0].prosody.pitch",
     "must be <= 12"),
    (lambda d: d["shots"][0]["dialogue"][0].update(prosody={"speed": 2}), "$.shots[0].dialogue[0].prosody",
     "unknown property 'speed'"),
])
def test_a_bad_override_is_one_clear_message_at_its_path(tmp_path, change, where, message):
    write_flat_panel(tmp_path / "panel.png")
    data = board_data([shot("a", "sad")])
    change(data)
    with pytest.raises(StoryboardError) as caught:
        parse_storyboard(data, tmp_path)
    assert [(p.where, message in p.message) for p in caught.value.problems] == [(where, True)], caught.value.problems


def test_a_presets_strength_scales_the_moves_travel():
    from animstudio.nodes.film.camera import crop_window

    box = (0.0, 0.0, 160.0, 90.0)
    width = lambda w: w[2] - w[0]  # noqa: E731
    assert width(crop_window("dolly_in", 1.0, box)) == pytest.approx(160 / 1.25)
    assert width(crop_window("dolly_in", 1.0, box, strength=0.5)) == pytest.approx(160 / 1.125)  # a gentle push-in
    assert width(crop_window("dolly_in", 0.0, box, strength=0.5)) == pytest.approx(160)
    centre = lambda w: abs((w[0] + w[2]) / 2 - 80)  # noqa: E731  (how far the shake moved the frame)
    full, subtle = ([centre(crop_window("shake", 0.5, box, 7, i, strength)) for i in range(20)]
                    for strength in (1, 0.35))
    assert max(full) > 2 and max(subtle) < 0.5 * max(full)  # a subtle shake: well under the full one's reach
    for t in (0.0, 0.5, 1.0):  # past its full travel a pan stays inside the picture
        x0, y0, x1, y1 = crop_window("pan_left", t, box, strength=2.0)
        assert x0 >= -1e-9 and x1 <= 160 + 1e-9 and y0 >= -1e-9 and y1 <= 90 + 1e-9
