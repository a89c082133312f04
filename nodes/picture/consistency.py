"""How much a character in generated frames looks like the character's reference images: one number per shot.

The score is CLIP-vision similarity. Each reference embedding is L2-normalised and the normalised vectors are
averaged, so every reference counts the same however long its raw vector is; each frame's score is the cosine
similarity of its embedding to that mean, and the set's score is the mean over frames (the per-frame scores and
the lowest are kept, so one frame where the character drifted can be found). It passes when the score, as
reported (to :data:`SCORE_DECIMALS` decimals), is at least the threshold: rounding first means that an image
compared with itself scores exactly 1.0 despite float32 noise, and that anyone reading the report can check
the verdict against the numbers in it. The default threshold :data:`DEFAULT_THRESHOLD` (0.62) sits in the
0.60-0.65 band the product asks for.

Beside it, a face-identity score (:mod:`.identity`: dlib's face embedding, the ``faces`` extra): with
``method="auto"`` (the default) it decides wherever faces are found on both the references and the frames, and
CLIP similarity decides elsewhere (drawn or non-human characters, back views), with a note saying why; ``clip``
never looks for faces, ``face`` requires the extra. CLIP vision is in every ComfyUI install, and core's
``CLIPVisionLoader`` loads the model.

The math works on numpy and needs neither torch nor ComfyUI. :func:`encode_images` calls the model; it imports
torch only when torch is installed, encodes in chunks of :data:`ENCODE_CHUNK` frames so memory stays flat for
long frame batches, and checks ComfyUI's Cancel between chunks.
"""
from __future__ import annotations

import contextlib
import logging
import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..boundary import Progress, check_interrupted, image_to_frames, torch_available
from .identity import DEFAULT_FACE_THRESHOLD, identity_scores

log = logging.getLogger(__name__)

DEFAULT_THRESHOLD = 0.62
ENCODE_CHUNK = 8
SCORE_DECIMALS = 6
METHODS = ("auto", "clip", "face")


class ConsistencyError(ValueError):
    """Embeddings or settings a consistency score cannot be computed from; the message says which and why."""


@dataclass(frozen=True)
class ConsistencyResult:
    """One character's consistency over a set of frames."""
    character: str
    score: float                       # mean over frames of the cosine similarity to the references' mean
    threshold: float
    passed: bool                       # score >= threshold
    frame_scores: tuple[float, ...]    # one per frame, in frame order (CLIP similarity)
    references: int                    # how many reference images were averaged
    method: str = "clip"               # what decided: "clip" (similarity) or "face" (identity)
    clip_score: float | None = None    # the CLIP similarity, also when the face decided
    face_score: float | None = None    # 1 - face distance (mean over frames with a face); None: no face compared
    face_threshold: float = DEFAULT_FACE_THRESHOLD
    note: str = ""                     # why CLIP decided where faces were asked for, frames without a face

    @property
    def min_score(self) -> float:
        return min(self.frame_scores)

    @property
    def worst_frame(self) -> int:
        """Index of the frame that looks least like the references (the first, on a tie)."""
        return self.frame_scores.index(self.min_score)

    def to_json(self) -> dict:
        """What the node puts in its ``ui`` output (and so in ComfyUI's ``/history``); readers rely on these keys."""
        return {"character": self.character, "score": self.score, "threshold": self.threshold,
                "passed": self.passed, "frame_scores": list(self.frame_scores), "references": self.references,
                "method": self.method, "clip_score": self.clip_score, "face_score": self.face_score,
                "face_threshold": self.face_threshold, "note": self.note}

    def text(self) -> str:
        who = f"'{self.character}'" if self.character else "the character"
        verdict = "passed" if self.passed else "FAILED"
        frames = len(self.frame_scores)
        if self.method == "face":
            lines = [f"face identity of {who}: {self.score:.3f} (threshold {self.face_threshold:.2f}): {verdict}; "
                     f"CLIP similarity {self.clip_score:.3f}"]
        else:
            lines = [f"consistency of {who}: {self.score:.3f} (threshold {self.threshold:.2f}): {verdict}"]
        if self.note:
            lines.append(self.note)
        lines.append(f"{frames} frame{'s' if frames != 1 else ''} against {self.references} reference "
                     f"image{'s' if self.references != 1 else ''}")
        if frames > 1:
            lines.append(f"lowest: frame {self.worst_frame} at {self.min_score:.3f}")
            lines.append("per frame: " + ", ".join(f"{s:.3f}" for s in self.frame_scores))
        return "\n".join(lines)


# ------------------------------------------------------------------------------------------ the math


