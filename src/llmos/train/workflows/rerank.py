"""The `rerank` task: fine-tune a cross-encoder (the text classifier's model over a
`text-pair` input: query and passage encoded jointly) on relevance labels, with the one
loop (`finetune.fine_tune`). Besides the classifier's metrics, the test split is scored
as a ranking: passages grouped by query, sorted by the positive label's probability,
giving MAP and MRR over queries with at least one relevant passage (the standard
WikiQA filter)."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from llmos.core.errors import DataError
from llmos.modalities.base import OutputDriver
from llmos.models.kinds.reranker import RerankerKind
from llmos.spec.schema import TaskSpec
from llmos.spec.tasks import Rerank
from llmos.train.finetune import fine_tune
from llmos.train.parts import TaskParts
from llmos.train.workflow import Prepared, RunResult, TrainJob, Workflow, register_workflow
from llmos.train.workflows.text_classification import classifier_parts


def ranking_metrics(queries: list[Any], scores: list[float], relevant: list[bool]) -> dict[str, Any]:
    """MAP and MRR of `scores` ranking each query's rows, over queries with a relevant row."""
    groups: dict[Any, list[tuple[float, bool]]] = {}
    for query, score, rel in zip(queries, scores, relevant):
        groups.setdefault(query, []).append((score, rel))
    aps, rrs = [], []
    for rows in groups.values():
        if not any(rel for _, rel in rows):
            continue
        ranked = sorted(rows, key=lambda r: -r[0])
        hits, precision_sum, first = 0, 0.0, 0.0
        for rank, (_, rel) in enumerate(ranked, start=1):
            if rel:
                hits += 1
                precision_sum += hits / rank
                first = first or 1.0 / rank
        aps.append(precision_sum / hits)
        rrs.append(first)
    n = len(aps)
    return {
        "map": round(sum(aps) / n, 4) if n else None,
        "mrr": round(sum(rrs) / n, 4) if n else None,
        "ranked_queries": n,
    }


def reranker_parts(
    spec: TaskSpec, train: pd.DataFrame, output: OutputDriver, prepared: Prepared, total_steps: int
) -> TaskParts:
    if output.num_outputs != 2:
        raise DataError(
            f"rerank: label column {output.column!r} holds {output.num_outputs} values "
            f"({', '.join(map(repr, output.labels[:5]))}); give two (relevant or not, such as 1 and 0)"
        )
    parts = classifier_parts(spec, train, output, prepared, total_steps)
    parts.config["kind"] = RerankerKind.name
    parts.config["positive_label"] = Rerank.positive_label(output.labels)
    return parts


@register_workflow
class RerankWorkflow(Workflow):
    rules = Rerank

    @classmethod
    def run(cls, job: TrainJob) -> RunResult:
        from llmos.models.build import read_model_config
        from llmos.train.predict import Predictor

        folder, metrics, history, seconds = fine_tune(job, reranker_parts)
        spec, prepared = job.spec, job.prepared
        predictor = Predictor.from_folder(folder, prepared.artifacts_dir, spec.train.device)
        test = prepared.splits.test
        config = read_model_config(folder)
        positive = config["positive_label"]
        rows = predictor.predict(test[predictor.columns], source=prepared.test_source)
        scores = [float(r["probabilities"][positive]) for r in rows]
        relevant = [str(v) == positive for v in test[spec.output.name].astype(str)]
        metrics.update(ranking_metrics(test[spec.inputs[0].name].tolist(), scores, relevant))
        (folder / "report" / "metrics.json").write_text(json.dumps(metrics, indent=2))
        job.progress.log(f"ranking on {prepared.test_source}: MAP {metrics['map']}, MRR {metrics['mrr']}")
        return folder, metrics, history, seconds
