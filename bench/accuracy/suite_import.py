"""`llmbench suite import`: feedback and test exports become a versioned suite.

A record users marked bad becomes a regression item (area `regression`, id `reg-…`) with its expected
answer as the reference, or its rubric for the judge; other records with an expected answer or a rubric
become ordinary items (id `fb-…`); a record with neither cannot be checked and is reported, not imported.
Ids are stable (the record's own id, or a hash of its question and check), so re-importing the same
feedback changes nothing and runs of two versions pair on their common items.

The suite lives in a folder as three things:
- `NAME.jsonl`: the current version, in the suite format (bench/suites/README.md), loadable by --suite;
- `NAME.suite.json`: `llmbench.suite/1` (bench.accuracy.suite.SuiteManifest): name, version, sha256 of
  NAME.jsonl (what a run records as suite_sha256, with the version), item and regression counts, the
  regression area;
- `NAME.history.jsonl`: one `llmbench.suite-version/1` line per version (sha256, items added, updated and
  removed, the source files and their sha256), with a copy of each version in `NAME.versions/vN.jsonl`.
An import merges into the current version (`replace` starts from nothing); one that changes nothing makes
no new version. Malformed lines are errors listing every file:line, unless `skip_invalid`.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bench.accuracy.feedback import FORMATS, READERS, FeedbackRecord, Format, Problem, ReadOptions
from bench.accuracy.suite import (
    MANIFEST_SCHEMA,
    ExactSpec,
    JudgeSpec,
    ScorerSpec,
    SuiteItem,
    load_suite,
    read_manifest,
)
from bench.errors import ConfigError
from bench.prompts.templates import load_template
from bench.validation import problems

VERSION_SCHEMA = "llmbench.suite-version/1"
REFERENCE_RUBRIC = "Pass if the answer agrees with the reference answer; fail otherwise."
_ID = re.compile(r"[^A-Za-z0-9._-]+")


class ImportSpec(BaseModel):
    """One import: the files and their format, the suite to write, and how to read ratings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Format
    files: tuple[Path, ...] = Field(min_length=1)
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    out_dir: Path
    scores: Path | None = Field(None, description="langfuse: the scores export")
    template: Path | None = Field(None, description="prompt template rendering inputs given as variables")
    scorer: Literal["exact", "judge"] = Field("exact", description="how expected answers are checked")
    bad_below: float = Field(3.0, description="a numeric rating below this marks the answer bad")
    regression_area: str = Field("regression", min_length=1)
    replace: bool = Field(False, description="write only the imported items (else merge into the suite)")
    skip_invalid: bool = Field(False, description="skip malformed lines (listed) instead of failing")


@dataclass(frozen=True)
class ImportResult:
    """What an import wrote."""

    name: str
    version: int
    sha256: str
    suite_path: Path
    items: int
    regression_items: int
    added: list[str]
    updated: list[str]
    removed: list[str]
    changed: bool  # False: the suite already held exactly this; no new version
    skipped: list[Problem] = field(default_factory=list)  # malformed lines skipped (skip_invalid)
    unchecked: list[Problem] = field(default_factory=list)  # records with no expected answer or rubric

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "sha256": self.sha256,
            "suite": str(self.suite_path),
            "items": self.items,
            "regression_items": self.regression_items,
            "added": self.added,
            "updated": self.updated,
            "removed": self.removed,
            "changed": self.changed,
            "skipped": [str(p) for p in self.skipped],
            "unchecked": [str(p) for p in self.unchecked],
        }


def _item_id(record: FeedbackRecord, regression: bool, check: dict[str, Any]) -> str:
    if record.id:
        return ("reg-" if regression else "") + _ID.sub("-", record.id).strip("-")
    question = record.prompt if record.prompt is not None else record.messages
    digest = hashlib.sha256(json.dumps([question, check], sort_keys=True).encode()).hexdigest()[:12]
    return f"{'reg' if regression else 'fb'}-{digest}"


def to_item(record: FeedbackRecord, spec: ImportSpec, default_area: str) -> SuiteItem | Problem:
    """A suite item, or why the record cannot be one."""
    regression = record.bad is True
    scorer: ScorerSpec | None = record.scorer
    rubric = record.rubric
    if scorer is None:
        if record.references and spec.scorer == "judge":
            scorer, rubric = JudgeSpec(), rubric or REFERENCE_RUBRIC
        elif record.references:
            scorer = ExactSpec()
        elif rubric:
            scorer = JudgeSpec()
        else:
            what = "marked bad, but has" if regression else "has"
            return Problem(
                record.where, f"{what} no expected answer or rubric: nothing to check an answer with"
            )
    refs = record.references
    check = {"scorer": scorer.model_dump(mode="json", by_alias=True), "references": refs, "rubric": rubric}
    data: dict[str, Any] = {
        "id": _item_id(record, regression, check),
        "area": spec.regression_area if regression else (record.area or default_area),
        "scorer": check["scorer"],
        "rubric": rubric,
        "prompt": record.prompt,
        "messages": record.messages,
    }
    if len(refs) == 1:
        data["reference"] = refs[0]
    elif refs:
        data["references"] = refs
    try:
        return SuiteItem.model_validate({k: v for k, v in data.items() if v is not None})
    except ValidationError as exc:
        return Problem(record.where, problems(exc, SuiteItem)[0].line())


