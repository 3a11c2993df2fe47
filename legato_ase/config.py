"""Frozen model settings, named presets, and key checking with suggestions."""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def check_keys(given: Mapping[str, Any], valid: list[str], where: str) -> None:
    """Raise a ValueError naming every unknown key with its closest valid spelling."""
    unknown = [k for k in given if k not in valid]
    if not unknown:
        return
    lines = []
    for key in unknown:
        close = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        lines.append(f"unknown key '{key}' in {where}{hint}")
    raise ValueError("; ".join(lines) + f". Valid keys: {', '.join(sorted(valid))}.")


@dataclasses.dataclass(frozen=True, kw_only=True)
class LongRangeConfig:
    """Settings of the long-range convolution layer (docs/long_range.md).

    Attributes:
        channels: number of latent charge channels C, each with its own kernel.
        sigma: smearing length in Å: the kernel is filtered by exp(−k²σ²), i.e. latent
            charges are Gaussians of standard deviation σ/√2 (pair interaction erf(r/2σ)/r
            for a Coulomb channel). Interactions shorter than about 2σ belong to Allegro.
        grid_spacing: upper bound on the grid spacing along each cell vector, Å. Must be
            at most σ/√2 (the width of the spreading Gaussian).
        truncation: radius of the spreading stencil in units of σ/√2; together with
            grid_spacing this sets accuracy and cost (docs/long_range.md).
        screening: initial inverse screening lengths μ_c in 1/Å, one per channel
            (0 is Coulomb 4π/k²); default 0, 0.1, 0.3, 0.9, ...
        trainable_screening: learn μ_c.
        head_mlp: hidden widths of the per-atom energy head on the potentials φ_i.
        exclude_short_range: range separation: the layer leaves the part of its kernel
            inside the model's r_max to Allegro, K(r) → K(r)·(1 − s(r/r_max)) with the C²
            switch s(x) = 1 − 10x³ + 15x⁴ − 6x⁵ (s = 1 at 0, 0 from r_max on), by
            subtracting the near field over the model's own neighbour list. The layer's
            amplitudes and screenings are then set by the interactions beyond r_max alone.
            False (the default; older model files) keeps the full kernel.
    """

    channels: int = 4
    sigma: float = 1.0
    grid_spacing: float = 0.7
    truncation: float = 5.5
    screening: tuple[float, ...] | None = None
    trainable_screening: bool = True
    head_mlp: tuple[int, ...] = (16,)
    exclude_short_range: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "head_mlp", tuple(int(w) for w in self.head_mlp))
        if not isinstance(self.exclude_short_range, bool):
            raise TypeError(
                "long_range.exclude_short_range must be true or false, got "
                f"{self.exclude_short_range!r}."
            )
        if self.screening is None:
            default = [0.0] + [round(0.1 * 3.0**c, 6) for c in range(self.channels - 1)]
            object.__setattr__(self, "screening", tuple(default[: max(self.channels, 0)]))
        object.__setattr__(self, "screening", tuple(float(m) for m in self.screening))
        if self.channels < 1:
            raise ValueError(f"long_range.channels must be at least 1, got {self.channels}.")
        if not self.sigma > 0:
            raise ValueError(f"long_range.sigma must be a positive length (Å), got {self.sigma}.")
        width = self.sigma / 2**0.5
        if not 0 < self.grid_spacing <= width + 1e-12:
            raise ValueError(
                f"long_range.grid_spacing = {self.grid_spacing} Å is too coarse for the "
                f"spreading Gaussian of width sigma/sqrt(2) = {width:.4g} Å: use a spacing in "
                f"(0, {width:.4g}] Å, or a larger sigma."
            )
        if self.truncation < 3.0:
            raise ValueError(
                f"long_range.truncation = {self.truncation} cuts the spreading Gaussian at "
                "fewer than 3 widths; use at least 3 (default 5.5)."
            )
        if len(self.screening) != self.channels:
            raise ValueError(
                f"long_range.screening has {len(self.screening)} values but there are "
                f"{self.channels} channels; give one inverse length (1/Å) per channel."
            )
        if any(m < 0 for m in self.screening):
            raise ValueError(f"long_range.screening must be ≥ 0 (1/Å), got {self.screening}.")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LongRangeConfig:
        """Build from a mapping, rejecting unknown keys with a suggestion."""
        if not isinstance(data, Mapping):
            raise TypeError(
                f"long_range must be a mapping of settings (or null), got {type(data).__name__}"
            )
        check_keys(data, [f.name for f in dataclasses.fields(cls)], "the long_range config")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return {
            k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()
        }


