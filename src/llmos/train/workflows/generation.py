"""The `generation` task: instruction tuning of a causal LM.

Same loop, same registry as classification: the chat driver turns conversations into
token ids with loss on the assistant turns, `CausalLMTask` gives logits at those
positions, `NextTokenObjective` is the loss. Evaluation (train/generation.py) reports
held-out perplexity, exact match and ROUGE-L of generated answers against the
references, and sample generations before and after training (the base model's, then
the tuned model's).
"""

from __future__ import annotations

from llmos.core.errors import SpecError
from llmos.modalities.chat import NextTokenObjective, pack
from llmos.spec.tasks import Generation
from llmos.train.generation import chat_driver, evaluate_generation, examples_rows, split_prompt
from llmos.train.loop import fit, seed_everything, steps_per_epoch
from llmos.train.workflow import (
    RunResult,
    TrainJob,
    Workflow,
    loop_settings,
    register_workflow,
    training_summary,
    write_report,
)


@register_workflow
class GenerationWorkflow(Workflow):
    rules = Generation

    @classmethod
    def run(cls, job: TrainJob) -> RunResult:
        return run_generation(job)


def run_generation(job: TrainJob) -> RunResult:
    """Instruction-tune a causal LM; return its model folder, metrics and history."""
    from llmos.models.build import load_tokenizer
    from llmos.models.causal import build_causal_lm, context_length, save_causal_lm

    spec, prepared, run_dir, progress = job.spec, job.prepared, job.run_dir, job.progress
    gen, cfg = spec.gen, spec.train
    resolved, splits, placement = prepared.resolved, prepared.splits, prepared.placement
    tokenizer = load_tokenizer(resolved.path)
    driver = chat_driver(spec, tokenizer)
    train_convs = driver.conversations(splits.train, prepared.train_source)
    test_convs = driver.conversations(splits.test, prepared.test_source)
    examples = driver.encode_conversations(train_convs, prepared.train_source)
    driver.encode_conversations(test_convs, prepared.test_source)  # overlong test rows fail now
    if gen.packing:
        examples = pack(examples, gen.max_length)
    train_rows = examples_rows(examples)
    val_rows = None
    if splits.validation is not None:
        val_convs = driver.conversations(splits.validation, prepared.val_source)
        val_rows = examples_rows(driver.encode_conversations(val_convs, prepared.val_source))

    settings = loop_settings(cfg, spec.method.type, head=False)
    total_steps = steps_per_epoch(len(train_rows), cfg.batch_size, cfg.gradient_accumulation) * cfg.epochs
    seed_everything(cfg.seed)
    model = build_causal_lm(resolved, spec.method, total_steps)
    context = context_length(model.lm)
    if context is not None and gen.max_length > context:
        raise SpecError(
            f"generation.max_length ({gen.max_length}) is longer than the context of "
            f"{resolved.name} ({context} tokens)"
        )
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    model.to(placement.device)
    progress.log(f"evaluating {resolved.name} before training")
    # before training: perplexity, and answers only for the samples shown in the report
    before, before_answers = evaluate_generation(
        model,
        driver,
        test_convs,
        gen.eval.show,
        gen.eval.max_new_tokens,
        cfg.eval_batch_size,
        placement,
        progress,
    )
    progress.log(
        f"training {spec.name}: {resolved.name} + {spec.method.type} on {placement.describe()}, "
        f"{len(train_rows)} sequences, {trainable:,} of {total:,} parameters trainable"
    )
    result = fit(
        model,
        driver.collate,
        NextTokenObjective(),
        train_rows,
        settings,
        placement,
        validation=val_rows,
        checkpoint_dir=run_dir / "checkpoints",
        progress=progress,
    )
    samples = max(gen.eval.samples, gen.eval.show)
    metrics, answers = evaluate_generation(
        model, driver, test_convs, samples, gen.eval.max_new_tokens, cfg.eval_batch_size, placement, progress
    )
    shown = []
    for conv, old, new in list(zip(test_convs, before_answers, answers))[: gen.eval.show]:
        prompt, reference = split_prompt(conv)
        shown.append({"prompt": prompt[-1]["content"], "reference": reference, "before": old, "after": new})
    metrics.update(
        before={k: before[k] for k in ("loss", "perplexity")},
        samples=shown,
        **training_summary(result, trainable, total),
    )
    folder = run_dir / "model"
    config = {
        "task": "generation",
        "base_model": resolved.alias or resolved.path,
        "method": spec.method.type,
        "chat_template": driver.chat.template,
        "system_prompt": gen.system_prompt,
        "max_length": gen.max_length,
        "input": {
            "type": "chat",
            "column": driver.column,
            "response_column": driver.response_column,
        },
    }
    save_causal_lm(model, tokenizer, config, folder)
    write_report(
        folder, spec, metrics, result.history, f"{spec.name} on {prepared.test_source}", result.step_metrics
    )
    return folder, metrics, result.history, result.train_seconds
