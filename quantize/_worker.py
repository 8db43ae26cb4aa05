"""Run one llm-compressor job. Executed by the interpreter of .venv-quant, never imported by llmbench.

Usage: `python _worker.py JOB.json`. The job names the source folder, the output folder, the recipe (one
modifier: {"QuantizationModifier" | "GPTQModifier": {...arguments}}), the device, the calibration prompts
and the lengths. It imports only the standard library and what .venv-quant holds, and writes
{"versions": ..., "recipe_yaml": ..., "seconds": ...} to the job's `result` path when it succeeds.
Exit code 3: the job cannot run here (e.g. CUDA asked for and absent).
"""

from __future__ import annotations

import json
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("llmcompressor", "compressed-tensors", "transformers", "torch")


def _render(tokenizer: Any, texts: list[str], chat: bool) -> list[str]:
    if not chat or not getattr(tokenizer, "chat_template", None):
        return texts
    return [
        tokenizer.apply_chat_template(
            [{"role": "user", "content": t}], tokenize=False, add_generation_prompt=True
        )
        for t in texts
    ]


def run(job: dict[str, Any]) -> dict[str, Any]:
    """Load, apply the recipe with oneshot, save compressed; return what the manifest records."""
    import torch
    from llmcompressor import oneshot
    from llmcompressor.modifiers.quantization import GPTQModifier, QuantizationModifier
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if job["device"] == "cuda" and not torch.cuda.is_available():
        print("llmbench-worker: --device cuda but this venv's torch sees no CUDA device", file=sys.stderr)
        sys.exit(3)
    torch.manual_seed(int(job.get("seed", 0)))
    started = time.perf_counter()
    source, out = job["source"], Path(job["out"])
    tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.bfloat16, local_files_only=True)
    ((name, arguments),) = job["recipe"].items()
    modifier = {"GPTQModifier": GPTQModifier, "QuantizationModifier": QuantizationModifier}[name](**arguments)
    kwargs: dict[str, Any] = {}
    calibration = job.get("calibration")
    if calibration:
        from datasets import Dataset

        samples = int(job["samples"])
        texts = _render(tokenizer, list(calibration["texts"])[:samples], bool(calibration["chat"]))
        limit = int(
            getattr(model.config, "max_position_embeddings", job["max_seq_len"]) or job["max_seq_len"]
        )
        kwargs = {
            "dataset": Dataset.from_dict({"text": texts}),
            "num_calibration_samples": len(texts),
            "max_seq_length": min(int(job["max_seq_len"]), limit),
            "shuffle_calibration_samples": False,
            "tokenizer": tokenizer,
        }
    oneshot(model=model, recipe=modifier, **kwargs)
    model.save_pretrained(out, save_compressed=True)
    tokenizer.save_pretrained(out)
    recipe_file = out / "recipe.yaml"
    return {
        "versions": {p: metadata.version(p) for p in PACKAGES},
        "recipe_yaml": recipe_file.read_text(encoding="utf-8") if recipe_file.is_file() else None,
        "seconds": time.perf_counter() - started,
        "cuda": bool(torch.cuda.is_available()),
    }


def main(argv: list[str]) -> int:
    job = json.loads(Path(argv[1]).read_text(encoding="utf-8"))
    result = run(job)
    Path(job["result"]).write_text(json.dumps(result), encoding="utf-8")
    print("llmbench-worker: done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
