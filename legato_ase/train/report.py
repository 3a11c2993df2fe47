"""Human-readable tables of error metrics (meV units)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

_ROWS = (
    ("energy per atom", "energy_per_atom", "meV/atom", 1e3),
    ("forces", "forces", "meV/Å", 1e3),
    ("stress", "stress", "meV/Å³", 1e3),
)


def metrics_table(metrics: Mapping[str, float], species: Sequence[str] = ()) -> str:
    """MAE and RMSE of energies, forces (overall and per species) and stress."""
    rows = list(_ROWS[:2])
    rows += [(f"forces on {s}", f"forces_{s}", "meV/Å", 1e3) for s in species]
    rows.append(_ROWS[2])
    lines = [f"{'quantity':<18} {'MAE':>10} {'RMSE':>10}  unit"]
    for label, key, unit, factor in rows:
        if f"{key}_mae" in metrics:
            mae, rmse = metrics[f"{key}_mae"] * factor, metrics[f"{key}_rmse"] * factor
            lines.append(f"{label:<18} {mae:>10.3f} {rmse:>10.3f}  {unit}")
    return "\n".join(lines)
