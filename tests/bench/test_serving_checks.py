"""`serve` refuses what a backend would ignore, names bad values, and knows a model that was never pulled."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from test_serving import OVERLAY, SHA_A, run_cli

from bench.errors import ConfigError, UsageError
from bench.serving.plan import ServeOptions, parse_engine_args, plan_serve
from bench.settings import Settings
from serve.vllm.command import VllmEngine

ENGINE = VllmEngine(prefix=("python", "-m", "vllm.entrypoints.openai.api_server"), style="module", source="t")
LOCAL = """
  tiny:
    builtin: tiny-random
    license: apache-2.0
    context: {native: 2048, served: 512}
"""


@pytest.fixture
def models_overlay() -> str:
    return OVERLAY + LOCAL


def plan(registry, tmp_path: Path, name: str, **options):  # type: ignore[no-untyped-def]
    return plan_serve(
        registry,
        Settings(home=tmp_path / "home"),
        name,
        ServeOptions(**options),
        env={"HF_HUB_OFFLINE": "1"},
        cwd=tmp_path,
        gpu_query=lambda: None,  # no GPU here
        find_engine=lambda o, c, e: ENGINE,
    )


@pytest.mark.parametrize(
    ("name", "options", "flag"),
    [
        ("tiny", {"backend": "vllm", "gpu_memory_utilization": 0.5}, "--gpu-memory-utilization"),
        ("tiny", {"backend": "hf", "tp": 2}, "--tp"),
        ("tiny", {"backend": "hf", "gpus": "0"}, "--gpus"),
        ("tiny", {"backend": "hf", "engine_args": {"dtype": "float16"}}, "--engine-arg"),
        ("tiny", {"backend": "hf", "engine_args": {"max-num-seqs": 4}}, "--engine-arg"),
        ("tiny", {"backend": "mock", "max_model_len": 128}, "--max-model-len"),
        ("tiny", {"backend": "vllm", "strict": False}, "--strict/--no-strict"),
        ("big-llama", {"backend": "vllm", "device": "cuda", "nodes": 2}, "--ray-address"),
    ],
)
def test_flags_a_backend_would_ignore_are_refused(
    registry, tmp_path: Path, name: str, options: dict[str, object], flag: str
) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UsageError) as err:
        plan(registry, tmp_path, name, **options)
    assert err.value.flag == flag
    assert "pydantic" not in str(err.value)


@pytest.mark.parametrize("pair", ["max-model-len=abc", "max-model-len=0", "gpu-memory-utilization=1.5"])
def test_a_bad_engine_arg_value_names_the_flag(pair: str) -> None:
    with pytest.raises(UsageError, match="must be") as err:
        parse_engine_args([pair])
    assert err.value.flag == "--engine-arg"


def test_cli_user_errors_exit_2_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLMBENCH_VLLM_PYTHON", sys.executable)  # vLLM "found" with or without .venv-vllm
    overlay = tmp_path / "models.yaml"
    overlay.write_text(OVERLAY, encoding="utf-8")
    cases = [
        (["serve", "big-llama", "--engine-arg", "max-model-len=abc", "--dry-run"], "max-model-len='abc'"),
        (
            ["serve", "big-llama", "--backend", "vllm", "--nodes", "2", "--device", "cuda", "--dry-run"],
            "--ray-address",
        ),
    ]
    for argv, needle in cases:
        code = run_cli(["--models-file", str(overlay), *argv])
        err = capsys.readouterr().err
        assert code == 2, err
        assert needle in err and "Traceback" not in err and "this is a bug" not in err
        assert "errors.pydantic.dev" not in err


def test_a_hub_model_that_was_never_pulled_is_refused_before_start(registry, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    got = plan(registry, tmp_path, "big-llama", backend="vllm", device="cuda")
    assert isinstance(got.blocker, ConfigError)
    assert "is not pulled" in str(got.blocker) and "llmbench pull big-llama" in got.blocker.fix
    assert SHA_A[:12] in str(got.blocker)
    from serve.lifecycle import prepare

    with pytest.raises(ConfigError, match="is not pulled"):
        prepare(got, lambda _m: None)  # before any engine is started
    pulled = plan(registry, tmp_path, "big-llama", backend="vllm", device="cuda", pull=True)
    assert pulled.blocker is None and pulled.pull is not None and pulled.pull.revision == SHA_A


def test_mock_backend_honours_the_key_and_strictness(
    registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("TEAM_KEY", "k-123456789")
    got = plan_serve(
        registry,
        Settings(home=tmp_path / "home"),
        "tiny",
        ServeOptions(backend="mock", api_key_env="TEAM_KEY", strict=False),
    )
    assert got.spec.api_key is not None and got.spec.api_key.get_secret_value() == "k-123456789"  # type: ignore[union-attr]
    assert got.spec.strict is False  # type: ignore[union-attr]
    assert "k-123456789" not in got.spec.model_dump_json()
