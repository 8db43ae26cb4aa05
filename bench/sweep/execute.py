"""One sweep point, run here: (quantize) → serve → readiness → load profiles → accuracy suites → stop.

A local target is served once for the point through the typed serve plan (the point's backend and engine
arguments as ServeOptions, bench.serving.managed) in its own process group; before every run the engine's
prefix cache is reset where the engine allows it (vLLM's /reset_prefix_cache), so runs do not flatter
each other. API and mock targets are measured directly. Every run is stored with the sweep
and point ids as it goes; a point that fails keeps what it measured and says why.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.accuracy.spec import AccuracySpec
from bench.cost import api_cost, from_record
from bench.documents import PointDetail, RepeatStep
from bench.errors import InterruptedRunError, LlmbenchError, NoOperatingPointError, RunAbortedError
from bench.loadgen.spec import LoadSpec
from bench.metrics import RunSummary
from bench.prompts.templates import load_template
from bench.registry import Prices, Registry, load_registry
from bench.runs import run_accuracy, run_load
from bench.serving.managed import managed_server
from bench.serving.plan import ServeOptions, engine_args_from
from bench.settings import Settings, user_models_file
from bench.store import PointStatus
from bench.sweep.plan import Point
from bench.sweep.repeats import repeat_figures
from bench.sweep.spec import load_options, step_template
from serve.errors import ServeError, ServerStartError

Say = Callable[[str], None]


class SpendCapReached(LlmbenchError):
    """The sweep's API spend reached max_usd; what was measured is kept."""


@dataclass
class Spend:
    """API spend so far against the cap (USD); simulated (mock) prices are counted apart."""

    cap: float | None
    spent: float = 0.0
    simulated: float = 0.0

    def add(self, kind: str, usd: float | None) -> None:
        if usd is None:
            return
        if kind == "api":
            self.spent += usd
        elif kind == "mock":
            self.simulated += usd
        if self.cap is not None and self.spent > 0 and self.spent >= self.cap:
            raise SpendCapReached(
                f"the sweep spent ${self.spent:.4f} on API targets, at its cap ${self.cap:g}"
            )


@dataclass
class PointContext:
    """What every point needs: where to store, the sweep's ids, the spend, how to talk to the user."""

    settings: Settings
    registry: Registry
    store_path: Path
    sweep_id: str
    spend: Spend
    say: Say = lambda _m: None


@dataclass
class PointOutcome:
    """How a point ended: its status, the runs it made, why it failed, and what else is worth keeping."""

    status: PointStatus
    run_ids: list[str] = field(default_factory=list)
    error: str | None = None
    detail: PointDetail = field(default_factory=PointDetail)

    def note(self, **fields: Any) -> None:
        """Add fields to the point's detail (bench.documents.PointDetail)."""
        self.detail = self.detail.model_copy(update=fields)


def engine_reason(log_tail: str | None) -> str | None:
    """The line of a server's last output that says why it stopped (an `error:` line, else the last one)."""
    lines = [ln.strip() for ln in (log_tail or "").splitlines() if ln.strip()]
    errors = [ln for ln in lines if "error" in ln.lower()]
    chosen = errors or lines
    return chosen[-1] if chosen else None


def reset_prefix_cache(url: str) -> bool:
    """POST /reset_prefix_cache on the server root; False when the server has no such endpoint."""
    root = url.rstrip("/").removesuffix("/v1")
    try:
        resp = httpx.post(root + "/reset_prefix_cache", timeout=30, trust_env=False)
    except httpx.HTTPError:
        return False
    return resp.status_code == 200


