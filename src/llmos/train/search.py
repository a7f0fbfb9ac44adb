"""Hyper-parameter search (`search:` in a spec): Optuna proposes each trial's values (TPE,
or random sampling), successive halving (ASHA's synchronous form) stops poor trials after
`grace_period` epochs, and every trial is the task's own workflow (the one loop) in this
process, inside the one kernel job that `llmos train` submits.

The spec's data and model are checked and split once, here; each trial trains with its
values written into a copy of the spec and is scored after every epoch on the validation
split (cut from the training rows when the spec has none), so the test split never
chooses. The best finished trial registers as the model, with every trial (values,
score, epochs, state, seconds) in its metrics under `search`.

Durability: the study lives in an Optuna SQLite storage under
`LLMOS_HOME/searches/NAME-DIGEST/` (the digest is of the whole spec, so an edited spec
starts a new study), beside the best finished trial's model folder. A search that is
killed (the kernel retries its job, or the user reruns `llmos train`) reopens that study:
finished and stopped trials are kept, the trial that was running is recorded as
interrupted and its values are queued to run again, and only the remaining trials run.
The folder is removed once the best trial is registered.

Why not Ray Tune (the issue's first choice): its trials did not finish under the kernel's
worker processes here (F14's first runner), and its experiment restore re-runs trials that
were in flight; Optuna's storage gives the resume rule above in a file. Optuna does the
sampling, pruning and bookkeeping; only the spec-to-distribution translation, the spec
copy per trial and the resume rule are written here.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from sqlalchemy.orm import Session

from llmos.core.errors import JobError, TrainingError
from llmos.core.progress import Progress, SilentProgress
from llmos.spec.schema import SearchConfig, SplitConfig, TaskSpec
from llmos.store.db import Store
from llmos.store.schema import ModelVersion

METRIC_DIRECTIONS: dict[str, Literal["maximize", "minimize"]] = {
    "accuracy": "maximize",
    "macro_f1": "maximize",
    "loss": "minimize",
}
INTERRUPTED = "interrupted"  # user attribute of a trial whose process was killed


def distributions(search: SearchConfig, spec: TaskSpec) -> dict[str, Any]:
    """The spec's `space` as Optuna distributions (ints for integer fields)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    from llmos.spec.schema import searchable_fields

    fields = searchable_fields(spec.method)
    space: dict[str, Any] = {}
    for field, rng in search.space.items():
        kinds = {fields[field], *getattr(fields[field], "__args__", ())}
        if rng.choices is not None:
            space[field] = CategoricalDistribution(rng.choices)
            continue
        assert rng.low is not None and rng.high is not None
        if int in kinds and float not in kinds:
            space[field] = IntDistribution(int(rng.low), int(rng.high), log=rng.log)
        else:
            space[field] = FloatDistribution(rng.low, rng.high, log=rng.log)
    return space


def trial_spec(spec: dict[str, Any], params: dict[str, Any]) -> TaskSpec:
    """A copy of the (search-less) spec with the trial's values set."""
    data = json.loads(json.dumps(spec))
    for field, value in params.items():
        section, name = field.split(".", 1)
        data[section][name] = value
    return TaskSpec.model_validate(data)


def search_spec(spec: TaskSpec) -> TaskSpec:
    """The spec trials start from: no `search`, and a validation split to be scored on."""
    base = spec.model_copy(deep=True)
    base.search = None
    if base.data.validation is None:
        split = base.data.split or SplitConfig(test=0.2)
        if split.validation == 0:
            split = split.model_copy(update={"validation": 0.1})
        base.data.split = split
    return base