def read_items(spec: ImportSpec) -> tuple[list[SuiteItem], list[Problem], list[Problem]]:
    """(items, malformed lines, records that cannot be checked); ConfigError listing every malformed line
    unless `skip_invalid`."""
    options = ReadOptions(
        bad_below=spec.bad_below,
        template=None if spec.template is None else load_template(spec.template),
        scores=spec.scores,
    )
    items: dict[str, SuiteItem] = {}
    invalid: list[Problem] = []
    unchecked: list[Problem] = []
    for path in spec.files:
        for got in READERS[spec.format](path, options):
            if isinstance(got, Problem):
                invalid.append(got)
                continue
            item = to_item(got, spec, spec.format)
            if isinstance(item, Problem):
                (unchecked if "nothing to check" in item.message else invalid).append(item)
            elif item.id in items and items[item.id] != item:
                invalid.append(Problem(got.where, f"id {item.id!r} is used by another, different record"))
            else:
                items[item.id] = item
    if invalid and not spec.skip_invalid:
        listed = "\n".join(f"  {p}" for p in invalid[:50])
        more = f"\n  ... and {len(invalid) - 50} more" if len(invalid) > 50 else ""
        raise ConfigError(
            f"{len(invalid)} malformed lines:\n{listed}{more}",
            file=str(invalid[0].where.split(":")[0]),
            fix="fix them, or pass --skip-invalid to import the rest (they are listed)",
        )
    return list(items.values()), invalid, unchecked


def _line(item: SuiteItem) -> str:
    return json.dumps(item.model_dump(mode="json", by_alias=True, exclude_none=True), ensure_ascii=False)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def import_suite(spec: ImportSpec) -> ImportResult:
    """Read the files, merge the items into the suite and write a new version when anything changed."""
    imported, invalid, unchecked = read_items(spec)
    suite_path = spec.out_dir / f"{spec.name}.jsonl"
    manifest_path = spec.out_dir / f"{spec.name}.suite.json"
    manifest = read_manifest(manifest_path)
    old = load_suite(str(suite_path)).items if suite_path.is_file() else []
    merged: dict[str, SuiteItem] = {} if spec.replace else {i.id: i for i in old}
    before = {i.id: i for i in old}
    for item in imported:
        merged[item.id] = item
    added = [i for i in merged if i not in before]
    updated = [i for i in merged if i in before and merged[i] != before[i]]
    removed = [i for i in before if i not in merged]
    text = "".join(_line(i) + "\n" for i in merged.values())
    sha = hashlib.sha256(text.encode()).hexdigest()
    version = manifest.version if manifest else 0
    changed = manifest is None or manifest.sha256 != sha
    if not merged:
        raise ConfigError("nothing to import: no record had an expected answer or a rubric", fix="see --help")
    regression = sum(i.area == spec.regression_area for i in merged.values())
    if changed:
        version += 1
        write_version(
            spec, version, text, {"sha256": sha, "added": added, "updated": updated, "removed": removed}
        )
    return ImportResult(
        spec.name, version, sha, suite_path, len(merged), regression, added, updated, removed, changed,
        invalid, unchecked,
    )  # fmt: skip


def write_version(spec: ImportSpec, version: int, text: str, change: dict[str, Any]) -> None:
    """Write NAME.jsonl, its copy NAME.versions/vN.jsonl, a history line and the manifest."""
    folder = spec.out_dir
    items = [SuiteItem.model_validate_json(line) for line in text.splitlines()]
    (folder / f"{spec.name}.versions").mkdir(parents=True, exist_ok=True)
    (folder / f"{spec.name}.versions" / f"v{version}.jsonl").write_text(text, encoding="utf-8")
    (folder / f"{spec.name}.jsonl").write_text(text, encoding="utf-8")
    files = (*spec.files, *([spec.scores] if spec.scores else []))
    sources = [
        {"file": str(p), "format": spec.format, "sha256": hashlib.sha256(p.read_bytes()).hexdigest()}
        for p in files
    ]
    entry = {"schema": VERSION_SCHEMA, "version": version, "created_at": _now(), "items": len(items)}
    entry |= {**change, "sources": sources}
    with (folder / f"{spec.name}.history.jsonl").open("a", encoding="utf-8") as history:
        history.write(json.dumps(entry) + "\n")
    areas: dict[str, int] = {}
    for item in items:
        areas[item.area] = areas.get(item.area, 0) + 1
    manifest = {
        "schema": MANIFEST_SCHEMA,
        "name": spec.name,
        "version": version,
        "sha256": change["sha256"],
        "items": len(items),
        "regression_items": areas.get(spec.regression_area, 0),
        "regression_area": spec.regression_area,
        "areas": areas,
        "updated_at": _now(),
        "suite": f"{spec.name}.jsonl",
        "history": f"{spec.name}.history.jsonl",
    }
    (folder / f"{spec.name}.suite.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


__all__ = ["FORMATS", "ImportResult", "ImportSpec", "import_suite", "read_items", "to_item"]
