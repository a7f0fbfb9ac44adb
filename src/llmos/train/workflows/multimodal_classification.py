"""The `multimodal-classification` task: fine-tune a fusion model over several inputs of different
types, fused by the combiner."""

from __future__ import annotations

from llmos.spec.tasks import MultimodalClassification
from llmos.train.finetune import fine_tune
from llmos.train.parts import fusion_parts
from llmos.train.workflow import RunResult, TrainJob, Workflow, register_workflow


@register_workflow
class MultimodalClassificationWorkflow(Workflow):
    rules = MultimodalClassification

    @classmethod
    def run(cls, job: TrainJob) -> RunResult:
        return fine_tune(job, fusion_parts)