def as_embeddings(values: Any, what: str = "embeddings") -> np.ndarray:
    """``[N, D]`` float64 rows from an array-like (one ``[D]`` vector counts as one row), checked: not empty,
    finite, and no all-zero row (which has no direction to compare)."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ConsistencyError(f"{what} are not numbers: {exc}") from None
    if array.ndim == 1:
        array = array[None] if array.size else array.reshape(0, 0)
    if array.ndim != 2:
        raise ConsistencyError(f"{what} must be [count, width], got shape {tuple(array.shape)}")
    if array.shape[0] == 0:
        raise ConsistencyError(f"no {what}: at least one image is needed")
    if array.shape[1] == 0:
        raise ConsistencyError(f"{what} have width 0")
    bad = ~np.isfinite(array).all(axis=1)
    if bad.any():
        raise ConsistencyError(f"{what} hold NaN or infinite values (rows {_rows(bad)}): the image encoder "
                               f"overflowed or got broken images")
    zero = np.linalg.norm(array, axis=1) == 0
    if zero.any():
        raise ConsistencyError(f"{what} rows {_rows(zero)} are all zeros: they have no direction to compare")
    return array


def _rows(mask: np.ndarray) -> str:
    rows = np.flatnonzero(mask).tolist()
    return ", ".join(map(str, rows[:10])) + (f" and {len(rows) - 10} more" if len(rows) > 10 else "")


def normalise(embeddings: np.ndarray) -> np.ndarray:
    return embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)


def reference_direction(references: Any) -> np.ndarray:
    """The unit vector the frames are compared with: the mean of the L2-normalised references."""
    refs = as_embeddings(references, "reference embeddings")
    mean = normalise(refs).mean(axis=0)
    norm = np.linalg.norm(mean)
    if not norm > 1e-12:
        raise ConsistencyError("the reference embeddings cancel out (their mean is zero): the references do not "
                               "show one consistent character")
    return mean / norm


def frame_scores(frames: Any, references: Any) -> np.ndarray:
    """Cosine similarity of each frame embedding ``[F, D]`` to the mean of the references ``[R, D]``, in -1..1."""
    frames = as_embeddings(frames, "frame embeddings")
    refs = as_embeddings(references, "reference embeddings")
    if frames.shape[1] != refs.shape[1]:
        raise ConsistencyError(f"frame embeddings have width {frames.shape[1]} but reference embeddings have width "
                               f"{refs.shape[1]}: encode both with the same CLIP vision model")
    return np.clip(normalise(frames) @ reference_direction(refs), -1.0, 1.0)


def check_threshold(threshold: Any) -> float:
    try:
        value = float(threshold)
    except (TypeError, ValueError):
        raise ConsistencyError(f"threshold must be a number between 0 and 1, got {threshold!r}") from None
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ConsistencyError(f"threshold must be between 0 and 1, got {threshold!r}")
    return value


def consistency_score(frames: Any, references: Any, threshold: float = DEFAULT_THRESHOLD,
                      character: str = "") -> ConsistencyResult:
    """Score frame embeddings ``[F, D]`` against a character's reference embeddings ``[R, D]``."""
    threshold = check_threshold(threshold)
    scores = [round(float(s), SCORE_DECIMALS) for s in frame_scores(frames, references)]
    score = round(float(np.mean(scores)), SCORE_DECIMALS)
    references_count = as_embeddings(references, "reference embeddings").shape[0]
    return ConsistencyResult(character=str(character or ""), score=score, threshold=threshold,
                             passed=bool(score >= threshold), frame_scores=tuple(scores), references=references_count)


# ------------------------------------------------------------------------------------------ the model


def _batch_size(images: Any) -> int:
    shape = getattr(images, "shape", None)
    if shape is None or len(shape) not in (3, 4):
        raise ConsistencyError(f"images must be an IMAGE batch [B, H, W, C], got shape {shape}")
    return 1 if len(shape) == 3 else int(shape[0])


def embeddings_from_output(output: Any) -> np.ndarray:
    """``image_embeds`` of ``CLIP_VISION.encode_image`` (core's ``comfy.clip_vision.Output``, a mapping, or the
    tensor itself) as float64 numpy ``[N, D]``."""
    embeds = output
    if not hasattr(output, "shape"):
        try:
            embeds = output["image_embeds"]
        except (KeyError, TypeError, AttributeError):
            raise ConsistencyError("the CLIP vision model gave no image_embeds: load a CLIP vision model "
                                   "(with its projection) through Load CLIP Vision") from None
    if embeds is None:
        raise ConsistencyError("the CLIP vision model gave no image_embeds: this image encoder has no projection "
                               "to score with")
    if hasattr(embeds, "detach"):
        embeds = embeds.detach().to("cpu").float().numpy()
    return np.asarray(embeds, dtype=np.float64).reshape(np.shape(embeds)[0], -1)


