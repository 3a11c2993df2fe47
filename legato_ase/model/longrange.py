"""The long-range convolution (LRC) layer: latent charges, a grid, FFTs, an energy head.

Following Peng, Lin, Ying and Zepeda-Núñez (arXiv 2010.05295), per channel c the layer
computes the potential φ_ic = Σ_j' q_jc K_c(r_ij) of latent charges q_jc (read out from the
Allegro features) through the kernel

    K̂_c(k) = a_c · 4π / (k² + μ_c²) · exp(−k²σ²)      (Coulomb for μ_c = 0, else Yukawa)

with trainable a_c and μ_c; the prime leaves out each atom's own charge (its periodic
images are kept). Periodic cells: the charges are spread onto a regular grid with a
Gaussian of width τ = σ/√2 truncated to a fixed stencil, transformed with ``torch.fft``,
multiplied by K̂/ĝ_τ² (spreading and interpolation each contribute ĝ_τ = exp(−k²τ²/2)),
transformed back and interpolated with the same Gaussian, so the cost is O(N·P³ + M log M)
for N atoms, P stencil points per axis and M grid points. The k = 0 term is left out
(a neutralising background, as in Ewald sums). Non-periodic structures: a direct sum
over pairs with the same kernel in real space (exact, O(N²), no padding artefacts).

Range separation (``exclude_short_range``): the layer carries only K_c(r)·(1 − s(r/r_max)),
s(x) = 1 − 10x³ + 15x⁴ − 6x⁵ a C² switch from 1 at r = 0 to 0 at the model's cutoff: the
near field Σ_{j: r_ij < r_max} q_jc K_c(r_ij) s(r_ij) is subtracted from φ_ic over the
model's own neighbour list (as Ewald's real-space term), so what lies inside r_max belongs
to Allegro alone and the kernel's amplitude and screening are set by the far field.

The per-atom energy is ½ Σ_c q_ic φ_ic + MLP(φ_i): the first term is exact electrostatics
of the latent charges, the bias-free head adds what the charges alone cannot express.
Everything is differentiable: forces and stress (through the cell dependence of the grid
and of the k-vectors) follow by autograd.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from ..config import LongRangeConfig
from .allegro import MLP

# Atoms per block of the spreading/interpolation (bounds the [atoms, stencil, C] temporaries).
_BLOCK = 512
_SMOOTH = (2, 3, 5)


def _fft_size(n: int) -> int:
    """Smallest m ≥ n whose prime factors are 2, 3 and 5."""
    m = max(int(n), 1)
    while True:
        rest = m
        for p in _SMOOTH:
            while rest % p == 0:
                rest //= p
        if rest == 1:
            return m
        m += 1


def grid_shape(cell: torch.Tensor, spacing: float) -> tuple[int, int, int]:
    """Grid points along each cell vector: at most ``spacing`` Å apart, FFT-friendly."""
    lengths = torch.linalg.vector_norm(cell.detach(), dim=-1).tolist()
    return tuple(_fft_size(math.ceil(length / spacing - 1e-9)) for length in lengths)


def real_space_kernel(r: torch.Tensor, mu: torch.Tensor, sigma: float) -> torch.Tensor:
    """K(r) without the amplitude: the inverse transform of 4π/(k² + μ²)·exp(−k²σ²).

    Args:
        r: [...] distances in Å (> 0).
        mu: [...] inverse screening lengths in 1/Å (broadcast against r).
        sigma: smearing length in Å.

    Returns:
        [...] in 1/Å; erf(r/2σ)/r for μ = 0.
    """
    s = float(sigma)
    gauss = torch.exp(-(r * r) / (4 * s * s))
    t2 = torch.special.erfcx(mu * s + r / (2 * s)) * gauss
    y = mu * s - r / (2 * s)
    r_far = torch.maximum(r, 2 * mu * s * s)
    t1 = torch.where(
        y > 0,
        torch.special.erfcx(y.clamp(min=0)) * gauss,
        torch.exp(mu * mu * s * s - mu * r_far) * torch.erfc(y.clamp(max=0)),
    )
    return (t1 - t2) / (2 * r)


def kernel_at_zero(mu: torch.Tensor, sigma: float) -> torch.Tensor:
    """lim_{r→0} K(r) = 1/(σ√π) − μ·erfcx(μσ), in 1/Å: an atom's own smeared charge."""
    return 1.0 / (sigma * math.sqrt(math.pi)) - mu * torch.special.erfcx(mu * sigma)


