"""The potential: species bookkeeping, per-species energy scaling, forces and virial.

Energies are differentiated with respect to the edge vectors r_ij only. Forces and the
virial both follow from dE/dr_ij (F_i += g, F_j −= g, W = −Σ r_ij ⊗ g), in one backward
pass; the same code serves a whole periodic cell and a domain with ghost atoms.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from ..config import ModelConfig
from ..data import AtomicGraph
from .allegro import Allegro


def _pair_cutoffs(cfg: ModelConfig, species: Sequence[str]) -> torch.Tensor:
    table = torch.full((len(species), len(species)), float(cfg.r_max), dtype=torch.float64)
    for key, r in cfg.pair_r_max.items():
        parts = key.split("-")
        if len(parts) != 2 or not set(parts) <= set(species):
            raise ValueError(
                f"pair_r_max key '{key}' must name two of the model's species as 'A-B', "
                f"with A and B in {list(species)}."
            )
        a, b = (species.index(p) for p in parts)
        table[a, b] = table[b, a] = r
    return table


class LegatoPotential(torch.nn.Module):
    """An Allegro potential for a fixed list of species.

    Use :func:`legato_ase.build_model` to construct one and :meth:`evaluate` to run it.
    """

    def __init__(self, cfg: ModelConfig, species: Sequence[str]) -> None:
        super().__init__()
        species = list(species)
        if len(set(species)) != len(species) or not species:
            raise ValueError(f"species must be a non-empty list of distinct symbols: {species}")
        for table in (cfg.energy_shift, cfg.energy_scale):
            extra = set(table) - set(species)
            if extra:
                raise ValueError(f"energy shift/scale given for {sorted(extra)}, not in {species}")
        self.config = cfg
        self.species = species
        self.r_max = float(cfg.r_max)
        cutoffs = _pair_cutoffs(cfg, species).to(torch.get_default_dtype())
        self.allegro = Allegro(cfg, len(species), cutoffs)
        shift = [cfg.energy_shift.get(s, 0.0) for s in species]
        scale = [cfg.energy_scale.get(s, 1.0) for s in species]
        self.register_buffer("energy_shift", torch.tensor(shift, dtype=torch.float64))
        self.register_buffer("energy_scale", torch.tensor(scale, dtype=torch.float64))
        self.edge_sum_norm = 1.0 / math.sqrt(cfg.avg_num_neighbors)

    def _apply(self, fn, recurse=True):
        # Energy shifts are of order 10–1000 eV: keep them float64 whatever the network dtype.
        shift, scale = self.energy_shift, self.energy_scale
        super()._apply(fn, recurse)
        device = self.allegro.embeds[0].device
        self.energy_shift = shift.to(device=device, dtype=torch.float64)
        self.energy_scale = scale.to(device=device, dtype=torch.float64)
        return self

    @property
    def dtype(self) -> torch.dtype:
        return self.allegro.embeds[0].dtype

    @property
    def device(self) -> torch.device:
        return self.allegro.embeds[0].device

    def evaluate(
        self,
        graph: AtomicGraph,
        forces: bool = True,
        virial: bool = True,
        create_graph: bool = False,
    ) -> dict[str, torch.Tensor]:
        """Energies, and optionally forces and virials, of a batch of structures.

        Args:
            graph: the batch (positions float64, Å).
            forces: compute forces [N, 3] (eV/Å), ghost atoms included.
            virial: compute virials W = −V·σ [B, 3, 3] (eV).
            create_graph: keep the graph of forces/virial for training.

        Returns:
            float64 tensors: ``energy`` [B] (eV), ``energies`` [N] (eV, per atom),
            and ``forces``/``virial`` when asked for.
        """
        centre, neighbour = graph.edge_index
        vectors64 = graph.positions[neighbour] - graph.positions[centre] + graph.edge_shifts
        need_grad = forces or virial
        # Forces and virial need dE/dr_ij only: a fresh leaf, cut from the positions.
        vectors = vectors64.detach().to(self.dtype).requires_grad_(need_grad)
        edge_energy = self.allegro(vectors, graph.species, graph.edge_index, graph.n_atoms)
        summed = torch.zeros(graph.n_atoms, dtype=torch.float64, device=vectors.device)
        summed = summed.index_add(0, centre, edge_energy.to(torch.float64))
        z = graph.species
        atomic = self.energy_scale[z] * self.edge_sum_norm * summed + self.energy_shift[z]
        counted = atomic if graph.owned is None else atomic * graph.owned.to(atomic.dtype)
        energy = torch.zeros(graph.n_structures, dtype=torch.float64, device=vectors.device)
        energy = energy.index_add(0, graph.batch, counted)
        out = {"energy": energy, "energies": atomic}
        if not need_grad:
            return out
        (grad,) = torch.autograd.grad(
            energy.sum(), vectors, create_graph=create_graph, allow_unused=True
        )
        if grad is None:  # no edges at all
            grad = torch.zeros_like(vectors)
        grad = grad.to(torch.float64)
        if forces:
            f = torch.zeros_like(graph.positions).index_add(0, centre, grad)
            out["forces"] = f.index_add(0, neighbour, grad, alpha=-1.0)
        if virial:
            per_edge = -vectors64.unsqueeze(-1) * grad.unsqueeze(-2)
            w = torch.zeros(graph.n_structures, 3, 3, dtype=torch.float64, device=vectors.device)
            w = w.index_add(0, graph.batch[centre], per_edge)
            out["virial"] = 0.5 * (w + w.transpose(1, 2))
        return out
