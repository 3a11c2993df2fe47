"""Labelled frames for evaluation (``legato test``, sharpness) outside a training run."""

from __future__ import annotations

from collections.abc import Sequence

from .config import DataConfig
from .dataset import Frame, make_frames, read_files, resolve_paths


def load_frames(
    paths: Sequence[str],
    species: Sequence[str],
    r_max: float,
    energy_key: str = "energy",
    forces_key: str = "forces",
    stress_key: str = "stress",
    stride: int = 1,
) -> list[Frame]:
    """Read labelled frames (globs and ``bundled:`` allowed) as graphs for a model."""
    cfg = DataConfig(
        train=tuple(paths),
        energy_key=energy_key,
        forces_key=forces_key,
        stress_key=stress_key,
        stride=stride,
    )
    groups = read_files(resolve_paths(cfg.train), stride)
    return make_frames(groups, species, r_max, cfg)
