"""Log-log plot of time to failure against system size, one colour per model."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .survival import ScalingFit, summarize


def plot_scaling(
    records_by_label: Mapping[str, Sequence[Mapping[str, Any]]],
    fits: Mapping[str, ScalingFit] | None = None,
    ax: Any = None,
):
    """Replicas (filled: failed, open: censored), per-size restricted means, fitted N^(−β) lines.

    Args:
        records_by_label: campaign records for each model label.
        fits: optional fitted scaling law for each label (drawn as a line, β in the legend).
        ax: a matplotlib Axes to draw on; a new figure when None.

    Returns:
        The matplotlib Axes.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5.0, 4.0))
    fits = fits or {}
    for colour, (label, records) in zip(_colours(), records_by_label.items(), strict=False):
        n = np.array([r["n_atoms"] for r in records], dtype=float)
        t = np.array([r["time_ps"] for r in records], dtype=float)
        f = np.array([bool(r["failed"]) for r in records])
        ax.scatter(n[f], t[f], s=12, color=colour, alpha=0.5)
        ax.scatter(n[~f], t[~f], s=12, facecolors="none", edgecolors=colour, alpha=0.5)
        rows = summarize(records)
        sizes = np.array([row["n_atoms"] for row in rows], dtype=float)
        means = [row["restricted_mean_t_ps"] for row in rows]
        text = label
        if label in fits:
            fit = fits[label]
            grid = np.geomspace(sizes.min(), sizes.max(), 50)
            ax.plot(grid, fit.mean_time(grid), color=colour)
            text += f": β = {fit.beta:.2f} [{fit.beta_low:.2f}, {fit.beta_high:.2f}]"
        ax.plot(sizes, means, "s", color=colour, label=text)
    ax.set_xscale("log")
    ax.set_yscale("log")
    _size_ticks(ax, records_by_label)
    ax.set_xlabel("atoms N")
    ax.set_ylabel("time to failure (ps)")
    ax.set_title("time to failure (dots: replicas, open: censored; squares: means)", fontsize=9)
    ax.legend(fontsize="small")
    return ax


def _size_ticks(ax, records_by_label) -> None:
    """Label the x axis at the simulated sizes (log-axis default labels overlap)."""
    from matplotlib.ticker import FixedLocator, NullLocator, ScalarFormatter

    sizes = sorted({int(r["n_atoms"]) for recs in records_by_label.values() for r in recs})
    if sizes:
        ax.xaxis.set_major_locator(FixedLocator(sizes))
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_locator(NullLocator())


def _colours():
    return ["tab:red", "tab:blue", "tab:green", "tab:orange", "tab:purple", "tab:brown"]
