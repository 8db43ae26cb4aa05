"""llm-compressor as a subprocess from its own venv (.venv-quant): find it, give it a job, map its failures.

llmcompressor pins transformers and compressed-tensors versions that clash with the main venv, so it never
runs in this process (as vLLM runs from .venv-vllm). The interpreter is found from `--quant-python`,
`LLMBENCH_QUANT_PYTHON`, then `.venv-quant/bin/python` in the given folders, in that order. The job goes
to `_worker.py` (stdlib + llmcompressor only) as a JSON file; its result comes back the same way.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from quantize.errors import QuantizeFailed, QuantToolNotFound

ENV_VAR = "LLMBENCH_QUANT_PYTHON"
VENV = ".venv-quant"
WORKER = Path(__file__).with_name("_worker.py")
REPO_ROOT = (
    Path(__file__).resolve().parent.parent
)  # a checkout's root, where scripts/setup-quant puts the venv
_SETUP = "run `bash scripts/setup-quant` (or pass --quant-python / set LLMBENCH_QUANT_PYTHON)"
_PROBE = "import importlib.util as u, sys; sys.exit(u.find_spec('llmcompressor') is None)"
ProbeFn = Callable[[list[str]], bool]


def _probe(argv: list[str]) -> bool:
    try:
        return subprocess.run(argv, capture_output=True, timeout=60, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def find_quant_python(
    explicit: Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    search_dirs: Sequence[Path] = (),
    probe: ProbeFn = _probe,
) -> Path:
    """The interpreter of the llm-compressor venv; QuantToolNotFound says how to make one.

    `search_dirs` are the folders whose .venv-quant is tried (default: the working directory, then the
    checkout this package lives in).
    """
    env = os.environ if env is None else env
    candidates: list[tuple[Path, str]] = []
    if explicit is not None:
        candidates.append((explicit, "--quant-python"))
    elif env.get(ENV_VAR):
        candidates.append((Path(env[ENV_VAR]), ENV_VAR))
    else:
        dirs = list(dict.fromkeys(search_dirs or (Path.cwd(), REPO_ROOT)))
        candidates.extend((d / VENV / "bin" / "python", f"{d / VENV}") for d in dirs)
    for python, source in candidates:
        if not python.exists():
            if source in ("--quant-python", ENV_VAR):
                raise QuantToolNotFound(f"{source} names {python}, which does not exist; {_SETUP}")
            continue
        if not probe([str(python), "-c", _PROBE]):
            raise QuantToolNotFound(f"{python} (from {source}) cannot import llmcompressor; {_SETUP}")
        return python
    looked = ", ".join(str(p) for p, _ in candidates)
    raise QuantToolNotFound(
        f"fp8-dynamic, w8a8 and w4a16 run llm-compressor from its own venv, and none was found "
        f"(looked for {looked}); {_SETUP}"
    )


def worker_env(device: str, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The worker's environment: no PYTHONPATH (its own venv only), offline hub, GPUs hidden on cpu."""
    env = {k: v for k, v in (os.environ if base is None else base).items() if k != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", PYTHONUNBUFFERED="1")
    if device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
    return env


def run_worker(
    python: Path, job: Mapping[str, Any], work_dir: Path, log_file: Path, *, device: str
) -> dict[str, Any]:
    """Run one llm-compressor job; return the worker's result, or raise QuantizeFailed with the log tail."""
    job_file = work_dir / "job.json"
    result_file = work_dir / "result.json"
    job_file.write_text(json.dumps({**job, "result": str(result_file)}), encoding="utf-8")
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("wb") as log:
        proc = subprocess.Popen(
            [str(python), str(WORKER), str(job_file)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=worker_env(device),
            start_new_session=True,
        )  # fmt: skip
        try:
            code = proc.wait()
        except BaseException:  # Ctrl-C: stop the whole worker group, never leave it running
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
    if code != 0 or not result_file.is_file():
        raise QuantizeFailed(
            f"llm-compressor failed (exit code {code}); full log: {log_file}",
            log_tail=_tail(log_file),
            log_file=str(log_file),
        )
    data: dict[str, Any] = json.loads(result_file.read_text(encoding="utf-8"))
    return data


def _tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
