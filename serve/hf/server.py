"""The transformers backend: an OpenAI-compatible FastAPI server with continuous batching.

Public API: `HfServeSpec`, `serve_hf(spec, on_ready)` (blocks until SIGINT/SIGTERM) and
`running_hf(spec)` (a context manager serving from a background thread, for tests and benchmarks).
Base URLs handed out are the server root, e.g. "http://127.0.0.1:8000" (OpenAI clients append "/v1").
"""

from __future__ import annotations

import errno
import json
import logging
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from serve.errors import PortInUseError, ServeError, ServerDiedError, ServerStartError
from serve.hf.engine import HfEngine
from serve.info import runtime_info

log = logging.getLogger(__name__)

_READY_TIMEOUT_S = 30.0


class HfServeSpec(BaseModel):
    """Everything the hf backend needs to start."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model_dir: Path = Field(description="local model folder (config.json, safetensors, tokenizer)")
    served_model_name: str = Field(min_length=1, description="model id clients send; others get 404")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535, description="0 picks a free port")
    dtype: Literal["bfloat16", "float32", "auto"] = "bfloat16"
    max_model_len: int | None = Field(None, ge=1, description="prompt + output tokens; default from config")
    max_batch_size: int = Field(32, ge=1, description="requests decoded together; more wait")
    api_key: str | None = Field(None, repr=False, exclude=True, description="required Bearer key (value)")
    quantization: Literal["bnb-int8", "bnb-nf4"] | None = Field(
        None,
        description="bitsandbytes, applied at load time to a full-precision folder (CPU); a folder saved "
        "quantized (llmbench quantize) loads with its own config",
    )
    seed: int = Field(0, description="seeds requests that sample without their own seed")
    info: dict[str, Any] = Field(default_factory=dict, description="static part of GET /llmbench/info")


def _info(spec: HfServeSpec) -> dict[str, Any]:
    """GET /llmbench/info: the caller's static part, the engine and what this machine runs it on."""
    import transformers

    static = {
        "backend": "hf",
        "accepts_extras": True,  # ignore_eos and min_tokens are honoured
        **spec.info,
        "engine": {"name": "transformers", **dict(spec.info.get("engine") or {})},
        "dtype": spec.dtype,
        "max_model_len": spec.max_model_len,
        "quantization_at_load": spec.quantization,
    }
    return runtime_info(static, engine_version=str(transformers.__version__))


def load_engine(spec: HfServeSpec) -> HfEngine:
    """Load the model and tokenizer of spec into an engine (not started); raises ServerStartError."""
    model_dir = spec.model_dir
    if not (model_dir / "config.json").is_file():
        raise ServerStartError(
            f"no model at {model_dir}: config.json is missing",
            hint="pass a model folder, or download it with `llmbench pull NAME`",
        )
    try:
        import torch
        import transformers
        from transformers.utils import logging as transformers_logging

        # transformers' annotations are partial; treat it as untyped here.
        tf: Any = transformers
        hf_logging: Any = transformers_logging

        dtype: Any = {"bfloat16": torch.bfloat16, "float32": torch.float32, "auto": "auto"}[spec.dtype]
        kwargs: dict[str, Any] = {"dtype": dtype, "local_files_only": True}
        saved = saved_quantization(model_dir)
        if saved is not None:
            # A quantized checkpoint (`llmbench quantize`) carries its own config: passing another one too
            # makes transformers warn and ignore it.
            if saved.get("load_in_8bit"):
                _mute_int8_cast_warning()
            kwargs["device_map"] = "cpu"
        elif spec.quantization is not None:
            compute = torch.float32 if spec.dtype == "float32" else torch.bfloat16
            if spec.quantization == "bnb-int8":
                quant = tf.BitsAndBytesConfig(load_in_8bit=True)
                _mute_int8_cast_warning()
            else:
                quant = tf.BitsAndBytesConfig(
                    load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=compute
                )
            kwargs.update(quantization_config=quant, device_map="cpu")
        # from_pretrained draws a tqdm bar on stderr; this library reports through logging only.
        bar_was_on = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()
        try:
            tokenizer = tf.AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
            model: Any = tf.AutoModelForCausalLM.from_pretrained(model_dir, **kwargs)
        finally:
            if bar_was_on:
                hf_logging.enable_progress_bar()
        model.eval()
        if spec.quantization is None and saved is None and torch.cuda.is_available():
            model.to("cuda")
    except ServeError:
        raise
    except Exception as exc:  # transformers raises many types (OSError, ValueError, ImportError...)
        raise ServerStartError(f"could not load the model from {model_dir}: {exc}") from exc
    limit = getattr(model.config, "max_position_embeddings", None)
    max_len = spec.max_model_len or limit or 2048
    if limit is not None and max_len > limit:
        raise ServerStartError(
            f"max_model_len {max_len} is above the model's max_position_embeddings {limit}",
            hint=f"use --max-model-len {limit} or less",
        )
    return HfEngine(
        model, tokenizer, max_batch_size=spec.max_batch_size, max_model_len=int(max_len), seed=spec.seed
    )


