"""Short Yukawa experiment: train local+LRC with a given layer config, print force RMSE vs box."""

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
import bench_long_range_learning as B
import torch

torch.set_num_threads(1)
out = Path(sys.argv[1])
lr_cfg = json.loads(sys.argv[2])
case = sys.argv[3] if len(sys.argv) > 3 else "yukawa"
lbfgs_epochs = int(sys.argv[4]) if len(sys.argv) > 4 else 0  # a final full-batch L-BFGS stage
args = argparse.Namespace(
    train_sizes=[7.0, 10.0],
    n_train=[40, 8],
    n_val=[6, 2],
    lr=0.005,
    refine_lrs=[0.001, 0.0002],
    refine_epochs=20,
    patience=3,
    test_sizes=[7.0, 10.0, 14.0],
    n_test=3,
    lbfgs_epochs=lbfgs_epochs,
    lbfgs_iterations=20,
)
small = B.training_set(case, args, seed=0)
val = B.training_set(case, argparse.Namespace(**{**vars(args), "n_train": args.n_val}), 10_000)
path = B.train_model(small, val, out, {**B.MODEL, "long_range": lr_cfg}, args, 60)
row = {L: B.force_rmse(path, B.dataset(case, L, 3, seed=20_000 + int(L))) for L in args.test_sizes}
print(json.dumps({"cfg": lr_cfg, "rmse": row}))
from legato_ase import load_model  # noqa: E402

m = load_model(path).long_range
print(
    "amp",
    m.amplitude.tolist(),
    "mu",
    m.screening.abs().tolist(),
    "head",
    [w.tolist() for w in m.head.weights],
)
