"""From a TrainConfig to frames, data statistics and an untrained model."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from ase.data import atomic_numbers

from ..config import ModelConfig, resolve_config
from ..io import build_model
from .config import TrainConfig
from .dataset import Frame, data_hash, make_frames, read_files, resolve_paths, split_indices
from .stats import fit_statistics

DTYPES = {"float32": torch.float32, "float64": torch.float64}


@dataclasses.dataclass(frozen=True)
class TrainingData:
    """Training and validation frames and where they came from."""

    train: list[Frame]
    validation: list[Frame]
    species: list[str]
    files: list[str]
    data_hash: str


def _species(cfg: TrainConfig, groups) -> list[str]:
    found = {s for _, frames in groups for a in frames for s in a.get_chemical_symbols()}
    if not cfg.species:
        return sorted(found, key=lambda s: atomic_numbers[s])
    unknown = sorted(found - set(cfg.species))
    if unknown:
        raise ValueError(
            f"the data contain species {unknown} missing from 'species: {list(cfg.species)}'; "
            "add them to 'species' (or leave 'species' out to take them from the data)."
        )
    return list(cfg.species)


def _frames(groups, species, r_max, cfg: TrainConfig) -> list[Frame]:
    return make_frames(groups, species, r_max, cfg.data)


def load_training_data(cfg: TrainConfig, r_max: float) -> TrainingData:
    """Read, label-check, split and graph the frames named in ``cfg.data``."""
    train_paths = resolve_paths(cfg.data.train, cfg.base_dir)
    val_paths = (
        resolve_paths(cfg.data.validation, cfg.base_dir) if cfg.data.split == "files" else []
    )
    train_groups = read_files(train_paths, cfg.data.stride)
    val_groups = read_files(val_paths, cfg.data.stride)
    species = _species(cfg, train_groups + val_groups)
    frames = _frames(train_groups, species, r_max, cfg)
    if cfg.data.split == "files":
        train, val = frames, _frames(val_groups, species, r_max, cfg)
    else:
        sizes = [len(f) for _, f in train_groups]
        train_idx, val_idx = split_indices(sizes, cfg.data, cfg.seed)
        train, val = [frames[i] for i in train_idx], [frames[i] for i in val_idx]
    if not train or not val:
        raise ValueError(
            f"the split left {len(train)} training and {len(val)} validation frames; "
            "give more frames or change data.val_fraction / data.block_size."
        )
    all_paths = train_paths + val_paths
    return TrainingData(train, val, species, [str(p) for p in all_paths], data_hash(all_paths))


def model_config(cfg: TrainConfig) -> ModelConfig:
    """The ModelConfig named in the ``model`` section (statistics not yet fitted)."""
    return resolve_config(dict(cfg.model) if cfg.model else "default")


def build_from_data(cfg: TrainConfig, data: TrainingData, base: ModelConfig):
    """An untrained model whose normalisation comes from the training frames."""
    fitted = fit_statistics(base, data.train, data.species)
    return build_model(
        fitted, species=data.species, seed=cfg.seed, dtype=DTYPES[cfg.dtype], device=cfg.device
    )


def output_dir(cfg: TrainConfig) -> Path:
    """The run folder; relative paths are taken from the current directory."""
    return Path(cfg.output_dir)
