"""Stage 3 of the two-level recipe by full-batch L-BFGS instead of Adam.

    python benchmarks/results/long_range_learning/experiments/two_level_lbfgs.py \
        OUT TWO_LEVEL_DIR CASE COUNT EPOCHS

TWO_LEVEL_DIR is a ``two_level_{COUNT}`` folder of ``bench_long_range_learning.py`` (its layer-only
model is the start); the large boxes and validation boxes are regenerated with the same seeds.
Prints the force RMSE at 14 Å and the learned kernel as JSON.
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
import bench_long_range_learning as B
import torch

torch.set_num_threads(1)
out, start_dir, case = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
count, epochs = int(sys.argv[4]), int(sys.argv[5])
big = B.dataset(case, 12.0, count, seed=40_000)
big_val = B.dataset(case, 12.0, 2, seed=30_000)
lbfgs = {"name": "lbfgs", "lr": 1.0, "ema_decay": None, "lbfgs_iterations": 20}
start = start_dir / "run" / "model.pt"
extra = {"init_from": str(start), "trainable": "all"}
path = B._train_stage(big, big_val, out, {}, lbfgs, epochs, epochs, extra, batch_size=1)
test = B.dataset(case, 14.0, 3, seed=20_014)
print(
    json.dumps(
        {
            "case": case,
            "count": count,
            "epochs": epochs,
            "rmse_14": B.force_rmse(path, test),
            "kernel": B.learned_kernel(path, test[:1]),
        }
    )
)
