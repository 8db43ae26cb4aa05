"""bitsandbytes nf4 and int8 through transformers' BitsAndBytesConfig, in this process (the main venv).

The checkpoint is saved straight after loading, before any forward pass: an nf4 model saved after a
forward pass reloads wrong (FINDINGS.md: weight error 9% → 24%). tests/quantize guards the round trip.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from quantize.errors import QuantizeFailed, UnsupportedQuantization

PACKAGES = ("bitsandbytes", "transformers", "torch", "accelerate")


@contextlib.contextmanager
def _quiet_hf() -> Iterator[None]:
    """No tqdm bars on stderr while loading and saving (this library reports through its caller)."""
    from transformers.utils import logging as hf_logging

    logger: Any = hf_logging
    was_on = logger.is_progress_bar_enabled()
    logger.disable_progress_bar()
    try:
        yield
    finally:
        if was_on:
            logger.enable_progress_bar()


def bnb_config(recipe: Mapping[str, Any]) -> Any:
    """transformers.BitsAndBytesConfig from the recipe's arguments (dtype names become torch dtypes)."""
    import torch
    import transformers

    args = dict(recipe["BitsAndBytesConfig"])
    if "bnb_4bit_compute_dtype" in args:
        args["bnb_4bit_compute_dtype"] = getattr(torch, str(args["bnb_4bit_compute_dtype"]))
    tf: Any = transformers
    return tf.BitsAndBytesConfig(**args)


def quantize_bnb(
    source: Path, out: Path, recipe: Mapping[str, Any], *, device: str, method: str
) -> dict[str, Any]:
    """Load `source` quantized by bitsandbytes and save it to `out` (model, tokenizer); return tool facts."""
    try:
        import torch
        import transformers
    except ImportError as exc:
        raise UnsupportedQuantization(
            f"{method} needs transformers and bitsandbytes (the hf extra): {exc}", method=method
        ) from exc
    if device == "cuda" and not torch.cuda.is_available():
        raise UnsupportedQuantization(
            f"--device cuda: this venv's torch {torch.__version__} has no CUDA; use --device cpu",
            method=method,
        )
    tf: Any = transformers
    try:
        with _quiet_hf():
            model = tf.AutoModelForCausalLM.from_pretrained(
                source,
                quantization_config=bnb_config(recipe),
                device_map=device,
                dtype=torch.bfloat16,
                local_files_only=True,
            )
            # Saved before any forward pass (see the module docstring).
            model.save_pretrained(out)
            tokenizer = tf.AutoTokenizer.from_pretrained(source, local_files_only=True)
            tokenizer.save_pretrained(out)
    except (UnsupportedQuantization, KeyboardInterrupt):
        raise
    except Exception as exc:  # transformers and bitsandbytes raise many types
        raise QuantizeFailed(
            f"bitsandbytes {method} failed on {source}: {type(exc).__name__}: {exc}"
        ) from exc
    return {"versions": {p: _version(p) for p in PACKAGES}, "cuda": bool(torch.cuda.is_available())}


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None
