"""Film stage: clips, camera moves and transitions, rendered to MP4 and decoded back frame by frame."""
from __future__ import annotations

import av
import numpy as np
import pytest

from animstudio.nodes.film.camera import CAMERA_MOVES, crop_window
from animstudio.nodes.film.clips import Film, Transition, still_clip
from animstudio.nodes.film.transitions import iter_film_frames
from animstudio.nodes.film.cut import render_film
from animstudio.nodes.film.video_io import probe_video, write_video


def solid(value, size=(40, 64)):
    return np.full((*size, 3), value, np.uint8)


def decode(path):
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def test_still_clip_frame_count_size_and_static_frames():
    clip = still_clip(solid(100, (90, 160)), 64, 36, 12, 1.5)
    frames = list(clip.frames())
    assert clip.frame_count == 18 == len(frames)
    assert frames[0].shape == (36, 64, 3) and np.array_equal(frames[0], frames[-1])


@pytest.mark.parametrize("move", [m for m in CAMERA_MOVES if m != "static"])
def test_camera_moves_change_the_picture_and_stay_inside_it(move):
    picture = np.random.default_rng(0).integers(0, 255, (90, 160, 3), dtype=np.uint8)
    frames = list(still_clip(picture, 64, 36, 12, 1.0, move).frames())
    assert not np.array_equal(frames[0], frames[-1])
    box = (0.0, 0.0, 160.0, 90.0)
    for t in (0.0, 0.3, 0.7, 1.0):
        left, top, right, bottom = crop_window(move, t, box, seed=3, frame_index=int(t * 10))
        assert left >= -1e-6 and top >= -1e-6 and right <= 160 + 1e-6 and bottom <= 90 + 1e-6


def test_zoom_in_ends_tighter_than_it_starts():
    box = (0.0, 0.0, 160.0, 90.0)
    start, end = crop_window("zoom_in", 0.0, box), crop_window("zoom_in", 1.0, box)
    assert (end[2] - end[0]) < (start[2] - start[0])


def test_dissolve_overlaps_and_blends():
    film = Film().append(still_clip(solid(0), 64, 40, 10, 1.0)).append(
        still_clip(solid(200), 64, 40, 10, 1.0), Transition("dissolve", 0.4))
    frames = list(iter_film_frames(film))
    assert film.frame_count == len(frames) == 20 - 4
    means = [f.mean() for f in frames]
    assert means[5] == 0 and means[-1] == 200
    blended = means[6:10]
    assert all(0 < m < 200 for m in blended) and blended == sorted(blended)


def test_fade_black_into_first_shot_and_wipe():
    film = Film().append(still_clip(solid(200), 64, 40, 10, 1.0), Transition("fade_black", 0.5)).append(
        still_clip(solid(50), 64, 40, 10, 1.0), Transition("wipe_right", 0.3))
    frames = list(iter_film_frames(film))
    assert frames[0].mean() < frames[4].mean() < 200 and frames[6].mean() == 200
    wipe = frames[7]  # first overlap frame: the left part already shows the new shot
    assert wipe[:, 0].mean() == 50 and wipe[:, -1].mean() == 200


def test_fade_black_between_shots_dips_to_black():
    film = Film().append(still_clip(solid(200), 64, 40, 10, 1.0)).append(
        still_clip(solid(200), 64, 40, 10, 1.0), Transition("fade_black", 0.4))
    means = [f.mean() for f in iter_film_frames(film)]
    assert len(means) == 20 and min(means) == 0 and means[0] == 200 and means[-1] == 200


def test_mismatched_clip_size_is_refused():
    with pytest.raises(ValueError, match="64x40"):
        Film().append(still_clip(solid(0), 64, 40, 10, 1.0)).append(still_clip(solid(0), 32, 20, 10, 1.0))


def test_render_film_writes_a_decodable_mp4(tmp_path):
    picture = np.random.default_rng(1).integers(0, 255, (90, 160, 3), dtype=np.uint8)
    film = Film().append(still_clip(picture, 64, 36, 12, 1.0, "pan_left")).append(
        still_clip(solid(30, (90, 160)), 64, 36, 12, 0.5), Transition("dissolve", 0.25))
    path = tmp_path / "film.mp4"
    render_film(film, path)
    info = probe_video(path)
    frames = decode(path)
    assert (info.width, info.height, info.fps, info.codec) == (64, 36, 12.0, "h264")
    assert len(frames) == film.frame_count == 12 + 6 - 3
    assert abs(info.seconds - 15 / 12) < 1e-6
    assert abs(float(frames[-1].mean()) - 30) < 4  # lossy, but the last shot is the flat grey one
    assert not (tmp_path / "film.mp4.partial").exists()


def test_write_video_streams_a_generator_and_refuses_odd_sizes(tmp_path):
    produced = []

    def frames():
        for i in range(30):
            produced.append(i)
            yield solid(i * 8)

    info = write_video(frames(), tmp_path / "a.mp4", 10, 64, 40)
    assert info.frame_count == 30 and len(decode(tmp_path / "a.mp4")) == 30
    with pytest.raises(ValueError, match="even"):
        write_video(iter([solid(0, (41, 64))]), tmp_path / "b.mp4", 10, 64, 41)
    assert not (tmp_path / "b.mp4").exists()


