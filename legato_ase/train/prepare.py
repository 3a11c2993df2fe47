"""From a TrainConfig to frames, data statistics and an untrained model."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from ase.data import atomic_numbers

from ..config import ModelConfig, resolve_config
from ..io import build_model, load_model
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
    """The ModelConfig named in the ``model`` section (statistics not yet fitted).

    With ``init_from``: the file's config, with the section's ``long_range`` if it has one.
    """
    if not cfg.init_from:
        return resolve_config(dict(cfg.model) if cfg.model else "default")
    extra = sorted(set(cfg.model) - {"long_range"})
    if extra:
        raise ValueError(
            f"with init_from, the network comes from {cfg.init_from}; the model section may "
            f"only add 'long_range' (found {extra})."
        )
    start = load_model(init_path(cfg)).config
    if "long_range" not in cfg.model:
        return start
    return start.replace(
        long_range=resolve_config({"long_range": cfg.model["long_range"]}).long_range
    )


def init_path(cfg: TrainConfig) -> Path:
    path = Path(cfg.init_from)
    return path if path.is_absolute() or path.exists() else Path(cfg.base_dir) / path


def build_from_data(cfg: TrainConfig, data: TrainingData, base: ModelConfig):
    """An untrained model whose normalisation comes from the training frames."""
    fitted = fit_statistics(base, data.train, data.species)
    return build_model(
        fitted, species=data.species, seed=cfg.seed, dtype=DTYPES[cfg.dtype], device=cfg.device
    )


def build_from_file(cfg: TrainConfig, data: TrainingData, base: ModelConfig):
    """A model initialised from ``cfg.init_from`` (the two-level recipe's second stage).

    The file's network and normalisation are kept; a long-range layer that the file lacks
    starts at zero amplitude (``LongRange.silence_``), so the energy at step 0 is the file's.
    """
    path = init_path(cfg)
    start = load_model(path)
    if list(start.species) != list(data.species):
        raise ValueError(
            f"init_from model {path} has species {start.species} but the data/config give "
            f"{data.species}; set 'species: {list(start.species)}' in the training config."
        )
    model = build_model(
        base, species=data.species, seed=cfg.seed, dtype=DTYPES[cfg.dtype], device=cfg.device
    )
    missing, unexpected = model.load_state_dict(start.state_dict(), strict=False)
    foreign = unexpected + [k for k in missing if not k.startswith("long_range.")]
    if foreign:
        raise ValueError(
            f"the weights in {path} do not fit the model to train ({foreign[:3]} ...); "
            "change only 'long_range' when starting from a trained model."
        )
    if any(k.startswith("long_range.") for k in missing):
        model.long_range.silence_()
    return model


def set_trainable(model, trainable: str) -> None:
    """``"all"``: train every weight; ``"long_range"``: only the long-range layer."""
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(trainable == "all" or name.startswith("long_range."))


def output_dir(cfg: TrainConfig) -> Path:
    """The run folder; relative paths are taken from the current directory."""
    return Path(cfg.output_dir)
