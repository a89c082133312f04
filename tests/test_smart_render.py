"""Smart rendering: shots encoded once to be joined, the film assembled by copying their packets, only the frames a
transition or a fade changes encoded again; checked on the decoded film, frame by frame and by counting."""
from __future__ import annotations

import av
import numpy as np
import pytest

from animstudio.nodes.audio.clip import AudioClip
from animstudio.nodes.film.clips import Film, Transition, still_clip, video_clip
from animstudio.nodes.film.cut import render_film
from animstudio.nodes.film.splice import scan_joinable
from animstudio.nodes.film.transitions import clip_layouts, iter_film_frames

FPS, W, H = 24, 96, 64


def decode(path):
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 99.0 if mse == 0 else 10 * np.log10(255 ** 2 / mse)


def shot(tmp_path, name, seed, seconds, key_frames=(0,), crf=18, tone=None):
    """A shot's video as a per-shot graph writes it: encoded to be joined, key frames where transitions end."""
    blocks = np.random.default_rng(seed).integers(0, 255, (H // 8, W // 8, 3), dtype=np.uint8)
    picture = blocks.repeat(16, axis=0).repeat(16, axis=1)  # a picture with edges, yet one H.264 keeps well
    audio = None
    if tone is not None:
        t = np.arange(int(seconds * 48000)) / 48000
        audio = AudioClip((0.2 * np.sin(2 * np.pi * tone * t))[None].astype(np.float32), 48000)
    clip = still_clip(picture, W, H, FPS, seconds, "zoom_in", seed, label=name, audio=audio)
    path = tmp_path / f"{name}.mp4"
    render_film(Film().append(clip), path, crf=crf, key_frames=key_frames)
    return path


def film_of(paths, transitions):
    film = Film()
    for path, transition in zip(paths, transitions):
        film = film.append(video_clip(path), transition)
    return film


TRANSITIONS = [Transition("fade_black", 0.25), Transition("dissolve", 0.5), Transition("cut"),
               Transition("wipe_left", 0.25)]


@pytest.fixture
def shots(tmp_path):
    # keys where each shot's untouched frames start (after its incoming transition) and where its tail is decoded
    keys = [(0, 6, -12), (0, 12), (0, -6), (0, 6)]
    return [shot(tmp_path, f"s{i}", i, 2.0, keys[i], tone=220 * (i + 1)) for i in range(4)]


def test_shots_encoded_to_be_joined_have_their_key_frames_and_no_reordering(shots):
    video = scan_joinable(shots[0])
    assert video is not None and {0, 6, 36} <= video.key_frames and video.frame_count == 48
    assert "bframes=0" in video.settings.split() and "crf=18.0" in video.settings.split()


def test_film_frames_from_the_middle_equal_the_whole_films(shots):
    film = film_of(shots, TRANSITIONS)
    whole = list(iter_film_frames(film))
    assert len(whole) == film.frame_count == 4 * 48 - 12 - 6
    for start, stop in [(0, 10), (30, 60), (40, 41), (100, film.frame_count)]:
        part = list(iter_film_frames(film, start, stop))
        assert len(part) == stop - start
        assert all(np.array_equal(a, b) for a, b in zip(part, whole[start:stop]))


def test_smart_render_copies_untouched_frames_and_encodes_only_transitions(shots, tmp_path):
    film = film_of(shots, TRANSITIONS)
    segments = tmp_path / "segments"
    counts = render_film(film, tmp_path / "film.mp4", segments=segments)
    # the fade up (6 frames), the dissolve (12) and the wipe (6): the cut costs nothing
    assert [(l.blend_in, l.fade_in, l.held) for l in clip_layouts(film)] == [(0, 6, 12), (12, 0, 0), (0, 0, 6),
                                                                              (6, 0, 0)]
    assert counts.encoded == 6 + 12 + 6 and counts.encoded + counts.copied == film.frame_count
    frames, reference = decode(tmp_path / "film.mp4"), list(iter_film_frames(film))
    assert len(frames) == film.frame_count
    copied = [i for i in range(film.frame_count) if np.array_equal(frames[i], reference[i])]
    assert len(copied) >= counts.copied  # copied packets decode to exactly the shots' frames
    assert min(psnr(a, b) for a, b in zip(frames, reference)) > 26  # a second encode of a tiny, sharp picture
    with av.open(str(tmp_path / "film.mp4")) as container:
        assert container.streams.audio[0].sample_rate == 48000
        assert abs(float(container.duration / 1e6) - film.frame_count / FPS) < 0.05
    # the same film again: every transition stretch is already encoded, nothing is
    again = render_film(film, tmp_path / "again.mp4", segments=segments)
    assert again.encoded == 0 and again.copied == film.frame_count
    assert all(np.array_equal(a, b) for a, b in zip(decode(tmp_path / "again.mp4"), frames))


def test_one_changed_shot_re_encodes_only_its_own_transitions(shots, tmp_path):
    segments = tmp_path / "segments"
    render_film(film_of(shots, TRANSITIONS), tmp_path / "film.mp4", segments=segments)
    shots[2] = shot(tmp_path, "s2-edited", 22, 2.0, (0, -6))  # cut in, wipe out: only the wipe's 6 frames change
    counts = render_film(film_of(shots, TRANSITIONS), tmp_path / "film.mp4", segments=segments)
    assert counts.encoded == 6
    assert len(list(segments.glob("*.mp4"))) == 3  # stretches this film no longer uses are gone


def test_shots_not_encoded_to_be_joined_are_encoded_whole(tmp_path):
    plain = [tmp_path / "a.mp4", tmp_path / "b.mp4"]
    for i, path in enumerate(plain):  # an ordinary encode: B-frames, no key frames asked for
        clip = still_clip(np.full((H, W, 3), 60 * i, np.uint8), W, H, FPS, 1.0, "pan_left", i)
        render_film(Film().append(clip), path)
    counts = render_film(film_of(plain, [Transition("cut"), Transition("dissolve", 0.25)]), tmp_path / "f.mp4",
                         segments=tmp_path / "segments")
    assert counts.encoded == 48 - 6 and counts.copied == 0
    # and shots at another quality than the film's are not copied into it
    joinable = [shot(tmp_path, f"q{i}", i, 1.0, crf=10) for i in range(2)]
    counts = render_film(film_of(joinable, [Transition("cut"), Transition("cut")]), tmp_path / "g.mp4", crf=18,
                         segments=tmp_path / "segments")
    assert counts.copied == 0
