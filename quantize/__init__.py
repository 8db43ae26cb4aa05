"""Turn a checkpoint into a smaller checkpoint: bitsandbytes, llm-compressor, memory estimates, manifests.

`plan_quantize(QuantizeSpec)` checks everything that can fail before any work and returns the plan
(what `--dry-run` prints); `run_quantize(plan)` writes the checkpoint and its `llmbench-quant.json`.
"""

from quantize.manifest import MANIFEST, QuantManifest, read_manifest
from quantize.methods import METHODS, Method, get_method, method_for_registry, method_names
from quantize.preflight import folder_sizes, plan_quantize
from quantize.run import run_quantize
from quantize.spec import CalibrationSet, QuantizeResult, QuantizeSpec, QuantPlan, Sizes, SourceModel

__all__ = [
    "MANIFEST",
    "METHODS",
    "CalibrationSet",
    "Method",
    "QuantManifest",
    "QuantPlan",
    "QuantizeResult",
    "QuantizeSpec",
    "Sizes",
    "SourceModel",
    "folder_sizes",
    "get_method",
    "method_for_registry",
    "method_names",
    "plan_quantize",
    "read_manifest",
    "run_quantize",
]