def encode_images(clip_vision, images, chunk: int = ENCODE_CHUNK, progress: Progress | None = None,
                  what: str = "images") -> np.ndarray:
    """Image embeddings ``[B, D]`` of a ComfyUI ``IMAGE`` batch through ``clip_vision.encode_image`` (center
    crop, as core's CLIP Vision Encode does by default), *chunk* images at a time.

    Between chunks ComfyUI's Cancel is honoured and *progress* advances by the chunk's size. Gradients are off:
    ComfyUI runs nodes without them, a direct call would otherwise keep every activation."""
    count = _batch_size(images)
    if count == 0:
        raise ConsistencyError(f"no {what}: the batch is empty")
    if images.shape[-1] not in (1, 3, 4):
        raise ConsistencyError(f"{what} must have 1, 3 or 4 channels, got {images.shape[-1]}")
    if len(images.shape) == 3:
        images = images[None]
    chunk = max(1, int(chunk))
    no_grad = contextlib.nullcontext()
    if torch_available():
        import torch

        if not hasattr(images, "detach"):
            images = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))
        no_grad = torch.no_grad()
    parts = []
    with no_grad:
        for start in range(0, count, chunk):
            check_interrupted()
            part = images[start:start + chunk]
            if part.shape[-1] == 1:
                part = part.repeat(1, 1, 1, 3) if hasattr(part, "detach") else np.repeat(part, 3, axis=-1)
            embeds = embeddings_from_output(clip_vision.encode_image(part))
            if embeds.shape[0] != part.shape[0]:
                raise ConsistencyError(f"the CLIP vision model gave {embeds.shape[0]} embeddings for "
                                       f"{part.shape[0]} {what}")
            parts.append(embeds)
            if progress is not None:
                progress.update(part.shape[0])
    embeddings = np.concatenate(parts, axis=0)
    log.debug("encoded %d %s to %s embeddings", count, what, embeddings.shape[1])
    return embeddings


def score_images(clip_vision, images, reference_images, threshold: float = DEFAULT_THRESHOLD, character: str = "",
                 chunk: int = ENCODE_CHUNK) -> ConsistencyResult:
    """Encode the frames and the references with one CLIP vision model and score them (one progress bar)."""
    threshold = check_threshold(threshold)
    progress = Progress(_batch_size(images) + _batch_size(reference_images))
    references = encode_images(clip_vision, reference_images, chunk, progress, "reference images")
    frames = encode_images(clip_vision, images, chunk, progress, "images")
    try:
        return consistency_score(frames, references, threshold, character)
    except ConsistencyError as exc:
        who = f" for character '{character}'" if character else ""
        raise ConsistencyError(f"consistency score{who}: {exc}") from None


def score_character(clip_vision, images, reference_images, threshold: float = DEFAULT_THRESHOLD,
                    character: str = "", method: str = "auto", face_threshold: float = DEFAULT_FACE_THRESHOLD,
                    chunk: int = ENCODE_CHUNK) -> ConsistencyResult:
    """The CLIP similarity score, and (``auto``, ``face``) the face identity score deciding wherever faces were
    found on both sides; elsewhere CLIP decides, with a note saying why."""
    if method not in METHODS:
        raise ConsistencyError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
    face_threshold = check_threshold(face_threshold)
    clip = score_images(clip_vision, images, reference_images, threshold, character, chunk)
    clip = replace(clip, clip_score=clip.score, face_threshold=face_threshold)
    if method == "clip":
        return clip
    from ..lipsync.faces import FacesUnavailable

    try:
        identity = identity_scores(list(image_to_frames(images)), list(image_to_frames(reference_images)))
    except FacesUnavailable as exc:
        if method == "face":
            raise ConsistencyError(f"a face identity score was asked for: {exc}") from None
        return replace(clip, note=f"{exc}: CLIP similarity decides")
    if identity.score is None:
        return replace(clip, note=f"{identity.note}: CLIP similarity decides")
    return replace(clip, score=identity.score, passed=bool(identity.score >= face_threshold), method="face",
                   face_score=identity.score, note=identity.note)


__all__ = ["DEFAULT_THRESHOLD", "DEFAULT_FACE_THRESHOLD", "ENCODE_CHUNK", "SCORE_DECIMALS", "ConsistencyError", "ConsistencyResult",
           "as_embeddings", "normalise", "reference_direction", "frame_scores", "check_threshold",
           "consistency_score", "embeddings_from_output", "encode_images", "score_images", "score_character", "METHODS"]
