"""The potential: species bookkeeping, per-species energy scaling, forces and virial.

The local energy is differentiated with respect to the edge vectors r_ij: forces and the
virial follow from dE/dr_ij (F_i += g, F_j −= g, W = −Σ r_ij ⊗ g), in one backward pass;
the same code serves a whole periodic cell and a domain with ghost atoms. The optional
long-range term also depends on positions and cell directly: it sees them through a
homogeneous strain, r → r(1 + ε), h → h(1 + ε), so that −dE/dε at ε = 0 adds its share
of the virial in the same backward pass.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from ..config import ModelConfig
from ..data import AtomicGraph
from .allegro import Allegro
from .longrange import LongRange


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
        self.long_range = None
        if cfg.long_range is not None:
            self.long_range = LongRange(cfg.long_range, cfg.n_scalar, len(species), cfg.r_max)

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
        charge_adjoint: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Energies, and optionally forces and virials, of a batch of structures.

        Args:
            graph: the batch (positions float64, Å; cell and pbc for long-range models).
            forces: compute forces [N, 3] (eV/Å), ghost atoms included.
            virial: compute virials W = −V·σ [B, 3, 3] (eV).
            create_graph: keep the graph of forces/virial for training.
            charge_adjoint: [N, C] dE_long/dq of every atom's latent charges, computed
                beforehand (domain evaluation in two passes): the long-range layer is then
                not run; its forces through the charges come from Σ λ·q in the backward
                pass, and its energies, explicit forces and virial are the caller's.

        Returns:
            float64 tensors: ``energy`` [B] (eV), ``energies`` [N] (eV, per atom),
            and ``forces``/``virial`` when asked for.
        """
        centre, neighbour = graph.edge_index
        vectors64 = graph.positions[neighbour] - graph.positions[centre] + graph.edge_shifts
        need_grad = forces or virial
        if need_grad and not create_graph and self.long_range is None:
            # Inference of a local model: edge energies and dE/dr_ij in one network pass.
            owned = 1.0 if graph.owned is None else graph.owned[centre].to(torch.float64)
            weight = self.energy_scale[graph.species[centre]] * self.edge_sum_norm * owned
            edge_energy, edge_grad = self.allegro.energy_and_gradient(
                vectors64.to(self.dtype),
                graph.species,
                graph.edge_index,
                graph.n_atoms,
                weight.to(self.dtype),
            )
            atomic = self._atomic(graph, edge_energy)
            out = {"energy": self._total(graph, atomic), "energies": atomic}
            grads = [edge_grad.to(torch.float64)]
            return out | self._derivatives(graph, vectors64, grads, forces, virial)
        # Forces and virial need dE/dr_ij only: a fresh leaf, cut from the positions.
        vectors = vectors64.detach().to(self.dtype).requires_grad_(need_grad)
        leaves = [vectors]
        if self.long_range is None:
            edge_energy = self.allegro(vectors, graph.species, graph.edge_index, graph.n_atoms)
        else:
            edge_energy, latent = self.allegro(
                vectors, graph.species, graph.edge_index, graph.n_atoms, return_latent=True
            )
        atomic = self._atomic(graph, edge_energy)
        target = None
        if charge_adjoint is not None:
            q = self.long_range.charges(self._atom_features(graph, latent), graph.species)
            target = (charge_adjoint.to(q.dtype) * q).sum().to(torch.float64)
        elif self.long_range is not None:
            long_range, positions, strain = self._long_range(graph, latent, need_grad)
            atomic = atomic + long_range.to(torch.float64)
            leaves += [positions, strain]
        energy = self._total(graph, atomic)
        out = {"energy": energy, "energies": atomic}
        if not need_grad:
            return out
        total = energy.sum() if target is None else energy.sum() + target
        grads = torch.autograd.grad(total, leaves, create_graph=create_graph, allow_unused=True)
        grads = [
            torch.zeros_like(leaf, dtype=torch.float64) if g is None else g.to(torch.float64)
            for g, leaf in zip(grads, leaves)
        ]
        return out | self._derivatives(graph, vectors64, grads, forces, virial)

    def _atomic(self, graph: AtomicGraph, edge_energy: torch.Tensor) -> torch.Tensor:
        """[N] float64 atomic energies: scaled, shifted sums of each centre's edge energies."""
        summed = torch.zeros(graph.n_atoms, dtype=torch.float64, device=edge_energy.device)
        summed = summed.index_add(0, graph.edge_index[0], edge_energy.to(torch.float64))
        z = graph.species
        return self.energy_scale[z] * self.edge_sum_norm * summed + self.energy_shift[z]

    def _total(self, graph: AtomicGraph, atomic: torch.Tensor) -> torch.Tensor:
        """[B] structure energies: sums over counted (owned) atoms."""
        counted = atomic if graph.owned is None else atomic * graph.owned.to(atomic.dtype)
        energy = torch.zeros(graph.n_structures, dtype=torch.float64, device=atomic.device)
        return energy.index_add(0, graph.batch, counted)

    def _derivatives(
        self,
        graph: AtomicGraph,
        vectors64: torch.Tensor,
        grads: list[torch.Tensor],
        forces: bool,
        virial: bool,
    ) -> dict[str, torch.Tensor]:
        """Forces [N, 3] and virials [B, 3, 3] from dE/dr_ij [E, 3] (``grads[0]``) and, for
        long-range models, the explicit position and strain derivatives (``grads[1:]``)."""
        centre, neighbour = graph.edge_index
        grad = grads[0]
        out = {}
        if forces:
            f = torch.zeros_like(graph.positions).index_add(0, centre, grad)
            f = f.index_add(0, neighbour, grad, alpha=-1.0)
            out["forces"] = f - grads[1] if len(grads) > 1 else f
        if virial:
            per_edge = -vectors64.unsqueeze(-1) * grad.unsqueeze(-2)
            w = torch.zeros(graph.n_structures, 3, 3, dtype=torch.float64, device=grad.device)
            w = w.index_add(0, graph.batch[centre], per_edge)
            if len(grads) > 1:
                w = w - grads[2]
            out["virial"] = 0.5 * (w + w.transpose(1, 2))
        return out

    def _long_range(self, graph: AtomicGraph, latent: torch.Tensor, need_grad: bool):
        """Per-atom long-range energies [N] and the position [N, 3] and strain [B, 3, 3] leaves.

        The layer runs for the first B' structures, B' = len(graph.cell) (a domain passes
        only its owned atoms' structure); charges sit on counted (owned) atoms only.
        """
        if graph.cell is None or graph.pbc is None:
            raise ValueError(
                "this model has a long-range layer and needs each structure's cell and pbc "
                "in the graph; build graphs with legato_ase.data.atoms_to_graph."
            )
        dtype = self.dtype
        positions = graph.positions.detach().to(dtype).requires_grad_(need_grad)
        strain = torch.zeros(graph.n_structures, 3, 3, dtype=dtype, device=positions.device)
        strain.requires_grad_(need_grad)
        deform = torch.eye(3, dtype=dtype, device=positions.device) + strain
        strained = torch.bmm(positions.unsqueeze(1), deform[graph.batch]).squeeze(1)
        n_lr = graph.cell.shape[0]
        cells = graph.cell.to(dtype) @ deform[:n_lr]
        features = self._atom_features(graph, latent)
        counted = graph.batch < n_lr
        if graph.owned is not None:
            counted = counted & graph.owned
        members = [torch.nonzero(counted & (graph.batch == b)).squeeze(-1) for b in range(n_lr)]
        pairs = None
        if self.long_range.near_cutoff is not None:
            pairs = self._strained_pairs(graph, strained, deform)
        energies = self.long_range(
            features, graph.species, strained, cells, graph.pbc, members, pairs
        )
        return energies, positions, strain

    def _strained_pairs(self, graph: AtomicGraph, strained: torch.Tensor, deform: torch.Tensor):
        """The graph's edges (i, j, r_j − r_i) under the strain, for range separation."""
        if graph.owned is not None:
            raise ValueError(
                "a long-range model with exclude_short_range cannot run the layer inside one "
                "domain (ghost atoms have incomplete charges); domain evaluation passes "
                "charge_adjoint from the two-pass scheme in legato_ase.parallel instead."
            )
        centre, neighbour = graph.edge_index
        shifts = graph.edge_shifts.to(strained.dtype).unsqueeze(1)
        shifts = torch.bmm(shifts, deform[graph.batch[centre]]).squeeze(1)
        return centre, neighbour, strained[neighbour] - strained[centre] + shifts

    def _atom_features(self, graph: AtomicGraph, latent: torch.Tensor) -> torch.Tensor:
        """[N, n_scalar] per-atom features: the normalised sum of the final edge latents."""
        features = latent.new_zeros(graph.n_atoms, latent.shape[-1])
        return features.index_add(0, graph.edge_index[0], latent) * self.edge_sum_norm

    def charges(self, graph: AtomicGraph) -> torch.Tensor:
        """[N, C] latent charges of a long-range model (complete for centre atoms)."""
        centre, neighbour = graph.edge_index
        vectors = graph.positions[neighbour] - graph.positions[centre] + graph.edge_shifts
        _, latent = self.allegro(
            vectors.to(self.dtype), graph.species, graph.edge_index, graph.n_atoms, True
        )
        return self.long_range.charges(self._atom_features(graph, latent), graph.species)
