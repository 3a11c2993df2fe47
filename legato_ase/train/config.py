"""Training settings: one frozen dataclass per YAML section, unknown keys rejected.

Every key, its default and its meaning are listed in docs/training.md.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..config import check_keys

_SPLITS = ("blocks", "random", "files")
_LOSSES = ("mse", "huber")
_OPTIMIZERS = ("adam", "adamw", "sgd")
_SAM_KINDS = ("none", "sam", "asam")


def _choice(value: str, valid: tuple[str, ...], key: str) -> None:
    if value not in valid:
        raise ValueError(f"{key} must be one of {list(valid)}, got '{value}'.")


@dataclasses.dataclass(frozen=True, kw_only=True)
class DataConfig:
    """Where the labelled frames come from and how they are split."""

    train: tuple[str, ...] = ()
    validation: tuple[str, ...] = ()
    split: str = "blocks"
    val_fraction: float = 0.1
    block_size: int = 10
    stride: int = 1
    energy_key: str = "energy"
    forces_key: str = "forces"
    stress_key: str = "stress"

    def __post_init__(self) -> None:
        for name in ("train", "validation"):
            value = getattr(self, name)
            object.__setattr__(self, name, (value,) if isinstance(value, str) else tuple(value))
        if not self.train:
            raise ValueError("data.train is empty: give a list of files (globs allowed).")
        _choice(self.split, _SPLITS, "data.split")
        if self.split == "files" and not self.validation:
            raise ValueError("data.split = 'files' needs data.validation (a list of files).")
        if self.split != "files" and not 0.0 < self.val_fraction < 1.0:
            raise ValueError(f"data.val_fraction must lie in (0, 1), got {self.val_fraction}.")
        if self.block_size < 1 or self.stride < 1:
            raise ValueError("data.block_size and data.stride must be positive integers.")


@dataclasses.dataclass(frozen=True, kw_only=True)
class LossConfig:
    """Weights and form of the loss (energies per atom in eV, forces eV/Å, stress eV/Å³)."""

    energy_weight: float = 1.0
    forces_weight: float = 1.0
    stress_weight: float = 0.0
    kind: str = "mse"
    huber_delta: float = 0.01

    def __post_init__(self) -> None:
        _choice(self.kind, _LOSSES, "loss.kind")
        if min(self.energy_weight, self.forces_weight, self.stress_weight) < 0:
            raise ValueError("loss weights must be non-negative.")
        if self.huber_delta <= 0:
            raise ValueError(f"loss.huber_delta must be positive, got {self.huber_delta}.")


@dataclasses.dataclass(frozen=True, kw_only=True)
class OptimizerConfig:
    """Base optimizer, the SAM wrapper around it, and the weight average."""

    name: str = "adam"
    lr: float = 0.002
    weight_decay: float = 0.0
    sam: str = "none"
    rho: float = 0.005
    sam_interval: int = 1
    grad_clip: float | None = None
    ema_decay: float | None = 0.99

    def __post_init__(self) -> None:
        _choice(self.name, _OPTIMIZERS, "optimizer.name")
        _choice(self.sam, _SAM_KINDS, "optimizer.sam")
        if self.lr <= 0 or self.rho <= 0:
            raise ValueError("optimizer.lr and optimizer.rho must be positive.")
        if self.sam_interval < 1:
            raise ValueError(f"optimizer.sam_interval must be >= 1, got {self.sam_interval}.")
        if self.ema_decay is not None and not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"optimizer.ema_decay must lie in [0, 1), got {self.ema_decay}.")


@dataclasses.dataclass(frozen=True, kw_only=True)
class ScheduleConfig:
    """Epochs, batches, learning-rate plateau schedule and stopping rules."""

    epochs: int = 100
    batch_size: int = 4
    plateau_patience: int = 50
    plateau_factor: float = 0.5
    min_lr: float = 1e-5
    early_stopping_patience: int | None = None
    max_minutes: float | None = None

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("schedule.epochs and schedule.batch_size must be positive.")
        if not 0.0 < self.plateau_factor < 1.0:
            raise ValueError(
                f"schedule.plateau_factor must lie in (0, 1), got {self.plateau_factor}."
            )


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """A whole training run (the YAML file)."""

    data: DataConfig
    model: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    species: tuple[str, ...] = ()
    loss: LossConfig = dataclasses.field(default_factory=LossConfig)
    optimizer: OptimizerConfig = dataclasses.field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = dataclasses.field(default_factory=ScheduleConfig)
    output_dir: str = "legato-run"
    seed: int = 0
    device: str = "cpu"
    dtype: str = "float32"
    threads: int | None = None
    base_dir: str = "."

    def __post_init__(self) -> None:
        object.__setattr__(self, "species", tuple(self.species))
        _choice(self.dtype, ("float32", "float64"), "dtype")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], base_dir: str | Path = ".") -> TrainConfig:
        """Build from a nested mapping (the parsed YAML), rejecting unknown keys."""
        data = dict(data)
        check_keys(
            data,
            [f.name for f in dataclasses.fields(cls) if f.name != "base_dir"],
            "the training config",
        )
        if "data" not in data:
            raise ValueError("the training config needs a 'data' section with at least 'train'.")
        sections = {
            "data": DataConfig,
            "loss": LossConfig,
            "optimizer": OptimizerConfig,
            "schedule": ScheduleConfig,
        }
        for key, section in sections.items():
            if key in data:
                data[key] = _section(section, data[key], key)
        return cls(**data, base_dir=str(base_dir))

    def to_dict(self) -> dict[str, Any]:
        """Plain data (lists, dicts) for checkpoints and model metadata."""
        out = dataclasses.asdict(self)
        out["model"] = dict(self.model)
        return _listify(out)

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)


def _section(cls, value: Any, where: str):
    if not isinstance(value, Mapping):
        raise ValueError(
            f"section '{where}' must be a mapping of keys, got {type(value).__name__}."
        )
    check_keys(value, [f.name for f in dataclasses.fields(cls)], f"section '{where}'")
    return cls(**value)


def _listify(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _listify(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_listify(v) for v in value]
    return value


def load_train_config(path: str | Path) -> TrainConfig:
    """Read a training YAML file; relative data paths are resolved against its folder."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"training config '{path}' does not exist.")
    with open(path) as handle:
        data = yaml.safe_load(handle) or {}
    if not isinstance(data, Mapping):
        raise ValueError(f"{path} must hold a mapping of sections (data, model, loss, ...).")
    return TrainConfig.from_dict(data, base_dir=path.resolve().parent)
