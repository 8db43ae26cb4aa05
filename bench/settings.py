"""Settings built once in main() from flags and environment, then passed down (no globals)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs

APP = "llmbench"


def user_models_file() -> Path:
    """The user's own registry overlay (`~/.config/llmbench/models.yaml`, under XDG_CONFIG_HOME)."""
    return Path(platformdirs.user_config_dir(APP)) / "models.yaml"


@dataclass(frozen=True)
class Settings:
    """Where llmbench keeps models and results, and which registry overlays apply."""

    home: Path
    overlays: tuple[Path, ...] = ()
    store_path: Path | None = None
    debug: bool = False
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def models_dir(self) -> Path:
        """Cache of pulled and built models."""
        return self.home / "models"

    @property
    def results_path(self) -> Path:
        """The SQLite results store."""
        return self.store_path or self.home / "results.sqlite"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, models_files: Sequence[Path] = ()) -> Settings:
        """Build settings from LLMBENCH_* variables and --models-file flags (flags win)."""
        env = os.environ if env is None else env
        home = Path(env.get("LLMBENCH_HOME") or platformdirs.user_cache_dir(APP)).expanduser()
        overlays: list[Path] = []
        user_file = user_models_file()
        if user_file.is_file():
            overlays.append(user_file)
        for part in (env.get("LLMBENCH_MODELS") or "").split(os.pathsep):
            if part:
                overlays.append(Path(part).expanduser())
        overlays.extend(Path(p).expanduser() for p in models_files)
        store = env.get("LLMBENCH_STORE")
        return cls(
            home=home,
            overlays=tuple(overlays),
            store_path=Path(store).expanduser() if store else None,
            debug=env.get("LLMBENCH_DEBUG") == "1",
        )
