"""The `token-classification` task: fine-tune a tagger (a fusion model over one `tokens` input, one
BIO tag per word)."""

from __future__ import annotations

from llmos.spec.tasks import TokenClassification
from llmos.train.finetune import fine_tune
from llmos.train.parts import fusion_parts
from llmos.train.workflow import RunResult, TrainJob, Workflow, register_workflow


@register_workflow
class TokenClassificationWorkflow(Workflow):
    rules = TokenClassification

    @classmethod
    def run(cls, job: TrainJob) -> RunResult:
        return fine_tune(job, fusion_parts)
