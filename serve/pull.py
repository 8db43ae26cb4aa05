"""Download a model from the hub at a pinned revision, safetensors only unless pickle is allowed."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from fnmatch import fnmatch
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from serve.errors import DiskSpaceError, GatedModelError, PullError

MANIFEST = "llmbench-pull.json"
SAFE_PATTERNS = (
    "*.safetensors", "*.json", "tokenizer*", "*.model", "*.tiktoken", "*.txt", "*.jinja",
)  # fmt: skip
PICKLE_PATTERNS = ("*.bin", "*.pt", "*.pth", "*.ckpt", "*.pkl")
# Keep some room on the disk after the download (bytes).
DISK_MARGIN = 512 * 1024**2
_TRUE = ("1", "true", "yes", "on")

Progress = Callable[[str], None]


class PullSpec(BaseModel):
    """One hub download: which repo, which revision, where, and with which file filter."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="registry name; the manifest goes to manifest_dir")
    repo: str
    revision: str | None = Field(None, description="commit, branch or tag; None = the default branch")
    manifest_dir: Path = Field(description="folder that receives llmbench-pull.json")
    cache_dir: Path | None = Field(None, description="hub cache; None = huggingface_hub's default")
    allow_pickle: bool = False
    token: SecretStr | None = None
    gated: bool = Field(False, description="the registry says the repo is gated")
    offline: bool | None = Field(None, description="None: follow HF_HUB_OFFLINE")


class BuiltinBuild(BaseModel):
    """A builtin model's build and how it compares with the canonical one (serve.tiny.reference)."""

    model_config = ConfigDict(extra="forbid")

    generator: str
    seed: int
    sha256: str
    reused: bool
    seconds: float = Field(description="build time (s); of the original build when reused")
    cpu_capability: str | None = Field(None, description="torch's CPU kernel set during the build")
    overall: float | None = Field(None, description="exact match on the held-out questions (tiny-skills)")
    n: int | None = None
    per_area: dict[str, float] | None = None
    reference_sha256: str | None = None
    reference_per_area: dict[str, float] | None = None
    matches_reference: bool | None = Field(None, description="None: no reference for this recipe and seed")
    warnings: list[str] = Field(default_factory=list, description="what differs from the reference")


class PullResult(BaseModel):
    """Where the files are and which commit they come from."""

    model_config = ConfigDict(extra="forbid")

    name: str
    repo: str | None
    revision: str | None = Field(description="the 40-character commit resolved (None for builtin)")
    requested_revision: str | None = None
    path: Path
    files: list[str]
    bytes: int
    source: Literal["hub", "cache", "builtin"]
    manifest: Path | None = None
    build: BuiltinBuild | None = None  # builtin models: the build's sha256, scores and reference check


class HubApi(Protocol):
    """The part of huggingface_hub.HfApi that pull uses (a fake implements it in tests)."""

    def model_info(
        self,
        repo_id: str,
        *,
        revision: str | None = None,
        files_metadata: bool = False,
        token: str | None = None,
    ) -> Any: ...


DownloadFn = Callable[..., str]


def allow_patterns(allow_pickle: bool) -> list[str]:
    """Files to fetch: safetensors, configs and tokenizers; pickle weights only when allowed."""
    return [*SAFE_PATTERNS, *(PICKLE_PATTERNS if allow_pickle else ())]


def wanted(filename: str, allow_pickle: bool) -> bool:
    """Whether a repo file passes the download filter."""
    base = filename.rsplit("/", 1)[-1]
    if not allow_pickle and any(fnmatch(base, p) for p in PICKLE_PATTERNS):
        return False
    return any(fnmatch(filename, p) or fnmatch(base, p) for p in allow_patterns(allow_pickle))


def is_offline(spec: PullSpec) -> bool:
    """Offline when the spec says so, else when HF_HUB_OFFLINE is set."""
    if spec.offline is not None:
        return spec.offline
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in _TRUE


