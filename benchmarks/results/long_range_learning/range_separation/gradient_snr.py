"""Is the screening held back by noise or by the other parameters? One trained model.

    python gradient_snr.py MODEL TRAIN_EXTXYZ

Prints, for the layer's screenings μ_c and amplitudes a_c: the gradient of the training loss
(energy per atom and forces, MSE, weights 1) on each mini-batch of 4 boxes in file order, their
mean (the full-batch gradient) and spread; then the full-batch loss along μ_1 with every other
parameter fixed (where the conditional optimum of μ_1 lies).
"""

from __future__ import annotations

import sys

import numpy as np
import torch
from ase.io import read

from legato_ase import load_model
from legato_ase.train.config import DataConfig, LossConfig
from legato_ase.train.dataset import collate, make_frames
from legato_ase.train.loss import loss_terms, predict


def batch_losses(model, batches, cfg):
    for batch in batches:
        yield loss_terms(predict(model, batch, create_graph=True), batch, cfg)["loss"]


def main() -> None:
    torch.set_num_threads(1)
    model = load_model(sys.argv[1])
    frames = make_frames(
        [("train", read(sys.argv[2], ":"))],
        model.species,
        model.r_max,
        DataConfig(train=[sys.argv[2]]),
    )
    batches = [collate(frames[k : k + 4]) for k in range(0, len(frames), 4)]
    cfg, layer = LossConfig(), model.long_range
    params = {"mu": layer.screening, "amplitude": layer.amplitude}
    grads = []
    for loss in batch_losses(model, batches, cfg):
        g = torch.autograd.grad(loss, list(params.values()))
        grads.append(torch.cat([x.detach().flatten() for x in g]).numpy())
    grads = np.array(grads)
    names = [f"{k}_{c}" for k, p in params.items() for c in range(p.numel())]
    print("parameter values:", {k: p.detach().tolist() for k, p in params.items()})
    print("| parameter | full-batch gradient | spread over batches | batches with its sign |")
    print("|---|---|---|---|")
    for n, col in zip(names, grads.T):
        same = int(np.sum(np.sign(col) == np.sign(col.mean())))
        print(f"| {n} | {col.mean():.3e} | {col.std():.3e} | {same}/{len(col)} |")
    mu0 = float(layer.screening[0].detach())
    print("\nfull-batch loss along μ_1 (others fixed):")
    for mu in mu0 + np.array([-0.06, -0.03, 0.0, 0.03, 0.06, 0.1]):
        with torch.no_grad():
            layer.screening[0] = mu
        total = sum(float(x.detach()) for x in batch_losses(model, batches, cfg)) / len(batches)
        print(f"  μ_1 = {mu:.3f}: {total:.4e}")


if __name__ == "__main__":
    main()
