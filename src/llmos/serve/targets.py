"""What a deployment runs: `deploy` checks and records a target; `resolve_target` turns a
deployment row into a `Target` that says which base model in memory it shares.

Kinds: `classifier` (a registered text classifier, fine-tuned or zero-/few-shot),
`generation` (a registered generation model, or a pretrained causal LM such as
`smollm2-135m`) and `embedding` (a pretrained encoder such as `minilm`, for
`/v1/embeddings`). Registered models are pinned to a version at deploy time, so a
later training run never changes what a deployment serves until it is re-pointed.

How a whole text classifier runs (its `--optimize`): by default (none given) with ONNX
Runtime when the server puts it on a CPU (`auto`: fp32, the same probabilities as torch
to 1e-5, 1.25-2x faster per forward pass; torch on a GPU, or when the export fails), or
as asked: `onnx` (ONNX Runtime, and a load that fails says so), `int8` (dynamic
quantisation) or `torch` (no speed-up). A classifier that is an adapter over a shared
base keeps sharing it by default: `onnx` or `int8` makes it a whole model of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmos.core.errors import UsageError
from llmos.spec.schema import METHOD_CONFIGS
from llmos.store.db import Store
from llmos.store.deployments import DEPLOYMENT_KINDS, save_deployment
from llmos.store.models import get_model, list_models, model_folder
from llmos.store.schema import Deployment
from llmos.store.scope import DEFAULT_PROJECT

# peft methods whose adapters can sit side by side on one base model and be switched per
# batch: the method classes say so (`shareable`); this tuple is for reading only
SHARED_METHODS = tuple(name for name, m in METHOD_CONFIGS.items() if m.shareable)
OPTIMIZE = ("int8", "onnx", "onnx-int8", "torch")  # train/predict.py OPTIMIZERS, and torch: none of them


@dataclass(frozen=True)
class Target:
    """A deployment's model, resolved: `base_key` is equal for models that share a base."""

    ref: str
    kind: str
    base_key: str
    folder: Path | None = None
    config: dict[str, Any] = field(default_factory=dict, compare=False)
    optimize: str | None = None
    pinned: bool = field(default=False, compare=False)
    project: str = DEFAULT_PROJECT  # a registered model's project: equal refs of two projects differ

    @property
    def slot(self) -> str:
        """The model's name in memory (the pager's key): its ref, with its project when not `default`."""
        return self.ref if self.project == DEFAULT_PROJECT else f"{self.project}/{self.ref}"

    @property
    def adapter(self) -> bool:
        """Is this an adapter paged over a shared base (rather than a whole model)?"""
        return self.base_key.startswith("encoder:")


def _is_registered(store: Store, model: str) -> bool:
    return "@" in model or bool(list_models(store, model))


def deploy(store: Store, model: str, name: str, optimize: str | None = None, pin: bool = False) -> Deployment:
    """Point deployment `name` at `model` (NAME[@V], or a zoo alias/folder): create or re-point."""
    from llmos.models.build import read_model_config
    from llmos.models.kinds import kind_of, model_kind
    from llmos.models.zoo import check_loadable, resolve_model

    if optimize is not None and optimize not in OPTIMIZE:
        raise UsageError(f"unknown --optimize {optimize!r}: use {', '.join(OPTIMIZE)}")
    task: str | None = None
    if _is_registered(store, model):
        row = get_model(store, model)
        ref, task = row.ref, row.task
        model_kind_ = kind_of(read_model_config(model_folder(store, row)))
        kind, optimizable = model_kind_.deployment, model_kind_.optimizable
    else:
        resolved = resolve_model(model, store.settings.artifacts_dir)
        check_loadable(resolved)
        ref, optimizable = model, False
        if resolved.kind is None:
            kind = _kind_of_folder(resolved.path)
        else:
            kind = model_kind(resolved.kind).deployment
    if optimize and optimize != "torch" and not optimizable:
        raise UsageError(
            f"--optimize {optimize} applies to fine-tuned text classifiers; {ref} is a {task or kind} model"
        )
    return save_deployment(store, name, ref, kind, {"optimize": optimize, "pin": pin})


def _kind_of_folder(path: str) -> str:
    """A pretrained folder or hub id: a causal LM serves generation, anything else embeddings."""
    import json

    config = Path(path) / "config.json"
    if config.exists():
        arch = " ".join(json.loads(config.read_text()).get("architectures") or [])
        if "CausalLM" in arch:
            return "generation"
        return "embedding"
    raise UsageError(
        f"cannot tell what {path!r} is: deploy a registered model, a zoo alias or a local folder"
    )


def resolve_target(store: Store, row: Deployment) -> Target:
    """Read a deployment's model folder and decide where in memory it lives."""
    from llmos.models.build import read_model_config
    from llmos.models.kinds import kind_of
    from llmos.models.zoo import resolve_model

    options = row.options or {}
    optimize, pinned = options.get("optimize"), bool(options.get("pin"))
    explicit = optimize is not None
    artifacts = store.settings.artifacts_dir
    serving = DEPLOYMENT_KINDS[row.kind]
    if serving.embeds:
        resolved = resolve_model(row.model, artifacts)
        return Target(row.model, row.kind, f"embed:{resolved.path}")
    if not _is_registered(store, row.model):  # a pretrained causal LM
        resolved = resolve_model(row.model, artifacts)
        return Target(row.model, "generation", f"lm:{resolved.path}")
    model = get_model(store, row.model)
    folder = model_folder(store, model)
    config = read_model_config(folder)
    project = model.project
    slot = model.ref if project == DEFAULT_PROJECT else f"{project}/{model.ref}"
    if serving.generates:
        return Target(model.ref, row.kind, f"lm:{slot}", folder, config, project=project)
    if serving.recommends:
        return Target(model.ref, row.kind, f"rec:{slot}", folder, config, project=project)
    kind = kind_of(config)
    if kind.shares_base(config) and optimize in (None, "torch"):
        base = resolve_model(config["base_model"], artifacts)
        key = f"encoder:{config['method']}:{base.path}"
        return Target(model.ref, "classifier", key, folder, config, pinned=pinned, project=project)
    if not explicit and kind.optimizable:
        from llmos.train.predict import AUTO

        optimize = AUTO
    elif optimize == "torch":
        optimize = None
    key = f"model:{slot}:{optimize or ''}"
    return Target(model.ref, "classifier", key, folder, config, optimize, project=project)


def undeploy(store: Store, name: str, pager: Any = None) -> Deployment:
    """Remove deployment `name` (and, in a running server, free its model's memory)."""
    from llmos.store.deployments import delete_deployment

    row = delete_deployment(store, name)
    if pager is not None:
        pager.evict(row.model)
    return row
