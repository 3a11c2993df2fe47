"""Force RMSE against test-box edge, local vs local + LRC, from the benchmark's JSON files.

python benchmarks/results/long_range_learning/plot.py
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

HERE = Path(__file__).parent


def main() -> None:
    results = {}
    for path in sorted(HERE.glob("learning_*.json")):
        results[path.stem.removeprefix("learning_")] = json.loads(path.read_text())
    fig, axes = plt.subplots(1, len(results), figsize=(4.5 * len(results), 3.6), squeeze=False)
    for ax, (case, res) in zip(axes[0], results.items()):
        for name, row in res["force_rmse_by_box"].items():
            sizes = [float(s) for s in row]
            ax.plot(sizes, list(row.values()), "o-", label=name)
        largest = max(float(s) for s in next(iter(res["force_rmse_by_box"].values())))
        for count, err in res["two_level_by_large_cells"].items():
            ax.plot([largest], [err], "x", label=f"two-level, layer only, {count} large boxes")
        for count, err in res.get("two_level_fine_tuned_by_large_cells", {}).items():
            ax.plot([largest], [err], "+", label=f"two-level, then fine-tuned, {count} boxes")
        for count, err in res.get("two_level_lbfgs_by_large_cells", {}).items():
            ax.plot([largest], [err], "*", label=f"two-level, then L-BFGS, {count} boxes")
        ax.set_title(case)
        ax.set_xlabel("test box edge L (Å)")
        ax.set_ylabel("force RMSE (eV/Å)")
        ax.set_yscale("log")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(HERE / "force_rmse_vs_box.png", dpi=120)


if __name__ == "__main__":
    main()
