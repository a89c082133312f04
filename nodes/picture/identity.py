"""Face identity: whether the face in a keyframe is the character of the reference pictures, measured as the
seeds measure it, with a face embedding (dlib's ResNet face recognition model, :mod:`..lipsync.faces`).

Each reference picture gives its largest face's descriptor; their mean is the character. Each frame's score is
``1 - distance`` from its closest face to that mean, so higher is more alike: dlib's model puts two pictures of one
person within a distance of 0.6, hence the default pass mark :data:`DEFAULT_FACE_THRESHOLD` 0.4. A frame without a
face has no score; a set with no face on the references or on any frame has none at all, and the caller falls back
to CLIP similarity with a note saying why. Plain numpy; the ``faces`` extra is needed to find the faces.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_FACE_THRESHOLD = 0.4
SAME_PERSON_DISTANCE = 0.6  # dlib's line between one person and two


@dataclass(frozen=True)
class IdentityResult:
    """Face scores of a set of frames against a character's references: ``score`` None when no face compared."""
    score: float | None
    frame_scores: tuple[float | None, ...]
    note: str = ""


def _descriptors(picture: np.ndarray):
    from ..lipsync.faces import face_descriptors

    return face_descriptors(picture)


def reference_vector(references: list[np.ndarray]) -> np.ndarray | None:
    """The mean descriptor of the largest face on each reference picture; None when none shows a face."""
    vectors = []
    for picture in references:
        found = _descriptors(picture)
        if found:
            vectors.append(max(found, key=lambda f: f.face[2] * f.face[3]).vector)
    return np.mean(vectors, axis=0) if vectors else None


def identity_scores(frames: list[np.ndarray], references: list[np.ndarray], decimals: int = 6) -> IdentityResult:
    """Each frame's face score against the references (its closest face), and their mean over the frames with a
    face. Raises ``FacesUnavailable`` when the ``faces`` extra is missing."""
    target = reference_vector(references)
    if target is None:
        return IdentityResult(None, tuple(None for _ in frames), "no face found on the reference images")
    scores: list[float | None] = []
    for picture in frames:
        found = _descriptors(picture)
        distance = min((float(np.linalg.norm(f.vector - target)) for f in found), default=None)
        scores.append(None if distance is None else round(1.0 - distance, decimals))
    measured = [s for s in scores if s is not None]
    if not measured:
        return IdentityResult(None, tuple(scores), "no face found on the generated picture")
    missing = len(scores) - len(measured)
    note = f"no face on {missing} of {len(scores)} frames" if missing else ""
    return IdentityResult(round(float(np.mean(measured)), decimals), tuple(scores), note)
