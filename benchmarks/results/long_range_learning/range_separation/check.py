"""Quick check before building range separation out: does it fix the Yukawa kernel?

Trains the benchmark's local + LRC model (yukawa, 40 + 8 boxes of 7 + 10 Å) with a short
schedule twice, with the full kernel and with ``exclude_short_range``, and prints the learned
kernel and the force RMSE on 7 / 10 / 14 Å test boxes. One variant per process:

    python check.py OUT full|separated [EPOCHS REFINE_EPOCHS]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

import bench_long_range_learning as bench  # noqa: E402


def main() -> None:
    import torch

    torch.set_num_threads(1)
    out, variant = Path(sys.argv[1]), sys.argv[2]
    epochs = int(sys.argv[3]) if len(sys.argv) > 3 else 60
    refine = int(sys.argv[4]) if len(sys.argv) > 4 else 20
    args = argparse.Namespace(
        train_sizes=[7.0, 10.0],
        n_train=[40, 8],
        n_val=[6, 2],
        lr=0.005,
        patience=3,
        refine_lrs=[0.001, 0.0002],
        refine_epochs=refine,
    )
    small = bench.training_set("yukawa", args, seed=0)
    val = bench.training_set(
        "yukawa", argparse.Namespace(**{**vars(args), "n_train": [6, 2]}), 10_000
    )
    tests = {L: bench.dataset("yukawa", L, 3, seed=20_000 + int(L)) for L in (7.0, 10.0, 14.0)}
    layer = {**bench.LONG_RANGE, "exclude_short_range": variant == "separated"}
    model = {**bench.MODEL, "long_range": layer}
    path = bench.train_model(small, val, out / variant, model, args, epochs)
    result = {
        "variant": variant,
        "epochs": [epochs, refine, refine],
        "force_rmse": {f"{L:g}": bench.force_rmse(path, frames) for L, frames in tests.items()},
        "kernel": bench.learned_kernel(path, tests[14.0][:1]),
    }
    (out / f"{variant}.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
