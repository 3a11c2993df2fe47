"""Graphs of atoms: the one input format of the model, built from ASE Atoms."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import torch
from ase import Atoms

from .neighbors import neighbor_list


@dataclasses.dataclass(kw_only=True)
class AtomicGraph:
    """A batch of structures as one graph (a single structure is a batch of one).

    Attributes:
        positions: [N, 3] float64 Cartesian positions in Å.
        species: [N] int64 index of each atom's species in the model's species list.
        edge_index: [2, E] int64; row 0 the centre i, row 1 the neighbour j.
        edge_shifts: [E, 3] float64 Cartesian image shift in Å: r_ij = pos[j] − pos[i] + shift.
        batch: [N] int64 structure index of each atom.
        n_structures: number of structures B.
        owned: optional [N] bool; atoms whose energies count (all when None). Parallel
            evaluation marks ghost atoms False; edges must then start at owned atoms only.
        cell: optional [B, 3, 3] float64 cell rows in Å (needed by long-range models).
        pbc: optional [B, 3] bool periodicity of each structure.
    """

    positions: torch.Tensor
    species: torch.Tensor
    edge_index: torch.Tensor
    edge_shifts: torch.Tensor
    batch: torch.Tensor
    n_structures: int = 1
    owned: torch.Tensor | None = None
    cell: torch.Tensor | None = None
    pbc: torch.Tensor | None = None

    @property
    def n_atoms(self) -> int:
        return int(self.positions.shape[0])

    def to(self, device: torch.device | str) -> AtomicGraph:
        moved = {
            f.name: getattr(self, f.name).to(device)
            if isinstance(getattr(self, f.name), torch.Tensor)
            else getattr(self, f.name)
            for f in dataclasses.fields(self)
        }
        return AtomicGraph(**moved)


def species_indices(symbols: Sequence[str], species: Sequence[str]) -> np.ndarray:
    """Map chemical symbols to model species indices, with a clear error for unknowns."""
    lookup = {s: n for n, s in enumerate(species)}
    unknown = sorted(set(symbols) - set(lookup))
    if unknown:
        raise ValueError(
            f"the structure contains species {unknown} that the model does not know; "
            f"the model was trained for {list(species)}. Use a model trained on these "
            "elements, or remove those atoms."
        )
    return np.fromiter((lookup[s] for s in symbols), dtype=np.int64, count=len(symbols))


def atoms_to_graph(atoms: Atoms, species: Sequence[str], r_max: float) -> AtomicGraph:
    """Build the graph of one structure: full neighbour list within r_max, image shifts."""
    index = species_indices(atoms.get_chemical_symbols(), species)
    positions = np.asarray(atoms.positions, dtype=np.float64)
    cell = np.asarray(atoms.cell.array, dtype=np.float64)
    i, j, shifts = neighbor_list(positions, cell, atoms.pbc, r_max)
    return AtomicGraph(
        positions=torch.from_numpy(positions.copy()),
        species=torch.from_numpy(index),
        edge_index=torch.from_numpy(np.stack([i, j])),
        edge_shifts=torch.from_numpy(shifts.astype(np.float64) @ cell),
        batch=torch.zeros(len(atoms), dtype=torch.long),
        cell=torch.from_numpy(cell.copy()).unsqueeze(0),
        pbc=torch.tensor(np.broadcast_to(atoms.pbc, (3,)), dtype=torch.bool).unsqueeze(0),
    )


def batch_graphs(graphs: Sequence[AtomicGraph]) -> AtomicGraph:
    """Concatenate graphs into one batch, offsetting atom indices."""
    offsets = np.cumsum([0] + [g.n_atoms for g in graphs[:-1]])
    return AtomicGraph(
        positions=torch.cat([g.positions for g in graphs]),
        species=torch.cat([g.species for g in graphs]),
        edge_index=torch.cat([g.edge_index + int(o) for g, o in zip(graphs, offsets)], dim=1),
        edge_shifts=torch.cat([g.edge_shifts for g in graphs]),
        batch=torch.cat(
            [torch.full((g.n_atoms,), n, dtype=torch.long) for n, g in enumerate(graphs)]
        ),
        n_structures=len(graphs),
        cell=None if any(g.cell is None for g in graphs) else torch.cat([g.cell for g in graphs]),
        pbc=None if any(g.pbc is None for g in graphs) else torch.cat([g.pbc for g in graphs]),
    )