def short_range_switch(r: torch.Tensor, cutoff: float) -> torch.Tensor:
    """s(x) = 1 − 10x³ + 15x⁴ − 6x⁵ with x = r/cutoff, 0 from the cutoff on (C² at both ends).

    Args:
        r: [...] distances in Å. cutoff: Å.

    Returns:
        [...] dimensionless, 1 at r = 0 falling to 0 at r = cutoff.
    """
    x = (r / cutoff).clamp(max=1.0)
    return 1.0 - x**3 * (10.0 - 15.0 * x + 6.0 * x * x)


def _stencil(cell: torch.Tensor, shape, radius: float) -> torch.Tensor:
    """[P, 3] integer grid offsets covering a ball of ``radius`` Å around any point.

    Offsets from the point's nearest node: a box reaching the ball along every axis, cut to
    the nodes within radius + half the longest diagonal of a grid cell.
    """
    cell64 = cell.detach().to(torch.float64)
    planes = 1.0 / torch.linalg.vector_norm(torch.linalg.inv(cell64), dim=0)  # Å
    reach = [math.ceil(radius * m / float(d) + 0.5) for m, d in zip(shape, planes)]
    axes = [torch.arange(-n, n + 1, device=cell.device) for n in reach]
    offsets = torch.cartesian_prod(*axes).reshape(-1, 3)
    steps = cell64 / torch.tensor(shape, dtype=torch.float64, device=cell.device).unsqueeze(-1)
    corners = torch.cartesian_prod(*[torch.tensor([-0.5, 0.5], dtype=torch.float64)] * 3)
    half_diagonal = float(torch.linalg.vector_norm(corners.to(cell.device) @ steps, dim=-1).max())
    distance = torch.linalg.vector_norm(offsets.to(torch.float64) @ steps, dim=-1)
    return offsets[distance <= radius + half_diagonal]


class _Gather(torch.autograd.Function):
    """φ_n = Σ_p w_np · grid[index_np]; the [n, P, C] gather is recomputed, never stored."""

    @staticmethod
    def forward(ctx, weights, grid, index):
        ctx.save_for_backward(weights, grid, index)
        return torch.einsum("np,npc->nc", weights, grid[index])

    @staticmethod
    def backward(ctx, grad):
        weights, grid, index = ctx.saved_tensors
        grad_weights = torch.einsum("nc,npc->np", grad, grid[index])
        values = (weights.unsqueeze(-1) * grad.unsqueeze(1)).reshape(-1, grid.shape[1])
        grad_grid = torch.zeros_like(grid).index_add(0, index.reshape(-1), values)
        return grad_weights, grad_grid, None


