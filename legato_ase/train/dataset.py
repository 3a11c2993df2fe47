"""Labelled frames: reading (any ASE format), splitting, statistics, batching.

Graphs (neighbour lists) are built once per dataset; a batch concatenates them.
"""

from __future__ import annotations

import dataclasses
import glob
import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from ase import Atoms

from ..data import AtomicGraph, atoms_to_graph, batch_graphs
from ..datasets import read_frames
from .config import DataConfig

_CALC_NAMES = {"energy", "free_energy", "forces", "stress"}


@dataclasses.dataclass(frozen=True)
class Frame:
    """One labelled structure: graph plus reference energy (eV), forces (eV/Å), stress (eV/Å³)."""

    graph: AtomicGraph
    energy: float
    forces: torch.Tensor
    stress: torch.Tensor | None
    volume: float


@dataclasses.dataclass(frozen=True)
class Batch:
    """Several frames as one graph with their stacked labels."""

    graph: AtomicGraph
    energy: torch.Tensor  # [B] eV
    forces: torch.Tensor  # [N, 3] eV/Å
    stress: torch.Tensor | None  # [B, 6] Voigt eV/Å³, None if any frame lacks it
    volume: torch.Tensor  # [B] Å³
    n_atoms: torch.Tensor  # [B]


def resolve_paths(patterns: Sequence[str], base_dir: str | Path = ".") -> list[Path]:
    """Expand globs; ``bundled:`` names the bundled datasets; relative paths try base_dir."""
    from ..datasets import DATASETS_DIR

    paths: list[Path] = []
    for pattern in patterns:
        if pattern.startswith("bundled:"):
            roots = [DATASETS_DIR]
            pattern = pattern[len("bundled:") :]
        elif Path(pattern).is_absolute():
            roots = [Path("/")]
        else:  # a bare bundled name (nh3_solid_060.extxyz.xz) is found as well
            roots = list(dict.fromkeys([Path("."), Path(base_dir), DATASETS_DIR]))
        found: list[str] = []
        for root in roots:
            found = sorted(glob.glob(str(root / pattern)))
            if found:
                break
        if not found:
            raise FileNotFoundError(
                f"no data file matches '{pattern}' (looked in {[str(r) for r in roots]}); "
                "check the path, or write 'bundled:nh3_*.extxyz.xz' for the bundled ammonia data."
            )
        paths.extend(Path(p) for p in found)
    return paths


def _label(atoms: Atoms, key: str, where: str, required: bool):
    if key in atoms.info:
        return np.asarray(atoms.info[key], dtype=np.float64)
    if key in atoms.arrays:
        return np.asarray(atoms.arrays[key], dtype=np.float64)
    results = getattr(atoms.calc, "results", {}) if atoms.calc is not None else {}
    if key in _CALC_NAMES and key in results:
        return np.asarray(results[key], dtype=np.float64)
    if not required:
        return None
    found = sorted(set(atoms.info) | set(atoms.arrays) | set(results))
    raise ValueError(
        f"{where} has no label '{key}'; it has {found}. Set data.energy_key / data.forces_key / "
        "data.stress_key to the names your file uses (e.g. REF_energy)."
    )


def _voigt(stress: np.ndarray) -> np.ndarray:
    if stress.shape == (3, 3):
        return stress[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]
    if stress.shape == (9,):
        return _voigt(stress.reshape(3, 3))
    return stress.reshape(6)


def make_frame(
    atoms: Atoms, species: Sequence[str], r_max: float, cfg: DataConfig, where: str
) -> Frame:
    """Graph and labels of one structure (stress is used only for 3-D periodic cells)."""
    energy = _label(atoms, cfg.energy_key, where, required=True)
    forces = _label(atoms, cfg.forces_key, where, required=True)
    if forces.shape != (len(atoms), 3):
        raise ValueError(
            f"{where}: forces '{cfg.forces_key}' have shape {forces.shape}, "
            f"expected ({len(atoms)}, 3)."
        )
    periodic = bool(np.all(atoms.pbc))
    stress = _label(atoms, cfg.stress_key, where, required=False) if periodic else None
    return Frame(
        graph=atoms_to_graph(atoms, species, r_max),
        energy=float(energy),
        forces=torch.from_numpy(forces.copy()),
        stress=None if stress is None else torch.from_numpy(_voigt(stress).copy()),
        volume=float(atoms.get_volume()) if periodic else 0.0,
    )


