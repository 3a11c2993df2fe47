"""One Yukawa training variant: a layer section and a schedule, force RMSE against the box.

    python variant.py OUT LAYER_JSON EPOCHS PATIENCE [REFINE_EPOCHS]

The benchmark's boxes and seeds (40 + 8 training boxes of 7 + 10 Å, 6 + 2 validation, three
7 / 10 / 14 Å test boxes), lr 0.005 for EPOCHS with plateau patience PATIENCE (a patience
longer than the run keeps the rate fixed), then REFINE_EPOCHS (default 20) at 0.001 and 0.0002.
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
    out, layer = Path(sys.argv[1]), json.loads(sys.argv[2])
    epochs, patience = int(sys.argv[3]), int(sys.argv[4])
    refine = int(sys.argv[5]) if len(sys.argv) > 5 else 20
    args = argparse.Namespace(
        train_sizes=[7.0, 10.0],
        n_train=[40, 8],
        n_val=[6, 2],
        lr=0.005,
        patience=patience,
        refine_lrs=[0.001, 0.0002] if refine else [],
        refine_epochs=refine,
    )
    small = bench.training_set("yukawa", args, seed=0)
    val = bench.training_set(
        "yukawa", argparse.Namespace(**{**vars(args), "n_train": [6, 2]}), 10_000
    )
    tests = {L: bench.dataset("yukawa", L, 3, seed=20_000 + int(L)) for L in (7.0, 10.0, 14.0)}
    path = bench.train_model(small, val, out, {**bench.MODEL, "long_range": layer}, args, epochs)
    result = {
        "layer": layer,
        "schedule": {"epochs": epochs, "patience": patience, "refine_epochs": refine},
        "force_rmse": {f"{L:g}": bench.force_rmse(path, frames) for L, frames in tests.items()},
        "kernel": bench.learned_kernel(path, tests[14.0][:1]),
    }
    (out / "result.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
