"""One forward pass for requests to many LoRA adapters over one shared base model.

Without this, the batcher's window over a base holds requests for several adapters and
runs them one adapter at a time: with 100 adapters under 32 clients a window of 32
requests touches about 27 adapters, so the base model ran ~27 forward passes of one or
two texts each, where a whole model runs one pass of 32. Here the rows of every LoRA
adapter in the window are padded into shared batches and run through the shared
`PeftModel` once, with peft's mixed-adapter inference (`adapter_names`, one name per
row): each LoRA layer computes the base projection for all rows and adds each adapter's
low-rank update to its own rows. Where a layer allows (plain linear LoRA, one rank),
the updates are two batched matrix products over each row's gathered A and B matrices
(`_add_gathered`) instead of peft's loop over the batch's adapters: in
`benchmarks/bench_adapters.py` (loaded machine) 100 adapters went from 0.58x a whole
model's requests/s with peft's loop to 1.29x, against 0.30x one adapter at a time.
Pooling and the classifier head are llmos's own
(`SequenceClassifier`, outside peft), so they are applied per adapter to that adapter's
rows; an adapter saved with peft `modules_to_save` copies is served correctly too, as
peft routes those per row under `adapter_names` as well.

Several batch workers may run such passes over one base at once (each thread routes
its own rows, see `install_routing`); the pager keeps adapters from being loaded or
deleted while a pass is running. Only plain LoRA qualifies (peft refuses DoRA in mixed
batches; IA3 and the soft-prompt methods have no mixed path): `mixable` says which
adapters may join, and the others take the per-adapter path. Rows are batched by length with the same caps as
`Predictor` (rows per batch, padded tokens per batch), so a row's answer equals the one
that adapter gives alone up to float rounding of the padding.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from llmos.models.classifier import SequenceClassifier, pool
from llmos.train.batching import inference_batches

# peft's own `adapter_names=` argument registers a forward hook on every adapter layer
# for the duration of one call, so two calls at once (two batch workers) would see each
# other's names. Instead each layer carries one permanent hook that reads the names of
# the pass its own thread is running, and passes nothing when none is.
_ROUTE = threading.local()


def _route(module: Any, args: Any, kwargs: dict[str, Any]) -> Any:
    names = getattr(_ROUTE, "names", None)
    if names is None:
        return None
    if _gathers(module, names, args):
        # the base projection alone here ("__base__" rows); `_add_gathered` adds the
        # adapters' updates after it
        _ROUTE.pending.add(id(module))
        return args, {**kwargs, "adapter_names": ["__base__"] * len(names)}
    return args, {**kwargs, "adapter_names": names}


def _gathers(module: Any, names: list[str], args: Any) -> bool:
    """Can this layer add every row's update in two batched matrix products? peft's
    mixed path loops over the adapters of the batch (about 40 small tensor operations per
    layer for 8 adapters, more than the base projection of 8 short texts costs on a
    CPU); gathering each row's A and B matrices takes a handful whatever the mix. Plain
    linear LoRA of one rank on every row's adapter qualifies; anything else goes to peft."""
    lora_a = getattr(module, "lora_A", None)
    if lora_a is None or not args or getattr(args[0], "dim", lambda: 0)() != 3:
        return False
    if type(module).__name__ != "Linear" or getattr(module, "lora_variant", None):
        return False
    unique = _ROUTE.unique
    if any(n not in lora_a or module.lora_bias.get(n, False) for n in unique):
        return False
    return len({lora_a[n].weight.shape for n in unique}) == 1


def _add_gathered(module: Any, args: Any, kwargs: dict[str, Any], output: Any) -> Any:
    if id(module) not in getattr(_ROUTE, "pending", ()):
        return None
    _ROUTE.pending.discard(id(module))
    x = args[0]
    unique, rows = _ROUTE.unique, _ROUTE.rows
    a = torch.stack([module.lora_A[n].weight for n in unique])[rows]  # (B, r, in)
    b = torch.stack([module.lora_B[n].weight for n in unique])[rows]  # (B, out, r)
    scale = torch.tensor([module.scaling[n] for n in unique], dtype=x.dtype, device=x.device)[rows]
    low = torch.bmm(x.to(a.dtype), a.transpose(1, 2))
    update = torch.bmm(low, b.transpose(1, 2)) * scale[:, None, None]
    return output + update.to(output.dtype)


