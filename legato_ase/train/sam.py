"""Sharpness-aware minimisation (Foret et al. 2021) as a wrapper around any optimizer."""

from __future__ import annotations

from collections.abc import Callable

import torch


class SAM(torch.optim.Optimizer):
    """Minimise max_{‖ε‖≤ρ} L(w + ε) with a base optimizer (Foret et al., ICLR 2021).

    Call ``step(closure)`` after computing the gradients at w: it moves to w + ε̂,
    ε̂ = ρ·g/‖g‖₂ (global L2 norm; ``adaptive=True`` gives ASAM, ε̂ = ρ·|w|²g/‖|w|g‖₂),
    re-evaluates the gradients there with ``closure``, returns to w and lets the base
    optimizer step with those gradients. With ``interval = k`` only every k-th step
    is perturbed; the others are plain base steps (a cheaper SAM).

    Args:
        base_optimizer: a constructed optimizer (e.g. torch.optim.Adam) over the parameters.
        rho: radius of the perturbation ball.
        adaptive: scale the perturbation by |w| (ASAM).
        interval: perturb every ``interval``-th step.
    """

    def __init__(
        self,
        base_optimizer: torch.optim.Optimizer,
        rho: float = 0.005,
        adaptive: bool = False,
        interval: int = 1,
    ) -> None:
        if rho <= 0:
            raise ValueError(f"SAM rho must be positive, got {rho}.")
        if interval < 1:
            raise ValueError(f"SAM interval must be >= 1, got {interval}.")
        self.base_optimizer = base_optimizer
        self.rho, self.adaptive, self.interval = float(rho), bool(adaptive), int(interval)
        self.n_steps = 0
        super().__init__(base_optimizer.param_groups, dict(rho=rho))
        self.param_groups = base_optimizer.param_groups

    def _scaled(self, p: torch.Tensor) -> torch.Tensor:
        return p.grad * p.abs() if self.adaptive else p.grad

    @torch.no_grad()
    def first_step(self) -> None:
        """w ← w + ε̂ (the gradients at w must be in ``.grad``)."""
        params = [p for g in self.param_groups for p in g["params"] if p.grad is not None]
        norm = torch.linalg.vector_norm(torch.stack([self._scaled(p).norm() for p in params]))
        # At a stationary point (g = 0) there is no ascent direction: do not perturb.
        scale = self.rho / norm if norm > 0 else 0.0
        for p in params:
            e_w = self._scaled(p) * (p.abs() if self.adaptive else 1.0) * scale
            p.add_(e_w)
            self.state[p]["e_w"] = e_w

    @torch.no_grad()
    def second_step(self) -> None:
        """w ← w − ε̂, then the base optimizer's update with the gradients at w + ε̂."""
        for group in self.param_groups:
            for p in group["params"]:
                e_w = self.state[p].pop("e_w", None)
                if e_w is not None:
                    p.sub_(e_w)
        self.base_optimizer.step()

    def step(self, closure: Callable[[], object] | None = None):
        """One SAM step; ``closure`` zeroes the gradients, recomputes the loss, back-propagates."""
        perturb = self.n_steps % self.interval == 0
        self.n_steps += 1
        if not perturb:
            self.base_optimizer.step()
            return None
        if closure is None:
            raise ValueError("SAM.step needs a closure that recomputes the loss and its gradients.")
        self.first_step()
        with torch.enable_grad():
            result = closure()
        self.second_step()
        return result

    def state_dict(self) -> dict:
        return {"base": self.base_optimizer.state_dict(), "n_steps": self.n_steps}

    def load_state_dict(self, state_dict: dict) -> None:
        self.base_optimizer.load_state_dict(state_dict["base"])
        self.n_steps = int(state_dict["n_steps"])
        self.param_groups = self.base_optimizer.param_groups
