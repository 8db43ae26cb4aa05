"""`llmbench models fit`: every variant side by side, from checkpoints or labelled estimates; n/a, not 0."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from fixtures_vllm import LLMBENCH, cli_env

from bench.errors import UsageError
from bench.registry import load_registry
from bench.serving.fit_table import fit_table
from bench.settings import Settings
from serve.fit import GIB, OVERHEAD_BYTES_PER_DEVICE


def test_every_variant_gets_weights_kv_and_max_sequences(variants_overlay: Path) -> None:
    registry = load_registry([variants_overlay])
    table = fit_table(registry, Settings.from_env(), "tiny-skills:w4a16", "l4-24gb-x1", concurrency=4)
    labels = [r.label for r in table.rows]
    assert labels[0] == "tiny-skills"  # the base first, then its variants
    assert sorted(labels[1:]) == [f"tiny-skills:{m}" for m in ("fp8-dynamic", "int8", "nf4", "w4a16", "w8a8")]
    usable = int(1 * 22.5 * GIB * 0.9)
    served = 8192  # tiny-skills' served context (models.yaml)
    assert table.usable_bytes == usable and table.max_model_len == served
    # The fakes: 1 layer, 2 KV heads of 32, hidden 64: K and V in bf16 = 2 × 1 × 2 × 32 × 2 bytes per token.
    per_token = 2 * 1 * 2 * 32 * 2
    for row in table.rows:
        assert row.weight_source == "checkpoint" and row.weight_bytes is not None and row.weight_bytes > 0
        assert row.kv_bytes_per_token == per_token and row.kv_bytes_per_seq == per_token * served
        assert row.max_seqs == (usable - row.weight_bytes - OVERHEAD_BYTES_PER_DEVICE) // (per_token * served)
        assert row.fits is True and row.reason is None
    base = table.rows[0]
    # The fake base is float32 on disk; vLLM holds 32-bit tensors of an unquantized model as 16-bit.
    assert base.weight_bytes == 2 * (32 * 64 + 256 * 64)


def test_an_unpulled_model_gets_labelled_estimates_and_reasons() -> None:
    registry = load_registry()
    table = fit_table(registry, Settings.from_env(), "llama-3.1-70b-instruct", "h100-80gb-x1")
    base, fp8 = table.rows
    assert base.weight_source == "estimate: params_b × 2.0 B" and base.weight_bytes == int(70e9 * 2)
    assert base.kv_bytes_per_token is None and "pull the model" in (base.reason or "")
    assert (base.max_seqs, base.fits) == (0, False)  # 130 GiB of weights cannot fit in 72 GiB, KV or not
    assert fp8.weight_bytes == int(70e9 * 1.02) and (fp8.max_seqs, fp8.fits) == (None, None)  # unknown


def test_not_a_hardware_profile_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="not a hardware profile"):
        fit_table(load_registry(), Settings.from_env(), "tiny-skills", "gpt-4o")


@pytest.mark.slow  # about 1.0 s: scripts/test runs it, scripts/check stays under a minute
def test_cli_prints_the_table_and_the_json(variants_overlay: Path, hermetic_env: Path) -> None:
    args = [*LLMBENCH, "--models-file", str(variants_overlay), "models", "fit", "tiny-skills",
            "--hardware", "a10g-24gb-x1", "--max-model-len", "128", "--concurrency", "2"]  # fmt: skip
    done = subprocess.run(args, capture_output=True, text=True, env=cli_env(hermetic_env), timeout=60)
    assert done.returncode == 0, done.stderr
    for column in ("weights", "KV/token", "KV/seq (128)", "max seqs", "fits c=2", "tiny-skills:w4a16"):
        assert column in done.stdout
    done = subprocess.run(
        [*args, "--json"], capture_output=True, text=True, env=cli_env(hermetic_env), timeout=60
    )
    data = json.loads(done.stdout)
    assert data["schema"] == "llmbench.fit/1" and data["max_model_len"] == 128 and len(data["rows"]) == 6