def install_routing(peft: Any) -> None:
    """Give every adapter layer (and `modules_to_save` copy) of `peft` the routing hooks
    once; call it after loading an adapter (loading may add layers)."""
    from peft.tuners.lora import LoraLayer
    from peft.utils.other import AuxiliaryTrainingWrapper

    for module in peft.modules():
        routed = getattr(module, "_llmos_route", False)
        if isinstance(module, (LoraLayer, AuxiliaryTrainingWrapper)) and not routed:
            layer: Any = module  # a torch module (peft's layer classes are mixins to mypy)
            layer.register_forward_pre_hook(_route, with_kwargs=True)
            if isinstance(module, LoraLayer):
                layer.register_forward_hook(_add_gathered, with_kwargs=True)
            layer._llmos_route = True


@dataclass
class MixedGroup:
    """One adapter's part of a mixed batch: its name in the shared model, its predictor
    (tokenizer, head, output driver) and its inputs."""

    adapter: str
    predictor: Any
    inputs: list[Any]


def mixable(peft: Any, adapter: str, predictor: Any) -> bool:
    """Can adapter `adapter` of the shared `PeftModel` `peft` run in a mixed batch?"""
    from peft.utils import PeftType

    config = peft.peft_config.get(adapter)
    if config is None or config.peft_type != PeftType.LORA or getattr(config, "use_dora", False):
        return False
    model = predictor.model
    return (
        isinstance(model, SequenceClassifier)
        and model.encoder is peft
        and hasattr(predictor.input, "collate")
        and hasattr(predictor.input, "pad_id")
    )


def _collate_key(predictor: Any) -> tuple[Any, ...]:
    """Rows can be padded into one batch when their input drivers pad alike."""
    return (type(predictor.input), predictor.input.pad_id)


def predict_mixed(
    peft: Any, groups: Sequence[MixedGroup], batch_size: int, max_tokens: int | None
) -> list[list[dict[str, Any]]]:
    """Each group's answers (one per input), computed in shared forward passes."""
    rows: list[tuple[int, Any]] = []  # (group index, encoded row)
    for g, group in enumerate(groups):
        predictor = group.predictor
        features = predictor.features(predictor.as_frame(group.inputs))
        rows.extend((g, f) for f in features)
    logits: list[torch.Tensor | None] = [None] * len(rows)
    by_collate: dict[tuple[Any, ...], list[int]] = {}
    for i, (g, _) in enumerate(rows):
        by_collate.setdefault(_collate_key(groups[g].predictor), []).append(i)
    for members in by_collate.values():
        driver = groups[rows[members[0]][0]].predictor.input
        lengths = [driver.length(rows[i][1]) for i in members]
        for batch in inference_batches(lengths, batch_size, max_tokens):
            indices = [members[b] for b in batch]
            out = _forward(peft, groups, driver, [rows[i] for i in indices])
            for i, row in zip(indices, out):
                logits[i] = row
    answers: list[list[dict[str, Any]]] = []
    start = 0
    for group in groups:
        mine = [t for t in logits[start : start + len(group.inputs)] if t is not None]
        start += len(group.inputs)
        answers.append(group.predictor.decode(torch.stack(mine)) if mine else [])
    return answers


@torch.inference_mode()
def _forward(peft: Any, groups: Sequence[MixedGroup], driver: Any, rows: list[tuple[int, Any]]) -> list[Any]:
    """Logits of `rows` (group index, encoded row): one encoder pass, then per-adapter
    pooling and head on that adapter's rows."""
    placement = groups[rows[0][0]].predictor.placement
    inputs = {k: v.to(placement.device) for k, v in driver.collate([f for _, f in rows]).items()}
    names = [groups[g].adapter for g, _ in rows]
    _ROUTE.names = names
    _ROUTE.unique = list(dict.fromkeys(names))
    position = {n: i for i, n in enumerate(_ROUTE.unique)}
    _ROUTE.rows = torch.tensor([position[n] for n in names], device=placement.device)
    _ROUTE.pending = set()
    try:
        with placement.autocast():
            out: Any = peft.get_base_model()(**inputs)
    finally:
        _ROUTE.names = None
    hidden = out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]
    mask = inputs["attention_mask"]
    members: dict[int, list[int]] = {}
    for r, (g, _) in enumerate(rows):
        members.setdefault(g, []).append(r)
    result: list[Any] = [None] * len(rows)
    for g, idx in members.items():
        model = groups[g].predictor.model
        at = torch.tensor(idx, device=hidden.device)
        with placement.autocast():
            head = model.head(pool(hidden[at], mask[at], model.pooling)).float().cpu()
        for r, row in zip(idx, head):
            result[r] = row
    return result
