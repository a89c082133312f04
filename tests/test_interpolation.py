"""Frame interpolation: held-out frames of an analytically rendered moving scene are reconstructed, cuts are
never blended, the stream is lazy, the nodes work on numpy IMAGEs, and RIFE weights load (or fail clearly).

The scene: a smooth random texture (a sum of sinusoids with a natural-image-like falloff) panning by a
sub-pixel amount per frame, with a textured disc moving another way in front of it (occlusion at its
edge). Every frame is rendered from the formula, so the true in-between frames are known exactly.
"""
from __future__ import annotations

import itertools
import re
import sys
import tracemalloc
import types

import numpy as np
import pytest

from animstudio import nodes
from animstudio.nodes import boundary
from animstudio.nodes.film.clips import Clip
from animstudio.nodes.film.interpolation import (DEFAULT_SCENE_THRESHOLD, fill_between, interpolate_clip,
                                                 interpolate_frames, scene_change_score)
from animstudio.nodes.film.interpolation_nodes import AnimStudioInterpolateClip, AnimStudioInterpolateFrames

# Measured with OpenCV 5.0 (DIS, MEDIUM preset) on the scene below, seeds 0-5: every reconstructed frame
# 40.2-43.4 dB; the plain cross-fade 32.6-34.4 dB. The bars leave ~2 dB for other OpenCV builds.
MIN_PSNR_DB = 38.0
MIN_GAIN_OVER_BLEND_DB = 5.0


def _texture(rng, n=60, fmin=0.004, fmax=0.15):
    f = np.exp(rng.uniform(np.log(fmin), np.log(fmax), n))
    angle = rng.uniform(0, 2 * np.pi, n)
    fx, fy, phase = f * np.cos(angle), f * np.sin(angle), rng.uniform(0, 2 * np.pi, n)
    amp = rng.uniform(0.2, 1.0, (n, 3)) * (f[:, None] / fmin) ** -0.35
    amp /= np.sqrt((amp ** 2).sum(0) / 2)
    return lambda x, y: np.sin(x[..., None] * fx * 2 * np.pi + y[..., None] * fy * 2 * np.pi + phase) @ amp