def saved_quantization(model_dir: Path) -> dict[str, Any] | None:
    """The bitsandbytes quantization_config a checkpoint was saved with, or None (full precision or other)."""
    try:
        config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    quant = config.get("quantization_config") if isinstance(config, dict) else None
    if isinstance(quant, dict) and quant.get("quant_method") == "bitsandbytes":
        return quant
    return None


class _DropInt8CastWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("MatMul8bitLt: inputs will be cast")


def _mute_int8_cast_warning() -> None:
    """bitsandbytes logs one cast warning per int8 matmul, i.e. thousands per second while serving."""
    logger = logging.getLogger("bitsandbytes.autograd._functions")
    if not any(isinstance(f, _DropInt8CastWarning) for f in logger.filters):
        logger.addFilter(_DropInt8CastWarning())


def _bind(host: str, port: int) -> socket.socket:
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except socket.gaierror as exc:
        raise ServerStartError(f"cannot resolve host {host!r}: {exc}") from exc
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUseError(
                f"port {port} on {host} is already in use",
                hint="stop the process that holds it, or pick another port with --port",
            ) from exc
        raise ServerStartError(f"cannot bind {host}:{port}: {exc}") from exc
    return sock


def _base_url(host: str, port: int) -> str:
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


@dataclass
class _Running:
    url: str
    engine: HfEngine
    thread: threading.Thread

    def check(self) -> None:
        """Raise ServerDiedError when the engine or the HTTP server stopped on its own."""
        if not self.engine.alive:
            raise ServerDiedError(f"the hf engine stopped: {self.engine.error!r}")
        if not self.thread.is_alive():
            raise ServerDiedError("the hf backend's HTTP server stopped")


@contextmanager
def _running(spec: HfServeSpec) -> Iterator[_Running]:
    import uvicorn

    from serve.hf.app import AppConfig, build_app

    sock = _bind(spec.host, spec.port)
    try:
        engine = load_engine(spec)
        port = sock.getsockname()[1]
        app = build_app(
            engine, AppConfig(spec.served_model_name, engine.max_model_len, spec.api_key, _info(spec))
        )
        config = uvicorn.Config(
            app, log_config=None, access_log=False, lifespan="off", timeout_graceful_shutdown=5
        )
        server = uvicorn.Server(config)
        engine.start()
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="hf-http", daemon=True)
        thread.start()
        deadline = time.monotonic() + _READY_TIMEOUT_S
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                server.should_exit = True
                engine.stop()
                raise ServerStartError(f"the hf backend's HTTP server did not start on port {port}")
            time.sleep(0.01)
        url = _base_url(spec.host, port)
        log.info("hf backend serving %s as %s at %s", spec.model_dir, spec.served_model_name, url)
        try:
            yield _Running(url, engine, thread)
        finally:
            server.should_exit = True
            engine.stop()  # fails open requests so that open streams end and uvicorn can exit
            thread.join(10)
    finally:
        sock.close()


@contextmanager
def running_hf(spec: HfServeSpec) -> Iterator[str]:
    """Serve spec from background threads; yields the base URL (server root, no /v1)."""
    with _running(spec) as running:
        yield running.url


def serve_hf(spec: HfServeSpec, on_ready: Callable[[str], None]) -> None:
    """Load, bind, call on_ready(base_url) once serving, then block until SIGINT/SIGTERM."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    with _running(spec) as running:
        previous: dict[signal.Signals, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                previous[sig] = signal.signal(sig, on_signal)
        try:
            on_ready(running.url)
            while not stop.wait(0.2):
                running.check()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