class _Spreader:
    """Gaussian weights of a block of atoms on their stencils, and the grid indices.

    With δ = f + o (f: the atom's offset from its nearest node, o: the stencil offsets, both
    in grid units) and the metric G of the grid vectors, r² = fGf + 2·fGo + oGo: the only
    [n, P] tensors kept for the backward pass are the weights and the indices.
    """

    def __init__(self, positions: torch.Tensor, cell: torch.Tensor, shape, tau: float, radius):
        m = torch.tensor(shape, device=cell.device)
        scaled = positions @ torch.linalg.inv(cell) * m.to(positions.dtype)  # [n, 3]
        base = torch.round(scaled.detach())
        frac = base - scaled  # [n, 3], |f| ≤ ½
        offsets = _stencil(cell, shape, radius)  # [P, 3]
        steps = cell / m.to(cell.dtype).unsqueeze(-1)  # grid vectors, Å
        metric = steps @ steps.T
        o = offsets.to(positions.dtype)
        f_metric = frac @ metric
        r2 = (f_metric * frac).sum(-1, keepdim=True) + 2 * f_metric @ o.T
        r2 = r2 + ((o @ metric) * o).sum(-1)
        norm = (2 * math.pi * tau * tau) ** -1.5
        self.weights = norm * torch.exp(-r2 / (2 * tau * tau))  # [n, P]
        nodes = torch.remainder(base.long().unsqueeze(1) + offsets, m)
        index = (nodes[..., 0] * shape[1] + nodes[..., 1]) * shape[2] + nodes[..., 2]
        self.index = index.to(torch.int32)

    def spread(self, charges: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
        """Add charges [n, C] onto grid [M, C]."""
        values = self.weights.unsqueeze(-1) * charges.unsqueeze(1)
        return grid.index_add(0, self.index.reshape(-1), values.reshape(-1, charges.shape[1]))

    def interpolate(self, grid: torch.Tensor) -> torch.Tensor:
        """[n, C] Σ_m w_m·grid_m (times the grid cell volume by the caller)."""
        return _Gather.apply(self.weights, grid, self.index)


class LongRange(torch.nn.Module):
    """Latent charges from per-atom features → long-range per-atom energies.

    Args:
        cfg: the layer's settings.
        n_features: width of the per-atom features the charges are read out from.
        n_species: number of species (each has its own charge offset).
        r_max: the local model's cutoff in Å; the near-field cutoff of
            ``cfg.exclude_short_range`` (required then, ignored otherwise).
    """

    def __init__(
        self, cfg: LongRangeConfig, n_features: int, n_species: int, r_max: float | None = None
    ) -> None:
        super().__init__()
        c = cfg.channels
        self.cfg = cfg
        if cfg.exclude_short_range and r_max is None:
            raise ValueError("long_range.exclude_short_range needs the local model's r_max.")
        self.near_cutoff = float(r_max) if cfg.exclude_short_range else None
        self.sigma, self.tau = float(cfg.sigma), float(cfg.sigma) / math.sqrt(2.0)
        self.radius = cfg.truncation * self.tau
        self.charge_weight = torch.nn.Parameter(torch.randn(n_features, c) / math.sqrt(n_features))
        self.charge_offset = torch.nn.Parameter(torch.zeros(n_species, c))
        self.amplitude = torch.nn.Parameter(torch.full((c,), 1.0 / c))
        mu = torch.tensor(cfg.screening, dtype=torch.get_default_dtype())
        if cfg.trainable_screening:
            self.screening = torch.nn.Parameter(mu)
        else:
            self.register_buffer("screening", mu)
        self.head = MLP([c, *cfg.head_mlp, 1], act_on_output=False)
        for w in self.head.weights:  # start close to pure electrostatics
            w.data.mul_(0.1)

    @torch.no_grad()
    def silence_(self) -> None:
        """Start at zero amplitude: the layer adds exactly nothing until it is trained.

        Used when the layer is added to an already-trained local model (``init_from`` of a
        file without it): a_c = 0 makes every potential φ_ic zero, so both the charge term
        and the bias-free head vanish and the model's energy is the local model's. The
        amplitudes still receive a gradient, ∂E/∂a_c = ½ Σ_i q_ic φ_ic/a_c + ∂head/∂a_c,
        since the unit-amplitude potentials are not zero; after the first step the charges
        and the head learn as well.
        """
        self.amplitude.zero_()

    def charges(self, features: torch.Tensor, species: torch.Tensor) -> torch.Tensor:
        """[N, C] latent charges from features [N, F] and species indices [N]."""
        return features @ self.charge_weight + self.charge_offset[species]

    def _mu(self) -> torch.Tensor:
        return torch.abs(self.screening)

    def multiplier(self, cell: torch.Tensor, shape) -> torch.Tensor:
        """[C, M0, M1, M2//2+1] K̂_c(k)/ĝ_τ(k)² on the rfft grid, zero at k = 0."""
        dtype, device = cell.dtype, cell.device
        freqs = [torch.fft.fftfreq(m, 1.0 / m, dtype=dtype, device=device) for m in shape[:2]]
        freqs.append(torch.fft.rfftfreq(shape[2], 1.0 / shape[2], dtype=dtype, device=device))
        n = torch.stack(torch.meshgrid(*freqs, indexing="ij"), dim=-1)  # [M0, M1, R, 3]
        recip = 2 * math.pi * torch.linalg.inv(cell).T  # rows: reciprocal vectors, 1/Å
        k2 = (n @ recip).square().sum(-1)
        keep = torch.ones_like(k2)
        keep[0, 0, 0] = 0.0
        k2 = k2 + (1.0 - keep)  # any non-zero value at k = 0: the term is dropped below
        mu2 = self._mu().square().view(-1, 1, 1, 1)
        amp = self.amplitude.view(-1, 1, 1, 1)
        # exp(−k²σ²) / ĝ_τ² = exp(−k²σ²/2) with τ = σ/√2.
        kernel = amp * 4 * math.pi / (k2 + mu2) * torch.exp(-k2 * (self.sigma**2 / 2))
        return kernel * keep

    def spread_grid(
        self, positions: torch.Tensor, charges: torch.Tensor, cell: torch.Tensor, shape
    ) -> tuple[torch.Tensor, list]:
        """Charges [N, C] at positions [N, 3] spread onto a [M, C] grid; the spreaders."""
        grid = charges.new_zeros(shape[0] * shape[1] * shape[2], charges.shape[1])
        spreaders = []
        for start in range(0, positions.shape[0], _BLOCK):
            s = _Spreader(positions[start : start + _BLOCK], cell, shape, self.tau, self.radius)
            grid = s.spread(charges[start : start + _BLOCK], grid)
            spreaders.append(s)
        return grid, spreaders

    def convolve(self, grid: torch.Tensor, cell: torch.Tensor, shape) -> torch.Tensor:
        """The potential grid [M, C] of a charge grid [M, C]."""
        c = grid.shape[1]
        rho = grid.T.reshape(c, *shape)
        pot = torch.fft.irfftn(
            torch.fft.rfftn(rho, dim=(1, 2, 3)) * self.multiplier(cell, shape),
            s=shape,
            dim=(1, 2, 3),
        )
        return pot.reshape(c, -1).T

    def periodic_potentials(
        self,
        positions: torch.Tensor,
        charges: torch.Tensor,
        cell: torch.Tensor,
        reduce: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """φ [N, C] of one periodic structure (self-interaction removed).

        Args:
            positions: [N, 3] Å. charges: [N, C]. cell: [3, 3] rows, Å.
            reduce: sums the charge grid over ranks (forward) and its gradient (backward)
                when several ranks each spread their own atoms; None on one rank.
        """
        shape = grid_shape(cell, self.cfg.grid_spacing)
        grid, spreaders = self.spread_grid(positions, charges, cell, shape)
        if reduce is not None:
            if not spreaders:  # no atoms here: tie the grid to the cell so that the
                grid = grid + 0 * cell.sum()  # reduction's backward still runs on this rank
            grid = reduce(grid)
        pot = self.convolve(grid, cell, shape)
        cell_volume = torch.abs(torch.linalg.det(cell)) / (shape[0] * shape[1] * shape[2])
        if spreaders:
            phi = torch.cat([s.interpolate(pot) for s in spreaders]) * cell_volume
        else:
            phi = charges * 0 + pot.sum() * 0
        return phi - self.amplitude * kernel_at_zero(self._mu(), self.sigma) * charges

    def direct_potentials(self, positions: torch.Tensor, charges: torch.Tensor) -> torch.Tensor:
        """φ [N, C] of one non-periodic structure by a direct sum over pairs.

        With ``exclude_short_range`` the sum uses the range-separated kernel K·(1 − s).
        """
        n = positions.shape[0]
        phi = []
        mu = self._mu()
        for start in range(0, n, _BLOCK):
            d = positions[start : start + _BLOCK].unsqueeze(1) - positions.unsqueeze(0)
            rows = torch.arange(start, min(start + _BLOCK, n), device=positions.device)
            self_pair = rows.unsqueeze(1) == torch.arange(n, device=positions.device)
            r = torch.linalg.vector_norm(d + self_pair.unsqueeze(-1).to(d.dtype), dim=-1)
            k = real_space_kernel(r.unsqueeze(-1), mu, self.sigma)  # [b, N, C]
            if self.near_cutoff is not None:  # range separation: K·(1 − s) directly
                k = k * (1.0 - short_range_switch(r, self.near_cutoff)).unsqueeze(-1)
            k = k.masked_fill(self_pair.unsqueeze(-1), 0.0)
            phi.append((k * charges.unsqueeze(0)).sum(1))
        return torch.cat(phi) * self.amplitude if phi else charges * 0

    def near_potentials(
        self, charges: torch.Tensor, centre: torch.Tensor, vectors: torch.Tensor, n: int
    ) -> torch.Tensor:
        """The near field that range separation subtracts from φ, per centre atom.

        Args:
            charges: [P, C] latent charges of each pair's neighbour j.
            centre: [P] row (in 0..n−1) of each pair's centre i.
            vectors: [P, 3] r_j − r_i in Å (pairs beyond the cutoff contribute zero).
            n: number of centre rows.

        Returns:
            [n, C] Σ_j a_c·q_jc·K_c(r_ij)·s(r_ij).
        """
        r = torch.linalg.vector_norm(vectors, dim=-1)
        switch = short_range_switch(r, self.near_cutoff).unsqueeze(-1)
        kernel = real_space_kernel(r.unsqueeze(-1), self._mu(), self.sigma) * switch
        values = kernel * self.amplitude * charges
        return values.new_zeros(n, values.shape[-1]).index_add(0, centre, values)

    def energies(self, charges: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
        """[N] per-atom long-range energies from charges and potentials [N, C]."""
        return 0.5 * (charges * phi).sum(-1) + self.head(phi).squeeze(-1)

    def forward(
        self,
        features: torch.Tensor,
        species: torch.Tensor,
        positions: torch.Tensor,
        cells: torch.Tensor,
        pbc: torch.Tensor,
        structures: Sequence[torch.Tensor],
        pairs: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Per-atom long-range energies [N] (zero for atoms in no listed structure).

        Args:
            features: [N, F] per-atom features. species: [N] indices.
            positions: [N, 3] Å. cells: [B, 3, 3] rows, Å. pbc: [B, 3] bool.
            structures: for each structure, the indices of its atoms that carry charge.
            pairs: with ``exclude_short_range``: the neighbour list (i [P], j [P],
                r_j − r_i [P, 3] in Å incl. image shifts) holding every pair closer than
                r_max; every listed atom's charge must be complete. Periodic structures
                subtract the near field over it; non-periodic ones use K·(1 − s) directly.
        """
        q = self.charges(features, species)
        out = q.new_zeros(q.shape[0])
        near = None
        if self.near_cutoff is not None:
            if pairs is None:
                raise ValueError("exclude_short_range needs the neighbour pairs (pairs=...).")
            centre, neighbour, vectors = pairs
            near = self.near_potentials(q[neighbour], centre, vectors, q.shape[0])
        for b, atoms in enumerate(structures):
            periodic = bool(pbc[b].all())
            if not periodic and bool(pbc[b].any()):
                raise ValueError(
                    "the long-range layer handles 3-D periodic cells and non-periodic "
                    f"structures, not mixed periodicity (pbc = {pbc[b].tolist()}); for a slab, "
                    "add vacuum along the non-periodic axis and make the cell fully periodic."
                )
            qb, pos = q[atoms], positions[atoms]
            if periodic:
                phi = self.periodic_potentials(pos, qb, cells[b])
                if near is not None:
                    phi = phi - near[atoms]
            else:
                phi = self.direct_potentials(pos, qb)
            out = out.index_add(0, atoms, self.energies(qb, phi))
        return out
