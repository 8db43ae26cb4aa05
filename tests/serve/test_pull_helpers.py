"""Helpers shared by pull tests: a huggingface_hub cache layout built on disk (no tests here)."""

from __future__ import annotations

import hashlib
from pathlib import Path

SHA = "0123456789abcdef0123456789abcdef01234567"


def make_hub_cache(cache: Path, repo: str, files: dict[str, bytes], sha: str = SHA) -> Path:
    """The huggingface_hub cache layout: blobs by hash, snapshot symlinks, refs/main; returns the snapshot."""
    root = cache / ("models--" + repo.replace("/", "--"))
    snapshot = root / "snapshots" / sha
    (root / "blobs").mkdir(parents=True)
    snapshot.mkdir(parents=True)
    (root / "refs").mkdir()
    (root / "refs" / "main").write_text(sha)
    for name, data in files.items():
        blob = root / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        (snapshot / name).symlink_to(Path("../../blobs") / blob.name)
    return snapshot
