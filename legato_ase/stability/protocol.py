"""MD protocols for time-to-failure runs: the paper's text and the authors' code.

Ibayashi et al., ISC 2023, arXiv:2303.08169.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from ..config import check_keys

DEUTERIUM_MASS = 2.014


@dataclasses.dataclass(frozen=True, kw_only=True)
class MDProtocol:
    """How one replica is run.

    Attributes:
        temperature_K: target temperature of the thermostat and centre of the failure window.
        timestep_fs: MD time step.
        nvt_steps: Nose-Hoover steps before switching to NVE (velocity Verlet);
            ``None`` keeps the thermostat on for the whole run.
        tdamp_steps: Nose-Hoover damping time in time steps (LAMMPS ``Tdamp``, 100 dt).
        hydrogen_mass: mass in amu given to H (2.014 = deuterium); ``None`` keeps H's own mass.
        max_steps: step cap; a replica still stable there is right-censored.
        check_every: failure criteria are checked every this many steps (a thermo line).
    """

    temperature_K: float = 200.0
    timestep_fs: float = 2.0
    nvt_steps: int | None = 1000
    tdamp_steps: float = 100.0
    hydrogen_mass: float | None = None
    max_steps: int = 1_000_000
    check_every: int = 10

    def __post_init__(self) -> None:
        _positive(self.temperature_K, "temperature_K", "K")
        _positive(self.timestep_fs, "timestep_fs", "fs")
        _positive(self.tdamp_steps, "tdamp_steps", "steps")
        if self.nvt_steps is not None and self.nvt_steps < 0:
            raise ValueError(
                f"nvt_steps must be >= 0 or None (NVT throughout), got {self.nvt_steps}."
            )
        if self.hydrogen_mass is not None:
            _positive(self.hydrogen_mass, "hydrogen_mass", "amu")
        if int(self.check_every) < 1:
            raise ValueError(f"check_every must be at least 1 step, got {self.check_every}.")
        if int(self.max_steps) < int(self.check_every):
            raise ValueError(
                f"max_steps ({self.max_steps}) must be at least check_every ({self.check_every})."
            )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MDProtocol:
        """Build from a mapping; unknown keys are rejected with a suggestion."""
        check_keys(data, [f.name for f in dataclasses.fields(cls)], "the MD protocol")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> MDProtocol:
        check_keys(changes, [f.name for f in dataclasses.fields(self)], "the MD protocol")
        return dataclasses.replace(self, **changes)


def _positive(value: float, name: str, unit: str) -> None:
    if not value > 0:
        raise ValueError(f"{name} must be positive ({unit}), got {value}.")


# Paper text: thermalise at 200 K for 1000 steps, then NVE, dt = 2 fs.
# Authors' code: Nose-Hoover at 200 K throughout, dt = 2.5 fs, deuterium mass for H.
PROTOCOLS: dict[str, MDProtocol] = {
    "paper": MDProtocol(timestep_fs=2.0, nvt_steps=1000),
    "authors": MDProtocol(timestep_fs=2.5, nvt_steps=None, hydrogen_mass=DEUTERIUM_MASS),
}


def resolve_protocol(protocol: str | MDProtocol | Mapping[str, Any], **changes: Any) -> MDProtocol:
    """A protocol from a preset name (``"paper"``, ``"authors"``), a mapping or an MDProtocol."""
    if isinstance(protocol, str):
        if protocol not in PROTOCOLS:
            raise ValueError(
                f"unknown MD protocol '{protocol}'; choose one of {sorted(PROTOCOLS)}."
            )
        protocol = PROTOCOLS[protocol]
    elif isinstance(protocol, Mapping):
        protocol = MDProtocol.from_dict(protocol)
    elif not isinstance(protocol, MDProtocol):
        raise TypeError(
            "protocol must be a preset name, a mapping or an MDProtocol, "
            f"got {type(protocol).__name__}"
        )
    changes = {k: v for k, v in changes.items() if v is not None}
    return protocol.replace(**changes) if changes else protocol
