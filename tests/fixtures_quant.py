"""Quantize test helpers: the llm-compressor venv check, fake checkpoints, a home holding tiny-skills.

`require_quant()` skips without .venv-quant, unless LLMBENCH_REQUIRE_QUANT=1 (scripts/test, CI), which turns
that into a failure, as `require_vllm()` does for .venv-vllm.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
QUANT_PYTHON = REPO / ".venv-quant" / "bin" / "python"


def require_quant() -> Path:
    """The llm-compressor interpreter; skip (or fail under LLMBENCH_REQUIRE_QUANT=1) when it is missing."""
    if QUANT_PYTHON.exists():
        return QUANT_PYTHON
    if os.environ.get("LLMBENCH_REQUIRE_QUANT") == "1":
        pytest.fail(f"LLMBENCH_REQUIRE_QUANT=1 but {QUANT_PYTHON} does not exist: run scripts/setup-quant")
    pytest.skip("needs .venv-quant (scripts/setup-quant)")


def fake_checkpoint(
    folder: Path,
    *,
    hidden: int = 64,
    ffn: int = 256,
    heads: int = 2,
    layers: int = 1,
    quantization: dict[str, Any] | None = None,
) -> Path:
    """A folder that looks like a Llama checkpoint to every check that reads headers (no real weights)."""
    import numpy as np
    from safetensors.numpy import save_file

    folder.mkdir(parents=True, exist_ok=True)
    config: dict[str, Any] = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": hidden,
        "intermediate_size": ffn,
        "num_attention_heads": heads,
        "num_key_value_heads": heads,
        "num_hidden_layers": layers,
        "head_dim": hidden // heads,
        "max_position_embeddings": 256,
        "vocab_size": 32,
        "dtype": "float32",
    }
    if quantization is not None:
        config["quantization_config"] = quantization
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    tensors = {
        "model.embed_tokens.weight": np.zeros((32, hidden), dtype=np.float32),
        "model.layers.0.mlp.up_proj.weight": np.zeros((ffn, hidden), dtype=np.float32),
    }
    save_file(tensors, str(folder / "model.safetensors"))
    (folder / "tokenizer.json").write_text("{}", encoding="utf-8")
    return folder


def home_with_tiny_skills(home: Path, tiny_skills_dir: Path) -> Path:
    """An LLMBENCH_HOME whose model cache holds the session's tiny-skills build (linked, not copied)."""
    models = home / "models"
    models.mkdir(parents=True, exist_ok=True)
    link = models / "tiny-skills"
    if not link.exists():
        link.symlink_to(tiny_skills_dir.resolve(), target_is_directory=True)
    return home
