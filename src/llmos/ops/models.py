"""The model registry: registered versions with their spec, lineage, metrics, privacy
spend and artifacts, the files of their reports, and the model zoo."""

from __future__ import annotations

import mimetypes
from typing import Any

from pydantic import Field

from llmos.core.errors import NotFoundError, UsageError
from llmos.ops.context import Context
from llmos.ops.registry import operation
from llmos.ops.results import Result, Timestamp
from llmos.store.schema import ModelVersion

# the files of a model folder `model_files` lists: its report and the spec it was trained with
REPORT_DIR = "report/"
REPORT_FILES = ("spec.yaml",)


class Lineage(Result):
    """The dataset versions a model was trained and tested on (`test` None: a split of `train`)."""

    train: str | None = None
    test: str | None = None

    def __eq__(self, other: object) -> bool:  # compares equal to the dict earlier releases returned
        if isinstance(other, dict):
            return self.model_dump() == other
        return super().__eq__(other)

    __hash__ = None  # type: ignore[assignment]


class ModelLineage(Result):
    train_dataset_id: int | None = None
    test_dataset_id: int | None = None
    split: dict[str, Any] = Field(default_factory=dict, description="How the data was split (seeded)")
    datasets: Lineage = Field(default_factory=Lineage)
    shared_from: str | None = Field(None, description="PROJECT/NAME@V this read-only copy was published from")


class ModelInfo(Result):
    """One registered model version."""

    ref: str = Field(description="NAME@VERSION")
    name: str
    project: str = Field("default", description="the project the version belongs to")
    version: int
    task: str
    base_model: str
    method: str = Field(description="Fine-tuning method: full, frozen, lora, ...")
    accuracy: float | None = None
    macro_f1: float | None = None
    perplexity: float | None = None
    epsilon: float | None = Field(None, description="Differential privacy spent (DP runs)")
    train_seconds: float
    created_at: Timestamp
    job_id: int | None = Field(None, description="The job that trained it")
    spec: dict[str, Any]
    lineage: ModelLineage
    metrics: dict[str, Any] = Field(description="Test metrics, privacy accounting, training history")
    artifacts: dict[str, str] = Field(description="Its files: relative path -> sha256")

    # the store row's names, read by earlier callers
    @property
    def split(self) -> dict[str, Any]:
        return self.lineage.split

    @property
    def train_dataset_id(self) -> int | None:
        return self.lineage.train_dataset_id

    @property
    def test_dataset_id(self) -> int | None:
        return self.lineage.test_dataset_id


class ModelFile(Result):
    path: str = Field(description="Relative to the model folder, e.g. report/confusion_matrix.png")
    sha256: str
    media_type: str


class ZooModel(Result):
    alias: str
    kind: str = Field(description="encoder or causal-lm")
    params: str
    package: str = Field(description="The Python package that ships its weights")
    installed: bool
    source: str = Field(description="Where the weights come from")
    description: str


def _dataset_refs(ctx: Context, ids: set[int]) -> dict[int, str]:
    from sqlalchemy import select

    from llmos.store.schema import DatasetVersion

    if not ids:
        return {}
    with ctx.store.read() as session:
        query = select(DatasetVersion.id, DatasetVersion.name, DatasetVersion.version)
        found = session.execute(query.where(DatasetVersion.id.in_(ids))).all()
    return {id_: f"{name}@{version}" for id_, name, version in found}


def model_info(row: ModelVersion, refs: dict[int, str]) -> ModelInfo:
    metrics = row.metrics or {}
    datasets = Lineage(
        train=refs.get(row.train_dataset_id) if row.train_dataset_id else None,
        test=refs.get(row.test_dataset_id) if row.test_dataset_id else None,
    )
    return ModelInfo(
        ref=row.ref,
        name=row.name,
        version=row.version,
        task=row.task,
        base_model=row.base_model,
        method=row.method,
        accuracy=metrics.get("accuracy"),
        macro_f1=metrics.get("macro_f1"),
        perplexity=metrics.get("perplexity"),
        epsilon=(metrics.get("privacy") or {}).get("epsilon"),
        train_seconds=round(row.train_seconds, 1),
        created_at=row.created_at,
        job_id=row.job_id,
        spec=row.spec,
        lineage=ModelLineage(
            train_dataset_id=row.train_dataset_id,
            test_dataset_id=row.test_dataset_id,
            split=row.split or {},
            datasets=datasets,
            shared_from=row.shared_from,
        ),
        metrics=metrics,
        artifacts=row.artifacts or {},
    )


