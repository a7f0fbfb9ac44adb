"""Differential privacy for the training loop: DP-SGD through Opacus.

`PrivateTraining.attach` turns the loop's model and optimiser private with Opacus's
`PrivacyEngine`: per-example gradients (hooks on the trainable layers: LoRA matrices and
the head), clipping to `max_grad_norm`, Gaussian noise calibrated by Opacus for the
target (epsilon, delta) over the planned epochs, and Poisson sampling of each batch
(Opacus's `DPDataLoader` over row indices; the loop collates the rows it draws), which
the accountant's guarantee assumes. The epsilon reported is the accountant's, for the
steps actually taken. Before each epoch the accountant is asked what the epoch would
spend: a run that would pass its budget (a resumed run given more epochs, a run whose
noise was calibrated for another plan) stops with a one-line `TrainingError` instead.

Nothing here is a second training loop: `loop.fit` asks this module for the epoch's
batches and the budget check, and otherwise trains as always.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from llmos.core.errors import SpecError, TrainingError


@dataclass
class PrivacySettings:
    """The spec's `privacy:` with delta resolved for the training set's size."""

    epsilon: float
    delta: float
    max_grad_norm: float
    accountant: str = "rdp"


def resolve_privacy(cfg: Any, num_rows: int) -> PrivacySettings:
    """`spec.privacy` for a training set of `num_rows` rows (delta default: 1/(10 n))."""
    delta = cfg.delta if cfg.delta is not None else 1.0 / (10 * max(num_rows, 1))
    return PrivacySettings(cfg.epsilon, delta, cfg.max_grad_norm, cfg.accountant)


class PrivateTraining:
    """A model and optimiser made private for one run, and the run's accountant."""

    def __init__(
        self,
        engine: Any,
        module: Any,
        optimizer: Any,
        loader: Any,
        settings: PrivacySettings,
        noise_multiplier: float,
        sample_rate: float,
    ) -> None:
        self.engine = engine
        self.module = module
        self.optimizer = optimizer
        self.loader = loader
        self.settings = settings
        self.noise_multiplier = noise_multiplier
        self.sample_rate = sample_rate

    @classmethod
    def attach(
        cls,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        num_rows: int,
        batch_size: int,
        epochs: int,
        settings: PrivacySettings,
    ) -> PrivateTraining:
        from opacus import PrivacyEngine
        from opacus.accountants.utils import get_noise_multiplier
        from torch.utils.data import DataLoader, TensorDataset

        # Opacus's notices, not the user's concern: the non-cryptographic RNG (as every
        # trainer uses), the RDP order search, and hooks on frozen inputs
        warnings.filterwarnings("ignore", message="Secure RNG turned off", module="opacus")
        warnings.filterwarnings("ignore", message="Optimal order is the largest alpha", module="opacus")
        warnings.filterwarnings("ignore", message="Full backward hook is firing")
        indices = DataLoader(TensorDataset(torch.arange(num_rows)), batch_size=min(batch_size, num_rows))
        sample_rate = 1 / len(indices)
        try:
            sigma = get_noise_multiplier(
                target_epsilon=settings.epsilon,
                target_delta=settings.delta,
                sample_rate=sample_rate,
                epochs=epochs,
                accountant=settings.accountant,
                epsilon_tolerance=0.01,
            )
        except ValueError as exc:
            raise SpecError(
                f"privacy.epsilon {settings.epsilon} cannot be reached with delta {settings.delta:g} "
                f"over {epochs} epochs of {num_rows} rows ({exc}); raise epsilon or add data"
            ) from exc
        engine = PrivacyEngine(accountant=settings.accountant)
        model.train()
        module, private_optimizer, loader = engine.make_private(
            module=model,
            optimizer=optimizer,
            data_loader=indices,
            noise_multiplier=sigma,
            max_grad_norm=settings.max_grad_norm,
            poisson_sampling=True,
        )
        return cls(engine, module, private_optimizer, loader, settings, sigma, sample_rate)

    @property
    def steps_per_epoch(self) -> int:
        return len(self.loader)

    def epoch_batches(self) -> list[list[int]]:
        """Row indices of this epoch's batches, each row drawn with probability q (Poisson
        sampling); an empty draw is skipped (it would release nothing)."""
        batches = [b[0].tolist() for b in self.loader]
        return [b for b in batches if b]

    def epsilon(self) -> float:
        if not self.engine.accountant.history:
            return 0.0
        return float(self.engine.accountant.get_epsilon(self.settings.delta))

    def check_budget(self, epoch: int) -> None:
        """Stop before an epoch that would take epsilon past the target."""
        ahead = copy.deepcopy(self.engine.accountant)
        ahead.history.append((self.noise_multiplier, self.sample_rate, self.steps_per_epoch))
        spent = float(ahead.get_epsilon(self.settings.delta))
        if spent > self.settings.epsilon * 1.001:
            raise TrainingError(
                f"privacy budget: epoch {epoch} would spend epsilon {spent:.2f} > privacy.epsilon "
                f"{self.settings.epsilon:g} (already spent {self.epsilon():.2f}); stopped, nothing "
                "registered: start a fresh run or raise privacy.epsilon"
            )

    def state_dict(self) -> dict[str, Any]:
        return {"history": list(self.engine.accountant.history), "noise_multiplier": self.noise_multiplier}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.engine.accountant.history = list(state["history"])

    def summary(self) -> dict[str, Any]:
        """What the model's metrics record about its privacy."""
        return {
            "epsilon": round(self.epsilon(), 4),
            "target_epsilon": self.settings.epsilon,
            "delta": self.settings.delta,
            "max_grad_norm": self.settings.max_grad_norm,
            "noise_multiplier": round(self.noise_multiplier, 4),
            "sample_rate": round(self.sample_rate, 6),
            "steps": sum(n for _, _, n in self.engine.accountant.history),
            "accountant": self.settings.accountant,
            "mechanism": "DP-SGD (Opacus), Poisson sampling",
        }

    def detach(self) -> None:
        """Remove Opacus's hooks so the model predicts and saves as a plain model."""
        close = getattr(self.module, "_close", None)
        if close is not None:
            close()
