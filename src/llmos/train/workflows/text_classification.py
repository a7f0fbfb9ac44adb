"""The `text-classification` task: fine-tune an encoder classifier (`SequenceClassifier`:
encoder + pooling + head; full, frozen or a peft method), or, with `method: zero-shot |
few-shot`, prompt a causal LLM without training (`train/prompting.py`); with `distill:`,
learn a teacher's label probabilities on unlabelled rows (`train/distill.py`)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from llmos.modalities.base import OutputDriver
from llmos.modalities.text import TextDriver
from llmos.modalities.text_pair import TextPairDriver
from llmos.spec.schema import TaskSpec, TextPairInput
from llmos.spec.tasks import TextClassification
from llmos.train.finetune import fine_tune
from llmos.train.loop import seed_everything
from llmos.train.parts import TaskParts
from llmos.train.workflow import Prepared, RunResult, TrainJob, Workflow, register_workflow


@register_workflow
class TextClassificationWorkflow(Workflow):
    rules = TextClassification

    @classmethod
    def supports_ray(cls, spec: TaskSpec) -> bool:
        return not type(spec.method).prompting and spec.distill is None

    @classmethod
    def run(cls, job: TrainJob) -> RunResult:
        if type(job.spec.method).prompting:
            from llmos.train.prompting import run_prompt_classifier

            return run_prompt_classifier(job.store, job.spec, job.prepared, job.run_dir, job.progress)
        if job.spec.distill is not None:
            from llmos.train.distill import distil

            return distil(job)
        return fine_tune(job, classifier_parts)


def classifier_parts(
    spec: TaskSpec, train: pd.DataFrame, output: OutputDriver, prepared: Prepared, total_steps: int
) -> TaskParts:
    from llmos.models.build import build_classifier, choose_pooling, load_tokenizer, save_classifier

    resolved = prepared.resolved
    pretrained = spec.pretrained
    tokenizer = load_tokenizer(resolved.path)
    feature = spec.text_input
    driver = (
        TextPairDriver(feature.name, tokenizer, feature.max_length, feature.pair)
        if isinstance(feature, TextPairInput)
        else TextDriver(feature.name, tokenizer, feature.max_length)
    )
    pooling = choose_pooling(pretrained.pooling, resolved)
    seed_everything(spec.train.seed)
    model = build_classifier(
        resolved, spec.method, output.num_outputs, pooling, pretrained.dropout, total_steps
    )
    base_model = resolved.alias or resolved.path  # an alias, an absolute folder or a hub id
    config: dict[str, Any] = {
        "task": spec.task,
        "base_model": base_model,
        "method": spec.method.type,
        "pooling": pooling,
        "dropout": pretrained.dropout,
        "hidden_size": model.head.in_features,
        "input": driver.state(),  # type text: column, max_length; text-pair: also pair
        "output": output.state(),
    }
    return TaskParts(
        inputs=driver,
        output=output,
        model=model,
        config=config,
        base_model=base_model,
        method=spec.method.type,
        save=lambda folder: save_classifier(model, tokenizer, config, folder),
        adapted=[model.encoder],
    )
