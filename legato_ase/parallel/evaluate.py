"""One domain evaluation shared by the ASE and LAMMPS modes.

Input: Cartesian positions of a domain's owned atoms (first) and its halo atoms, already
at their periodic image positions, so the neighbour list is non-periodic. Edges start at
centre atoms only; the energy counts owned atoms only; forces come back for every local
atom (ghosts included) and the virial is this domain's share of the total.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import torch

from ..data import AtomicGraph
from ..neighbors import neighbor_list


@dataclasses.dataclass(frozen=True, kw_only=True)
class LocalResult:
    """One domain's share.

    Attributes:
        energy: sum of the owned atoms' energies, eV.
        energies: [n_owned] per-atom energies, eV.
        forces: [n_local, 3] eV/Å; ghost entries are this domain's contribution to the
            force on the ghost's owner (in halo mode ``"double"`` only owned rows count).
        virial: [3, 3] this domain's share of W = −V·σ, eV.
        n_edges: number of edges evaluated.
        seconds: wall time of "neighbors" and "inference".
    """

    energy: float
    energies: np.ndarray
    forces: np.ndarray
    virial: np.ndarray
    n_edges: int
    seconds: dict


def local_edges(positions: np.ndarray, n_owned: int, r_max: float, halo: str = "single"):
    """Edges (i, j) of one domain and the mask of centre atoms.

    ``halo="single"``: edges start at owned atoms only (ghost forces must then be sent
    back to their owners). ``halo="double"``: also at ghosts within r_max of an owned
    atom, so that forces on owned atoms are complete locally (needs a 2·r_max halo, no
    reverse exchange).

    Returns:
        i [E], j [E] int64 indices into positions, and is_centre [n_local] bool.
    """
    if halo not in ("single", "double"):
        raise ValueError(f"halo must be 'single' or 'double', got {halo!r}")
    i, j, _ = neighbor_list(positions, np.zeros((3, 3)), [False] * 3, r_max)
    is_centre = np.zeros(len(positions), dtype=bool)
    is_centre[:n_owned] = True
    if halo == "double":
        is_centre[j[i < n_owned]] = True
    keep = is_centre[i]
    return i[keep], j[keep], is_centre


def _domain_graph(model, positions, species, n_owned: int, halo: str):
    """The graph of one domain, its edge count and the neighbour-list time."""
    start = time.perf_counter()
    i, j, is_centre = local_edges(positions, n_owned, model.r_max, halo)
    listed = time.perf_counter() - start
    ghost = np.arange(len(positions)) >= n_owned
    graph = AtomicGraph(
        positions=torch.from_numpy(np.ascontiguousarray(positions, dtype=np.float64)),
        species=torch.from_numpy(np.asarray(species, dtype=np.int64)),
        edge_index=torch.from_numpy(np.stack([i, j])),
        edge_shifts=torch.zeros((len(i), 3), dtype=torch.float64),
        # Structure 0 = owned atoms, 1 = ghost centres: energy[0] and virial[0] are this
        # domain's share while the gradient still sees every centre's energy.
        batch=torch.from_numpy(ghost.astype(np.int64)),
        n_structures=2,
        owned=torch.from_numpy(is_centre),
    ).to(model.device)
    return graph, len(i), listed


def local_charges(model, positions: np.ndarray, species: np.ndarray, n_owned: int) -> np.ndarray:
    """[n_owned, C] latent charges of a long-range model's owned atoms (no gradient)."""
    if n_owned == 0:
        return np.zeros((0, model.long_range.cfg.channels))
    graph, _, _ = _domain_graph(model, positions, species, n_owned, "single")
    with torch.no_grad():
        q = model.charges(graph)[:n_owned]
    return q.to(torch.float64).cpu().numpy()


def evaluate_local(
    model,
    positions: np.ndarray,
    species: np.ndarray,
    n_owned: int,
    halo: str = "single",
    charge_adjoint: np.ndarray | None = None,
) -> LocalResult:
    """Evaluate one domain with the model.

    Args:
        model: a LegatoPotential (or anything with ``evaluate``, ``r_max``, ``device``).
        positions: [n_local, 3] Cartesian positions, Å, owned atoms first.
        species: [n_local] int64 model species indices.
        n_owned: number of owned atoms.
        halo: "single" or "double" (see :func:`local_edges`).
        charge_adjoint: long-range models only: [n_owned, C] dE_long/dq of the owned
            atoms' latent charges (from :func:`~legato_ase.parallel.longrange.long_range_share`);
            the result then holds the short-range part plus the long-range forces that
            act through the charges.
    """
    n_local = len(positions)
    if n_owned == 0:
        return LocalResult(
            energy=0.0,
            energies=np.zeros(0),
            forces=np.zeros((n_local, 3)),
            virial=np.zeros((3, 3)),
            n_edges=0,
            seconds={"neighbors": 0.0, "inference": 0.0},
        )
    graph, n_edges, listed = _domain_graph(model, positions, species, n_owned, halo)
    start = time.perf_counter()
    adjoint = None
    if charge_adjoint is not None:
        adjoint = torch.zeros(n_local, charge_adjoint.shape[1], dtype=torch.float64)
        adjoint[:n_owned] = torch.from_numpy(np.asarray(charge_adjoint, dtype=np.float64))
        adjoint = adjoint.to(model.device)
    out = model.evaluate(graph, forces=True, virial=True, charge_adjoint=adjoint)
    done = time.perf_counter()
    return LocalResult(
        energy=float(out["energy"][0].detach()),
        energies=out["energies"][:n_owned].detach().cpu().numpy(),
        forces=out["forces"].detach().cpu().numpy(),
        virial=out["virial"][0].detach().cpu().numpy(),
        n_edges=n_edges,
        seconds={"neighbors": listed, "inference": done - start},
    )
