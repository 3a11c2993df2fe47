"""Optimizers from settings, and an exponential moving average of the weights."""

from __future__ import annotations

import copy

import torch

from .config import OptimizerConfig
from .sam import SAM

_BASE = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}


# L-BFGS keeps this many past steps. Its iterations stop early only when a step changes
# nothing: PyTorch's default tolerances are absolute (1e-9 on the change of the loss), the
# order of the loss itself once force errors reach a few 1e-5 eV/Å.
LBFGS_HISTORY = 50


def make_optimizer(model: torch.nn.Module, cfg: OptimizerConfig) -> torch.optim.Optimizer:
    """The base optimizer, wrapped in SAM/ASAM when ``cfg.sam`` asks for it."""
    if cfg.name == "lbfgs":
        return torch.optim.LBFGS(
            model.parameters(),
            lr=cfg.lr,
            max_iter=cfg.lbfgs_iterations,
            history_size=LBFGS_HISTORY,
            line_search_fn="strong_wolfe",
            tolerance_grad=0.0,
            tolerance_change=0.0,
        )
    base = _BASE[cfg.name](model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.sam == "none":
        return base
    return SAM(base, rho=cfg.rho, adaptive=cfg.sam == "asam", interval=cfg.sam_interval)


def base_of(optimizer: torch.optim.Optimizer) -> torch.optim.Optimizer:
    """The optimizer whose learning rate a scheduler changes."""
    return optimizer.base_optimizer if isinstance(optimizer, SAM) else optimizer


class WeightAverage:
    """Exponential moving average of a model's parameters (a shadow copy of the model).

    The decay ramps up as min(decay, (1 + n)/(10 + n)) so early averages are not
    dominated by the random initial weights. ``decay=None`` keeps the shadow equal
    to the live weights.
    """

    def __init__(self, model: torch.nn.Module, decay: float | None) -> None:
        self.model = copy.deepcopy(model)
        self.decay = decay
        self.n_updates = 0
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        self.n_updates += 1
        if self.decay is None:
            weight = 1.0
        else:
            weight = 1.0 - min(self.decay, (1.0 + self.n_updates) / (10.0 + self.n_updates))
        for shadow, live in zip(self.model.parameters(), model.parameters(), strict=True):
            shadow.lerp_(live, weight)

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "n_updates": self.n_updates}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.n_updates = int(state["n_updates"])