def render(k: float, seed: int = 0, h: int = 144, w: int = 192, pan=(1.3, 0.4), disc=(-2.1, 1.7)) -> np.ndarray:
    """Frame ``k``: background panning by ``pan`` px/frame, a disc (radius 28) moving by ``disc`` px/frame."""
    rng = np.random.default_rng(seed)
    background, surface = _texture(rng), _texture(rng)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    image = 0.5 + 0.18 * background(x - pan[0] * k, y - pan[1] * k)
    cx, cy = w * 0.6 + disc[0] * k, h * 0.4 + disc[1] * k
    alpha = np.clip(28.5 - np.hypot(x - cx, y - cy), 0, 1)[..., None]  # antialiased edge
    image = image * (1 - alpha) + (0.5 + 0.18 * surface(x - cx, y - cy) + [0.15, -0.1, 0.05]) * alpha
    return (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def blend(a, b):
    return ((a.astype(np.uint16) + b + 1) // 2).astype(np.uint8)


def as_numpy(image) -> np.ndarray:
    return image.numpy() if hasattr(image, "numpy") else np.asarray(image)


# --- the flow engine -------------------------------------------------------------------------------------

def test_flow_reconstructs_held_out_frames_better_than_blending():
    truth = [render(k) for k in range(9)]
    out = list(interpolate_frames(iter(truth[::2]), 2, engine="flow"))
    assert len(out) == 9
    for i in range(0, 9, 2):
        assert np.array_equal(out[i], truth[i])  # source frames pass through untouched
    for i in range(1, 9, 2):
        made, blended = psnr(out[i], truth[i]), psnr(blend(truth[i - 1], truth[i + 1]), truth[i])
        assert made >= MIN_PSNR_DB, f"frame {i}: {made:.2f} dB"
        assert made >= blended + MIN_GAIN_OVER_BLEND_DB, f"frame {i}: flow {made:.2f} dB, blend {blended:.2f} dB"


def test_factor_three_counts_keeps_sources_and_fill_between_times():
    sources = [render(k) for k in range(0, 9, 3)]
    out = list(interpolate_frames(iter(sources), 3))
    assert len(out) == (len(sources) - 1) * 3 + 1
    assert all(np.array_equal(out[3 * i], s) for i, s in enumerate(sources))
    assert all(f.shape == (144, 192, 3) and f.dtype == np.uint8 for f in out)
    # the frames at t = 1/3 and 2/3 land on the rendered frames 1 and 2
    assert psnr(out[1], render(1)) >= MIN_PSNR_DB - 2 and psnr(out[2], render(2)) >= MIN_PSNR_DB - 2
    middle = fill_between(render(0), render(2), 1)
    assert len(middle) == 1 and psnr(middle[0], render(1)) >= MIN_PSNR_DB
    assert fill_between(render(0), render(2), 0) == []
    assert len(fill_between(render(0), render(4), 3)) == 3


def test_hard_cut_is_never_blended():
    shot_a = [render(k, seed=1) for k in range(0, 6, 2)]
    shot_b = [render(k, seed=4, pan=(-1.0, 0.8)) for k in range(0, 6, 2)]
    assert scene_change_score(shot_a[-1], shot_b[0]) > DEFAULT_SCENE_THRESHOLD
    assert max(scene_change_score(a, b) for a, b in zip(shot_a, shot_a[1:])) < 0.15  # motion is not a cut
    out = list(interpolate_frames(iter(shot_a + shot_b), 3))
    assert len(out) == 5 * 3 + 1
    cut = 2 * 3  # index of the last frame of shot A
    assert np.array_equal(out[cut], shot_a[-1]) and np.array_equal(out[cut + 3], shot_b[0])
    for frame in out[cut + 1: cut + 3]:  # the in-betweens across the cut repeat the earlier frame exactly
        assert np.array_equal(frame, shot_a[-1])
    for frame in out[1:3] + out[cut + 4: cut + 6]:  # within a shot they are new frames
        assert not any(np.array_equal(frame, s) for s in shot_a + shot_b)
    # with detection off, the cut is interpolated like motion
    unguarded = list(interpolate_frames(iter(shot_a + shot_b), 3, scene_threshold=1.0))
    assert not np.array_equal(unguarded[cut + 1], shot_a[-1])


def test_stream_is_pulled_lazily():
    pulled = []

    def endless():
        for i in itertools.count():
            pulled.append(i)
            yield render(i % 4)

    stream = interpolate_frames(endless(), 2)
    taken = list(itertools.islice(stream, 7))  # sources 0..3 and their in-betweens
    assert len(taken) == 7
    assert len(pulled) <= 5  # one frame ahead of what was yielded, never the whole (endless) source


def test_memory_does_not_grow_with_clip_length():
    base = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)

    def shots(n):
        for i in range(n):
            yield np.roll(base, i, axis=1)

    def peak(n):
        tracemalloc.start()
        try:
            count = sum(1 for _ in interpolate_frames(shots(n), 2))
            return count, tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    short_count, short_peak = peak(20)
    long_count, long_peak = peak(200)
    assert (short_count, long_count) == (39, 399)
    assert long_peak < 1.5 * short_peak + 200_000, (short_peak, long_peak)
    assert long_peak < long_count * base.nbytes / 2, long_peak  # well under the frames that streamed through


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="factor"):
        list(interpolate_frames(iter([render(0)]), 0))
    with pytest.raises(ValueError, match="one size"):
        list(interpolate_frames(iter([render(0), render(1, h=72, w=96)]), 2))
    with pytest.raises(ValueError, match="engine"):
        list(interpolate_frames(iter([render(0), render(1)]), 2, engine="magic"))
    assert list(interpolate_frames(iter([]), 2)) == []
    single = render(0)
    assert [f is single for f in interpolate_frames(iter([single]), 4)] == [True]
    tiny = [np.full((4, 4, 3), v, np.uint8) for v in (0, 90)]  # too small for optical flow: blended
    assert [int(f[0, 0, 0]) for f in interpolate_frames(iter(tiny), 3, scene_threshold=1.0)] == [0, 30, 60, 90]


# --- clips -----------------------------------------------------------------------------------------------

