"""Run the paper's deployed nequip-0.5 / allegro-0.2 TorchScript models (opt-in).

The deployed module computes edge vectors as pos[j] − pos[i] + shift·cell. We pass the
Cartesian shifts with an identity cell, so one graph format serves both model kinds.
For the virial we strain positions and shifts; the module frees its graph after its own
force gradient unless it is in training mode, where it skips its final energy rescaling,
which we then apply ourselves.
"""

from __future__ import annotations

import os

import torch

from .data import AtomicGraph


class TorchScriptPotential(torch.nn.Module):
    """A deployed TorchScript Allegro model behind the same ``evaluate`` as ours."""

    def __init__(self, path: str | os.PathLike, device: str = "cpu") -> None:
        super().__init__()
        extra = {"r_max": "", "type_names": "", "nequip_version": "", "model_dtype": ""}
        try:
            self.module = torch.jit.load(str(path), map_location=device, _extra_files=extra)
        except RuntimeError as err:
            raise ValueError(f"{path} is not a loadable TorchScript model: {err}") from None
        if not extra["r_max"] or not extra["type_names"]:
            raise ValueError(f"{path} lacks nequip metadata (r_max, type_names).")
        self.module.eval()
        self.r_max = float(extra["r_max"])
        self.species = extra["type_names"].decode().split()
        self.nequip_version = extra["nequip_version"].decode()
        self.dtype = next(iter(self.module.parameters())).dtype
        self.device = torch.device(device)

    def evaluate(
        self,
        graph: AtomicGraph,
        forces: bool = True,
        virial: bool = True,
        create_graph: bool = False,
    ) -> dict[str, torch.Tensor]:
        results = [self._evaluate_one(g, virial) for g in _split(graph)]
        out = {k: torch.cat([r[k] for r in results]) for k in results[0]}
        return out

    def _evaluate_one(self, graph: AtomicGraph, virial: bool) -> dict[str, torch.Tensor]:
        strain = torch.zeros(3, 3, dtype=self.dtype, device=graph.positions.device)
        strain.requires_grad_(virial)
        deform = torch.eye(3, dtype=self.dtype, device=strain.device) + strain
        data = {
            "pos": graph.positions.to(self.dtype) @ deform,
            "edge_index": graph.edge_index,
            "edge_cell_shift": graph.edge_shifts.to(self.dtype) @ deform,
            "cell": torch.eye(3, dtype=self.dtype, device=strain.device),
            "atom_types": graph.species,
        }
        self.module.train(virial)
        try:
            result = self.module(data)
        finally:
            self.module.eval()
        scale = self.module.scale_by.to(torch.float64) if virial and self.module.has_scale else 1.0
        energy = result["total_energy"].reshape(1).to(torch.float64)
        out = {
            "energy": (energy * scale).detach(),
            "energies": (result["atomic_energy"].reshape(-1).to(torch.float64) * scale).detach(),
            "forces": (result["forces"].to(torch.float64) * scale).detach(),
        }
        if virial:
            (grad,) = torch.autograd.grad(result["total_energy"].sum(), strain)
            w = -grad.to(torch.float64) * scale
            out["virial"] = (0.5 * (w + w.T)).unsqueeze(0).detach()
        return out


def _split(graph: AtomicGraph) -> list[AtomicGraph]:
    if graph.n_structures == 1:
        return [graph]
    parts = []
    for b in range(graph.n_structures):
        atoms = (graph.batch == b).nonzero().squeeze(-1)
        first = int(atoms[0]) if len(atoms) else 0
        edges = (graph.batch[graph.edge_index[0]] == b).nonzero().squeeze(-1)
        parts.append(
            AtomicGraph(
                positions=graph.positions[atoms],
                species=graph.species[atoms],
                edge_index=graph.edge_index[:, edges] - first,
                edge_shifts=graph.edge_shifts[edges],
                batch=torch.zeros(len(atoms), dtype=torch.long, device=atoms.device),
            )
        )
    return parts
