"""Per-step run metrics in the store, the report's curves, and the MLflow export."""

from __future__ import annotations

import json

import pytest

from llmos.core.errors import NotFoundError, UsageError
from tests.conftest import tiny_spec


def tensorboard_scalars(folder) -> dict[str, list[tuple[int, float]]]:
    """A run folder's scalars as TensorBoard itself reads them."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    found = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    found.Reload()
    return {tag: [(e.step, e.value) for e in found.Scalars(tag)] for tag in found.Tags()["scalars"]}


def as_float32(value: float) -> float:
    """An event file keeps a scalar as a 32-bit float."""
    import numpy as np

    return float(np.float32(value))


def test_steps_stored_and_match_report(ws, intents_csv, tiny_model_dir, tmp_path, monkeypatch):
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # a sqlite store's artifacts go beside it, not to ./mlruns
    ws.import_dataset(intents_csv, "intents")
    board = tmp_path / "tb"
    spec_store = f"sqlite:///{tmp_path}/spec-mlflow.db"
    spec = tiny_spec(tiny_model_dir, train={"epochs": 2, "batch_size": 16, "seed": 7})
    spec["tracking"] = {"mlflow": spec_store, "tensorboard": str(board)}
    ref = ws.train(spec).model.ref
    result = ws.run_metrics(ref)
    losses = [p for p in result.points if p.name == "loss"]
    assert losses and [p.step for p in losses] == list(range(1, len(losses) + 1))
    assert {"loss", "lr", "samples_per_s", "train_loss"} <= set(result.names)
    steps = json.loads(ws.model_file(ref, "report/steps.json"))
    assert [v for _, _, n, v in steps if n == "loss"] == [p.value for p in losses]
    assert ws.model_file(ref, "report/curves.png")[:4] == b"\x89PNG"
    # what curves.png drew (read back from the figure's lines) is the stored metrics
    drawn = json.loads(ws.model_file(ref, "report/curves.json"))
    assert set(drawn) == set(result.names)
    for name, points in drawn.items():
        assert points == [[p.step, p.value] for p in result.points if p.name == name], name

    # the spec's tracking block exported the run to TensorBoard when it registered
    scalars = tensorboard_scalars(board / ref)
    for name in result.names:
        assert scalars[name] == [(p.step, as_float32(p.value)) for p in result.points if p.name == name]
    assert scalars["final/accuracy"] == [(losses[-1].step, as_float32(ws.model(ref).metrics["accuracy"]))]
    # and again on request, to another folder
    again = ws.export_run(ref, f"tensorboard://{tmp_path}/tb2")
    assert again.tracker == "tensorboard" and again.run_id == str(tmp_path / "tb2" / ref)
    assert tensorboard_scalars(again.run_id) == scalars
    only = ws.run_metrics(ref, ["loss"])
    assert only.names == ["loss"]

    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    exported = ws.export_run(ref, uri)
    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(exported.run_id)
    assert run.data.params["name"] == "tiny" and run.data.params["train.epochs"] == "2"
    history = client.get_metric_history(exported.run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(p.step, p.value) for p in losses]
    names = {a.path for a in client.list_artifacts(exported.run_id, "report")}
    assert "report/metrics.json" in names and "report/curves.png" in names
    assert (tmp_path / "mlruns" / "tiny").is_dir()

    # ... and to MLflow, from the spec's block
    [spec_run] = MlflowClient(tracking_uri=spec_store).search_runs(
        [MlflowClient(tracking_uri=spec_store).get_experiment_by_name("tiny").experiment_id]
    )
    assert spec_run.data.tags["llmos.model"] == ref
    spec_history = MlflowClient(tracking_uri=spec_store).get_metric_history(spec_run.info.run_id, "loss")
    assert [(m.step, m.value) for m in spec_history] == [(p.step, p.value) for p in losses]

    assert list(elsewhere.iterdir()) == []
    with pytest.raises(UsageError, match="cannot export"):
        ws.export_run(ref, "nosuchscheme://x")
    with pytest.raises(UsageError, match="tensorboard:// needs a folder"):
        ws.export_run(ref, "tensorboard://")
    with pytest.raises(NotFoundError):
        ws.run_metrics("nope")


@pytest.mark.parametrize(
    ("tracking", "problem"),
    [
        ({"mlflow": "mlfow.db"}, "tracking.mlflow: not an MLflow tracking URI: 'mlfow.db'"),
        (
            {"mlflow": "ftp://host/x"},
            "tracking.mlflow: not an MLflow tracking URI: 'ftp://host/x'",
        ),
        (
            {"tensorboard": "s3://bucket/runs"},
            "tracking.tensorboard: a TensorBoard folder is a local path",
        ),
        ({"tensorboard": " "}, "tracking.tensorboard: a TensorBoard folder is a path"),
        ({}, "tracking: name a tracker to export to: mlflow, tensorboard or both"),
        ({"wandb": "x"}, "tracking.wandb: unknown key"),
    ],
)
def test_a_bad_tracking_block_is_named(tiny_model_dir, tracking, problem):
    from llmos.core.errors import SpecError
    from llmos.spec import parse_spec

    with pytest.raises(SpecError) as info:
        parse_spec({**tiny_spec(tiny_model_dir), "tracking": tracking})
    assert any(p.startswith(problem) for p in info.value.problems), info.value.problems
