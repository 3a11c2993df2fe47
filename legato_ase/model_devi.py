"""DeePMD-kit's model_devi table for any frames: how much a committee disagrees, per frame.

Columns (DeePMD-kit's ``model_devi.out`` layout, energy columns in place of the virial ones,
and DeePMD-kit's per-atom energy deviation last)::

    step  max_devi_e  min_devi_e  avg_devi_e  max_devi_f  min_devi_f  avg_devi_f  devi_e

``*_devi_e``: max/min/mean over atoms of std_k(e_k,i), the members' atomic energies (eV);
``*_devi_f``: max/min/mean over atoms of the force deviation (eV/Å, see
:mod:`legato_ase.committee`); ``devi_e``: std_k(E_k) / N (eV/atom).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

COLUMNS = (
    "step",
    "max_devi_e",
    "min_devi_e",
    "avg_devi_e",
    "max_devi_f",
    "min_devi_f",
    "avg_devi_f",
    "devi_e",
)


def model_devi(
    models: Any,
    frames: Iterable[Atoms],
    steps: Sequence[int] | None = None,
    batch_size: int = 8,
    **calculator_kwargs,
) -> np.ndarray:
    """The model deviation of a committee on every frame.

    Args:
        models: a committee ``LegatoCalculator`` or what it takes (a list of model files,
            bundled names or model objects: at least two).
        frames: ASE Atoms (e.g. ``ase.io.read("md.traj", ":")``).
        steps: the step number of each frame (default 0, 1, 2, ...).
        batch_size: frames evaluated together in one model call.
        **calculator_kwargs: for a list of models, passed to LegatoCalculator (device,
            dtype, ...).

    Returns:
        [n_frames, 8] array with the columns of :data:`COLUMNS`.
    """
    calc = _committee(models, calculator_kwargs)
    frames = list(frames)
    steps = np.arange(len(frames)) if steps is None else np.asarray(steps)
    if len(steps) != len(frames):
        raise ValueError(f"{len(steps)} step numbers for {len(frames)} frames")
    if batch_size < 1:
        raise ValueError(f"batch_size must be ≥ 1, got {batch_size}")
    rows = []
    for start in range(0, len(frames), batch_size):
        for res in calc.calculate_batch(frames[start : start + batch_size]):
            rows.append(_row(res))
    table = np.zeros((len(frames), len(COLUMNS)))
    table[:, 0] = steps
    if rows:
        table[:, 1:] = rows
    return table


def _committee(models: Any, kwargs: dict) -> Any:
    from .calculator import LegatoCalculator

    if isinstance(models, LegatoCalculator):
        if kwargs:
            raise TypeError(f"calculator settings {sorted(kwargs)} given with a ready calculator")
        calc = models
    else:
        calc = LegatoCalculator(models, **kwargs)
    if len(calc.members) < 2:
        raise ValueError(
            "model deviation needs a committee of at least two models (trained with different "
            f"seeds); got {len(calc.members)}"
        )
    return calc


def _row(res: dict[str, Any]) -> list[float]:
    e_dev, f_dev = res["energies_deviation"], res["force_deviation"]
    if len(f_dev) == 0:
        return [0.0] * 6 + [res["energy_deviation"]]
    stats = [e_dev.max(), e_dev.min(), e_dev.mean(), f_dev.max(), f_dev.min(), f_dev.mean()]
    return [float(v) for v in stats] + [res["energy_deviation"]]


def write_model_devi(path: str | os.PathLike, table: np.ndarray) -> None:
    """Write the table in DeePMD-kit's text layout (a ``#`` header, one row per frame)."""
    header = f"{COLUMNS[0]:>10}" + "".join(f"{c:>19}" for c in COLUMNS[1:])
    fmt = ["%12d"] + ["%19.6e"] * (len(COLUMNS) - 1)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    np.savetxt(path, table, fmt=fmt, delimiter="", header=header)


def read_model_devi(path: str | os.PathLike) -> np.ndarray:
    """Read a table written by :func:`write_model_devi` (or DeePMD-kit's with the same columns)."""
    return np.atleast_2d(np.loadtxt(path, ndmin=2))
