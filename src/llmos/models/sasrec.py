"""`sasrec`: SASRec-style causal self-attention over a user's recent items (Kang and
McAuley 2018), trained by the one loop (`train.loop.fit`) to predict every next item of
each window of a user's history with a softmax (cross-entropy, as in Klenitskiy and
Vasilev 2023).

The softmax runs over the true next item and `softmax_sample` items drawn uniformly per
batch (shared by the batch's positions; a drawn item that is the position's own target
is masked out), not the whole catalogue: with uniform draws the sampled softmax needs
no log-Q correction, and the catalogue-wide logits were nearly all of the cost. On
MovieLens latest-small (9,700 movies, leave-last-out, loaded 2-core machine) the full
softmax took about 150 s an epoch and the sampled one (1,024 items) seconds, so the
model trains to convergence in minutes. `softmax_sample: 0` keeps the full softmax.

Padding is on the left, positions count from the left edge of the window (the latest
item always sits at the last position, in training and in scoring alike), and a padded
query position may attend to itself only, so no attention row is empty (an all-masked
row would put NaN into the next block's values). No well-kept library ships SASRec in a
form that fits the loop (RecBole brings its own trainer and data pipeline), hence written
here. Registered by importing this module (`models.recommenders` does).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from llmos.core.progress import Progress
from llmos.models.recommenders import Loop, Recommender, recommender

SOFTMAX_SAMPLE = 1024  # items of the sampled softmax where the settings leave it unset


class NextItemObjective:
    """Cross-entropy of the next item: over the whole catalogue, or, with sampled
    items, over [target, samples] (the target is column 0)."""

    token_level = True

    def batch_targets(self, inputs: dict[str, Any], targets: Any, batch: Sequence[int]) -> Any:
        import torch

        t = inputs["targets"]
        wanted = t[t > 0]
        return torch.zeros_like(wanted) if "negatives" in inputs else wanted - 1

    def loss(self, logits: Any, targets: Any) -> Any:
        import torch.nn.functional as F

        return F.cross_entropy(logits.float(), targets)

    def quick_metrics(self, logits: Any, targets: Any) -> dict[str, float]:
        return {"accuracy": float((logits.argmax(-1) == targets).float().mean())}


def sasrec_module(n_items: int, dim: int, max_length: int, layers: int, heads: int, dropout: float) -> Any:
    import torch
    from torch import nn

    class SASRecModule(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.items = nn.Embedding(n_items + 1, dim, padding_idx=0)
            self.positions = nn.Embedding(max_length, dim)
            block = nn.TransformerEncoderLayer(
                dim, heads, dim * 2, dropout, batch_first=True, norm_first=True, activation="gelu"
            )
            self.blocks = nn.TransformerEncoder(block, layers, enable_nested_tensor=False)
            self.norm = nn.LayerNorm(dim)
            self.dropout = nn.Dropout(dropout)
            nn.init.normal_(self.items.weight, std=0.02)
            nn.init.normal_(self.positions.weight, std=0.02)
            with torch.no_grad():
                self.items.weight[0].zero_()

        def encode(self, items: Any) -> Any:
            length = items.shape[1]
            x = self.items(items) * dim**0.5 + self.positions(torch.arange(length, device=items.device))
            pad = items == 0
            eye = torch.eye(length, dtype=torch.bool, device=items.device)
            causal = torch.triu(torch.ones(length, length, dtype=torch.bool, device=items.device), 1)
            blocked = (causal | pad[:, None, :]) & ~eye  # (batch, query, key); True: not attended
            mask = blocked.repeat_interleave(heads, dim=0)
            h = self.blocks(self.dropout(x * ~pad[..., None]), mask=mask)
            return self.norm(h)

        def forward(self, items: Any, targets: Any, negatives: Any = None) -> Any:
            wanted = targets > 0
            h = self.encode(items)[wanted]
            if negatives is None:
                return h @ self.items.weight[1:].T
            t = targets[wanted]
            positive = (h * self.items(t)).sum(-1, keepdim=True)
            sampled = h @ self.items(negatives).T
            sampled = sampled.masked_fill(negatives[None, :] == t[:, None], float("-inf"))
            return torch.cat([positive, sampled], dim=1)

        def last(self, items: Any) -> Any:
            """Scores of every item after each (left-padded) sequence."""
            return self.encode(items)[:, -1] @ self.items.weight[1:].T

    return SASRecModule()


@recommender
class SASRec(Recommender):
    name = "sasrec"
    sequential = True
    defaults: ClassVar[dict[str, Any]] = {"epochs": 10, "lr": 0.003, "batch_size": 32}

    def _module(self) -> Any:
        s = self.settings
        return sasrec_module(
            self.n_items,
            int(s["factors"]),
            int(s["max_length"]),
            int(s["layers"]),
            int(s["heads"]),
            float(s["dropout"]),
        )

    def _fit(self, matrix: Any, histories: list[np.ndarray], loop: Loop | None, progress: Progress) -> None:
        import torch

        assert loop is not None, "sasrec trains through the loop"
        s = self.settings
        length = int(s["max_length"])
        sample = s.get("softmax_sample")
        sample = SOFTMAX_SAMPLE if sample is None else int(sample)
        sample = 0 if sample >= self.n_items else sample
        windows = []  # each user's history cut into windows of length + 1 (input, next item)
        for h in histories:
            seq = np.asarray(h, np.int64) + 1
            for end in range(len(seq), 1, -length):
                windows.append(seq[max(0, end - length - 1) : end])
        n_items = self.n_items

        def collate(rows: Sequence[Any]) -> dict[str, Any]:
            items = torch.zeros(len(rows), length, dtype=torch.long)
            targets = torch.zeros(len(rows), length, dtype=torch.long)
            for r, w in enumerate(rows):
                n = len(w) - 1
                items[r, length - n :] = torch.as_tensor(w[:-1])
                targets[r, length - n :] = torch.as_tensor(w[1:])
            batch = {"items": items, "targets": targets}
            if sample:
                batch["negatives"] = torch.randint(1, n_items + 1, (sample,))
            return batch

        self.module = self._module()
        self.history = loop(
            self.module,
            collate,
            NextItemObjective(),
            windows,
            int(s["epochs"]),
            float(s["lr"]),
            int(s["batch_size"]),
        )
        self.module.cpu().eval()

    def scores(self, users: np.ndarray, histories: Sequence[np.ndarray]) -> np.ndarray:
        import torch

        length = int(self.settings["max_length"])
        items = torch.zeros(len(histories), length, dtype=torch.long)
        for r, h in enumerate(histories):
            tail = np.asarray(h, np.int64)[-length:] + 1
            if len(tail):
                items[r, length - len(tail) :] = torch.as_tensor(tail)
        empty = (items == 0).all(dim=1)
        items[empty, -1] = 1  # scored, then replaced by popularity below
        with torch.inference_mode():
            out = self.module.last(items).numpy()
        out[empty.numpy()] = self.popularity
        return out

    def save(self, folder: Path) -> None:
        import torch

        super().save(folder)
        torch.save(self.module.state_dict(), folder / "sasrec.pt")

    def load_arrays(self, arrays: dict[str, np.ndarray], folder: Path) -> None:
        import torch

        super().load_arrays(arrays, folder)
        self.module = self._module()
        self.module.load_state_dict(torch.load(folder / "sasrec.pt", map_location="cpu", weights_only=True))
        self.module.eval()
