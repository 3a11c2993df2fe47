"""Training settings: one frozen dataclass per YAML section, unknown keys rejected.

Every key, its default and its meaning are listed in docs/training.md.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..config import build_sections, check_keys, read_yaml_mapping

_SPLITS = ("blocks", "random", "files")
_LOSSES = ("mse", "huber")
_OPTIMIZERS = ("adam", "adamw", "sgd", "lbfgs")
_SAM_KINDS = ("none", "sam", "asam")


def _choice(value: str, valid: tuple[str, ...], key: str) -> None:
    if value not in valid:
        raise ValueError(f"{key} must be one of {list(valid)}, got '{value}'.")


def _check_types(section: Any, prefix: str) -> None:
    """Check every field of a section against its annotation, naming the key.

    Numbers written as strings (YAML reads ``5e-3`` without a dot as text) are parsed;
    whole numbers must be integers (``epochs: 1.5`` is refused).
    """
    for field in dataclasses.fields(section):
        key = f"{prefix}{field.name}"
        value = getattr(section, field.name)
        kind = str(field.type).split("|")[0].strip()
        if value is None and "None" in str(field.type):
            continue
        if kind == "float":
            object.__setattr__(section, field.name, _as_float(value, key))
        elif kind == "int" and (isinstance(value, bool) or not isinstance(value, int)):
            raise ValueError(f"{key} must be a whole number, got {value!r}.")
        elif kind == "str" and not isinstance(value, str):
            raise ValueError(f"{key} must be a string, got {value!r}.")


def _as_float(value: Any, key: str) -> float:
    number = value
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"{key} must be a number, got '{value}'.") from None
    if isinstance(number, bool) or not isinstance(number, (int, float)):
        raise ValueError(f"{key} must be a number, got {value!r}.")
    if not math.isfinite(number):
        raise ValueError(f"{key} must be a finite number, got {value!r}.")
    return float(number)


def _at_least(section: Any, prefix: str, minimum: int | float, *names: str) -> None:
    for name in names:
        value = getattr(section, name)
        if value is not None and value < minimum:
            raise ValueError(f"{prefix}{name} must be ≥ {minimum}, got {value}.")


def _positive(section: Any, prefix: str, *names: str) -> None:
    for name in names:
        value = getattr(section, name)
        if value is not None and value <= 0:
            raise ValueError(f"{prefix}{name} must be positive, got {value}.")


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
        _check_types(self, "data.")
        for name in ("train", "validation"):
            value = getattr(self, name)
            if not isinstance(value, (str, list, tuple)) or not all(
                isinstance(v, str) for v in ([value] if isinstance(value, str) else value)
            ):
                raise ValueError(f"data.{name} must be a list of file names, got {value!r}.")
            object.__setattr__(self, name, (value,) if isinstance(value, str) else tuple(value))
        if not self.train:
            raise ValueError("data.train is empty: give a list of files (globs allowed).")
        _choice(self.split, _SPLITS, "data.split")
        if self.split == "files" and not self.validation:
            raise ValueError("data.split = 'files' needs data.validation (a list of files).")
        if self.split != "files" and not 0.0 < self.val_fraction < 1.0:
            raise ValueError(f"data.val_fraction must lie in (0, 1), got {self.val_fraction}.")
        _positive(self, "data.", "block_size", "stride")


@dataclasses.dataclass(frozen=True, kw_only=True)
class LossConfig:
    """Weights and form of the loss (energies per atom in eV, forces eV/Å, stress eV/Å³)."""

    energy_weight: float = 1.0
    forces_weight: float = 1.0
    stress_weight: float = 0.0
    kind: str = "mse"
    huber_delta: float = 0.01

    def __post_init__(self) -> None:
        _check_types(self, "loss.")
        _choice(self.kind, _LOSSES, "loss.kind")
        _at_least(self, "loss.", 0, "energy_weight", "forces_weight", "stress_weight")
        _positive(self, "loss.", "huber_delta")


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
    lbfgs_iterations: int = 20

    def __post_init__(self) -> None:
        _check_types(self, "optimizer.")
        _choice(self.name, _OPTIMIZERS, "optimizer.name")
        _choice(self.sam, _SAM_KINDS, "optimizer.sam")
        _positive(self, "optimizer.", "lr", "rho", "grad_clip")
        _at_least(self, "optimizer.", 1, "sam_interval", "lbfgs_iterations")
        _at_least(self, "optimizer.", 0, "weight_decay")
        if self.ema_decay is not None and not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"optimizer.ema_decay must lie in [0, 1), got {self.ema_decay}.")
        if self.name == "lbfgs":
            self._check_lbfgs()

    def _check_lbfgs(self) -> None:
        """L-BFGS takes line-searched full-batch steps: no perturbation, average or clipping."""
        unsupported = {
            "sam": (self.sam != "none", "none"),
            "ema_decay": (self.ema_decay is not None, "null"),
            "grad_clip": (self.grad_clip is not None, "null"),
            "weight_decay": (self.weight_decay != 0.0, "0"),
        }
        for key, (bad, fix) in unsupported.items():
            if bad:
                raise ValueError(
                    f"optimizer.name 'lbfgs' does not support optimizer.{key} = "
                    f"{getattr(self, key)!r}; set optimizer.{key}: {fix} (L-BFGS takes "
                    "line-searched steps on the whole training set; see docs/training.md)."
                )


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
        _check_types(self, "schedule.")
        _positive(self, "schedule.", "epochs", "batch_size", "early_stopping_patience")
        _positive(self, "schedule.", "max_minutes")
        _at_least(self, "schedule.", 0, "plateau_patience", "min_lr")
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
    init_from: str | None = None
    trainable: str = "all"
    base_dir: str = "."

    def __post_init__(self) -> None:
        _check_types(self, "")
        if not isinstance(self.species, (list, tuple)) or not all(
            isinstance(s, str) for s in self.species
        ):
            raise ValueError(f"species must be a list of chemical symbols, got {self.species!r}.")
        object.__setattr__(self, "species", tuple(self.species))
        if not isinstance(self.model, Mapping):
            raise ValueError(f"section 'model' must be a mapping of keys, got {self.model!r}.")
        _choice(self.dtype, ("float32", "float64"), "dtype")
        _at_least(self, "", 0, "seed")
        _positive(self, "", "threads")
        _choice(self.trainable, ("all", "long_range"), "trainable")
        if self.trainable == "long_range" and self.model.get("long_range", {}) is None:
            raise ValueError(
                "trainable: long_range needs a model with the long-range layer, but "
                "model.long_range is null; give a long_range section ({} for the defaults) "
                "or use trainable: all."
            )

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
        return cls(**build_sections(data, sections), base_dir=str(base_dir))

    def to_dict(self) -> dict[str, Any]:
        """Plain data (lists, dicts) for checkpoints and model metadata."""
        out = dataclasses.asdict(self)
        out["model"] = dict(self.model)
        return _listify(out)

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)


def _listify(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _listify(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_listify(v) for v in value]
    return value


def load_train_config(path: str | Path) -> TrainConfig:
    """Read a training YAML file; relative data paths are resolved against its folder."""
    data = read_yaml_mapping(path, "training config", "data, model, loss, ...")
    return TrainConfig.from_dict(data, base_dir=Path(path).resolve().parent)
