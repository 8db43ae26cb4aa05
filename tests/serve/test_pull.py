"""`pull`: resolve from a local hub cache offline; gated, disk space and pickle filter with a fake HfApi."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import httpx2  # huggingface_hub's HTTP client
import pytest
from test_pull_helpers import SHA, make_hub_cache

from serve.errors import DiskSpaceError, GatedModelError, PullError
from serve.pull import MANIFEST, PullSpec, pull_hub, read_manifest, wanted

GIB = 1024**3


FILES = {"config.json": b'{"model_type": "llama"}', "model.safetensors": b"\0" * 64, "tokenizer.json": b"{}"}


def test_offline_resolves_from_cache(tmp_path: Path) -> None:
    snapshot = make_hub_cache(tmp_path / "hub", "org/tiny", FILES)
    spec = PullSpec(name="tiny", repo="org/tiny", manifest_dir=tmp_path / "models" / "tiny",
                    cache_dir=tmp_path / "hub", offline=True)  # fmt: skip
    result = pull_hub(spec)
    assert result.path == snapshot and result.revision == SHA and result.source == "cache"
    assert result.files == sorted(FILES)
    manifest = json.loads((tmp_path / "models" / "tiny" / MANIFEST).read_text())
    assert manifest["revision"] == SHA and manifest["repo"] == "org/tiny"
    again = read_manifest(tmp_path / "models" / "tiny")
    assert again is not None and again.path == snapshot


def test_offline_pinned_revision_and_missing_repo(tmp_path: Path) -> None:
    make_hub_cache(tmp_path / "hub", "org/tiny", FILES)
    pinned = PullSpec(name="t", repo="org/tiny", revision=SHA, manifest_dir=tmp_path / "m",
                      cache_dir=tmp_path / "hub", offline=True)  # fmt: skip
    assert pull_hub(pinned).revision == SHA
    missing = pinned.model_copy(update={"repo": "org/absent"})
    with pytest.raises(PullError, match="not in the local hub cache") as exc:
        pull_hub(missing)
    assert exc.value.__cause__ is not None


class FakeHubApi:
    """Implements the one HfApi method pull calls."""

    def __init__(
        self, files: dict[str, int], gated: bool | str = False, error: Exception | None = None
    ) -> None:
        self.files = files
        self.gated = gated
        self.error = error
        self.calls: list[dict[str, Any]] = []

    def model_info(self, repo_id: str, *, revision: str | None = None, files_metadata: bool = False,
                   token: str | None = None) -> Any:  # fmt: skip
        self.calls.append({"repo": repo_id, "revision": revision, "files_metadata": files_metadata})
        if self.error is not None:
            raise self.error
        siblings = [SimpleNamespace(rfilename=f, size=s) for f, s in self.files.items()]
        return SimpleNamespace(sha=SHA, siblings=siblings, gated=self.gated)


class FakeDownload:
    """Writes the files that pass the patterns into a snapshot folder, like snapshot_download does."""

    def __init__(self, root: Path, files: dict[str, int]) -> None:
        self.root = root
        self.files = files
        self.calls: list[dict[str, Any]] = []

    def __call__(self, repo: str, **kwargs: Any) -> str:
        self.calls.append(kwargs)
        snap = self.root / "snapshots" / kwargs["revision"]
        snap.mkdir(parents=True, exist_ok=True)
        allow_pickle = "*.bin" in kwargs["allow_patterns"]
        for name in self.files:
            if wanted(name, allow_pickle):
                (snap / name).write_bytes(b"x")
        return str(snap)


def spec_for(tmp_path: Path, **kw: Any) -> PullSpec:
    base: dict[str, Any] = {"name": "m", "repo": "org/m", "manifest_dir": tmp_path / "models" / "m",
                            "cache_dir": tmp_path / "hub", "offline": False}  # fmt: skip
    return PullSpec(**(base | kw))


def test_gated_without_token_stops_before_download(tmp_path: Path) -> None:
    api = FakeHubApi({"model.safetensors": 10}, gated="manual")
    download = FakeDownload(tmp_path / "dl", api.files)
    with pytest.raises(GatedModelError, match="HF_TOKEN") as exc:
        pull_hub(spec_for(tmp_path), api=api, download=download)
    assert "accept its license" in str(exc.value)
    assert download.calls == []


def test_disk_space_is_checked_against_file_sizes(tmp_path: Path) -> None:
    files = {"model-00001.safetensors": 6 * GIB, "model-00002.safetensors": 4 * GIB, "config.json": 1000}
    download = FakeDownload(tmp_path / "dl", files)
    with pytest.raises(DiskSpaceError) as exc:
        pull_hub(spec_for(tmp_path), api=FakeHubApi(files), download=download, disk_free=lambda p: 2 * GIB)
    assert "10.00 GiB to download" in str(exc.value) and "2.00 GiB free" in str(exc.value)
    assert download.calls == []


def test_safetensors_only_unless_pickle_allowed(tmp_path: Path) -> None:
    files = {"model.safetensors": 100, "pytorch_model.bin": 100, "config.json": 10, "tokenizer.model": 5,
             "original/consolidated.00.pth": 100, "README.md": 1}  # fmt: skip
    download = FakeDownload(tmp_path / "dl", files)
    result = pull_hub(
        spec_for(tmp_path), api=FakeHubApi(files), download=download, disk_free=lambda p: 100 * GIB
    )
    assert result.files == ["config.json", "model.safetensors", "tokenizer.model"]
    assert result.revision == SHA and download.calls[0]["revision"] == SHA
    assert "*.bin" in download.calls[0]["ignore_patterns"]


def test_pickle_only_repo_needs_allow_pickle(tmp_path: Path) -> None:
    files = {"pytorch_model.bin": 100, "config.json": 10}
    download = FakeDownload(tmp_path / "dl", files)
    with pytest.raises(PullError, match="--allow-pickle"):
        pull_hub(spec_for(tmp_path), api=FakeHubApi(files), download=download, disk_free=lambda p: GIB)
    result = pull_hub(spec_for(tmp_path, allow_pickle=True), api=FakeHubApi(files), download=download,
                      disk_free=lambda p: GIB)  # fmt: skip
    assert "pytorch_model.bin" in result.files


def test_hub_errors_are_mapped(tmp_path: Path) -> None:
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError, Response

    def response(status: int) -> Response:
        request = httpx2.Request("GET", "https://huggingface.co/api/models/org/m")
        return Response(status, request=request)

    download = FakeDownload(tmp_path / "dl", {})
    with pytest.raises(PullError, match="cannot reach the hub") as exc:
        pull_hub(
            spec_for(tmp_path), api=FakeHubApi({}, error=httpx.ConnectError("refused")), download=download
        )
    assert isinstance(exc.value.__cause__, httpx.ConnectError)
    not_found = RepositoryNotFoundError("404 Client Error: Repository Not Found", response=response(404))
    with pytest.raises(PullError, match="not found"):
        pull_hub(spec_for(tmp_path), api=FakeHubApi({}, error=not_found), download=download)
    gated = GatedRepoError("403 Client Error: Cannot access gated repo", response=response(403))
    with pytest.raises(GatedModelError, match="accept its license"):
        pull_hub(spec_for(tmp_path), api=FakeHubApi({}, error=gated), download=download)


def run_cli(argv: list[str]) -> int:
    from bench.cli import main

    try:
        main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def test_pull_from_local_cache_then_serve_uses_the_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_python = tmp_path / "venv" / "bin" / "python"
    fake_python.parent.mkdir(parents=True)
    fake_python.write_text("#!/bin/sh\nexit 1\n", encoding="utf-8")
    overlay = tmp_path / "pull.yaml"
    overlay.write_text(
        "schema: llmbench.models/1\nlocal:\n  cached-model:\n    repo: org/cached\n    license: mit\n"
        "    context: {native: 2048, served: 1024}\n",
        encoding="utf-8",
    )
    snapshot = make_hub_cache(
        tmp_path / "hub", "org/cached", {"config.json": b"{}", "model.safetensors": b"x"}
    )
    hub = str(tmp_path / "hub")
    code = run_cli(["--models-file", str(overlay), "pull", "cached-model", "--cache-dir", hub, "--json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert json.loads(out.out)["revision"] == snapshot.name
    serve = [
        "serve",
        "cached-model",
        "--backend",
        "vllm",
        "--device",
        "cpu",
        "--vllm-python",
        str(fake_python),
    ]
    code = run_cli(["--models-file", str(overlay), *serve, "--dry-run"])
    served = capsys.readouterr().out
    assert code == 0
    assert f"--model {snapshot} " in served
    assert "revision:" not in served  # a local folder is already pinned by its manifest
