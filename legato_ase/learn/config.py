"""Settings of ``legato learn``: one frozen dataclass per YAML section, unknown keys rejected.

Every key, its default and its meaning are listed in docs/learning.md.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..config import build_sections, check_keys, read_yaml_mapping
from ..stability.criteria import FailureCriteria
from ..train.config import TrainConfig, _listify

_THERMOSTATS = ("langevin", "nose-hoover")
_PICKS = ("diverse", "highest", "random")


def _tuple(value: Any) -> tuple:
    if value is None:
        return ()
    return (value,) if isinstance(value, (str, int, float)) else tuple(value)


@dataclasses.dataclass(frozen=True, kw_only=True)
class CommitteeConfig:
    """How many models, and how each iteration starts them."""

    size: int = 4
    warm_start: bool = True

    def __post_init__(self) -> None:
        if self.size < 2:
            raise ValueError(f"committee.size must be at least 2 models, got {self.size}.")


@dataclasses.dataclass(frozen=True, kw_only=True)
class ExploreConfig:
    """The MD runs with the committee: every structure × size × T × p × time step."""

    structures: tuple[str, ...] = ()
    replicate: tuple[tuple[int, int, int], ...] = ((1, 1, 1),)
    temperatures_K: tuple[float, ...] = (300.0,)
    pressures_GPa: tuple[float, ...] = ()
    timesteps_fs: tuple[float, ...] = (1.0,)
    steps: int = 1000
    record_every: int = 10
    thermostat: str = "langevin"
    friction_per_fs: float = 0.01
    tdamp_fs: float = 100.0
    pdamp_fs: float = 1000.0
    hydrogen_mass: float | None = None
    criteria: FailureCriteria = dataclasses.field(default_factory=FailureCriteria)

    def __post_init__(self) -> None:
        for name in ("structures", "temperatures_K", "pressures_GPa", "timesteps_fs"):
            object.__setattr__(self, name, _tuple(getattr(self, name)))
        if not self.structures:
            raise ValueError("explore.structures is empty: give start structure files.")
        replicate = tuple(tuple(int(n) for n in r) for r in self.replicate)
        if not replicate or any(len(r) != 3 or min(r) < 1 for r in replicate):
            raise ValueError(
                f"explore.replicate must be a list of [a, b, c] positive integers, "
                f"got {self.replicate}."
            )
        object.__setattr__(self, "replicate", replicate)
        if not self.temperatures_K or min(self.temperatures_K) <= 0:
            raise ValueError("explore.temperatures_K must list positive temperatures (K).")
        if not self.timesteps_fs or min(self.timesteps_fs) <= 0:
            raise ValueError("explore.timesteps_fs must list positive time steps (fs).")
        if self.thermostat not in _THERMOSTATS:
            raise ValueError(
                f"explore.thermostat must be one of {list(_THERMOSTATS)}, got '{self.thermostat}'."
            )
        if self.record_every < 1 or self.steps < self.record_every:
            raise ValueError(
                f"explore.record_every ({self.record_every}) must be >= 1 and <= explore.steps "
                f"({self.steps})."
            )


@dataclasses.dataclass(frozen=True, kw_only=True)
class SelectConfig:
    """DeePMD's trust levels on the committee's max force deviation (eV/Å), and the cap."""

    trust_lo: float = 0.05
    trust_hi: float = 0.30
    max_candidates: int = 50
    pick: str = "diverse"

    def __post_init__(self) -> None:
        if not 0 <= self.trust_lo < self.trust_hi:
            raise ValueError(
                f"select needs 0 <= trust_lo < trust_hi, got {self.trust_lo} and {self.trust_hi}."
            )
        if self.max_candidates < 1:
            raise ValueError(f"select.max_candidates must be >= 1, got {self.max_candidates}.")
        if self.pick not in _PICKS:
            raise ValueError(f"select.pick must be one of {list(_PICKS)}, got '{self.pick}'.")


@dataclasses.dataclass(frozen=True, kw_only=True)
class LabelConfig:
    """The reference method (see ``legato_ase.learn.METHODS``) and its worker processes."""

    method: str = "gfn1-xtb"
    workers: int = 1

    def __post_init__(self) -> None:
        from .label import METHODS

        if self.method.lower() not in METHODS:
            raise ValueError(f"label.method must be one of {sorted(METHODS)}, got '{self.method}'.")
        if self.workers < 1:
            raise ValueError(f"label.workers must be >= 1, got {self.workers}.")


@dataclasses.dataclass(frozen=True, kw_only=True)
class LearnConfig:
    """A whole concurrent-learning run (the learn YAML file)."""

    data: tuple[str, ...]
    train: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    committee: CommitteeConfig = dataclasses.field(default_factory=CommitteeConfig)
    explore: ExploreConfig
    select: SelectConfig = dataclasses.field(default_factory=SelectConfig)
    label: LabelConfig = dataclasses.field(default_factory=LabelConfig)
    max_iterations: int = 5
    converge_fraction: float = 0.01
    output_dir: str = "legato-learn"
    seed: int = 0
    device: str = "cpu"
    base_dir: str = "."

    def __post_init__(self) -> None:
        object.__setattr__(self, "data", _tuple(self.data))
        if not self.data:
            raise ValueError("'data' is empty: give the initial labelled files (globs allowed).")
        if self.max_iterations < 1:
            raise ValueError(f"max_iterations must be >= 1, got {self.max_iterations}.")
        if not 0 < self.converge_fraction < 1:
            raise ValueError(f"converge_fraction must lie in (0, 1), got {self.converge_fraction}.")
        self.train_config(["placeholder.extxyz"], "placeholder", 0)  # the train keys, checked now

    def train_config(
        self, files: list[str], output_dir: str, seed: int, init_from: str | None = None
    ) -> TrainConfig:
        """The ``legato train`` config of one committee member.

        ``init_from`` (warm start) continues from that model file: its network and
        normalisation are kept, so only ``long_range`` of the ``model`` section is passed on.
        """
        section = dict(self.train)
        if init_from is not None:
            model = dict(section.get("model") or {})
            section["model"] = {k: v for k, v in model.items() if k == "long_range"}
            section["init_from"] = init_from
        for key in ("output_dir", "seed"):
            if key in section:
                raise ValueError(
                    f"train.{key} is set by legato learn; give it at the top level instead."
                )
        data = dict(section.get("data") or {})
        if "train" in data:
            raise ValueError("train.data.train is set by legato learn: list the files in 'data'.")
        if data.get("stride", 1) != 1:
            raise ValueError(
                "train.data.stride would also thin the newly labelled frames; thin the initial "
                "data instead (write every n-th frame to a file and list that in 'data')."
            )
        section["data"] = {**data, "train": list(files)}
        section.setdefault("device", self.device)
        return TrainConfig.from_dict(
            {**section, "output_dir": output_dir, "seed": seed}, base_dir=self.base_dir
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain data (lists, dicts) that ``from_dict`` reads back; ``base_dir`` left out."""
        out = dataclasses.asdict(self)
        out.pop("base_dir")
        return _listify(out)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], base_dir: str | Path = ".") -> LearnConfig:
        """Build from the parsed YAML, rejecting unknown keys with a suggestion."""
        data = dict(data)
        names = [f.name for f in dataclasses.fields(cls) if f.name != "base_dir"]
        check_keys(data, names, "the learn config")
        for key in ("data", "explore"):
            if key not in data:
                raise ValueError(f"the learn config needs a '{key}' section (docs/learning.md).")
        sections = {
            "committee": CommitteeConfig,
            "explore": ExploreConfig,
            "select": SelectConfig,
            "label": LabelConfig,
        }
        explore = data["explore"]
        if isinstance(explore, Mapping) and "criteria" in explore:
            criteria = FailureCriteria.from_dict(explore["criteria"] or {})
            data["explore"] = {**explore, "criteria": criteria}
        build_sections(data, sections)
        if not isinstance(data.get("train", {}), Mapping):
            raise ValueError("section 'train' must be a mapping (a legato train config).")
        return cls(**data, base_dir=str(base_dir))


def load_learn_config(path: str | Path) -> LearnConfig:
    """Read a learn YAML file; relative paths are resolved against its folder."""
    data = read_yaml_mapping(path, "learn config", "data, train, explore, ...")
    return LearnConfig.from_dict(data, base_dir=Path(path).resolve().parent)