def search_dir(store: Store, spec: TaskSpec) -> Path:
    """Where a spec's study and best trial live until it registers (one per spec)."""
    digest = hashlib.sha256(json.dumps(spec.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()
    return store.plain_dir(store.settings.home / "searches" / f"{spec.name}-{digest[:12]}")


class TrialProgress:
    """The run's progress, quieter (no per-epoch bars), reporting each epoch's validation
    score to the Optuna trial and stopping it when the pruner says so (`train.loop.fit`
    calls `epoch_done`)."""

    def __init__(self, progress: Progress, trial: Any, metric: str) -> None:
        self.progress, self.trial, self.metric = progress, trial, metric

    def start(self, task: str, total: int | None) -> None:
        pass

    def advance(self, n: int = 1, **fields: Any) -> None:
        pass

    def finish(self) -> None:
        pass

    def log(self, message: str) -> None:
        if message.startswith("epoch "):
            self.progress.log(f"  trial {self.trial.number}: {message}")

    def epoch_done(self, record: dict[str, float]) -> None:
        import optuna

        epoch = int(record["epoch"])
        self.trial.report(record[f"val_{self.metric}"], epoch)
        self.trial.set_user_attr("epochs", epoch)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"stopped after epoch {epoch}")


def open_study(folder: Path, spec: TaskSpec, search: SearchConfig) -> Any:
    """Create or reopen the study; a trial left running by a killed process is marked
    interrupted (failed) and its values queued to run again."""
    import optuna
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    seed = spec.train.seed
    sampler: Any = (
        optuna.samplers.RandomSampler(seed=seed)
        if search.sampler == "random"
        else optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(search.startup_trials, search.trials))
    )
    pruner: Any = (
        optuna.pruners.SuccessiveHalvingPruner(min_resource=search.grace_period)
        if search.scheduler == "asha"
        else optuna.pruners.NopPruner()
    )
    storage = optuna.storages.RDBStorage(f"sqlite:///{folder / 'study.db'}")
    study = optuna.create_study(
        storage=storage,
        study_name="search",
        direction=METRIC_DIRECTIONS[search.metric],
        sampler=sampler,
        pruner=pruner,
        load_if_exists=True,
    )
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        storage.set_trial_user_attr(trial._trial_id, INTERRUPTED, True)
        storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        study.enqueue_trial(trial.params)
    return study


def counted(study: Any) -> list[Any]:
    """The trials that count against `trials`: finished, stopped, or failed on their own."""
    from optuna.trial import TrialState

    states = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    return [t for t in study.get_trials(deepcopy=False, states=states) if not t.user_attrs.get(INTERRUPTED)]