@dataclasses.dataclass(frozen=True, kw_only=True)
class ModelConfig:
    """Hyperparameters of the Allegro network (Musaelian et al., Nat. Commun. 14, 579 (2023)).

    Attributes:
        r_max: global cutoff radius in Å; the neighbour list uses it.
        pair_r_max: optional per species-pair cutoffs, e.g. ``{"H-H": 4.5}`` (≤ r_max).
        num_bessel: number of Bessel radial basis functions.
        trainable_bessel: learn the Bessel frequencies.
        cutoff_p: exponent p of the polynomial envelope.
        l_max: largest rotation order of the tensor features (0–3).
        parity: keep both parities (full O(3)); False keeps only natural-parity irreps.
        n_layers: number of Allegro tensor-product layers.
        n_scalar: width of the scalar latent track.
        n_tensor: number of tensor channels.
        two_body_mlp: hidden widths of the two-body MLP (its output has n_scalar).
        latent_mlp: hidden widths of each layer's latent MLP (output n_scalar).
        edge_energy_mlp: hidden widths of the per-edge energy readout (output 1).
        resnet_alpha: initial ResNet latent-update ratio α (paper: 0.5).
        avg_num_neighbors: normalisation of environment sums and of Σ_j E_ij.
        energy_shift: per-species energy shift μ_Z in eV (set from data by training).
        energy_scale: per-species energy scale σ_Z in eV (set from data by training).
        long_range: None (a strictly local model) or a :class:`LongRangeConfig`; a mapping
            is converted, ``{}`` gives the documented defaults.
    """

    r_max: float = 5.0
    pair_r_max: dict[str, float] = dataclasses.field(default_factory=dict)
    num_bessel: int = 8
    trainable_bessel: bool = True
    cutoff_p: int = 6
    l_max: int = 1
    parity: bool = True
    n_layers: int = 2
    n_scalar: int = 64
    n_tensor: int = 32
    two_body_mlp: tuple[int, ...] = (32, 64)
    latent_mlp: tuple[int, ...] = ()
    edge_energy_mlp: tuple[int, ...] = (32,)
    resnet_alpha: float = 0.5
    avg_num_neighbors: float = 20.0
    energy_shift: dict[str, float] = dataclasses.field(default_factory=dict)
    energy_scale: dict[str, float] = dataclasses.field(default_factory=dict)
    long_range: LongRangeConfig | None = None

    def __post_init__(self) -> None:
        if self.long_range is not None and not isinstance(self.long_range, LongRangeConfig):
            object.__setattr__(self, "long_range", LongRangeConfig.from_dict(self.long_range))
        for name in ("two_body_mlp", "latent_mlp", "edge_energy_mlp"):
            object.__setattr__(self, name, tuple(int(w) for w in getattr(self, name)))
        if not 0 <= self.l_max <= 3:
            raise ValueError(f"l_max must be between 0 and 3, got {self.l_max}.")
        if self.n_layers < 1:
            raise ValueError(f"n_layers must be at least 1, got {self.n_layers}.")
        if self.r_max <= 0:
            raise ValueError(f"r_max must be positive (Å), got {self.r_max}.")
        if self.avg_num_neighbors <= 0:
            raise ValueError(f"avg_num_neighbors must be positive, got {self.avg_num_neighbors}.")
        for pair, r in self.pair_r_max.items():
            if not 0 < r <= self.r_max:
                raise ValueError(
                    f"pair_r_max['{pair}'] = {r} must lie in (0, r_max = {self.r_max}] Å."
                )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelConfig:
        """Build a config from a mapping, rejecting unknown keys with a suggestion."""
        check_keys(data, [f.name for f in dataclasses.fields(cls)], "the model config")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python dictionary (lists instead of tuples), safe for weights_only loading."""
        out = dataclasses.asdict(self)
        for key, value in out.items():
            if isinstance(value, tuple):
                out[key] = list(value)
        if self.long_range is not None:
            out["long_range"] = self.long_range.to_dict()
        return out

    def replace(self, **changes: Any) -> ModelConfig:
        """A copy with some fields changed (unknown names rejected with a suggestion)."""
        check_keys(changes, [f.name for f in dataclasses.fields(self)], "the model config")
        return dataclasses.replace(self, **changes)


# The paper's ammonia model (allegro 0.2 / nequip 0.5.5; Ibayashi et al., ISC 2023,
# arXiv:2303.08169).
_LEGATO_PAPER = ModelConfig(
    r_max=6.0,
    num_bessel=8,
    trainable_bessel=True,
    cutoff_p=7,
    l_max=1,
    parity=True,
    n_layers=3,
    n_scalar=128,
    n_tensor=32,
    two_body_mlp=(32, 64),
    latent_mlp=(),
    edge_energy_mlp=(32,),
    resnet_alpha=0.5,
    avg_num_neighbors=94.0,
)

# A faster default: the settings upstream compares at (l_max 1, 2 layers, 64/32, r_max 5).
_DEFAULT = ModelConfig()

PRESETS: dict[str, ModelConfig] = {"legato-paper": _LEGATO_PAPER, "default": _DEFAULT}


def resolve_config(preset_or_config: str | ModelConfig | Mapping[str, Any]) -> ModelConfig:
    """Turn a preset name, a mapping or a ModelConfig into a ModelConfig."""
    if isinstance(preset_or_config, ModelConfig):
        return preset_or_config
    if isinstance(preset_or_config, str):
        if preset_or_config not in PRESETS:
            close = difflib.get_close_matches(preset_or_config, list(PRESETS), n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise ValueError(
                f"unknown preset '{preset_or_config}'; choose one of {sorted(PRESETS)}.{hint}"
            )
        return PRESETS[preset_or_config]
    if isinstance(preset_or_config, Mapping):
        data = dict(preset_or_config)
        base = data.pop("preset", None)
        if base is not None:
            return resolve_config(base).replace(**data)
        return ModelConfig.from_dict(data)
    raise TypeError(
        "expected a preset name, a mapping of settings or a ModelConfig, "
        f"got {type(preset_or_config).__name__}"
    )


def read_yaml_mapping(path: str | Path, what: str, sections: str) -> dict[str, Any]:
    """The top-level mapping of a YAML settings file, with clear errors for a missing file
    or a file that holds something else (``what``: "training config"; ``sections``: the
    expected section names, for the message)."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} '{path}' does not exist.")
    with open(path) as handle:
        data = yaml.safe_load(handle) or {}
    if not isinstance(data, Mapping):
        raise ValueError(f"{path} must hold a mapping of sections ({sections}).")
    return dict(data)


def build_sections(data: dict[str, Any], sections: Mapping[str, type]) -> dict[str, Any]:
    """Replace each section present in ``data`` by its dataclass, rejecting unknown keys."""
    for key, cls in sections.items():
        if key not in data:
            continue
        value = data[key]
        if not isinstance(value, Mapping):
            raise ValueError(
                f"section '{key}' must be a mapping of keys, got {type(value).__name__}."
            )
        check_keys(value, [f.name for f in dataclasses.fields(cls)], f"section '{key}'")
        data[key] = cls(**value)
    return data
