"""The per-iteration table (``learning.csv``) and its plot (``learning.png``)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from .config import LearnConfig
from .state import Iteration

COLUMNS = (
    "iteration", "data_files", "accurate_fraction", "candidate_fraction", "failed_fraction",
    "selected", "labelled", "label_failed", "runs", "runs_failed", "mean_run_ps",
    "val_energy_mae_meV_atom", "val_forces_mae_meV_A", "train_s", "explore_s", "select_s",
    "label_s", "converged",
)  # fmt: skip


def learning_row(cfg: LearnConfig, it: Iteration) -> dict[str, Any]:
    """One iteration's row of the table (empty cells for stages not run)."""
    results = it.state["results"]
    train, explore = results.get("train", {}), results.get("explore", {})
    select, labelled = results.get("select", {}), results.get("label", {})
    row: dict[str, Any] = {"iteration": it.number, "data_files": len(train.get("files", []))}
    for key in ("accurate_fraction", "candidate_fraction", "failed_fraction", "selected"):
        row[key] = select.get(key)
    row["labelled"], row["label_failed"] = labelled.get("labelled"), labelled.get("failed")
    for key in ("runs", "runs_failed", "mean_run_ps"):
        row[key] = explore.get(key)
    energy, forces = train.get("val_energy_per_atom_mae"), train.get("val_forces_mae")
    row["val_energy_mae_meV_atom"] = None if energy is None else 1000 * energy
    row["val_forces_mae_meV_A"] = None if forces is None else 1000 * forces
    for stage in ("train", "explore", "select", "label"):
        row[f"{stage}_s"] = it.state["seconds"].get(stage)
    row["converged"] = select.get("converged")
    return row


def write_report(root: Path, rows: list[dict[str, Any]]) -> None:
    """Write ``learning.csv`` and ``learning.png`` into the run folder."""
    with open(root / "learning.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if row.get(k) is None else row[k] for k in COLUMNS})
    plot_learning(rows, root / "learning.png")


def plot_learning(rows: list[dict[str, Any]], path: str | Path) -> None:
    """Fractions, validation force error and time per stage against the iteration."""
    from matplotlib.figure import Figure

    x = [r["iteration"] for r in rows]
    fig = Figure(figsize=(13, 3.6))
    axes = fig.subplots(1, 3)
    for key, color in (("accurate", "C2"), ("candidate", "C1"), ("failed", "C3")):
        values = [r.get(f"{key}_fraction") for r in rows]
        axes[0].plot(x, [float("nan") if v is None else v for v in values], "o-", c=color,
                     label=key)  # fmt: skip
    axes[0].set(xlabel="iteration", ylabel="fraction of explored frames", ylim=(-0.02, 1.02))
    axes[0].legend()
    forces = [r.get("val_forces_mae_meV_A") for r in rows]
    axes[1].plot(x, [float("nan") if v is None else v for v in forces], "o-")
    axes[1].set(xlabel="iteration", ylabel="validation force MAE (meV/Å)")
    bottom = [0.0] * len(rows)
    for stage in ("train", "explore", "select", "label"):
        height = [r.get(f"{stage}_s") or 0.0 for r in rows]
        axes[2].bar(x, height, bottom=bottom, label=stage)
        bottom = [b + h for b, h in zip(bottom, height)]
    axes[2].set(xlabel="iteration", ylabel="time (s)")
    axes[2].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
