"""bitsandbytes nf4 and int8 on the trained tiny model: the saved checkpoint reloads to the same model.

FINDINGS.md: an nf4 model saved after any forward pass reloads wrong (weight error 9% → 24%). The round trip
below (quantize, save, reload, compare logits with quantizing at load time) fails if that ever happens.
"""

from __future__ import annotations

import importlib.metadata
import json
import re
from pathlib import Path
from typing import Any

import pytest

from quantize import QuantizeSpec, SourceModel, plan_quantize, read_manifest, run_quantize
from quantize.bnb import bnb_config

PROMPTS = ["What is 12 + 30?", "Reverse the word 'apple'.", "What is the capital of France?"]


def quantize(src: Path, method: str, out: Path) -> Any:
    spec = QuantizeSpec(
        source=SourceModel(name="tiny-skills", path=src, builtin="tiny-skills"),
        method=method,
        out_dir=out,
        variant_name=f"tiny-skills-{method}",
    )
    plan = plan_quantize(spec, has_gpu=lambda: False)
    messages: list[str] = []
    return plan, run_quantize(plan, messages.append), messages


def logits_and_greedy(model: Any, tokenizer: Any) -> tuple[Any, list[str]]:
    import torch

    texts = [
        tokenizer.apply_chat_template(
            [{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True
        )
        for p in PROMPTS
    ]
    with torch.no_grad():
        ids = tokenizer(texts[0], return_tensors="pt").input_ids
        logits = model(ids).logits.float()
        answers = []
        for text in texts:
            ids = tokenizer(text, return_tensors="pt").input_ids
            out = model.generate(ids, max_new_tokens=12, do_sample=False, pad_token_id=tokenizer.pad_token_id)
            answers.append(tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True))
    return logits, answers


@pytest.mark.slow
@pytest.mark.parametrize("method", ["nf4", "int8"])
def test_saved_checkpoint_reloads_to_the_load_time_quantized_model(
    method: str, tiny_skills_dir: Path, tmp_path: Path
) -> None:
    import torch
    import transformers

    plan, result, messages = quantize(tiny_skills_dir, method, tmp_path / "out")
    assert result.path == tmp_path / "out" and (result.path / "config.json").is_file()
    assert messages[-1] == f"wrote {tmp_path / 'out'}"
    saved = json.loads((result.path / "config.json").read_text())["quantization_config"]
    assert saved["quant_method"] == "bitsandbytes"
    assert saved["load_in_4bit" if method == "nf4" else "load_in_8bit"] is True

    tokenizer = transformers.AutoTokenizer.from_pretrained(result.path)
    reloaded = transformers.AutoModelForCausalLM.from_pretrained(result.path, device_map="cpu")
    at_load = transformers.AutoModelForCausalLM.from_pretrained(
        tiny_skills_dir, quantization_config=bnb_config(plan.recipe), device_map="cpu", dtype=torch.bfloat16
    )
    got_logits, got_answers = logits_and_greedy(reloaded, tokenizer)
    want_logits, want_answers = logits_and_greedy(at_load, tokenizer)
    assert torch.equal(got_logits, want_logits), (got_logits - want_logits).abs().max()
    assert got_answers == want_answers
    assert any(a.strip() for a in got_answers)  # it generates text, not nothing


@pytest.mark.slow
def test_manifest_records_source_tool_recipe_and_sizes(tiny_skills_dir: Path, tmp_path: Path) -> None:
    _, result, _ = quantize(tiny_skills_dir, "nf4", tmp_path / "tiny-skills-nf4")
    manifest = read_manifest(result.path)
    assert manifest is not None
    data = json.loads((result.path / "llmbench-quant.json").read_text())
    assert data == manifest.to_json() == result.manifest
    assert data["schema"] == "llmbench.quant/1"
    assert (data["method"], data["registry_method"], data["format"]) == ("nf4", "bnb-nf4", "bitsandbytes")
    assert data["variant"] == "tiny-skills-nf4" and data["device"] == "cpu"
    assert data["source"]["name"] == "tiny-skills" and data["source"]["path"] == str(tiny_skills_dir)
    assert data["tool"]["name"] == "bitsandbytes"
    assert data["tool"]["version"] == importlib.metadata.version("bitsandbytes")
    assert data["tool"]["packages"]["transformers"] == importlib.metadata.version("transformers")
    assert data["recipe"]["BitsAndBytesConfig"]["bnb_4bit_quant_type"] == "nf4"
    assert data["calibration"] is None  # nf4 needs none
    size = data["size"]
    assert size["before"]["weights_bytes"] > 1_000_000 > 300_000 > size["after"]["weights_bytes"] > 100_000
    assert size["ratio"] == pytest.approx(size["after"]["weights_bytes"] / size["before"]["weights_bytes"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", data["created_at"])
    assert data["seconds"] > 0
    # Nothing half-made is left beside it.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny-skills-nf4"]