def _infos(ctx: Context, rows: list[ModelVersion]) -> list[ModelInfo]:
    ids = {i for r in rows for i in (r.train_dataset_id, r.test_dataset_id) if i}
    refs = _dataset_refs(ctx, ids)
    return [model_info(r, refs) for r in rows]


def _row(ctx: Context, ref: str) -> ModelVersion:
    from llmos.store.models import get_model

    return get_model(ctx.store, ref)


@operation("models:read")
def models(
    ctx: Context, name: str | None = None, limit: int | None = None, offset: int = 0
) -> list[ModelInfo]:
    """Every registered model version (of model `name`), by name then version; `limit` and
    `offset` page through them (a page past the end is empty)."""
    from llmos.store.models import list_models

    if limit is not None and limit < 1:
        raise UsageError(f"limit must be at least 1 (got {limit})")
    if offset < 0:
        raise UsageError(f"offset must be >= 0 (got {offset})")
    return _infos(ctx, list_models(ctx.store, name, limit, offset))


@operation("models:read")
def model(ctx: Context, ref: str) -> ModelInfo:
    """One model version (NAME: the latest): spec, lineage, metrics, privacy spend, artifacts."""
    return _infos(ctx, [_row(ctx, ref)])[0]


@operation("models:read")
def lineage(ctx: Context, ref: str) -> Lineage:
    """The dataset versions a model was trained and tested on."""
    return _infos(ctx, [_row(ctx, ref)])[0].lineage.datasets


def media_type(path: str) -> str:
    if path.endswith((".yaml", ".yml")):
        return "application/yaml"
    return mimetypes.guess_type(path)[0] or "application/octet-stream"


def _report_files(row: ModelVersion) -> dict[str, str]:
    manifest: dict[str, str] = row.artifacts or {}
    return {p: d for p, d in sorted(manifest.items()) if p.startswith(REPORT_DIR) or p in REPORT_FILES}


@operation("models:read")
def model_files(ctx: Context, ref: str) -> list[ModelFile]:
    """The files of a model's report (metrics.json, history.json, confusion_matrix.png, ...)
    and the spec it was trained with."""
    files = _report_files(_row(ctx, ref))
    return [ModelFile(path=p, sha256=d, media_type=media_type(p)) for p, d in files.items()]


@operation("models:read")
def model_file(ctx: Context, ref: str, path: str) -> bytes:
    """The bytes of one file `model_files` lists (decrypted in an encrypted workspace)."""
    row = _row(ctx, ref)
    files = _report_files(row)
    digest = files.get(path)
    if digest is None:
        raise NotFoundError(
            f"model {row.ref} has no report file {path!r}; its files are {', '.join(files) or 'none'}"
        )
    return ctx.store.artifacts.read_bytes(digest, f"{row.ref} {path}")


@operation("models:write")
def share_model(ctx: Context, ref: str, project: str) -> ModelInfo:
    """Publish a model version to another project, read-only (the caller needs
    `models:write` there too): a new version of the same name there, the same files,
    `lineage.shared_from` naming the source; audited in both projects."""
    from llmos.store.models import share_model as share

    Context(ctx.store, ctx.actor, project, ctx.runtime).require("models:write")
    row = share(ctx.store, ref, project)
    return model_info(row, {})


@operation("models:read")
def zoo(ctx: Context) -> list[ZooModel]:
    """Model aliases whose weights ship in Python packages (any Hugging Face id or local folder works too)."""
    from llmos.models.zoo import ZOO

    return [
        ZooModel(
            alias=e.alias,
            kind=e.kind,
            params=e.params,
            package=e.package,
            installed=e.installed(),
            source=e.source,
            description=e.description,
        )
        for e in ZOO.values()
    ]
