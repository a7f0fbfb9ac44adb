"""The regularisers continual fine-tuning adds to the one training loop (its `regularizer`
hook): EWC anchors the trainable parameters by their Fisher information on the old data;
LwF distils the old model's outputs. Each returns a function of (logits, row indices)."""

from __future__ import annotations

from typing import Any


def ewc_regularizer(model: Any, collate: Any, rows: Any, output: Any, placement: Any, strength: float) -> Any:
    """EWC: the diagonal Fisher information of the trainable parameters on the old data
    (mean squared gradient of the loss over small batches) anchors them where they are."""
    import torch

    from llmos.train.batching import inference_batches

    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    fisher = {n: torch.zeros_like(p) for n, p in params.items()}
    model.eval()
    batches = inference_batches(rows.lengths, 8)
    for batch in batches:
        model.zero_grad(set_to_none=True)
        inputs = {k: v.to(placement.device) for k, v in collate([rows.features[i] for i in batch]).items()}
        loss = output.loss(model(**inputs), rows.targets[batch].to(placement.device))
        loss.backward()
        for n, p in params.items():
            if p.grad is not None:
                fisher[n] += p.grad.detach() ** 2 / len(batches)
    model.zero_grad(set_to_none=True)
    anchor = {n: p.detach().clone() for n, p in params.items()}

    def penalty(logits: Any, batch: Any) -> Any:
        total = sum((fisher[n] * (p - anchor[n]) ** 2).sum() for n, p in params.items())
        return strength / 2 * total

    return penalty


def lwf_regularizer(old_logits: Any, rows: Any, weight: float, temperature: float = 2.0) -> Any:
    """LwF: keep the softened output distribution on `rows` (indices into the training rows)
    close to the old model's `old_logits` there. Adapt distils on the replayed rows only:
    on the new rows the old model's answer is the mistake being corrected (the head may
    share classes with it), so pulling towards it there would fight the feedback."""
    import torch
    import torch.nn.functional as F

    width = old_logits.shape[1]
    chosen = torch.zeros(len(old_logits), dtype=torch.bool)
    chosen[list(rows)] = True

    def penalty(logits: Any, batch: Any) -> Any:
        keep = chosen[list(batch)].to(logits.device)
        if not bool(keep.any()):
            return logits.sum() * 0.0
        old = old_logits[list(batch)].to(logits.device)[keep]
        new = logits.float()[keep][:, :width] / temperature
        kl = F.kl_div(F.log_softmax(new, -1), F.softmax(old / temperature, -1), reduction="batchmean")
        return weight * temperature**2 * kl * keep.float().mean()

    return penalty