def run_point(point: Point, ctx: PointContext) -> PointOutcome:
    """Run one point to the end; a failure is an outcome (with the reason), a Ctrl-C is re-raised."""
    outcome = PointOutcome(status="complete")
    try:
        registry = _ensure_variant(point, ctx)
        if point.kind == "local":
            with _served(point, ctx, registry) as url:
                outcome.note(url=url)
                _measure(point, ctx, registry, url, outcome)
        else:
            _measure(point, ctx, registry, None, outcome)
    except (InterruptedRunError, KeyboardInterrupt):
        outcome.status = "partial"
        outcome.error = "interrupted (Ctrl-C)"
        raise
    except SpendCapReached as exc:
        outcome.status = "partial"
        outcome.error = str(exc)
        raise
    except ServerStartError as exc:
        outcome.status = "failed"
        tail = f"\n{exc.log_tail}" if exc.log_tail else ""
        hint = f"\nhint: {exc.hint}" if exc.hint else ""
        outcome.error = f"the server did not start: {engine_reason(exc.log_tail) or exc}{hint}\n{exc}{tail}"
    except NotServed as exc:
        outcome.status = "failed"
        outcome.error = f"the server did not start: {exc}"
    except (LlmbenchError, ServeError) as exc:
        outcome.status = "failed"
        outcome.error = f"{type(exc).__name__}: {exc}"
    return outcome


def _ensure_variant(point: Point, ctx: PointContext) -> Registry:
    """Make the point's quantized variant first when the registry has no built checkpoint of it."""
    if point.quantize is None:
        return ctx.registry
    from bench.variants import QuantizeRequest, quantize_variant

    registry = ctx.registry
    try:
        _, entry = registry.local(point.serve_name)
        from bench.serving.plan import local_model_dir

        if local_model_dir(ctx.settings, registry.local(point.serve_name)[0], entry) is not None:
            return registry
    except LlmbenchError:
        pass  # not declared yet: quantize declares it
    ctx.say(f"  quantizing {point.target} with {point.quantize['method']} (first use)")
    request = QuantizeRequest(
        name=point.target, method=point.quantize["method"], group_size=point.quantize.get("group_size")
    )
    quantize_variant(request, registry, ctx.settings, lambda m: ctx.say(f"    {m}"))
    overlays = tuple(dict.fromkeys([user_models_file(), *ctx.settings.overlays]))
    ctx.registry = load_registry([p for p in overlays if p.is_file()])
    return ctx.registry


class NotServed(LlmbenchError):
    """A point's server could not be planned or prepared (an engine argument its backend refuses, a model
    not in the cache, a model that does not fit): the point fails as one whose server did not start."""


@contextlib.contextmanager
def _served(point: Point, ctx: PointContext, registry: Registry) -> Iterator[str]:
    """Serve the point's model with its backend and typed engine arguments; yield its URL (…/v1)."""
    with contextlib.ExitStack() as stack:
        try:
            args = engine_args_from(point.engine_args)
            shown = "".join(
                f" --engine-arg {k}={str(v).lower() if isinstance(v, bool) else v}"
                for k, v in sorted(args.items())
            )
            ctx.say(f"  serving {point.serve_name} ({point.backend}{shown})")
            options = ServeOptions(backend=point.backend, engine_args=args, port=0)
            server = stack.enter_context(managed_server(registry, ctx.settings, point.serve_name, options))
        except ServerStartError:
            raise
        except (LlmbenchError, ServeError) as exc:
            fix = getattr(exc, "fix", "")
            raise NotServed(f"{exc}{f'; {fix}' if fix else ''}") from exc
        ctx.say(f"  ready: {server.url} ({server.backend})")
        yield server.url


