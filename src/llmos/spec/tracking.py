"""The `tracking:` block of a spec: where a finished run is also written, for the trackers
users already have (MLflow, TensorBoard). The store keeps every run's per-step metrics
either way; this only adds an export once the model is registered."""

from __future__ import annotations

import re

from pydantic import Field, field_validator, model_validator

from llmos.spec.common import SpecModel

# the tracking URIs mlflow-skinny's client writes to without a plug-in
MLFLOW_SCHEMES = ("sqlite", "file", "http", "https", "postgresql", "mysql", "databricks")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


class TrackingConfig(SpecModel):
    """Export the run, once it registers, to MLflow and/or TensorBoard."""

    mlflow: str | None = Field(
        None,
        description="MLflow tracking URI: sqlite:///mlflow.db, file:///folder, http://host:5000 "
        "(an `mlflow://` prefix is allowed and dropped). Needs `llmos[tracking]`.",
    )
    tensorboard: str | None = Field(
        None,
        description="Folder of TensorBoard runs: the run's event file goes in FOLDER/NAME@VERSION. "
        "Needs `llmos[tracking]`.",
    )

    @field_validator("mlflow")
    @classmethod
    def _mlflow_uri(cls, uri: str | None) -> str | None:
        if uri is None:
            return None
        uri = uri.strip().removeprefix("mlflow://")
        found = _SCHEME.match(uri)
        if not found or found.group(1).split("+")[0].lower() not in MLFLOW_SCHEMES:
            schemes = ", ".join(f"{s}://" for s in MLFLOW_SCHEMES)
            raise ValueError(f"not an MLflow tracking URI: {uri!r} (use one of {schemes})")
        return uri

    @field_validator("tensorboard")
    @classmethod
    def _tensorboard_dir(cls, folder: str | None) -> str | None:
        if folder is None:
            return None
        folder = folder.strip().removeprefix("tensorboard://")
        if not folder:
            raise ValueError("a TensorBoard folder is a path, not an empty string")
        found = _SCHEME.match(folder)
        if found and found.group(1).lower() != "file":
            raise ValueError(f"a TensorBoard folder is a local path, not a {found.group(1)}:// URI")
        return folder.removeprefix("file://")

    @model_validator(mode="after")
    def _somewhere(self) -> TrackingConfig:
        if self.mlflow is None and self.tensorboard is None:
            raise ValueError("name a tracker to export to: mlflow, tensorboard or both")
        return self