def test_interpolate_clip_is_lazy_and_keeps_the_clip_length():
    calls = []

    def make():
        calls.append(1)
        return iter([render(k) for k in range(0, 8, 2)])

    clip = Clip(192, 144, 12, 4, make, label="shot 1")
    smooth = interpolate_clip(clip, 2)
    assert calls == []  # nothing is made until the clip is played
    assert (smooth.fps, smooth.frame_count, smooth.seconds, smooth.label) == (24, 8, clip.seconds, "shot 1")
    frames = list(smooth.frames())
    assert len(calls) == 1 and len(frames) == 8
    assert psnr(frames[1], render(1)) >= MIN_PSNR_DB
    assert np.array_equal(frames[-1], frames[-2])  # the last frame is held to keep the length
    assert interpolate_clip(clip, 1) is clip


# --- nodes -----------------------------------------------------------------------------------------------

def test_nodes_are_registered_and_documented():
    for name in ("AnimStudioInterpolateFrames", "AnimStudioInterpolateClip"):
        cls = nodes.NODE_CLASS_MAPPINGS[name]
        assert name in nodes.NODE_DISPLAY_NAME_MAPPINGS and cls.DESCRIPTION and cls.CATEGORY == "animstudio/film"
        assert len(cls.OUTPUT_TOOLTIPS) == len(cls.RETURN_TYPES)
        spec = cls.INPUT_TYPES()
        for group in spec.values():
            for options in group.values():
                assert options[1].get("tooltip")


def test_image_node_round_trips_numpy_images_with_progress():
    truth = [render(k) for k in range(5)]
    images = np.stack(truth[::2]).astype(np.float32) / 255.0  # an IMAGE as the torch-free engine carries it
    seen = []
    with boundary.progress_hook(lambda done, total: seen.append((done, total))):
        (out,) = AnimStudioInterpolateFrames().interpolate(images, 2, "flow", DEFAULT_SCENE_THRESHOLD)
    out = as_numpy(out)
    assert out.shape == (5, 144, 192, 3) and out.dtype == np.float32
    frames = boundary.image_to_frames(out)
    assert np.array_equal(frames[0], truth[0]) and np.array_equal(frames[4], truth[4])
    assert psnr(frames[1], truth[1]) >= MIN_PSNR_DB
    assert seen[-1] == (5, 5) and len(seen) == 5


def test_image_node_stops_when_cancelled(monkeypatch):
    class Cancelled(Exception):
        pass

    checks = []

    def check():
        checks.append(1)
        if len(checks) > 2:
            raise Cancelled

    monkeypatch.setattr(boundary, "check_interrupted", check)
    images = np.stack([render(k) for k in range(6)]).astype(np.float32) / 255.0
    with pytest.raises(Cancelled):
        AnimStudioInterpolateFrames().interpolate(images, 2, "flow", 0.3)
    assert len(checks) == 3


def test_clip_node_returns_a_lazy_clip_at_the_new_rate():
    clip = Clip(192, 144, 12, 3, lambda: iter([render(0), render(2), render(4)]))
    (smooth,) = AnimStudioInterpolateClip().interpolate(clip, 3, "flow", 0.3)
    assert (smooth.fps, smooth.frame_count) == (36, 9)
    assert len(list(smooth.frames())) == 9


def test_model_name_may_not_leave_the_rife_folder():
    images = np.zeros((2, 16, 16, 3), np.float32)
    with pytest.raises(ValueError, match="file name"):
        AnimStudioInterpolateFrames().interpolate(images, 2, "rife", 0.3, rife_model="../../secrets.pkl")


# --- RIFE ------------------------------------------------------------------------------------------------

