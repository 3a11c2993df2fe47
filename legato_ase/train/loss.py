"""Loss (per-atom energy, forces, stress; MSE or Huber) and error metrics."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .config import LossConfig
from .dataset import Batch, Frame, batch_to, iterate_batches


def predict(model, batch: Batch, create_graph: bool) -> dict[str, torch.Tensor]:
    """Model energies, forces and (if the batch has stress) Voigt stress in eV/Å³."""
    want_stress = batch.stress is not None
    out = model.evaluate(batch.graph, forces=True, virial=want_stress, create_graph=create_graph)
    if want_stress:
        sigma = -out["virial"] / batch.volume[:, None, None]
        out["stress"] = sigma[:, [0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]
    return out


def _penalty(diff: torch.Tensor, cfg: LossConfig) -> torch.Tensor:
    if cfg.kind == "huber":
        return torch.nn.functional.huber_loss(diff, torch.zeros_like(diff), delta=cfg.huber_delta)
    return diff.pow(2).mean()


def loss_terms(pred: dict, batch: Batch, cfg: LossConfig) -> dict[str, torch.Tensor]:
    """The weighted loss and its parts; energies enter per atom (eV/atom)."""
    terms = {
        "energy": _penalty((pred["energy"] - batch.energy) / batch.n_atoms, cfg),
        "forces": _penalty(pred["forces"] - batch.forces, cfg),
    }
    total = cfg.energy_weight * terms["energy"] + cfg.forces_weight * terms["forces"]
    if cfg.stress_weight > 0 and batch.stress is not None:
        terms["stress"] = _penalty(pred["stress"] - batch.stress, cfg)
        total = total + cfg.stress_weight * terms["stress"]
    terms["loss"] = total
    return terms


class ErrorAccumulator:
    """Running sums of absolute and squared errors, overall and per species."""

    def __init__(self, species: Sequence[str]) -> None:
        self.species = list(species)
        self.sums: dict[str, list[float]] = {}

    def _add(self, key: str, diff: torch.Tensor) -> None:
        d = diff.detach().to(torch.float64).reshape(-1)
        entry = self.sums.setdefault(key, [0.0, 0.0, 0])
        entry[0] += float(d.abs().sum())
        entry[1] += float(d.pow(2).sum())
        entry[2] += d.numel()

    def add(self, pred: dict, batch: Batch) -> None:
        self._add("energy_per_atom", (pred["energy"] - batch.energy) / batch.n_atoms)
        diff = pred["forces"] - batch.forces
        self._add("forces", diff)
        for n, s in enumerate(self.species):
            self._add(f"forces_{s}", diff[batch.graph.species == n])
        if batch.stress is not None and "stress" in pred:
            self._add("stress", pred["stress"] - batch.stress)

    def metrics(self) -> dict[str, float]:
        """``{key}_mae`` and ``{key}_rmse`` (eV/atom, eV/Å, eV/Å³)."""
        out = {}
        for key, (abs_sum, sq_sum, count) in self.sums.items():
            if count:
                out[f"{key}_mae"] = abs_sum / count
                out[f"{key}_rmse"] = (sq_sum / count) ** 0.5
        return out


def evaluate_errors(
    model, frames: Sequence[Frame], batch_size: int = 4, loss_cfg: LossConfig | None = None
) -> dict[str, float]:
    """Errors of a model on labelled frames, and the mean loss (``loss``) under ``loss_cfg``."""
    loss_cfg = loss_cfg or LossConfig()
    errors = ErrorAccumulator(model.species)
    loss_sum, n_batches = 0.0, 0
    for batch in iterate_batches(frames, batch_size):
        batch = batch_to(batch, model.device)
        pred = predict(model, batch, create_graph=False)
        errors.add(pred, batch)
        loss_sum += float(loss_terms(pred, batch, loss_cfg)["loss"].detach())
        n_batches += 1
    return {"loss": loss_sum / max(n_batches, 1), **errors.metrics()}
