"""Fixtures of the quantize tests: a model cache holding tiny-skills and one variant per method (fakes)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from fixtures_quant import fake_checkpoint

BNB = {"quant_method": "bitsandbytes", "load_in_4bit": True}
CT = {"quant_method": "compressed-tensors", "format": "float-quantized"}
METHODS = {"nf4": ("bnb-nf4", BNB), "int8": ("bnb-int8", BNB), "fp8-dynamic": ("fp8", CT),
           "w8a8": ("w8a8", CT), "w4a16": ("w4a16", CT)}  # fmt: skip


@pytest.fixture
def variants_overlay(hermetic_env: Path, tmp_path: Path) -> Path:
    """tiny-skills and one variant per method in the cache, registered in an overlay."""
    models = hermetic_env / "models"
    fake_checkpoint(models / "tiny-skills")
    local = {}
    for name, (registry_method, config) in METHODS.items():
        fake_checkpoint(models / f"tiny-skills-{name}", quantization=config)
        local[f"tiny-skills-{name}"] = {
            "builtin": "tiny-skills", "license": "apache-2.0", "context": {"native": 256, "served": 256},
            "chat_template": "chatml", "vllm_args": {"max-model-len": 256, "dtype": "bfloat16"},
            "derived_from": "tiny-skills", "variant": name,
            "quantization": {"method": registry_method, "source": "llmbench"},
        }  # fmt: skip
    overlay = tmp_path / "models.yaml"
    overlay.write_text(yaml.safe_dump({"schema": "llmbench.models/1", "local": local}), encoding="utf-8")
    return overlay