def rife_state(torch, channels=(16, 12, 8, 8), features=0, passed=0, encoder="head", residuals=2, seed=0):
    """Random tensors named and shaped as a Practical-RIFE IFNet checkpoint (tiny channel counts).

    features: encoder channels per frame (0 = v4.5/4.6, no encoder); passed: channels a block hands on
    (8 from v4.22); encoder: "head" (cnn0..cnn3) or "sequential" (encode.0/2/4, activations between).
    Saved from multi-GPU training, as Practical-RIFE's own flownet.pkl files are (``module.`` prefixes).
    """
    g = torch.Generator().manual_seed(seed)

    def r(*shape):
        return torch.randn(*shape, generator=g) * 0.05

    state = {}
    if features and encoder == "head":
        state.update({"encode.cnn0.weight": r(8, 3, 3, 3), "encode.cnn0.bias": r(8),
                      "encode.cnn1.weight": r(8, 8, 3, 3), "encode.cnn1.bias": r(8),
                      "encode.cnn2.weight": r(8, 8, 3, 3), "encode.cnn2.bias": r(8),
                      "encode.cnn3.weight": r(8, features, 4, 4), "encode.cnn3.bias": r(features)})
    elif features:
        state.update({"encode.0.weight": r(8, 3, 3, 3), "encode.0.bias": r(8),
                      "encode.2.weight": r(8, 8, 3, 3), "encode.2.bias": r(8),
                      "encode.4.weight": r(8, features, 4, 4), "encode.4.bias": r(features)})
    out = 5 + (passed or 1)
    for i, c in enumerate(channels):
        p = f"module.block{i}."
        inputs = 7 + 2 * features if i == 0 else 12 + 2 * features + passed
        state.update({p + "conv0.0.0.weight": r(c // 2, inputs, 3, 3), p + "conv0.0.0.bias": r(c // 2),
                      p + "conv0.1.0.weight": r(c, c // 2, 3, 3), p + "conv0.1.0.bias": r(c),
                      p + "lastconv.0.weight": r(c, 4 * out, 4, 4), p + "lastconv.0.bias": r(4 * out)})
        for k in range(residuals):
            state.update({f"{p}convblock.{k}.conv.weight": r(c, c, 3, 3), f"{p}convblock.{k}.conv.bias": r(c),
                          f"{p}convblock.{k}.beta": torch.ones(1, c, 1, 1)})
    state["module.teacher.conv0.0.0.weight"] = r(4, 4, 3, 3)  # training-only parts some releases carry
    return state


@pytest.fixture
def torch():
    torch = pytest.importorskip("torch", reason="the RIFE engine needs torch (run under ComfyUI's venv)")
    from animstudio.nodes.film import rife

    rife._loaded.clear()
    yield torch
    rife._loaded.clear()


@pytest.fixture
def no_comfy(monkeypatch):
    monkeypatch.delenv("ANIMSTUDIO_RIFE_MODEL", raising=False)
    monkeypatch.setitem(sys.modules, "folder_paths", None)  # import folder_paths → ImportError: not in ComfyUI


def fake_comfy(monkeypatch, base):
    module = types.ModuleType("folder_paths")
    module.models_dir = str(base)
    module.folder_names_and_paths = {}
    monkeypatch.setitem(sys.modules, "folder_paths", module)


LAYOUTS = {
    "v4.6 (no encoder)": dict(),
    "v4.7-v4.21 (sequential encoder)": dict(features=4, encoder="sequential"),
    "v4.22+ (head encoder, features passed on, 5 blocks)": dict(channels=(16, 12, 8, 8, 8), features=8, passed=8),
}


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_rife_loads_and_runs_each_layout(torch, no_comfy, tmp_path, monkeypatch, layout):
    from animstudio.nodes.film.rife import load_rife

    path = tmp_path / "flownet.pkl"
    torch.save(rife_state(torch, **LAYOUTS[layout]), path)
    monkeypatch.setenv("ANIMSTUDIO_RIFE_MODEL", str(path))
    model = load_rife()
    assert len(model.layout.blocks) == len(LAYOUTS[layout].get("channels", (0,) * 4))
    sources = [render(k, h=70, w=100) for k in range(0, 8, 2)]  # not a multiple of 64: padded and cropped
    out = list(interpolate_frames(iter(sources), 3, engine="rife", chunk=2))
    assert len(out) == 10
    assert all(f.shape == (70, 100, 3) and f.dtype == np.uint8 for f in out)
    assert all(np.array_equal(out[3 * i], s) for i, s in enumerate(sources))
    assert len(fill_between(sources[0], sources[1], 2, engine="rife")) == 2
    assert load_rife() is model  # loaded once


def test_rife_reads_safetensors_and_finds_weights_in_comfy_models_folder(torch, no_comfy, tmp_path, monkeypatch):
    safetensors_torch = pytest.importorskip("safetensors.torch")
    from animstudio.nodes.film.rife import find_rife_weights, list_rife_models, load_rife

    fake_comfy(monkeypatch, tmp_path)
    (tmp_path / "rife").mkdir()
    safetensors_torch.save_file(rife_state(torch, features=8), str(tmp_path / "rife" / "rife417.safetensors"))
    assert list_rife_models() == ["rife417.safetensors"]
    assert find_rife_weights() == tmp_path / "rife" / "rife417.safetensors"
    assert "rife417.safetensors" in AnimStudioInterpolateFrames.INPUT_TYPES()["optional"]["rife_model"][0]
    assert load_rife("rife417.safetensors").layout.features == 8
    images = np.stack([render(k, h=64, w=64) for k in range(2)]).astype(np.float32) / 255.0
    (out,) = AnimStudioInterpolateFrames().interpolate(images, 2, "rife", 1.0, rife_model="rife417.safetensors")
    assert as_numpy(out).shape == (3, 64, 64, 3)


def test_missing_rife_weights_name_the_file_and_its_folder(torch, no_comfy, tmp_path, monkeypatch):
    from animstudio.nodes.film.rife import find_rife_weights

    with pytest.raises(FileNotFoundError, match=r"flownet\.pkl.*models/rife.*never downloads"):
        find_rife_weights()
    fake_comfy(monkeypatch, tmp_path)
    with pytest.raises(FileNotFoundError) as caught:
        list(interpolate_frames(iter([render(0), render(1)]), 2, engine="rife"))
    assert "flownet.pkl" in str(caught.value) and str(tmp_path / "rife") in str(caught.value)
    with pytest.raises(FileNotFoundError, match=r"rife47\.pth.*" + re.escape(str(tmp_path / "rife"))):
        find_rife_weights("rife47.pth")
    monkeypatch.setenv("ANIMSTUDIO_RIFE_MODEL", str(tmp_path / "nowhere.pkl"))
    with pytest.raises(FileNotFoundError, match="ANIMSTUDIO_RIFE_MODEL"):
        find_rife_weights()
    clip = Clip(64, 64, 12, 2, lambda: iter([render(0, h=64, w=64)] * 2))
    with pytest.raises(FileNotFoundError):  # the clip node checks at once, not when the film is saved
        AnimStudioInterpolateClip().interpolate(clip, 2, "rife", 0.3)


def test_truncated_or_mismatched_rife_weights_fail_clearly(torch, no_comfy, tmp_path, monkeypatch):
    from animstudio.nodes.film.rife import RifeModelError, load_rife

    path = tmp_path / "flownet.pkl"
    monkeypatch.setenv("ANIMSTUDIO_RIFE_MODEL", str(path))

    state = rife_state(torch)
    del state["module.block2.convblock.1.conv.weight"]
    torch.save(state, path)
    with pytest.raises(RifeModelError, match=r"block2\.convblock\.1\.conv\.weight"):
        load_rife()

    state = rife_state(torch)
    del state["module.block3.lastconv.0.bias"]  # a block cut short
    torch.save(state, path)
    with pytest.raises(RifeModelError, match=r"block3\.lastconv\.0\.bias"):
        load_rife()

    state = rife_state(torch)
    state["module.block1.conv0.0.0.weight"] = torch.zeros(6, 20, 3, 3)  # a block from another layout
    torch.save(state, path)
    with pytest.raises(RifeModelError, match="block1 takes 20 input channels"):
        load_rife()

    state = rife_state(torch)
    state["module.block0.convblock.0.beta"] = torch.ones(1, 3, 1, 1)
    torch.save(state, path)
    with pytest.raises(RifeModelError, match=r"block0\.convblock\.0\.beta.*shape"):
        load_rife()

    torch.save(rife_state(torch), path)
    path.write_bytes(path.read_bytes()[:2000])  # a download cut off
    with pytest.raises(RifeModelError, match="cannot read RIFE weights"):
        load_rife()

    torch.save({"weight": torch.zeros(3)}, path)
    with pytest.raises(RifeModelError, match="no IFNet blocks"):
        load_rife()