def trial_table(study: Any) -> list[dict[str, Any]]:
    """Every trial of the study, in order: what the registered metrics keep under `search`."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        state = "interrupted" if t.user_attrs.get(INTERRUPTED) else t.state.name.lower()
        state = {"complete": "finished", "pruned": "stopped early"}.get(state, state)
        score = t.value
        if score is None and t.intermediate_values:  # a stopped trial: its last epoch's score
            score = t.intermediate_values[max(t.intermediate_values)]
        seconds = (
            round((t.datetime_complete - t.datetime_start).total_seconds(), 1)
            if t.datetime_complete and t.datetime_start
            else None
        )
        rows.append(
            {
                "trial": t.number,
                "params": t.params,
                "score": None if score is None else round(float(score), 5),
                "epochs": t.user_attrs.get("epochs", 0),
                "state": state,
                "seconds": seconds,
                **({"error": t.user_attrs["error"]} if "error" in t.user_attrs else {}),
            }
        )
    return rows


def run_trial(
    store: Store, base: TaskSpec, prepared: Any, folder: Path, trial: Any, metric: str, progress: Progress
) -> float:
    """Train one trial; return its validation score (of the epoch whose weights it kept).
    Its model stays in `folder/trial-N/model`; a stopped or failed trial leaves nothing."""
    from llmos.train.workflow import TrainJob, workflow_for

    task = trial_spec(base.model_dump(mode="json"), trial.params)
    run_dir = folder / f"trial-{trial.number}"
    shutil.rmtree(run_dir, ignore_errors=True)  # what an interrupted attempt left
    job = TrainJob(store, task, prepared, run_dir, TrialProgress(progress, trial, metric))
    try:
        _, metrics, history, _ = workflow_for(task.task).run(job)
    except BaseException:
        shutil.rmtree(run_dir, ignore_errors=True)
        raise
    kept = history[int(metrics.get("best_epoch") or len(history)) - 1]
    return float(kept[f"val_{metric}"])


def run_search(
    store: Store,
    spec: TaskSpec,
    progress: Progress | None = None,
    *,
    job_id: int | None = None,
    finalize: Callable[[Session, ModelVersion], None] | None = None,
) -> Any:
    """Run (or resume) the search `spec.search` describes and register its best trial (a
    TrainOutcome)."""
    try:
        import optuna
    except ImportError as exc:
        raise JobError(f"search: needs optuna (pip install 'llmos[search]'): {exc}") from None
    from optuna.trial import TrialState

    from llmos.train.run import prepare, register_run

    progress = progress or SilentProgress()
    search = spec.search
    assert search is not None
    base = search_spec(spec)
    prepared = prepare(store, base)  # data, columns, model and split checked once
    folder = search_dir(store, spec)
    folder.mkdir(parents=True, exist_ok=True)
    study = open_study(folder, base, search)
    space = distributions(search, base)
    kept = counted(study)
    if kept:
        progress.log(f"resuming the search of {spec.name}: {len(kept)} of {search.trials} trials kept")
    else:
        progress.log(
            f"searching {len(space)} hyper-parameters of {spec.name} over {search.trials} trials "
            f"({search.sampler}, {search.scheduler}, validation {search.metric})"
        )
    spent = sum(r["seconds"] or 0.0 for r in trial_table(study))
    started = time.perf_counter()
    while len(counted(study)) < search.trials:
        if search.time_budget_s is not None and spent + time.perf_counter() - started >= search.time_budget_s:
            progress.log(f"time budget of {search.time_budget_s:g}s spent; no more trials")
            break
        trial = study.ask(space)
        n = len(counted(study)) + 1
        values = ", ".join(
            f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in trial.params.items()
        )
        progress.log(f"trial {trial.number} ({n}/{search.trials}): {values}")
        try:
            score = run_trial(store, base, prepared, folder, trial, search.metric, progress)
        except optuna.TrialPruned as stopped:
            study.tell(trial, state=TrialState.PRUNED)
            progress.log(f"trial {trial.number}: {stopped}")
            continue
        except TrainingError as exc:  # this trial's values do not train (loss not finite ...)
            trial.set_user_attr("error", str(exc))
            study.tell(trial, state=TrialState.FAIL)
            progress.log(f"trial {trial.number} failed: {exc}")
            continue
        study.tell(trial, score)
        progress.log(f"trial {trial.number}: validation {search.metric} {score:.4f}")
        best = study.best_trial.number
        for other in folder.glob("trial-*"):  # only the best finished trial's model is kept
            if other.name != f"trial-{best}":
                shutil.rmtree(other, ignore_errors=True)
    trials = trial_table(study)
    if not any(t["state"] == "finished" for t in trials):
        raise TrainingError(f"search of {spec.name}: no trial finished ({len(trials)} run)")
    best_trial = study.best_trial
    model = folder / f"trial-{best_trial.number}" / "model"
    metrics = json.loads((model / "report" / "metrics.json").read_text())
    history = json.loads((model / "report" / "history.json").read_text())
    metrics["search"] = {
        "metric": f"val_{search.metric}",
        "direction": METRIC_DIRECTIONS[search.metric],
        "sampler": search.sampler,
        "scheduler": search.scheduler,
        "best_trial": best_trial.number,
        "best_params": best_trial.params,
        "trials": trials,
    }
    (model / "report" / "metrics.json").write_text(json.dumps(metrics, indent=2))  # the table travels
    chosen = trial_spec(base.model_dump(mode="json"), best_trial.params)
    chosen.search = spec.search  # the registered spec says how it was found
    seconds = float(sum(t["seconds"] or 0.0 for t in trials))
    progress.log(f"best: trial {best_trial.number} ({search.metric} {best_trial.value:.4f}), registering")
    outcome = register_run(store, chosen, prepared, model, metrics, history, seconds, job_id, finalize)
    shutil.rmtree(folder, ignore_errors=True)
    return outcome


def train_or_search(store: Store, spec: TaskSpec, progress: Progress | None = None, **options: Any) -> Any:
    """`train.run.train_from_spec`, or the search a spec's `search:` block asks for."""
    from llmos.train.run import train_from_spec

    if spec.search is None:
        return train_from_spec(store, spec, progress, **options)
    options.pop("checkpoint_dir", None)  # the study is the search's checkpoint
    return run_search(store, spec, progress, **options)
