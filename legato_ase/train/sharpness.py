"""Expected (random-direction) sharpness of a trained model.

The measure of Ibayashi et al., ISC 2023, arXiv:2303.08169.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import torch

from .config import LossConfig
from .dataset import Frame
from .loss import evaluate_errors

# The paper's sharpness loss: force MSE + per-atom energy MSE, weights 1:1.
PAPER_LOSS = LossConfig(energy_weight=1.0, forces_weight=1.0, stress_weight=0.0, kind="mse")


@dataclasses.dataclass(frozen=True)
class SharpnessResult:
    """S = E_ν[L(w + ν)] − L(w) with ν ~ N(0, σ²I), and its standard error."""

    sharpness: float
    stderr: float
    base_loss: float
    sigma: float
    n_samples: int
    perturbed_losses: tuple[float, ...]


def expected_sharpness(
    model: torch.nn.Module,
    frames: Sequence[Frame],
    sigma: float = 0.05,
    n_samples: int = 100,
    seed: int = 0,
    batch_size: int = 8,
    loss_cfg: LossConfig = PAPER_LOSS,
) -> SharpnessResult:
    """Mean loss increase under Gaussian weight noise (σ per parameter), model in eval mode.

    The model's weights are restored afterwards. ``frames`` are labelled frames
    (see :func:`legato_ase.train.load_frames`).
    """
    if n_samples < 1 or sigma <= 0:
        raise ValueError("expected_sharpness needs n_samples >= 1 and sigma > 0.")
    model.eval()
    saved = [p.detach().clone() for p in model.parameters()]
    generator = torch.Generator(device="cpu").manual_seed(seed)
    base = evaluate_errors(model, frames, batch_size, loss_cfg)["loss"]
    losses = []
    try:
        for _ in range(n_samples):
            with torch.no_grad():
                for p, w in zip(model.parameters(), saved, strict=True):
                    noise = torch.randn(w.shape, generator=generator, dtype=torch.float64)
                    p.copy_(w + sigma * noise.to(device=w.device, dtype=w.dtype))
            losses.append(evaluate_errors(model, frames, batch_size, loss_cfg)["loss"])
    finally:
        with torch.no_grad():
            for p, w in zip(model.parameters(), saved, strict=True):
                p.copy_(w)
    increases = np.asarray(losses) - base
    stderr = float(increases.std(ddof=1) / np.sqrt(n_samples)) if n_samples > 1 else float("nan")
    return SharpnessResult(float(increases.mean()), stderr, base, sigma, n_samples, tuple(losses))
