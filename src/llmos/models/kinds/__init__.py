"""The model-kind registry: every kind of model llmos builds, saves, loads, predicts with,
serves, adapts and exports, and what it can do.

A kind is a `ModelKind` subclass in its own module of this package, registered with
`@register_kind` (Ludwig's pattern: small base class, registry decorator, one module per
implementation). Callers ask the kind of a saved model (`kind_of(config)`, from its
`llmos_model.json`) or of a pretrained one (`model_kind(resolved.kind)`) for a
capability, instead of comparing names:

- `deployment`: the deployment kind that serves it (`classifier`, `generation`,
  `embedding`; see `store.deployments.DEPLOYMENT_KINDS`), so the server knows its routes;
- `generates` (writes text), `predicts` (has a `Predictor`: `load` gives its parts),
  `optimizable` (`--optimize int8|onnx`), `adaptable` (`llmos adapt`, `label suggest`),
  `exports` (`llmos export` formats), `shares_base(config)` (its adapter can be paged over
  a base model shared with other deployments).

The kind modules import torch and transformers inside their methods only: reading a
capability (deploy, spec checks, the CLI) stays light.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from llmos.core.errors import ModelError


@dataclass
class PredictorParts:
    """What `train.predict.Predictor` wraps: a model, its input and output drivers."""

    model: Any  # nn.Module giving logits
    inputs: Any  # modalities InputDriver or InputSet
    output: Any  # modalities OutputDriver
    batch_size: int = 128


class ModelKind:
    """One kind of model. Subclasses set `name` and the capabilities they have."""

    name: ClassVar[str] = ""
    deployment: ClassVar[str] = "classifier"
    generates: ClassVar[bool] = False
    predicts: ClassVar[bool] = True
    has_head: ClassVar[bool] = True  # trains with a task head (its own learning rate)
    optimizable: ClassVar[bool] = False
    adaptable: ClassVar[bool] = False
    exports: ClassVar[tuple[str, ...]] = ()
    # kinds are asked whether they `claim` a config from the highest priority down: a
    # general fallback (`classifier`) is asked last, a refinement (`tagger` of `fusion`) first
    priority: ClassVar[int] = 10

    @classmethod
    def claims(cls, config: dict[str, Any]) -> bool:
        """Is the saved model `config` (llmos_model.json) of this kind? A kind names itself
        in `config["kind"]`; the built-in kinds also recognise folders saved before that."""
        return config.get("kind") == cls.name

    @classmethod
    def shares_base(cls, config: dict[str, Any]) -> bool:
        """Can the server page this model's adapter over a base shared with other models?"""
        return False

    @classmethod
    def load(cls, folder: Path, config: dict[str, Any], artifacts_dir: Path | None) -> PredictorParts:
        """The saved model's predictor parts (for kinds that `predict`)."""
        raise ModelError(f"{folder}: a {cls.name} model has no predictor; {cls.use_instead()}")

    @classmethod
    def use_instead(cls) -> str:
        return "serve it, or use `llmos chat` / `llmos generate`"


MODEL_KINDS: dict[str, type[ModelKind]] = {}
K = TypeVar("K", bound="type[ModelKind]")


def register_kind(cls: K) -> K:
    MODEL_KINDS[cls.name] = cls
    return cls


def model_kind(name: str) -> type[ModelKind]:
    """A kind by name (a zoo entry's `kind`, a saved config's `kind`)."""
    try:
        return MODEL_KINDS[name]
    except KeyError:
        raise ModelError(f"unknown model kind {name!r}; known: {', '.join(MODEL_KINDS)}") from None


def kind_of(config: dict[str, Any]) -> type[ModelKind]:
    """The kind of a saved model: the first kind, by `priority`, that claims its config."""
    for kind in sorted(MODEL_KINDS.values(), key=lambda k: -k.priority):
        if kind.claims(config):
            return kind
    raise ModelError(f"model config of kind {config.get('kind')!r}: no registered model kind claims it")


# the built-in kinds
from llmos.models.kinds import causal_lm as _causal_lm  # noqa: E402,F401
from llmos.models.kinds import classifier as _classifier  # noqa: E402,F401
from llmos.models.kinds import encoder as _encoder  # noqa: E402,F401
from llmos.models.kinds import fusion as _fusion  # noqa: E402,F401
from llmos.models.kinds import prompt_classifier as _prompt_classifier  # noqa: E402,F401
from llmos.models.kinds import recommender as _recommender  # noqa: E402,F401
from llmos.models.kinds import reranker as _reranker  # noqa: E402,F401
from llmos.models.kinds import tagger as _tagger  # noqa: E402,F401
