"""Plots of time to failure: against system size (log-log), and survival curves at one size."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .survival import ScalingFit, log_rank_p, summarize, survival_curve


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


def plot_survival(
    records_by_label: Mapping[str, Sequence[Mapping[str, Any]]],
    n_atoms: int | None = None,
    ax: Any = None,
):
    """Kaplan-Meier curves, P(still stable at t), of several models at one size.

    Args:
        records_by_label: campaign records for each model label (any sizes).
        n_atoms: the size to draw; the smallest size in the records when None.
        ax: a matplotlib Axes to draw on; a new figure when None.

    Returns:
        The matplotlib Axes. The legend gives each model's failures and, for every model
        after the first, the log-rank p-value against the first.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5.0, 4.0))
    if n_atoms is None:
        n_atoms = min(int(r["n_atoms"]) for recs in records_by_label.values() for r in recs)
    at_size = {
        label: [r for r in recs if int(r["n_atoms"]) == n_atoms]
        for label, recs in records_by_label.items()
    }
    at_size = {label: recs for label, recs in at_size.items() if recs}
    if not at_size:
        raise ValueError(f"no replicas with {n_atoms} atoms in the records")
    first = next(iter(at_size.values()))
    colours = dict(zip(records_by_label, _colours(), strict=False))  # the same in every panel
    for k, (label, recs) in enumerate(at_size.items()):
        colour = colours.get(label)
        t, s = survival_curve(recs)
        text = f"{label} ({sum(bool(r['failed']) for r in recs)}/{len(recs)} failed"
        text += f", log-rank p = {log_rank_p(first, recs):.2f})" if k else ")"
        ax.step(np.append(t, max(r["time_ps"] for r in recs)), np.append(s, s[-1]),
                where="post", color=colour, label=text)  # fmt: skip
    ax.set_ylim(0.0, 1.05)
    ax.set_xlabel("time (ps)")
    ax.set_ylabel("replicas still stable (Kaplan-Meier)")
    ax.set_title(f"{n_atoms} atoms")
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