def pull_hub(
    spec: PullSpec,
    *,
    api: HubApi | None = None,
    download: DownloadFn | None = None,
    progress: Progress | None = None,
    disk_free: Callable[[Path], int] | None = None,
) -> PullResult:
    """Download (or resolve from the cache when offline) and write the manifest; errors are serve.errors."""
    say = progress or (lambda _msg: None)
    if download is None:
        from huggingface_hub import snapshot_download

        download = snapshot_download
    token = spec.token.get_secret_value() if spec.token else None
    patterns = allow_patterns(spec.allow_pickle)
    ignore = None if spec.allow_pickle else list(PICKLE_PATTERNS)
    offline = is_offline(spec)
    if offline:
        say(f"offline: resolving {spec.repo} from the local cache")
        with _mapped(spec):
            path = Path(
                download(
                    spec.repo,
                    revision=spec.revision,
                    cache_dir=spec.cache_dir,
                    allow_patterns=patterns,
                    ignore_patterns=ignore,
                    local_files_only=True,
                )
            )
        source: Literal["hub", "cache"] = "cache"
        commit = path.name if len(path.name) == 40 else spec.revision
    else:
        if api is None:
            from huggingface_hub import HfApi

            api = HfApi()
        with _mapped(spec):
            info = api.model_info(spec.repo, revision=spec.revision, files_metadata=True, token=token)
        commit = str(info.sha)
        _check_access(spec, info, token)
        files = [(s.rfilename, int(s.size or 0)) for s in info.siblings or []]
        chosen = _choose(spec, files)
        need = sum(size for _, size in chosen)
        cache = spec.cache_dir or _default_cache()
        have = _cached_bytes(cache, spec.repo, commit, chosen)
        free = (disk_free or _disk_free)(cache)
        if need - have + DISK_MARGIN > free:
            raise DiskSpaceError(
                f"not enough disk space for {spec.repo}: {_gib(need - have)} to download "
                f"({_gib(need)} in {len(chosen)} files, {_gib(have)} already cached) plus a "
                f"{_gib(DISK_MARGIN)} margin, but {_gib(free)} free in {cache}; free space or set HF_HOME "
                "to a larger disk",
                repo=spec.repo,
            )
        say(f"downloading {spec.repo}@{commit[:12]}: {len(chosen)} files, {_gib(need)}")
        with _mapped(spec):
            path = Path(
                download(
                    spec.repo,
                    revision=commit,
                    cache_dir=spec.cache_dir,
                    allow_patterns=patterns,
                    ignore_patterns=ignore,
                    token=token,
                )
            )
        source = "hub"
    result = _result(spec, path, commit, source)
    _write_manifest(spec, result)
    return result


def _check_access(spec: PullSpec, info: Any, token: str | None) -> None:
    gated = bool(getattr(info, "gated", False)) or spec.gated
    if gated and not token:
        raise GatedModelError(
            f"{spec.repo} is gated: accept its license on https://huggingface.co/{spec.repo}, then set "
            "HF_TOKEN to a token of that account (https://huggingface.co/settings/tokens) and pull again",
            repo=spec.repo,
        )


def _choose(spec: PullSpec, files: Sequence[tuple[str, int]]) -> list[tuple[str, int]]:
    chosen = [(f, s) for f, s in files if wanted(f, spec.allow_pickle)]
    has_safe = any(f.endswith(".safetensors") for f, _ in files)
    has_pickle = any(any(fnmatch(f, p) for p in PICKLE_PATTERNS) for f, _ in files)
    if not has_safe and has_pickle and not spec.allow_pickle:
        raise PullError(
            f"{spec.repo} has only pickle weights (.bin/.pt), which can run code when loaded; pass "
            "--allow-pickle if you trust this repo, or choose a repo with safetensors",
            repo=spec.repo,
        )
    return chosen


def _cached_bytes(cache: Path, repo: str, commit: str, chosen: Sequence[tuple[str, int]]) -> int:
    snapshot = cache / ("models--" + repo.replace("/", "--")) / "snapshots" / commit
    return sum(size for f, size in chosen if (snapshot / f).exists())


def _default_cache() -> Path:
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def _disk_free(path: Path) -> int:
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return shutil.disk_usage(probe).free


def _result(spec: PullSpec, path: Path, commit: str | None, source: Literal["hub", "cache"]) -> PullResult:
    files = sorted(
        str(p.relative_to(path)) for p in path.rglob("*") if p.is_file() and ".cache" not in p.parts
    )
    size = sum((path / f).stat().st_size for f in files)
    return PullResult(
        name=spec.name,
        repo=spec.repo,
        revision=commit,
        requested_revision=spec.revision,
        path=path,
        files=files,
        bytes=size,
        source=source,
        manifest=spec.manifest_dir / MANIFEST,
    )


