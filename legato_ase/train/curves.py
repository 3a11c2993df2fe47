"""Learning curves: one CSV row per epoch, and a plot of it."""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

COLUMNS = (
    "epoch",
    "lr",
    "time_s",
    "train_loss",
    "train_energy_per_atom_rmse",
    "train_forces_rmse",
    "val_loss",
    "val_energy_per_atom_mae",
    "val_energy_per_atom_rmse",
    "val_forces_mae",
    "val_forces_rmse",
    "val_stress_rmse",
)


def write_csv(history: Sequence[Mapping[str, float]], path: str | Path) -> None:
    """Write the whole history (rewritten each epoch, atomically, so it survives a resume)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for row in history:
            writer.writerow({k: row.get(k, "") for k in COLUMNS})
    os.replace(tmp, path)


def read_csv(path: str | Path) -> list[dict[str, float]]:
    """The rows of a learning-curve CSV as floats (empty cells dropped)."""
    with open(path) as handle:
        return [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(handle)]


def plot_curves(histories: Mapping[str, Sequence[Mapping[str, float]]], path: str | Path) -> None:
    """Loss and force errors against epoch, one line per named run (meV/Å for forces)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_f) = plt.subplots(1, 2, figsize=(9, 3.5))
    for name, history in histories.items():
        epochs = [row["epoch"] for row in history]
        ax_loss.semilogy(
            epochs, [row["train_loss"] for row in history], "--", label=f"{name} train"
        )
        ax_loss.semilogy(epochs, [row["val_loss"] for row in history], label=f"{name} val")
        ax_f.plot(
            epochs, [1000 * row["val_forces_mae"] for row in history], label=f"{name} val MAE"
        )
    ax_loss.set(xlabel="epoch", ylabel="loss")
    ax_f.set(xlabel="epoch", ylabel="force error (meV/Å)")
    ax_f.axhline(43.4, color="grey", lw=0.8, ls=":")
    for ax in (ax_loss, ax_f):
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
