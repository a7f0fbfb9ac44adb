"""Training in the calling process (`Workspace.train`): the same run a kernel job performs,
without the queue. `llmos train` and the HTTP API submit jobs instead (`ops.jobs`)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from llmos.core.progress import Progress
from llmos.ops.context import Context
from llmos.ops.registry import operation

if TYPE_CHECKING:
    from llmos.spec.schema import TaskSpec
    from llmos.train.run import TrainOutcome


@operation("train")
def train(
    ctx: Context,
    spec: str | os.PathLike[str] | dict[str, Any] | TaskSpec,
    progress: Progress | None = None,
) -> TrainOutcome:
    """Fine-tune, evaluate and register a model from a spec, in this process."""
    from llmos.ops.jobs import to_spec
    from llmos.train.search import train_or_search

    return train_or_search(ctx.store, to_spec(spec), progress)
