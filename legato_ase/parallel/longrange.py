"""The long-range layer on many ranks: each rank spreads its own atoms, grids are summed.

Per step and structure: every rank spreads the latent charges of the atoms it owns onto
its own copy of the full grid; one sum over ranks gives the charge grid; every rank does
the (cheap, O(M log M)) FFT convolution itself and interpolates at its own atoms; in the
backward pass the gradient with respect to the grid is summed over ranks once more, and
each rank differentiates its own spreading. Two reductions of M·C numbers per step.
Non-periodic structures (direct sum, meant for small systems) gather all charges instead.
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
    """

    energies: np.ndarray
    forces: np.ndarray
    virial: np.ndarray
    adjoint: np.ndarray


def long_range_share(model, positions, charges, cell, pbc, comm) -> LongRangeShare:
    """Evaluate the long-range layer for this rank's atoms (collective over ``comm``).

    Args:
        model: a LegatoPotential with a long-range layer.
        positions: [n, 3] Å, the atoms this rank owns. charges: [n, C] their latent charges.
        cell: [3, 3] cell rows, Å. pbc: [3] bool.
        comm: SerialComm or MPIComm.
    """
    layer, dtype = model.long_range, model.dtype
    pos = torch.as_tensor(np.asarray(positions), dtype=dtype, device=model.device)
    q = torch.as_tensor(np.asarray(charges), dtype=dtype, device=model.device)
    pbc = np.broadcast_to(np.asarray(pbc, dtype=bool), (3,))
    if pbc.all():
        return _periodic_share(layer, pos, q, torch.as_tensor(cell, dtype=dtype), comm)
    if pbc.any():
        raise ValueError(
            "the long-range layer handles 3-D periodic cells and non-periodic structures, not "
            f"mixed periodicity (pbc = {pbc.tolist()}); for a slab, add vacuum along the "
            "non-periodic axis and make the cell fully periodic."
        )
    return _gathered_share(layer, pos, q, comm)


def _periodic_share(layer, pos, q, cell, comm) -> LongRangeShare:
    pos.requires_grad_()
    q.requires_grad_()
    strain = torch.zeros(3, 3, dtype=pos.dtype, device=pos.device, requires_grad=True)
    deform = torch.eye(3, dtype=pos.dtype, device=pos.device) + strain
    cell = cell.to(pos.device) @ deform
    phi = layer.periodic_potentials(pos @ deform, q, cell, grid_reducer(comm))
    energies = layer.energies(q, phi)
    grads = torch.autograd.grad(energies.sum(), [pos, q, strain], allow_unused=True)
    g_pos, g_q, g_strain = (
        torch.zeros_like(x) if g is None else g for g, x in zip(grads, [pos, q, strain])
    )
    w = -g_strain.to(torch.float64)
    return LongRangeShare(
        energies=energies.detach().to(torch.float64).cpu().numpy(),
        forces=-g_pos.detach().to(torch.float64).cpu().numpy(),
        virial=(0.5 * (w + w.T)).cpu().numpy(),
        adjoint=g_q.detach().to(torch.float64).cpu().numpy(),
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
