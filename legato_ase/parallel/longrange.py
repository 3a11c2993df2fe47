"""The long-range layer on many ranks: each rank spreads its own atoms, grids are summed.

Per step and structure: every rank spreads the latent charges of the atoms it owns onto
its own copy of the full grid; one sum over ranks gives the charge grid; every rank does
the (cheap, O(M log M)) FFT convolution itself and interpolates at its own atoms; in the
backward pass the gradient with respect to the grid is summed over ranks once more, and
each rank differentiates its own spreading. Two reductions of M·C numbers per step.
Non-periodic structures (direct sum, meant for small systems) gather all charges instead.

Range separation (``exclude_short_range``) subtracts a near field over the pairs closer than
r_max, whose neighbours may be ghost atoms: their charges come from their owners (all owned
charges are gathered, N·C numbers), and dE/dq of each pair's neighbour goes back to the
owner (a sum over ranks in ASE mode, the reverse exchange in LAMMPS mode) before pass 2.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch


class _GridSum(torch.autograd.Function):
    """Sum a grid over ranks; the backward pass sums the gradient over ranks."""

    @staticmethod
    def forward(ctx, grid: torch.Tensor, comm) -> torch.Tensor:
        ctx.comm = comm
        return _summed(comm, grid)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return _summed(ctx.comm, grad), None


def _summed(comm, tensor: torch.Tensor) -> torch.Tensor:
    total = comm.sum_to_all(tensor.detach().cpu().numpy())
    return torch.from_numpy(total).to(dtype=tensor.dtype, device=tensor.device)


def grid_reducer(comm):
    """The ``reduce`` argument of the layer for a communicator (None on one rank)."""
    if comm.size == 1:
        return None
    return lambda grid: _GridSum.apply(grid if grid.requires_grad else grid.requires_grad_(), comm)


@dataclasses.dataclass(frozen=True, kw_only=True)
class LongRangeShare:
    """One rank's share of the long-range term for the atoms it owns.

    Attributes:
        energies: [n] per-atom long-range energies, eV.
        forces: [n, 3] forces from the explicit position dependence, eV/Å.
        virial: [3, 3] this rank's share of the explicit strain derivative, eV.
        adjoint: [n, C] dE/dq of the latent charges (the rest of the force comes
            through the charges' dependence on the local environment).
        pair_gradient: [P, 3] dE/d(r_j − r_i) of the near pairs (range separation; the
            caller adds it to the centre's force and subtracts it from the neighbour's).
        pair_adjoint: [P, C] dE/dq_j of each near pair's neighbour (for its owner).
    """

    energies: np.ndarray
    forces: np.ndarray
    virial: np.ndarray
    adjoint: np.ndarray
    pair_gradient: np.ndarray | None = None
    pair_adjoint: np.ndarray | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class NearPairs:
    """The pairs closer than r_max around this rank's owned atoms (range separation).

    Attributes:
        centre: [P] int row of each pair's centre among the owned atoms.
        vectors: [P, 3] r_j − r_i at the neighbour's image position, Å.
        charges: [P, C] latent charges of each pair's neighbour j (its owner's values).
    """

    centre: np.ndarray
    vectors: np.ndarray
    charges: np.ndarray


def needs_pairs(model, pbc) -> bool:
    """Whether the layer subtracts a near field over pairs for a structure with ``pbc``."""
    layer = getattr(model, "long_range", None)
    return layer is not None and layer.near_cutoff is not None and bool(np.all(pbc))


def domain_pairs(positions: np.ndarray, n_owned: int, r_max: float):
    """Pairs (i owned, j local) of one domain closer than r_max: i [P], j [P], r_j − r_i."""
    from .evaluate import local_edges

    i, j, _ = local_edges(positions, n_owned, r_max)
    return i, j, positions[j] - positions[i]


def scatter_pairs(share: LongRangeShare, i, j, n: int):
    """Forces [n, 3] and neighbour adjoints [n, C] of the near pairs on rows i and j."""
    forces = np.zeros((n, 3))
    np.add.at(forces, i, share.pair_gradient)
    np.add.at(forces, j, -share.pair_gradient)
    adjoint = np.zeros((n, share.pair_adjoint.shape[1]))
    np.add.at(adjoint, j, share.pair_adjoint)
    return forces, adjoint


def long_range_share(
    model, positions, charges, cell, pbc, comm, pairs: NearPairs | None = None
) -> LongRangeShare:
    """Evaluate the long-range layer for this rank's atoms (collective over ``comm``).

    Args:
        model: a LegatoPotential with a long-range layer.
        positions: [n, 3] Å, the atoms this rank owns. charges: [n, C] their latent charges.
        cell: [3, 3] cell rows, Å. pbc: [3] bool.
        comm: SerialComm or MPIComm.
        pairs: the near pairs of the owned atoms; required when :func:`needs_pairs`.
    """
    layer, dtype = model.long_range, model.dtype
    pos = torch.as_tensor(np.asarray(positions), dtype=dtype, device=model.device)
    q = torch.as_tensor(np.asarray(charges), dtype=dtype, device=model.device)
    pbc = np.broadcast_to(np.asarray(pbc, dtype=bool), (3,))
    if pbc.all():
        if layer.near_cutoff is not None and pairs is None:
            raise ValueError("a range-separated long-range layer needs the near pairs.")
        cell = torch.as_tensor(np.asarray(cell), dtype=dtype)
        return _periodic_share(layer, pos, q, cell, comm, pairs)
    if pbc.any():
        raise ValueError(
            "the long-range layer handles 3-D periodic cells and non-periodic structures, not "
            f"mixed periodicity (pbc = {pbc.tolist()}); for a slab, add vacuum along the "
            "non-periodic axis and make the cell fully periodic."
        )
    return _gathered_share(layer, pos, q, comm)


def _periodic_share(layer, pos, q, cell, comm, pairs: NearPairs | None) -> LongRangeShare:
    pos.requires_grad_()
    q.requires_grad_()
    strain = torch.zeros(3, 3, dtype=pos.dtype, device=pos.device, requires_grad=True)
    deform = torch.eye(3, dtype=pos.dtype, device=pos.device) + strain
    cell = cell.to(pos.device) @ deform
    phi = layer.periodic_potentials(pos @ deform, q, cell, grid_reducer(comm))
    leaves = [pos, q, strain]
    if pairs is not None:
        vectors, q_pair = (
            torch.as_tensor(np.asarray(x), dtype=pos.dtype, device=pos.device).requires_grad_()
            for x in (pairs.vectors, pairs.charges)
        )
        centre = torch.as_tensor(np.asarray(pairs.centre, dtype=np.int64), device=pos.device)
        phi = phi - layer.near_potentials(q_pair, centre, vectors @ deform, len(pos))
        leaves += [vectors, q_pair]
    energies = layer.energies(q, phi)
    grads = torch.autograd.grad(energies.sum(), leaves, allow_unused=True)
    g_pos, g_q, g_strain, *g_pairs = (
        torch.zeros_like(x) if g is None else g for g, x in zip(grads, leaves)
    )
    w = -g_strain.to(torch.float64)
    extra = [g.detach().to(torch.float64).cpu().numpy() for g in g_pairs] or [None, None]
    return LongRangeShare(
        energies=energies.detach().to(torch.float64).cpu().numpy(),
        forces=-g_pos.detach().to(torch.float64).cpu().numpy(),
        virial=(0.5 * (w + w.T)).cpu().numpy(),
        adjoint=g_q.detach().to(torch.float64).cpu().numpy(),
        pair_gradient=extra[0],
        pair_adjoint=extra[1],
    )


def _gathered_share(layer, pos, q, comm) -> LongRangeShare:
    """Direct sum: every rank sums all pairs (small systems) and keeps its own rows."""
    parts = comm.allgather((pos.cpu().numpy(), q.detach().cpu().numpy()))
    start = sum(len(p) for p, _ in parts[: comm.rank])
    rows = slice(start, start + len(pos))
    all_pos = torch.as_tensor(np.concatenate([p for p, _ in parts]), dtype=pos.dtype)
    all_q = torch.as_tensor(np.concatenate([c for _, c in parts]), dtype=q.dtype)
    all_pos, all_q = all_pos.to(pos.device).requires_grad_(), all_q.to(q.device).requires_grad_()
    energies = layer.energies(all_q, layer.direct_potentials(all_pos, all_q))
    g_pos, g_q = torch.autograd.grad(energies.sum(), [all_pos, all_q])
    return LongRangeShare(
        energies=energies[rows].detach().to(torch.float64).cpu().numpy(),
        forces=-g_pos[rows].to(torch.float64).cpu().numpy(),
        virial=np.zeros((3, 3)),
        adjoint=g_q[rows].to(torch.float64).cpu().numpy(),
    )
