"""Character consistency: the score math and the node contract (no torch needed), and
``AnimStudioConsistencyScore`` on a real ComfyUI (marker ``comfyui``) with a random-weight CLIP vision ViT-L/14."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from animstudio.nodes import boundary
from animstudio.nodes.picture import consistency
from animstudio.nodes.picture.consistency import ConsistencyError, consistency_score
from animstudio.nodes.lipsync.faces import available as faces_available
from animstudio.nodes.picture.consistency_nodes import (NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS,
                                                        AnimStudioConsistencyScore)

comfyui = pytest.mark.comfyui
RESULT_KEYS = {"character", "score", "threshold", "passed", "frame_scores", "references", "method", "clip_score",
               "face_score", "face_threshold", "note"}


# ------------------------------------------------------------------------------ the math


def test_identical_embeddings_score_one():
    ref = np.array([[0.3, -1.2, 2.5, 0.1]])
    result = consistency_score(ref * 4.0, ref, character="mara")  # length does not matter, direction does
    assert result.score == 1.0 and result.frame_scores == (1.0,) and result.passed
    assert result.character == "mara" and result.references == 1 and result.threshold == consistency.DEFAULT_THRESHOLD


def test_orthogonal_embeddings_score_zero_and_opposite_minus_one():
    assert consistency_score([[0.0, 2.0, 0.0]], [[5.0, 0.0, 0.0]]).score == 0.0
    opposite = consistency_score([[-1.0, -1.0]], [[1.0, 1.0]])
    assert opposite.score == -1.0 and not opposite.passed


def test_default_threshold_is_in_the_product_band():
    assert 0.60 <= consistency.DEFAULT_THRESHOLD <= 0.65
    assert consistency.DEFAULT_THRESHOLD == 0.62


@pytest.mark.parametrize("cosine", [0.62, 0.6, 0.65, 0.5, 0.875])
def test_threshold_boundary_passes_at_equal_and_fails_just_above(cosine):
    frame = [cosine, math.sqrt(1.0 - cosine ** 2)]
    at = consistency_score([frame], [[1.0, 0.0]], threshold=cosine)
    assert at.score == pytest.approx(cosine, abs=1e-9) and at.passed  # equal to the threshold passes
    assert not consistency_score([frame], [[1.0, 0.0]], threshold=cosine + 0.01).passed
    assert consistency_score([frame], [[1.0, 0.0]], threshold=cosine - 0.01).passed


def test_threshold_edges_zero_and_one():
    assert consistency_score([[1.0, 1e-3]], [[1.0, 0.0]], threshold=1.0).passed  # 0.9999995 reported as 1.0
    assert not consistency_score([[1.0, 0.01]], [[1.0, 0.0]], threshold=1.0).passed
    assert consistency_score([[0.0, 1.0]], [[1.0, 0.0]], threshold=0.0).passed
    assert not consistency_score([[-0.1, 1.0]], [[1.0, 0.0]], threshold=0.0).passed


def test_references_are_normalised_before_averaging():
    # two references at right angles, one 100 times longer: the mean of the unit vectors lies between them
    result = consistency_score([[1.0, 1.0]], [[100.0, 0.0], [0.0, 1.0]])
    assert result.score == 1.0 and result.references == 2
    # against a single reference the same frame scores cos 45 degrees
    assert consistency_score([[1.0, 1.0]], [[0.0, 1.0]]).score == pytest.approx(math.sqrt(0.5), abs=1e-6)
    # a frame like only one of the references scores the cosine to the mean direction
    assert consistency_score([[1.0, 0.0]], [[3.0, 0.0], [0.0, 7.0]]).score == pytest.approx(math.sqrt(0.5), abs=1e-6)


def test_per_frame_scores_mean_and_minimum():
    refs = [[1.0, 0.0, 0.0]]
    frames = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.6, 0.8, 0.0], [1.0, 0.0, 0.0]]
    result = consistency_score(frames, refs, threshold=0.6)
    assert result.frame_scores == pytest.approx((1.0, 0.0, 0.6, 1.0))
    assert result.score == pytest.approx(0.65)
    assert result.passed  # the mean decides, not the worst frame
    assert result.min_score == 0.0 and result.worst_frame == 1
    assert np.allclose(consistency.frame_scores(frames, refs), [1.0, 0.0, 0.6, 1.0])


def test_to_json_has_exactly_the_keys_the_renderer_reads_and_is_json():
    result = consistency_score([[1.0, 0.0], [0.6, 0.8]], [[1.0, 0.0], [1.0, 0.1]], threshold=0.7, character="kai")
    data = result.to_json()
    assert set(data) == RESULT_KEYS
    assert json.loads(json.dumps(data)) == data
    assert data["character"] == "kai" and data["references"] == 2 and data["threshold"] == 0.7
    assert isinstance(data["score"], float) and isinstance(data["passed"], bool)
    assert data["frame_scores"] == list(result.frame_scores) and len(data["frame_scores"]) == 2
    assert all(type(s) is float for s in data["frame_scores"])


def test_report_text():
    result = consistency_score([[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0]], threshold=0.62, character="kai")
    text = result.text()
    assert text.splitlines()[0] == "consistency of 'kai': 0.500 (threshold 0.62): FAILED"
    assert "2 frames against 1 reference image" in text and "lowest: frame 1 at 0.000" in text
    single = consistency_score([[1.0, 0.0]], [[1.0, 0.0], [1.0, 0.0]]).text()
    assert single.splitlines()[0].endswith(": passed") and "1 frame against 2 reference images" in single
    assert "the character" in single


# ------------------------------------------------------------------------------ errors


@pytest.mark.parametrize("frames, refs, message", [
    ([[1.0, 0.0]], np.zeros((0, 2)), "no reference embeddings"),
    ([[1.0, 0.0]], [], "no reference embeddings"),
    (np.zeros((0, 2)), [[1.0, 0.0]], "no frame embeddings"),
    ([[1.0, 0.0, 0.0]], [[1.0, 0.0]], "width 3 but reference embeddings have width 2"),
    ([[1.0, float("nan")]], [[1.0, 0.0]], r"frame embeddings hold NaN or infinite values \(rows 0\)"),
    ([[1.0, 0.0]], [[1.0, 0.0], [float("inf"), 0.0]], r"reference embeddings hold NaN or infinite values \(rows 1\)"),
    ([[1.0, 0.0]], [[0.0, 0.0]], "rows 0 are all zeros"),
    ([[1.0, 0.0]], [[1.0, 0.0], [-1.0, 0.0]], "cancel out"),
    ([[[1.0]]], [[1.0]], r"must be \[count, width\]"),
    ([["a", "b"]], [[1.0, 0.0]], "not numbers"),
])
def test_clear_errors(frames, refs, message):
    with pytest.raises(ConsistencyError, match=message):
        consistency_score(frames, refs)


@pytest.mark.parametrize("threshold", [-0.1, 1.01, float("nan"), "high", None])
def test_bad_threshold(threshold):
    with pytest.raises(ConsistencyError, match="threshold must be"):
        consistency_score([[1.0]], [[1.0]], threshold=threshold)


def test_consistency_error_is_a_value_error():
    assert issubclass(ConsistencyError, ValueError)


# ------------------------------------------------------------------------------ encoding (a fake encoder)


class FakeClipVision:
    """Stands in for core's CLIP_VISION: ``image_embeds`` = each image's mean colour plus a constant, so equal
    images give equal embeddings; records the batch sizes it was called with."""

    def __init__(self, width: int = 4):
        self.calls: list[int] = []
        self.width = width

    def encode_image(self, image, crop=True):
        image = np.asarray(image, dtype=np.float32)
        self.calls.append(image.shape[0])
        colour = image.reshape(image.shape[0], -1, image.shape[-1]).mean(axis=1)[:, :3]
        embeds = np.concatenate([colour, np.full((image.shape[0], self.width - 3), 0.1, np.float32)], axis=1)
        return {"image_embeds": embeds, "last_hidden_state": None}


def _images(colours, size=8):
    return np.stack([np.broadcast_to(np.asarray(c, np.float32), (size, size, 3)) for c in colours])


@pytest.fixture
def without_torch(monkeypatch):
    """Encode numpy batches as the embedded engine would hand them, whether or not torch is installed."""
    monkeypatch.setattr(consistency, "torch_available", lambda: False)


def test_encode_images_in_chunks_with_progress_and_interrupt_checks(monkeypatch, without_torch):
    checks = []
    monkeypatch.setattr(consistency, "check_interrupted", lambda: checks.append(1))
    seen = []
    encoder = FakeClipVision()
    with boundary.progress_hook(lambda done, total: seen.append((done, total))):
        progress = boundary.Progress(19)
        embeds = consistency.encode_images(encoder, _images([(0.1 * i % 1, 0.5, 0.2) for i in range(19)]),
                                           chunk=8, progress=progress)
    assert embeds.shape == (19, 4) and embeds.dtype == np.float64
    assert encoder.calls == [8, 8, 3]
    assert len(checks) == 3
    assert seen == [(8, 19), (16, 19), (19, 19)]


def test_encode_images_errors(without_torch):
    with pytest.raises(ConsistencyError, match="no reference images"):
        consistency.encode_images(FakeClipVision(), np.zeros((0, 8, 8, 3), np.float32), what="reference images")
    with pytest.raises(ConsistencyError, match="IMAGE batch"):
        consistency.encode_images(FakeClipVision(), np.zeros((8, 8), np.float32))

    class NoEmbeds:
        def encode_image(self, image, crop=True):
            return {"last_hidden_state": image}

    with pytest.raises(ConsistencyError, match="no image_embeds"):
        consistency.encode_images(NoEmbeds(), _images([(1, 0, 0)]))


def test_encode_images_single_image_and_grey(without_torch):
    encoder = FakeClipVision()
    assert consistency.encode_images(encoder, _images([(0.2, 0.4, 0.6)])[0]).shape == (1, 4)
    grey = np.full((2, 8, 8, 1), 0.5, np.float32)
    assert np.allclose(consistency.encode_images(encoder, grey)[:, :3], 0.5)


def test_encode_images_with_torch_tensors():
    """Inside ComfyUI the batch is a torch tensor and so may be the embeddings (with grad on, called directly)."""
    torch = pytest.importorskip("torch")

    class TorchClipVision(FakeClipVision):
        def __init__(self):
            super().__init__()
            self.weight = torch.ones(4, requires_grad=True)
            self.grad_enabled = []

        def encode_image(self, image, crop=True):
            assert isinstance(image, torch.Tensor)
            self.grad_enabled.append(torch.is_grad_enabled())
            embeds = torch.from_numpy(super().encode_image(image.numpy())["image_embeds"]) * self.weight
            return {"image_embeds": embeds.half()}

    encoder = TorchClipVision()
    images = _images([(0.2, 0.4, 0.6)] * 3)
    embeds = consistency.encode_images(encoder, torch.from_numpy(images), chunk=2)
    assert embeds.shape == (3, 4) and encoder.calls == [2, 1] and encoder.grad_enabled == [False, False]
    assert np.allclose(consistency.encode_images(encoder, images), embeds)  # numpy in, torch present


def test_node_scores_and_reports_through_ui(without_torch):
    node = AnimStudioConsistencyScore()
    frames = _images([(0.8, 0.2, 0.1), (0.8, 0.2, 0.1), (0.1, 0.2, 0.8)])
    refs = _images([(0.8, 0.2, 0.1), (0.8, 0.2, 0.1)])
    returned = getattr(node, node.FUNCTION)(FakeClipVision(), frames, refs, 0.62, "mara")
    assert set(returned) == {"ui", "result"}
    (data,) = returned["ui"]["consistency"]
    assert set(data) == RESULT_KEYS
    score, passed, report = returned["result"]
    assert score == data["score"] and passed is data["passed"] and isinstance(report, str)
    assert data["frame_scores"][:2] == [1.0, 1.0] and data["frame_scores"][2] < 0.9
    assert data["references"] == 2 and data["character"] == "mara" and data["threshold"] == 0.62
    assert "mara" in report and "lowest: frame 2" in report


def test_node_refuses_a_threshold_outside_0_1(without_torch):
    with pytest.raises(ConsistencyError, match="threshold"):
        AnimStudioConsistencyScore().score(FakeClipVision(), _images([(1, 0, 0)]), _images([(1, 0, 0)]), 1.5, "")


# ------------------------------------------------------------------------------ the node contract


def test_node_contract():
    cls = AnimStudioConsistencyScore
    assert NODE_CLASS_MAPPINGS == {"AnimStudioConsistencyScore": cls}
    assert "AnimStudioConsistencyScore" in NODE_DISPLAY_NAME_MAPPINGS
    from animstudio import nodes

    assert nodes.NODE_CLASS_MAPPINGS["AnimStudioConsistencyScore"] is cls
    required = cls.INPUT_TYPES()["required"]
    assert list(required) == ["clip_vision", "images", "reference_images", "threshold", "character"]
    assert [required[k][0] for k in required] == ["CLIP_VISION", "IMAGE", "IMAGE", "FLOAT", "STRING"]
    threshold = required["threshold"][1]
    assert (threshold["default"], threshold["min"], threshold["max"], threshold["step"]) == (0.62, 0.0, 1.0, 0.01)
    assert required["character"][1]["default"] == ""
    assert all(spec[1].get("tooltip") for spec in required.values())
    assert cls.RETURN_TYPES == ("FLOAT", "BOOLEAN", "STRING")
    assert cls.RETURN_NAMES == ("score", "passed", "report")
    assert len(cls.OUTPUT_TOOLTIPS) == 3 and all(cls.OUTPUT_TOOLTIPS)
    assert cls.OUTPUT_NODE is True and cls.CATEGORY == "animstudio/picture" and cls.DESCRIPTION
    assert callable(getattr(cls, cls.FUNCTION))
    assert "Load CLIP Vision" in cls.DESCRIPTION


# ------------------------------------------------------------------------------ face identity (real photographs)

needs_faces = pytest.mark.skipif(not faces_available(), reason="the 'faces' extra is not installed "
                                                               "(pip install 'animstudio[faces]')")


def photographs() -> dict[str, np.ndarray]:
    """Two people on photographs that ship in registry packages (see tests/fixtures/face_photos.py), and pictures
    of the same person made from each: smaller, mirrored, darker, turned 10 degrees, JPEG at quality 30."""
    import cv2

    skdata = pytest.importorskip("skimage.data", reason="the astronaut photograph ships with scikit-image")
    cbook = pytest.importorskip("matplotlib.cbook", reason="the Grace Hopper photograph ships with matplotlib")
    from PIL import Image

    with Image.open(cbook.get_sample_data("grace_hopper.jpg")) as img:
        hopper = np.asarray(img.convert("RGB"))
    out = {}
    for name, photo in (("collins", np.ascontiguousarray(skdata.astronaut()[..., :3])), ("hopper", hopper)):
        h, w = photo.shape[:2]
        turned = cv2.warpAffine(photo, cv2.getRotationMatrix2D((w / 2, h / 2), 10, 1.0), (w, h))
        ok, jpeg = cv2.imencode(".jpg", photo[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 30])
        out |= {name: photo, f"{name} small": cv2.resize(photo, (w * 3 // 5, h * 3 // 5)),
                f"{name} mirrored": np.ascontiguousarray(photo[:, ::-1]), f"{name} dark": (photo * 0.6).astype(np.uint8),
                f"{name} turned": turned, f"{name} jpeg": cv2.imdecode(jpeg, cv2.IMREAD_COLOR)[..., ::-1]}
    return out


@needs_faces
def test_the_same_persons_pictures_score_above_different_peoples():
    from animstudio.nodes.picture.identity import DEFAULT_FACE_THRESHOLD, identity_scores

    pictures = photographs()
    for person, other in (("collins", "hopper"), ("hopper", "collins")):
        same = [pictures[f"{person} {kind}"] for kind in ("small", "mirrored", "dark", "turned", "jpeg")]
        result = identity_scores(same, [pictures[person]])
        assert all(s is not None for s in result.frame_scores)
        different = identity_scores([pictures[other]] + [pictures[f"{other} {k}"] for k in ("small", "dark")],
                                    [pictures[person]])
        print(person, "same person", result.frame_scores, "different", different.frame_scores)
        assert min(result.frame_scores) > DEFAULT_FACE_THRESHOLD > max(different.frame_scores)
        assert min(result.frame_scores) - max(different.frame_scores) > 0.3


@needs_faces
def test_faces_decide_where_found_and_clip_elsewhere_with_a_note(without_torch):
    pictures = photographs()
    as_image = lambda *names: np.stack([pictures[n] for n in names]).astype(np.float32) / 255.0  # noqa: E731
    node = AnimStudioConsistencyScore()
    score, passed, report = node.score(FakeClipVision(), as_image("collins turned"), as_image("collins"), 0.99,
                                       "eileen")["result"]
    assert passed and score > 0.6 and "face identity of 'eileen'" in report and "CLIP similarity" in report
    returned = node.score(FakeClipVision(), as_image("hopper"), as_image("collins"), 0.0, "eileen")
    (data,) = returned["ui"]["consistency"]
    assert data["method"] == "face" and not data["passed"] and data["face_score"] < 0.4 <= data["clip_score"] + 1
    cartoon = np.zeros((1, 256, 256, 3), np.float32) + 0.5  # no face: CLIP decides, and the note says why
    (data,) = node.score(FakeClipVision(), cartoon, as_image("collins"), 0.0, "eileen")["ui"]["consistency"]
    assert data["method"] == "clip" and data["passed"] and data["face_score"] is None
    assert data["note"] == "no face found on the generated picture: CLIP similarity decides"
    (data,) = node.score(FakeClipVision(), as_image("hopper"), as_image("collins"), 0.0, "eileen",
                         method="clip")["ui"]["consistency"]
    assert data["method"] == "clip" and data["passed"] and data["face_score"] is None and data["note"] == ""


# ------------------------------------------------------------------------------ on a real ComfyUI


def _write_pictures(folder):
    from conftest import write_panel

    return {"warm": write_panel(folder / "warm.png", color=(200, 80, 40), size=(64, 64)),
            "cold": write_panel(folder / "cold.png", color=(40, 80, 200), size=(64, 64)),
            "dark": write_panel(folder / "dark.png", color=(0, 0, 0), size=(64, 64))}


@pytest.fixture(scope="module")
def uploaded(comfy_server, tmp_path_factory):
    from animstudio.translator.client import ComfyClient

    client = ComfyClient(comfy_server.url)
    folder = tmp_path_factory.mktemp("consistency-pictures")
    return {name: client.upload(path, filename=f"consistency-{name}.png")
            for name, path in _write_pictures(folder).items()}


def consistency_graph(clip_vision_name: str, frame: str, references: list[str], threshold: float,
                      character: str = "mara") -> dict:
    """Load CLIP Vision + Load Image (frame) + Load Image per reference (batched) -> the score node."""
    graph = {
        "cv": {"class_type": "CLIPVisionLoader", "inputs": {"clip_name": clip_vision_name}},
        "frame": {"class_type": "LoadImage", "inputs": {"image": frame}},
    }
    refs = None
    for i, name in enumerate(references):
        graph[f"ref{i}"] = {"class_type": "LoadImage", "inputs": {"image": name}}
        if refs is None:
            refs = [f"ref{i}", 0]
        else:
            graph[f"batch{i}"] = {"class_type": "ImageBatch", "inputs": {"image1": refs, "image2": [f"ref{i}", 0]}}
            refs = [f"batch{i}", 0]
    graph["score"] = {"class_type": "AnimStudioConsistencyScore", "inputs": {
        "clip_vision": ["cv", 0], "images": ["frame", 0], "reference_images": refs, "threshold": threshold,
        "character": character}}
    return graph


def run_score(client, graph: dict) -> dict:
    outputs = client.run(graph)
    entries = outputs["score"]["consistency"]
    assert len(entries) == 1
    return entries[0]


@comfyui
def test_same_image_scores_one_and_passes(comfy_server, clip_vision_name, uploaded):
    from animstudio.translator.client import ComfyClient

    client = ComfyClient(comfy_server.url)
    info = client.object_info()["AnimStudioConsistencyScore"]
    assert info["output_node"] is True and info["output"] == ["FLOAT", "BOOLEAN", "STRING"]
    data = run_score(client, consistency_graph(clip_vision_name, uploaded["warm"], [uploaded["warm"]], 0.62))
    assert set(data) == RESULT_KEYS
    assert data["character"] == "mara" and data["references"] == 1 and data["threshold"] == 0.62
    assert data["score"] > 0.999 and data["passed"] is True
    assert len(data["frame_scores"]) == 1 and data["frame_scores"][0] > 0.999


@comfyui
def test_different_image_fails_at_threshold_one(comfy_server, clip_vision_name, uploaded):
    from animstudio.translator.client import ComfyClient

    client = ComfyClient(comfy_server.url)
    data = run_score(client, consistency_graph(clip_vision_name, uploaded["warm"], [uploaded["cold"]], 1.0))
    assert set(data) == RESULT_KEYS
    assert data["passed"] is False and data["threshold"] == 1.0
    assert -1.0 <= data["score"] < 0.999


@comfyui
def test_two_reference_batch(comfy_server, clip_vision_name, uploaded):
    from animstudio.translator.client import ComfyClient

    client = ComfyClient(comfy_server.url)
    data = run_score(client, consistency_graph(clip_vision_name, uploaded["warm"],
                                               [uploaded["warm"], uploaded["dark"]], 0.0, character="kai"))
    assert data["references"] == 2 and data["character"] == "kai" and data["passed"] is True
    # the frame is one of the two references: it is closer to their mean than a stranger, and not identical to it
    assert -1.0 <= data["score"] < 0.999
    single = run_score(client, consistency_graph(clip_vision_name, uploaded["warm"], [uploaded["dark"]], 0.0))
    assert data["score"] > single["score"]


@comfyui
def test_unreadable_reference_is_refused_at_validation_naming_the_node(comfy_server, clip_vision_name, uploaded):
    from animstudio.translator.client import ComfyClient
    from animstudio.common.errors import GraphValidationError

    client = ComfyClient(comfy_server.url)
    graph = consistency_graph(clip_vision_name, uploaded["warm"], [uploaded["warm"], "no-such-reference.png"], 0.62)
    with pytest.raises(GraphValidationError) as caught:
        client.queue(graph)
    problems = [p for p in caught.value.problems if p.where.startswith("node 'ref1' (LoadImage")]
    assert problems, caught.value.problems
    assert "no-such-reference.png" in problems[0].message
