"""The object every command receives: settings, and the registry loaded on first use."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from bench.errors import UsageError
from bench.registry import Registry, load_registry
from bench.settings import Settings


class AppContext:
    """Settings plus lazily loaded shared state for the commands."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @cached_property
    def registry(self) -> Registry:
        """The shipped models.yaml merged with the user's overlays."""
        return load_registry(self.settings.overlays)


def check_writable(path: Path, flag: str) -> None:
    """UsageError now, before any work, when `path` cannot be written (its folder is made if missing)."""
    target = path.expanduser()
    fix = f"give {flag} a file in a folder you can write to"
    if target.is_dir():
        raise UsageError(f"{target} is a directory; give a file path", flag=flag)
    folder = target.parent
    blocker = next((f for f in (folder, *folder.parents) if f.exists() and not f.is_dir()), None)
    if blocker is not None:
        raise UsageError(f"cannot write {target}: {blocker} is a file, not a folder; {fix}", flag=flag)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create the folder {folder}: {exc.strerror}; {fix}", flag=flag) from exc
    existed = target.exists()
    try:
        with target.open("a", encoding="utf-8"):
            pass  # really opening it is the only check that holds for root and read-only mounts alike
    except OSError as exc:
        raise UsageError(f"cannot write {target}: {exc.strerror}; {fix}", flag=flag) from exc
    if not existed:
        target.unlink(missing_ok=True)
