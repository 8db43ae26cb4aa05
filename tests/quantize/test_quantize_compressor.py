"""llm-compressor in .venv-quant on the trained tiny model, and what a failed run leaves behind (nothing)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fixtures_quant import fake_checkpoint, require_quant

from quantize import CalibrationSet, QuantizeSpec, SourceModel, plan_quantize, run_quantize
from quantize.errors import QuantizeFailed

CAL = CalibrationSet(name="builtin:general", texts=[f"What is {i} + {2 * i}?" for i in range(16)])


def spec(src: Path, method: str, out: Path, python: Path) -> QuantizeSpec:
    return QuantizeSpec(
        source=SourceModel(name="tiny-skills", path=src, builtin="tiny-skills"),
        method=method,
        out_dir=out,
        variant_name=f"tiny-skills-{method}",
        calibration=CAL,
        samples=16,
        quant_python=python,
    )


def test_a_failed_tool_leaves_no_folder_that_looks_complete(tmp_path: Path) -> None:
    src = fake_checkpoint(tmp_path / "src")
    python = tmp_path / "python"
    # Passes the import probe (`python -c ...`), then fails the job the way a crashing worker does.
    script = '[ "$1" = "-c" ] && exit 0\necho "RuntimeError: out of memory while packing"\nexit 1\n'
    python.write_text("#!/bin/sh\n" + script, encoding="utf-8")
    python.chmod(0o755)
    models = tmp_path / "models"
    models.mkdir()
    plan = plan_quantize(spec(src, "fp8-dynamic", models / "tiny-fp8", python), has_gpu=lambda: False)
    log = tmp_path / "logs" / "q.log"
    with pytest.raises(QuantizeFailed) as info:
        run_quantize(plan, log_file=log)
    assert "exit code 1" in str(info.value) and str(log) in str(info.value)
    assert "out of memory while packing" in info.value.log_tail
    assert list(models.iterdir()) == []  # no output, no .partial or .work folder


@pytest.mark.slow
@pytest.mark.parametrize(("method", "fmt"), [("fp8-dynamic", "float-quantized"), ("w4a16", "pack-quantized")])
def test_llm_compressor_writes_a_compressed_tensors_checkpoint(
    method: str, fmt: str, tiny_skills_dir: Path, tmp_path: Path
) -> None:
    python = require_quant()
    out = tmp_path / f"tiny-skills-{method}"
    plan = plan_quantize(spec(tiny_skills_dir, method, out, python), has_gpu=lambda: False)
    result = run_quantize(plan, log_file=tmp_path / "q.log")
    config = json.loads((out / "config.json").read_text())
    quant = config["quantization_config"]
    assert quant["quant_method"] == "compressed-tensors" and quant["format"] == fmt
    assert quant["ignore"] == ["lm_head"]
    m = result.manifest
    assert m["tool"]["name"] == "llm-compressor" and m["tool"]["version"] == "0.14.0.1"
    assert m["tool"]["packages"]["compressed-tensors"] == "0.19.0"
    assert m["format"] == "compressed-tensors" and m["recipe_yaml"]
    assert result.after.weights_bytes < 0.35 * result.before.weights_bytes
    assert (out / "tokenizer.json").is_file() and (out / "llmbench-quant.json").is_file()
    if method == "w4a16":
        weights = quant["config_groups"]["group_0"]["weights"]
        assert (weights["num_bits"], weights["group_size"]) == (4, 64)  # 128 does not fit hidden size 64
        cal = m["calibration"]
        assert cal["name"] == "builtin:general" and cal["samples"] == 16
        assert cal["sha256"] == CAL.take(16).sha256
    else:
        assert m["calibration"] is None  # FP8-dynamic needs no calibration