def test_soundtrack_streams_in_chunks_with_the_same_result_as_at_once():
    from animstudio.nodes.audio.clip import AudioClip
    from animstudio.nodes.audio.mixing import mix_with_ducking
    from animstudio.nodes.film.soundtrack import MUSIC_FADE_SECONDS, Soundtrack

    rate = 48000  # the soundtrack's own rate (sources at other rates are resampled to it)
    t = np.arange(rate) / rate
    voice = AudioClip((0.3 * np.sin(2 * np.pi * 300 * t)).astype(np.float32), rate)
    film = Film().append(still_clip(solid(0), 64, 40, 10, 1.5, audio=voice)).append(
        still_clip(solid(0), 64, 40, 10, 2.0, audio=voice), Transition("dissolve", 0.5))
    music = AudioClip((0.2 * np.sin(2 * np.pi * 110 * np.arange(4 * rate) / rate)).astype(np.float32), rate)
    whole = Soundtrack(film, music, -6, -12).read_all()
    track = Soundtrack(film, music, -6, -12)
    pieces = np.concatenate([track.read(n) for n in [1, 799, 1234, 5000, track.frames]], axis=1)[:, :whole.frames]
    assert whole.frames == int(round(film.seconds * rate)) == 3 * rate and whole.channels == 2
    assert np.allclose(pieces, whole.samples, atol=1e-6)
    # the second clip's voice starts where the clip starts in the cut (1.5 s - 0.5 s overlap = 1.0 s)
    dialogue = Soundtrack(film).read_all().samples[0]
    assert np.abs(dialogue[int(0.95 * rate):int(0.99 * rate)]).max() == pytest.approx(0.3, abs=0.01)
    assert np.abs(dialogue[int(2.0 * rate) + 10:]).max() < 1e-6
    # ducking is the same as the one-shot mixer's, before soft clipping (levels here stay below the knee)
    reference = mix_with_ducking(AudioClip(dialogue, rate), music, -6, -12)
    end = whole.frames - int(MUSIC_FADE_SECONDS * rate)  # the bed goes on past the film: it fades out with it
    assert np.allclose(whole.samples[:, :end], reference.samples[:, :end], atol=1e-5)
    faded = Soundtrack(film, music, -6, -12).read_all().samples - Soundtrack(film).read_all().samples
    assert np.abs(faded[:, int(0.5 * rate):int(0.9 * rate)]).max() > 0.02  # the (ducked) bed before the fade
    assert np.abs(faded[:, -int(0.02 * rate):]).max() < 0.002  # and at the film's end: faded, not cut


def test_camera_move_node_over_a_still_and_a_sequence():
    from animstudio.nodes.film.film_nodes import AnimStudioCameraMove

    picture = np.random.default_rng(3).integers(0, 255, (1, 90, 160, 3)).astype(np.float32) / 255
    (frames,) = AnimStudioCameraMove().move(picture, "pan_right", 1.0, 10, 64, 36, 0)
    frames = np.asarray(frames)
    assert frames.shape == (10, 36, 64, 3)
    assert not np.allclose(frames[0], frames[-1])
    sequence = np.stack([np.full((90, 160, 3), v, np.float32) for v in (0.2, 0.4, 0.6)])
    (held,) = AnimStudioCameraMove().move(sequence, "static", 0.5, 10, 64, 36, 0)
    means = [round(float(np.asarray(f).mean()), 1) for f in held]
    assert means == [0.2, 0.4, 0.6, 0.6, 0.6]


def test_video_is_tagged_bt709_and_keeps_its_colours(tmp_path):
    import av

    from animstudio.nodes.film.video_io import write_video

    picture = np.zeros((64, 64, 3), np.uint8)
    picture[:32], picture[32:] = (255, 0, 0), (0, 160, 60)
    write_video(iter([picture] * 3), tmp_path / "c.mp4", 12, 64, 64)
    with av.open(str(tmp_path / "c.mp4")) as container:
        context = container.streams.video[0].codec_context
        assert (context.colorspace, context.color_primaries, context.color_trc, context.color_range) == (1, 1, 1, 1)
        frame = next(container.decode(video=0)).to_ndarray(format="rgb24").astype(int)
    assert np.abs(frame[10, 10] - (255, 0, 0)).max() <= 3 and np.abs(frame[50, 10] - (0, 160, 60)).max() <= 4


def test_frames_are_made_ahead_in_order_with_errors_and_context_carried():
    """write_video draws frames in a thread ahead of the encoder: in order, a bounded few ahead, the caller's
    context (the embedded engine's folders) seen there, an error raised at the consumer, and an early stop stopping
    the producer."""
    import contextvars
    import threading

    from animstudio.nodes.film.video_io import PREFETCH_FRAMES, prefetched

    made = []
    where = contextvars.ContextVar("where", default="nowhere")
    where.set("here")

    def frames(n):
        for i in range(n):
            made.append((i, where.get(), threading.current_thread().name))
            yield i

    assert list(prefetched(frames(20))) == list(range(20))
    assert {w for _, w, _ in made} == {"here"} and {t for _, _, t in made} == {"animstudio-frames"}
    made.clear()
    stream = prefetched(frames(1000))
    assert next(stream) == 0
    stream.close()  # the consumer stops: the producer stops too, a few frames ahead at most
    assert len(made) <= PREFETCH_FRAMES + 2

    def failing():
        yield 1
        raise ValueError("frame 1 is 4x4, expected 8x8")

    with pytest.raises(ValueError, match="expected 8x8"):
        list(prefetched(failing()))
