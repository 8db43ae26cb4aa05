"""`run_load`: the library function behind `llmbench bench load`.

One validated LoadSpec in: resolve the target (a mock entry is served in its own process for the run),
identify and check it before any load, then hand the measuring to a loadgen LoadSession with a streaming
client and the store's RunSink (every profile value its own stored run, records written as they complete,
the server's /metrics sampled). Progress goes to an injected callback; nothing here prints. A run that
stops early is stored as partial and the result carries a RunAbortedError for the caller to raise once it
has rendered what was measured.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from bench.clients import ClientConfig, make_client, worker_client
from bench.errors import RunAbortedError, UsageError
from bench.loadgen.results import ProgressCallback, RunResult
from bench.loadgen.server_metrics import metrics_url
from bench.loadgen.session import Endpoint, LoadSession
from bench.loadgen.spec import LoadSpec
from bench.loadgen.traffic import WorkloadTraffic
from bench.loadgen.workers import WorkerSetup
from bench.prompts import PromptSpec
from bench.prompts.templates import PromptTemplate
from bench.registry import Registry
from bench.runs.opening import check_hardware, opened, run_provenance
from bench.runs.provenance import is_loopback
from bench.runs.targets import Target, resolve_target
from bench.runs.writer import StoreRunSink
from bench.settings import Settings
from bench.tokenizer import TextTokenizer, load_tokenizer

SCHEMA = "llmbench.load/1"


@dataclass(slots=True)
class LoadResult:
    """Every run of one invocation; `aborted` is set when a run stopped early (raise it after rendering)."""

    target: Target
    store_path: Path
    runs: list[RunResult] = field(default_factory=list)
    group_id: str = field(default_factory=lambda: uuid.uuid4().hex)  # shared by this invocation's runs
    aborted: RunAbortedError | None = None

    def to_json(self) -> dict[str, Any]:
        """The llmbench.load/1 document written by --out (never holds an API key)."""
        return {
            "schema": SCHEMA,
            "target": self.target.to_json(),
            "runs": [r.to_json() for r in self.runs],
            "store": str(self.store_path),
            "group_id": self.group_id,
            "complete": self.aborted is None,
        }


def run_load(
    spec: LoadSpec,
    settings: Settings,
    registry: Registry,
    *,
    progress: ProgressCallback | None = None,
    env: Mapping[str, str] | None = None,
    handle_sigint: bool = True,
    template: PromptTemplate | None = None,
) -> LoadResult:
    """Run every profile value of `spec` against its target; see the module docstring. With `template`
    every prompt is asked through it (a prompt version; stored whole in the run's prompts)."""
    resolved = resolve_target(
        spec.target,
        registry,
        settings,
        url=spec.url,
        model=spec.model,
        api=spec.api,
        tokenizer=spec.tokenizer,
        headers=spec.headers,
        env=env,
    )
    prompts = with_template(spec.prompt_spec(resolved.api), template)
    tokenizer = load_tokenizer(resolved.tokenizer)
    # A workload file is read and checked against the flags before any server starts.
    traffic = None if spec.workload is None else WorkloadTraffic(spec, tokenizer)
    check_hardware(registry, spec.hardware)
    with opened(resolved, settings, spec.server_kind) as target:
        result = LoadResult(target=target, store_path=spec.store or settings.results_path)
        _run_async(_measure(spec, registry, result, prompts, tokenizer, progress, handle_sigint, traffic))
        return result


async def _measure(
    spec: LoadSpec,
    registry: Registry,
    result: LoadResult,
    prompts: PromptSpec,
    tokenizer: TextTokenizer,
    progress: ProgressCallback | None,
    handle_sigint: bool,
    traffic: WorkloadTraffic | None = None,
) -> None:
    """Check the endpoint, record provenance, then run the session into the store; fills `result`."""
    target = result.target
    config = ClientConfig(
        base_url=target.url,
        model=target.model,
        api_key=target.api_key,
        api_key_env=target.api_key_env,
        server_kind=target.server_kind,
        headers=dict(target.headers),
        timeout_s=spec.timeout_s,
        tokenizer=None if tokenizer.approximate else tokenizer,
        # Sessions send the answers back as history: their records keep the text.
        keep_text=traffic is not None and traffic.pacing == "sessions",
    )
    async with make_client(target.api, config) as client:
        await client.check()  # unreachable server or unknown model: fail before any load
        extra = {"load_spec": spec.redacted(), "prompts": prompts.model_dump(mode="json")}
        if traffic is not None:
            extra["workload"] = {
                "file": str(traffic.path),
                "sha256": traffic.sha256,
                "kind": traffic.workload.kind,
            }
        provenance = await asyncio.to_thread(
            run_provenance, target, registry, hardware=spec.hardware, extra=extra
        )
        sink = StoreRunSink(
            result.store_path,
            target.to_json(),
            provenance,
            group_id=result.group_id,
            sweep_id=spec.sweep_id,
            point_id=spec.point_id,
        )
        async with sink:
            session = LoadSession(
                spec, client, sink, endpoint(target, config), prompts, tokenizer,
                progress=progress, group_id=result.group_id, traffic=traffic,
                workers=worker_setup(spec, target, config),
            )  # fmt: skip
            try:
                await session.run(handle_sigint)
            finally:
                result.runs, result.aborted = session.runs, session.aborted


def with_template(prompts: PromptSpec, template: PromptTemplate | None) -> PromptSpec:
    """`prompts` asked through `template` (None: unchanged); UsageError naming --template when the prompts
    cannot take one (a completions API)."""
    if template is None:
        return prompts
    try:
        return PromptSpec.model_validate({**prompts.model_dump(), "template": template})
    except ValidationError as exc:
        message = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
        raise UsageError(
            f"prompt template {template.name}@{template.version}: {message}", flag="--template"
        ) from exc


def endpoint(target: Target, config: ClientConfig) -> Endpoint:
    """What the session needs to know about a served target."""
    return Endpoint(
        server_kind=target.server_kind,
        server_kind_from=None if target.identity is None else target.identity.detected_by,
        sends_extras=config.sends_extras,
        metrics_url=metrics_url(target.url) if target.exposes_metrics else None,
        headers=dict(target.headers),
    )


def worker_setup(spec: LoadSpec, target: Target, config: ClientConfig) -> WorkerSetup | None:
    """--workers: each worker process builds the same client (its tokenizer loaded there). `auto` leaves one
    core to this process (the store writer, the display) and one more to a server on this machine (a
    loopback URL: a mock, or a GPU server's API process)."""
    if spec.workers is None:
        return None
    tokenizer = None if config.tokenizer is None else target.tokenizer
    factory = functools.partial(worker_client, target.api, replace(config, tokenizer=None), tokenizer)
    return WorkerSetup(factory, spec.workers, reserved=1 + is_loopback(target.url))


def _run_async(coro: Coroutine[Any, Any, None]) -> None:
    """asyncio.run on uvloop when it is installed (a faster loop, steadier send times)."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(coro)
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(coro)
