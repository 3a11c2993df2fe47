"""Per-seed table and plot: each model's and GFN1-xTB's time to failure under one protocol.

    python benchmarks/results/robust_models/v2_ft_eval/reference_table.py \
        benchmarks/results/robust_models/v2_ft_eval

reads the ``*_dt2.5fs.jsonl`` files there (the bundled models' runs and GFN1-xTB's, made with
``legato stability run MODEL|gfn1-xtb ...``, see README) and writes
``reference_vs_models_dt2.5fs.png``.
"""

import json
import sys
from collections import defaultdict
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt

folder = Path(sys.argv[1])
runs = defaultdict(dict)  # (condition, seed) -> {method: record}
for path in sorted(folder.glob("*_dt2.5fs.jsonl")):
    for line in path.open():
        r = json.loads(line)
        for cond in ("200K", "400K", "crystal150K"):
            if r["label"].endswith(cond):
                method, condition = r["label"][: -len(cond) - 1], cond
        runs[(condition, r["seed"])][method] = r
methods = ["gfn1-xtb", "nh3-legato", "nh3-allegro"]
print("| run | seed | " + " | ".join(methods) + " |")
print("|---|---|" + "---|" * len(methods))
for (cond, seed), by in sorted(runs.items(), key=lambda kv: (kv[0][0], list(runs).index(kv[0]))):
    cells = []
    for m in methods:
        r = by.get(m)
        if r is None:
            cells.append("–")
            continue
        reason = r["reason"]
        why = ("heat" if "temperature" in reason else "bond" if "bond" in reason
               else "contact" if "apart" in reason else reason[:20])  # fmt: skip
        cells.append(
            f"{r['time_ps']:.3g} ({why})" if r["failed"] else f"≥ {r['time_ps']:.3g} (cap)"
        )
    print(f"| {cond} | {seed} | " + " | ".join(cells) + " |")

# Scatter: each model's time to failure against GFN1-xTB's, same seed and protocol.
matplotlib.use("Agg")

fig, ax = plt.subplots(figsize=(4.6, 4.2))
marks = {"200K": "o", "400K": "s", "crystal150K": "^"}
colours = {"nh3-legato": "tab:red", "nh3-allegro": "tab:blue"}
top = 0.0
for (cond, _seed), by in runs.items():
    ref = by.get("gfn1-xtb")
    if ref is None:
        continue
    for m in ("nh3-legato", "nh3-allegro"):
        if m in by:
            ax.scatter(
                ref["time_ps"],
                by[m]["time_ps"],
                marker=marks[cond],
                color=colours[m],
                facecolors="none" if not by[m]["failed"] else colours[m],
                s=30,
            )
            top = max(top, ref["time_ps"], by[m]["time_ps"])
for m, c in colours.items():
    ax.scatter([], [], color=c, label=m)
for cond, mk in marks.items():
    name = {"200K": "liquid 200 K", "400K": "liquid 400 K", "crystal150K": "crystal 150 K"}
    ax.scatter([], [], marker=mk, color="grey", label=name[cond])
ax.plot([0, top * 1.1], [0, top * 1.1], "k--", lw=0.8)
ax.set_xlabel("GFN1-xTB: time to failure (ps)")
ax.set_ylabel("model: time to failure (ps)")
ax.set_title("authors' protocol at 2.5 fs, same seeds", fontsize=10)
ax.legend(fontsize=8, frameon=False)
fig.tight_layout()
fig.savefig(folder / "reference_vs_models_dt2.5fs.png", dpi=150)
