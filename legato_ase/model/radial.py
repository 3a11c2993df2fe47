"""Radial basis (Bessel) and the smooth polynomial cutoff envelope."""

from __future__ import annotations

import math

import torch


class BesselBasis(torch.nn.Module):
    """B_n(x) = sin(w_n x) / x with x = r / r_c and w_n initialised to nπ.

    Normalised by sqrt(2) so that each function has unit mean square on (0, 1].
    """

    def __init__(self, num_basis: int, trainable: bool = True) -> None:
        super().__init__()
        freqs = math.pi * torch.arange(1, num_basis + 1, dtype=torch.get_default_dtype())
        if trainable:
            self.freqs = torch.nn.Parameter(freqs)
        else:
            self.register_buffer("freqs", freqs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [E] reduced distances r / r_c in (0, 1]. Returns [E, num_basis]."""
        x = x.unsqueeze(-1)
        return math.sqrt(2.0) * torch.sin(self.freqs * x) / x


def polynomial_envelope(x: torch.Tensor, p: int) -> torch.Tensor:
    """u(x) = 1 − (p+1)(p+2)/2·x^p + p(p+2)·x^(p+1) − p(p+1)/2·x^(p+2), zero for x ≥ 1.

    u, u' and u'' vanish at x = 1, so energies and forces go smoothly to zero at r_max.
    """
    xp = x.pow(p)
    u = 1.0 - 0.5 * (p + 1) * (p + 2) * xp + p * (p + 2) * xp * x - 0.5 * p * (p + 1) * xp * x * x
    return u * (x < 1.0).to(x.dtype)