def _measure(
    point: Point, ctx: PointContext, registry: Registry, url: str | None, outcome: PointOutcome
) -> None:
    resets = {"done": 0, "unsupported": 0}
    spent_before, simulated_before = ctx.spend.spent, ctx.spend.simulated

    def fresh() -> None:
        if url is not None:
            resets["done" if reset_prefix_cache(url) else "unsupported"] += 1

    by_step: dict[tuple[int, str], list[RunSummary]] = {}  # (load step, run label) -> summaries
    for rep in range(point.repetitions):
        for step, load in enumerate(point.loads):
            fresh()
            run_ids, aborted, summaries = _load(point, ctx, registry, url, load, rep)
            outcome.run_ids += run_ids
            for label, summary in summaries:
                by_step.setdefault((step, label), []).append(summary)
            if aborted is not None:
                if isinstance(aborted, InterruptedRunError):
                    raise aborted
                outcome.status = "failed"
                outcome.error = str(aborted)
                if not isinstance(aborted, NoOperatingPointError):
                    return  # the server died or every request failed: the point stops here
                # A search that found no operating point measured a server that answers: its suites
                # still run (the point stays failed, with the search's reason).
        for suite in point.suites:
            fresh()
            run_id, failed = _suite(point, ctx, registry, url, suite, rep)
            outcome.run_ids.append(run_id)
            if failed is not None:
                outcome.status = "failed"  # every item failed: the server answers nothing useful
                outcome.error = failed if outcome.error is None else f"{outcome.error}; {failed}"
                return
    outcome.note(
        prefix_cache=(
            f"reset before each of {resets['done']} runs" if resets["done"] else
            ("not supported by this server (no /reset_prefix_cache)" if resets["unsupported"] else "n/a")
        ),
        repeats=[
            RepeatStep(load=step, run=label, **repeat_figures(summaries))
            for (step, label), summaries in by_step.items()
        ],
        spend_usd=ctx.spend.spent - spent_before,  # this point's own
        simulated_spend_usd=ctx.spend.simulated - simulated_before,
    )  # fmt: skip


def _load(
    point: Point, ctx: PointContext, registry: Registry, url: str | None, load: dict[str, Any], rep: int
) -> tuple[list[str], RunAbortedError | None, list[tuple[str, RunSummary]]]:
    options = load_options(load)
    spec = LoadSpec.from_options(
        **{**options, "seed": options["seed"] + 1000 * rep},  # fresh prompts in every repetition
        target=point.serve_name,
        url=url,
        hardware=point.hardware,
        store=ctx.store_path,
        sweep_id=ctx.sweep_id,
        point_id=point.point_id,
    )
    template = step_template(load)
    prompt = None if template is None else load_template(template)
    version = "" if prompt is None else f", prompt {prompt.name}@{prompt.version}"
    ctx.say(f"  load {load['profile']} (repetition {rep + 1}/{point.repetitions}{version})")
    result = run_load(spec, ctx.settings, registry, template=prompt)
    for run in result.runs:
        ctx.spend.add(point.kind, _load_cost(registry, point, run.summary))
    # A goodput search repeats at its operating point (the probes' loads differ between repetitions).
    search = load["profile"] == "goodput"
    labels = [("operating point" if search else r.label, r.summary)
              for r in result.runs if not search or r.profile.kind == "goodput"]  # fmt: skip
    return [r.run_id for r in result.runs], result.aborted, labels


def _suite(
    point: Point, ctx: PointContext, registry: Registry, url: str | None, suite: dict[str, Any], rep: int
) -> tuple[str, str | None]:
    """Run one suite: its run id, and why the point failed when every item of it failed."""
    options = {k: v for k, v in suite.items() if v is not None}
    spec = AccuracySpec.model_validate(
        {
            **options,
            "target": point.serve_name,
            "url": url,
            "hardware": point.hardware,
            "store": ctx.store_path,
            "sweep_id": ctx.sweep_id,
            "point_id": point.point_id,
        }
    )
    version = f", template {suite['template']}" if suite.get("template") else ""
    ctx.say(f"  accuracy {suite['suite']} (repetition {rep + 1}/{point.repetitions}{version})")
    result = run_accuracy(spec, registry, ctx.settings)
    ctx.spend.add(point.kind, result.summary.cost_usd)
    if result.status == "failed":
        details = result.summary.error_details
        why = f"{details[0].kind}: {details[0].first_message}" if details else "error"
        return result.run_id, f"{suite['suite']}: every item failed ({why})"
    return result.run_id, None


def _load_cost(registry: Registry, point: Point, summary: RunSummary) -> float | None:
    """A load run's cost at the target's prices (API and mock targets), USD: bench.cost's formula, cache
    reads and writes each at their own price."""
    if point.kind == "local":
        return None
    _, entry = registry.get(point.target)
    prices: Prices | None = getattr(entry, "prices", None)
    if prices is None:
        return None
    usage = from_record(
        summary.input_tokens,
        summary.output_tokens,
        summary.cache_read_tokens,
        summary.cache_write_tokens,
        summary.reasoning_tokens,
    )
    return api_cost(usage, prices).total_usd
