"""Run provenance: versions, git sha of a checkout, hardware, GPUs from nvidia-smi; never a host name."""

from __future__ import annotations

import json
import os
import platform
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import bench
from bench.runs.provenance import collect_provenance, git_info, gpus, parse_nvidia_smi


def fake_exe(folder: Path, name: str, body: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    exe = folder / name
    exe.write_text(f"#!{sys.executable}\nimport sys\n{body}\n")
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)


def test_collects_versions_engine_and_hardware() -> None:
    prov = collect_provenance("vllm", "0.32.0", {"engine_args": ["--enforce-eager"]})
    assert prov["llmbench"]["version"] == bench.__version__
    assert prov["python"]["version"] == platform.python_version()
    assert prov["engine"] == {"name": "vllm", "version": "0.32.0"}
    assert prov["extra"] == {"engine_args": ["--enforce-eager"]}
    assert prov["cpu"]["count"] == os.cpu_count() and prov["cpu"]["usable"] >= 1
    assert prov["ram_bytes"] > 100 * 2**20
    assert prov["os"]["system"] == platform.system()
    assert prov["collected_at"].endswith("Z")
    assert isinstance(prov["gpus"], list)
    text = json.dumps(prov)  # plain JSON data
    host = socket.gethostname()
    if len(host) >= 4:
        assert host not in text


def test_git_sha_of_a_checkout(tmp_path: Path) -> None:
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", "-c", "commit.gpgsign=false"]
    subprocess.run([*git, "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "f.txt").write_text("a")
    subprocess.run([*git, "-C", str(tmp_path), "add", "f.txt"], check=True)
    subprocess.run([*git, "-C", str(tmp_path), "commit", "-qm", "x"], check=True)
    sha = subprocess.run(
        ["git", "-C", str(tmp_path), "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()
    assert git_info(tmp_path) == {"sha": sha, "dirty": False}
    (tmp_path / "f.txt").write_text("b")
    assert git_info(tmp_path) == {"sha": sha, "dirty": True}


def test_git_sha_is_none_outside_a_checkout_or_without_git(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert git_info(tmp_path) == {"sha": None, "dirty": None}
    (tmp_path / ".git").mkdir()  # not a real repository: git fails, provenance does not
    assert git_info(tmp_path) == {"sha": None, "dirty": None}
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert git_info(tmp_path) == {"sha": None, "dirty": None}


def test_gpus_from_nvidia_smi_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    fake_exe(
        bin_dir,
        "nvidia-smi",
        "assert '--format=csv,noheader,nounits' in sys.argv\n"
        "print('NVIDIA H100 80GB HBM3, 81559, 550.54.15')\nprint('NVIDIA H100 80GB HBM3, 81559, 550.54.15')",
    )
    monkeypatch.setenv("PATH", str(bin_dir))
    assert gpus() == [{"name": "NVIDIA H100 80GB HBM3", "memory_mib": 81559, "driver": "550.54.15"}] * 2
    assert collect_provenance()["gpus"][0]["name"] == "NVIDIA H100 80GB HBM3"


def test_no_gpus_when_nvidia_smi_is_absent_or_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    assert gpus() == []
    fake_exe(tmp_path / "bin", "nvidia-smi", "print('NVIDIA-SMI has failed'); sys.exit(9)")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    assert gpus() == []


def test_parse_nvidia_smi_tolerates_odd_lines() -> None:
    text = "\nTesla T4, [N/A], 535.1\nbroken line\nA100-SXM4-40GB, 40960, 535.1\n"
    assert parse_nvidia_smi(text) == [
        {"name": "Tesla T4", "memory_mib": None, "driver": "535.1"},
        {"name": "A100-SXM4-40GB", "memory_mib": 40960, "driver": "535.1"},
    ]
