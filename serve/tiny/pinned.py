"""Train in a fresh interpreter with pinned numerical code paths: every x86-64 CPU gets the same weights.

torch picks its CPU kernels by instruction set when it first dispatches (AVX-512 on one host, AVX2 on
another) and MKL picks its GEMM code path by CPU, vendor included: with one seed, a build on an AVX-512
Xeon and one on an AVX2 EPYC differed after the first optimizer step. Checked on this project's machines
(README, "Tiny models"): with PINNED_ENV the weights are bitwise identical whatever the host's kernels
would have been (ATEN_CPU_CAPABILITY avx512/avx2/default, MKL limited to AVX2 or SSE4.2 by
MKL_ENABLE_INSTRUCTIONS, glibc told to hide AVX2/FMA/AVX-512); without it each of those changes the weights.

The variables must be set before torch dispatches and MKL initialises, hence a subprocess
(`python -m serve.tiny.pinned_main`): the caller may have used torch already. It prints progress lines and one
result line, each tagged so that other output on stdout is ignored.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from serve.errors import ModelBuildError

# ATen's AVX2 kernels: present on every x86-64 CPU with AVX2 (torch runs its DEFAULT kernels where they are
# not, and the build records that). MKL's COMPATIBLE branch: the only one its vendor guarantees to give the
# same results on Intel and non-Intel CPUs. One thread: MKL's reproducibility holds for a fixed thread count.
PINNED_ENV: Mapping[str, str] = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "MKL_CBWR": "COMPATIBLE",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}
PINNED_CAPABILITY = "AVX2"  # what torch.backends.cpu.get_cpu_capability() reports under PINNED_ENV
_TAG = "llmbench-build "  # prefix of the lines the parent reads


def numerics() -> dict[str, Any]:
    """The numerical setup of this process: torch's kernel set, the pinning variables, library versions."""
    import torch
    import transformers

    return {
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "env": {key: os.environ.get(key) for key in PINNED_ENV},
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "threads": torch.get_num_threads(),
    }


def run_pinned(
    generator: str,
    folder: Path,
    seed: int,
    say: Callable[[str], None],
    *,
    steps: int | None = None,
    env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Build `generator` into `folder` in a pinned subprocess; returns what the builder returned.

    `env` replaces this process's environment as the base the pinning variables are laid over (tests use it
    to imitate another CPU's defaults); `steps` overrides the recipe's training steps (tiny-skills).
    """
    package_root = Path(__file__).resolve().parents[2]  # the folder holding the `serve` package
    base = dict(os.environ if env is None else env)
    paths = [str(package_root), *filter(None, base.get("PYTHONPATH", "").split(os.pathsep))]
    child_env = {**base, **PINNED_ENV, "PYTHONPATH": os.pathsep.join(dict.fromkeys(paths))}
    argv = [
        sys.executable,
        "-m",
        "serve.tiny.pinned_main",
        generator,
        str(folder),
        str(seed),
        str(steps or 0),
    ]
    with tempfile.TemporaryFile() as errors:
        result: dict[str, Any] | None = None
        with subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=errors, stdin=subprocess.DEVNULL, env=child_env, text=True
        ) as proc:
            try:
                assert proc.stdout is not None
                for line in proc.stdout:
                    if not line.startswith(_TAG):
                        continue
                    kind, _, payload = line[len(_TAG) :].rstrip("\n").partition(" ")
                    if kind == "say":
                        say(payload)
                    elif kind == "result":
                        result = json.loads(payload)
                code = proc.wait()
            finally:
                if proc.poll() is None:  # the caller's progress callback raised: stop the build
                    proc.kill()
                    proc.wait()
        if code != 0 or result is None:
            errors.seek(0)
            tail = errors.read().decode("utf-8", errors="replace").strip().splitlines()[-15:]
            raise ModelBuildError(
                f"building {generator} failed (exit code {code}):\n" + "\n".join("  " + t for t in tail)
            )
    return result


def emit(kind: str, payload: str) -> None:
    out = sys.__stdout__  # the real stdout, also while library output is sent to stderr
    assert out is not None
    out.write(f"{_TAG}{kind} {payload}\n")
    out.flush()


def say(message: str) -> None:
    emit("say", message.replace("\n", " "))
