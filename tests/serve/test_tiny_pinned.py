"""tiny-skills trains in a pinned subprocess: the weights do not depend on the kernels the host would pick.

A short build (50 steps) under the pinned setup is bitwise identical whether the environment imitates an
AVX-512 host or an AVX2 one (MKL limited to AVX2, glibc told to hide AVX-512 and FMA); the same builder
without the pinning, on torch's DEFAULT kernels, gives other weights, so the comparison can fail.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from serve.tiny.build import content_sha256
from serve.tiny.pinned import PINNED_CAPABILITY, PINNED_ENV, run_pinned

pytest.importorskip("torch")
STEPS = 50
AVX2_HOST = {
    "ATEN_CPU_CAPABILITY": "avx2",  # what torch would pick there (the pinning replaces it)
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",  # MKL's own dispatch, capped as on a CPU without AVX-512
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX512F,-AVX512VL,-AVX512BW,-AVX512DQ,-FMA,-AVX2",
}


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in PINNED_ENV and k not in AVX2_HOST}


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_pinned_build_is_the_same_whatever_kernels_the_host_offers(tmp_path: Path) -> None:
    said: list[str] = []
    here = run_pinned("tiny-skills", tmp_path / "here", 0, said.append, steps=STEPS, env=_clean_env())
    avx2 = run_pinned(
        "tiny-skills", tmp_path / "avx2", 0, said.append, steps=STEPS, env={**_clean_env(), **AVX2_HOST}
    )
    assert content_sha256(tmp_path / "here") == content_sha256(tmp_path / "avx2")
    assert here["numerics"]["cpu_capability"] == avx2["numerics"]["cpu_capability"] == PINNED_CAPABILITY
    assert here["numerics"]["env"] == dict(PINNED_ENV) and here["scores"] == avx2["scores"]
    assert f"step {STEPS}/{STEPS} loss {here['train_loss']:.4f}" in said

    # The control: the same builder, not pinned, on torch's DEFAULT kernels.
    folder = tmp_path / "unpinned"
    folder.mkdir()
    argv = [sys.executable, "-m", "serve.tiny.pinned", "tiny-skills", str(folder), "0", str(STEPS)]
    env = {**_clean_env(), "ATEN_CPU_CAPABILITY": "default"}
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert content_sha256(folder) != content_sha256(tmp_path / "here")


class _Interrupted(Exception):
    pass


@pytest.mark.slow  # about 3.3 s: scripts/test runs it, scripts/check stays under a minute
def test_a_pinned_build_stopped_by_its_caller_leaves_no_process_and_no_folder(tmp_path: Path) -> None:
    import psutil

    from serve.tiny import build_builtin

    def stop_when_training(message: str) -> None:
        if message.startswith("training"):
            raise _Interrupted

    with pytest.raises(_Interrupted):
        build_builtin("tiny-skills", tmp_path / "model", steps=STEPS, progress=stop_when_training)
    assert list(tmp_path.iterdir()) == []
    assert not [
        p for p in psutil.Process().children(recursive=True) if "serve.tiny.pinned" in " ".join(p.cmdline())
    ]
