"""Continue training a model (init_from) at a fixed lr; print force RMSE vs box and the kernel."""

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
import bench_long_range_learning as B
import torch

torch.set_num_threads(1)
out, start, lr, epochs = Path(sys.argv[1]), sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
extra = json.loads(sys.argv[5]) if len(sys.argv) > 5 else {}
batch = int(extra.pop("batch", 4))
sizes = extra.pop("sizes", [7.0, 10.0])
counts = extra.pop("counts", [40, 8])
args = argparse.Namespace(train_sizes=sizes, n_train=counts, n_val=[2] * len(sizes))
case = "yukawa"
small = B.training_set(case, args, seed=extra.pop("seed", 0))
val = B.training_set(case, argparse.Namespace(**{**vars(args), "n_train": args.n_val}), 10_000)
path = (
    B._train_stage(
        small,
        val,
        out,
        extra.pop("model", {}),
        {"lr": lr},
        epochs,
        10_000,
        {"init_from": start, **extra},
    )
    if batch == 4
    else None
)
row = {
    L: B.force_rmse(path, B.dataset(case, L, 3, seed=20_000 + int(L))) for L in (7.0, 10.0, 14.0)
}
print(json.dumps({"rmse": row}))
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
