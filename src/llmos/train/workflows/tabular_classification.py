"""The `tabular-classification` task: fine-tune a fusion model over number and category columns."""

from __future__ import annotations

from llmos.spec.tasks import TabularClassification
from llmos.train.finetune import fine_tune
from llmos.train.parts import fusion_parts
from llmos.train.workflow import RunResult, TrainJob, Workflow, register_workflow


@register_workflow
class TabularClassificationWorkflow(Workflow):
    rules = TabularClassification

    @classmethod
    def run(cls, job: TrainJob) -> RunResult:
        return fine_tune(job, fusion_parts)
