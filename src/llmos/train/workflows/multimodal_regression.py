"""The `multimodal-regression` task: fine-tune a fusion model over several inputs of different types,
predicting a number."""

from __future__ import annotations

from llmos.spec.tasks import MultimodalRegression
from llmos.train.finetune import fine_tune
from llmos.train.parts import fusion_parts
from llmos.train.workflow import RunResult, TrainJob, Workflow, register_workflow


@register_workflow
class MultimodalRegressionWorkflow(Workflow):
    rules = MultimodalRegression

    @classmethod
    def run(cls, job: TrainJob) -> RunResult:
        return fine_tune(job, fusion_parts)
