"""Tables of the stopped exponentials run, from its saved models and the script's test boxes.

python benchmarks/results/long_range_learning/eval_exponentials.py  (from the repo root)
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, "benchmarks")
import bench_long_range_learning as b  # noqa: E402

CASE, ROOT = "exponentials", Path("/tmp/lrb/exponentials/exponentials")


def main() -> None:
    torch.set_num_threads(1)
    t = time.time()
    tests = {L: b.dataset(CASE, L, 2, seed=20_000 + int(L)) for L in (7.0, 10.0, 14.0)}
    rows = {
        name: {f"{L:g}": b.force_rmse(ROOT / d / "run" / "model.pt", tests[L]) for L in tests}
        for name, d in (("local", "local"), ("local + LRC", "lrc"))
    }
    two_level = {1: b.force_rmse(ROOT / "two_level_1" / "run" / "model.pt", tests[14.0])}
    res = {CASE: {"force_rmse_by_box": rows, "two_level_by_large_cells": two_level}}
    Path("/tmp/lrb/exponentials/learning.json").write_text(json.dumps(res, indent=1))
    print(json.dumps(res, indent=1), "wall", time.time() - t)


if __name__ == "__main__":
    main()
