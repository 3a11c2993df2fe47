"""The benchmark's two-level recipe (yukawa) with the full or the range-separated layer.

    python two_level.py OUT LOCAL_MODEL full|separated [COUNTS ...]

The local model of the benchmark run, then the layer alone (zero-amplitude start) on 1/4/8
boxes of 12 Å for 40 epochs at lr 0.005, then all weights for 20 epochs at 0.0005, one box per
step; force RMSE on the three 14 Å test boxes. Same boxes and seeds as the benchmark.
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
    out, local, variant = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    counts = [int(c) for c in sys.argv[4:]] or [1, 4, 8]
    bench.LONG_RANGE["exclude_short_range"] = variant == "separated"
    args = argparse.Namespace(
        lr=0.005, two_level_epochs=40, finetune_epochs=20, finetune_lr=0.0005, large=12.0
    )
    tests = bench.dataset("yukawa", 14.0, 3, seed=20_000 + 14)
    big_val = bench.dataset("yukawa", args.large, 2, seed=30_000)
    result = {"variant": variant, "local": bench.force_rmse(local, tests), "counts": {}}
    for count in counts:
        big = bench.dataset("yukawa", args.large, count, seed=40_000)
        folder = out / f"two_level_{count}"
        layer, tuned = bench.two_level_recipe(big, big_val, folder, {"local": local}, args)
        result["counts"][count] = {
            "layer_only": bench.force_rmse(layer, tests),
            "fine_tuned": bench.force_rmse(tuned, tests),
            "kernel": bench.learned_kernel(tuned, tests[:1]),
        }
        (out / "result.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
