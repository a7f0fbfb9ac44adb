"""The `image-classification` task: fine-tune a fusion model over one image input (a small CNN, or a
pretrained vision model)."""

from __future__ import annotations

from llmos.spec.tasks import ImageClassification
from llmos.train.finetune import fine_tune
from llmos.train.parts import fusion_parts
from llmos.train.workflow import RunResult, TrainJob, Workflow, register_workflow


@register_workflow
class ImageClassificationWorkflow(Workflow):
    rules = ImageClassification

    @classmethod
    def run(cls, job: TrainJob) -> RunResult:
        return fine_tune(job, fusion_parts)