def make_frames(
    groups: Sequence[tuple[str, list[Atoms]]], species: Sequence[str], r_max: float, cfg: DataConfig
) -> list[Frame]:
    """Frames of the files read by :func:`read_files`; errors name the file and the frame's
    index in it (counting every frame of the file, also with a stride)."""
    frames = []
    for path, structures in groups:
        for n, atoms in enumerate(structures):
            where = f"{path} frame {n * cfg.stride}"
            try:
                frames.append(make_frame(atoms, species, r_max, cfg, where))
            except ValueError as err:
                if where in str(err):
                    raise
                raise ValueError(f"{where}: {err}") from None
    return frames


def read_files(paths: Sequence[Path], stride: int = 1) -> list[tuple[str, list[Atoms]]]:
    """Frames of each file (every ``stride``-th), keeping the file grouping for block splits."""
    out = []
    for path in paths:
        frames = read_frames(path, f"::{stride}")
        out.append((str(path), frames if isinstance(frames, list) else [frames]))
    return out


def split_indices(sizes: Sequence[int], cfg: DataConfig, seed: int) -> tuple[list[int], list[int]]:
    """Train/validation indices into the concatenated frames of several files.

    ``random`` draws frames; ``blocks`` cuts each file into contiguous blocks of
    ``block_size`` frames and draws whole blocks, so correlated neighbours stay together.
    """
    rng = np.random.default_rng(seed)
    offsets = np.cumsum([0, *sizes])
    if cfg.split == "random":
        order = rng.permutation(offsets[-1])
        n_val = max(1, round(cfg.val_fraction * offsets[-1]))
        return sorted(order[n_val:].tolist()), sorted(order[:n_val].tolist())
    val: list[int] = []
    for start, size in zip(offsets[:-1], sizes, strict=True):
        blocks = [
            list(range(b, min(b + cfg.block_size, size))) for b in range(0, size, cfg.block_size)
        ]
        n_val = max(1, round(cfg.val_fraction * len(blocks))) if len(blocks) > 1 else 0
        for b in rng.choice(len(blocks), size=n_val, replace=False):
            val.extend(int(start + i) for i in blocks[b])
    val_set = set(val)
    return [i for i in range(offsets[-1]) if i not in val_set], sorted(val)


def data_hash(paths: Sequence[Path]) -> str:
    """SHA-256 of the data files' bytes, in order (recorded in the model file)."""
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def collate(frames: Sequence[Frame]) -> Batch:
    """Stack frames into one batch (stress kept only if every frame has it)."""
    stresses = [f.stress for f in frames]
    return Batch(
        graph=batch_graphs([f.graph for f in frames]),
        energy=torch.tensor([f.energy for f in frames], dtype=torch.float64),
        forces=torch.cat([f.forces for f in frames]),
        stress=None if any(s is None for s in stresses) else torch.stack(stresses),
        volume=torch.tensor([f.volume for f in frames], dtype=torch.float64),
        n_atoms=torch.tensor([f.graph.n_atoms for f in frames], dtype=torch.float64),
    )


def batch_to(batch: Batch, device: torch.device | str) -> Batch:
    moved = {
        f.name: (v.to(device) if v is not None else None)
        for f in dataclasses.fields(batch)
        for v in [getattr(batch, f.name)]
    }
    return Batch(**moved)


def iterate_batches(frames: Sequence[Frame], batch_size: int, order: Sequence[int] | None = None):
    """Yield batches of frames in the given order (all frames in file order by default)."""
    order = range(len(frames)) if order is None else order
    order = list(order)
    for start in range(0, len(order), batch_size):
        yield collate([frames[i] for i in order[start : start + batch_size]])