def _write_manifest(spec: PullSpec, result: PullResult) -> None:
    spec.manifest_dir.mkdir(parents=True, exist_ok=True)
    data = result.model_dump(mode="json") | {"pulled_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    data["allow_pickle"] = spec.allow_pickle
    tmp = spec.manifest_dir / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    tmp.replace(spec.manifest_dir / MANIFEST)


def read_manifest(folder: Path) -> PullResult | None:
    """The manifest a previous pull wrote into folder, or None."""
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    data.pop("pulled_at", None)
    data.pop("allow_pickle", None)
    try:
        return PullResult.model_validate(data)
    except ValueError:
        return None


class _mapped:
    """Turn huggingface_hub and network exceptions into serve.errors (chained with `from`)."""

    def __init__(self, spec: PullSpec) -> None:
        self.spec = spec

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if exc is None or not isinstance(exc, Exception):
            return
        mapped = map_hub_error(exc, self.spec)
        if mapped is not None:
            raise mapped from exc


def map_hub_error(exc: Exception, spec: PullSpec) -> PullError | None:
    """The serve error for a huggingface_hub / network exception, or None for anything else."""
    from huggingface_hub import errors as he

    repo = spec.repo
    rev = spec.revision or "the default branch"
    if isinstance(exc, he.GatedRepoError):
        return GatedModelError(
            f"{repo} is gated and {'HF_TOKEN has no access' if spec.token else 'HF_TOKEN is not set'}: "
            f"accept its license on https://huggingface.co/{repo}, then set HF_TOKEN to a token of that "
            "account",
            repo=repo,
        )
    if isinstance(exc, he.RevisionNotFoundError):
        return PullError(f"revision {rev} not found in {repo}: check the commit in models.yaml", repo=repo)
    if isinstance(exc, he.RepositoryNotFoundError):
        return PullError(
            f"repo {repo} not found (or private: set HF_TOKEN to a token with access)", repo=repo
        )
    if isinstance(exc, he.LocalEntryNotFoundError | he.OfflineModeIsEnabled):
        return PullError(
            f"{repo}@{rev} is not in the local hub cache and the hub is not reachable (offline mode or no "
            "network); pull it once with network access, or unset HF_HUB_OFFLINE",
            repo=repo,
        )
    if isinstance(exc, he.HfHubHTTPError):
        status = exc.response.status_code if exc.response is not None else None
        if status in (401, 403):
            return GatedModelError(
                f"the hub refused access to {repo} ({status}): accept its license on "
                f"https://huggingface.co/{repo} and set HF_TOKEN to a token with access",
                repo=repo,
            )
        return PullError(f"the hub answered {status} for {repo}: {exc}", repo=repo)
    if isinstance(exc, _connection_errors()):
        return PullError(
            f"cannot reach the hub for {repo} ({type(exc).__name__}: {exc}); check the network, or set "
            "HF_HUB_OFFLINE=1 to use the local cache",
            repo=repo,
        )
    return None


def _connection_errors() -> tuple[type[BaseException], ...]:
    kinds: list[type[BaseException]] = [OSError, ConnectionError, TimeoutError]
    try:
        import httpx

        kinds.append(httpx.TransportError)
    except ImportError:  # pragma: no cover - httpx is a core dependency
        pass
    try:
        import httpx2  # type: ignore[import-not-found,unused-ignore]

        kinds.append(httpx2.TransportError)
    except ImportError:
        pass
    return tuple(kinds)


def _gib(n: float) -> str:
    return f"{n / 1024**3:.2f} GiB"


def pull_builtin(
    name: str, generator: str, dest: Path, *, seed: int = 0, progress: Progress | None = None
) -> PullResult:
    """Build a builtin tiny model into dest (reused when an identical build is there), checked against the
    canonical build: `build.warnings` says what differs from it."""
    from serve.tiny import build_builtin

    if generator not in ("tiny-random", "tiny-skills"):
        raise PullError(f"unknown builtin generator {generator!r}", repo=generator)
    built = build_builtin("tiny-random" if generator == "tiny-random" else "tiny-skills", dest, seed=seed,
                          progress=progress)  # fmt: skip
    files = sorted(str(p.relative_to(built.path)) for p in built.path.rglob("*") if p.is_file())
    return PullResult(
        name=name, repo=None, revision=None, path=built.path, files=files, bytes=built.bytes,
        source="builtin", build=builtin_build(built),
    )  # fmt: skip


def builtin_build(built: Any) -> BuiltinBuild:
    """The pull result's view of a serve.tiny BuildResult, compared with the reference build."""
    from serve.tiny.recipe import recipe_fingerprint
    from serve.tiny.reference import check_build

    check = check_build(
        built.generator, seed=built.seed, builder_version=built.builder_version,
        recipe=recipe_fingerprint(built.generator), sha256=built.sha256, scores=built.scores,
        numerics=built.numerics,
    )  # fmt: skip
    scores = built.scores or {}
    ref = check.reference
    return BuiltinBuild(
        generator=built.generator,
        seed=built.seed,
        sha256=built.sha256,
        reused=built.reused,
        seconds=built.seconds,
        cpu_capability=check.cpu_capability,
        overall=scores.get("overall"),
        n=scores.get("n"),
        per_area=check.per_area or None,
        reference_sha256=ref.sha256 if ref else None,
        reference_per_area=(ref.per_area or None) if ref else None,
        matches_reference=check.matches if ref else None,
        warnings=check.warning_lines(),
    )
