"""The training loss along μ of a one-channel, linear-head model, with its amplitude re-fitted.

    python amplitude_refit_profile.py MODEL TRAIN_EXTXYZ

For such a layer, energies and forces are linear in the amplitude a: E = E_0 + a·Ẽ. For each
μ the script evaluates the loss (per-atom energy and force MSE, weights 1) with every
parameter fixed, and with a alone set to its least-squares optimum (one step of variable
projection). Where the second profile has its minimum tells whether re-fitting the amplitude
is enough to let μ find the kernel the data determine (0.3 1/Å).
"""

from __future__ import annotations

import sys

import numpy as np
import torch
from ase.io import read

from legato_ase import load_model
from legato_ase.train.config import DataConfig
from legato_ase.train.dataset import collate, make_frames
from legato_ase.train.loss import predict


def residuals(model, batches):
    """Per-batch (energy/atom, forces) predictions and labels, flattened."""
    pred, label = [], []
    for batch in batches:
        out = predict(model, batch, create_graph=False)
        pred.append(torch.cat([(out["energy"] / batch.n_atoms), out["forces"].flatten()]))
        label.append(torch.cat([batch.energy / batch.n_atoms, batch.forces.flatten()]))
    return torch.cat(pred).detach().numpy(), torch.cat(label).numpy()


def main() -> None:
    torch.set_num_threads(1)
    model = load_model(sys.argv[1])
    layer = model.long_range
    assert layer.cfg.channels == 1 and not layer.cfg.head_mlp, "one channel, linear head"
    data = DataConfig(train=[sys.argv[2]])
    frames = make_frames([("train", read(sys.argv[2], ":"))], model.species, model.r_max, data)
    batches = [collate(frames[k : k + 4]) for k in range(0, len(frames), 4)]
    weight = None
    a0, mu0 = float(layer.amplitude.detach()), float(layer.screening.detach().abs())
    print(f"trained a = {a0:.4f}, μ = {mu0:.4f}\n")
    print("| μ (1/Å) | loss, all fixed | a* | loss with a = a* |\n|---|---|---|---|")
    for mu in [0.15, 0.2, mu0, 0.25, 0.3, 0.35, 0.4]:
        with torch.no_grad():
            layer.screening.fill_(mu)
            layer.amplitude.fill_(a0)
        p1, y = residuals(model, batches)
        with torch.no_grad():
            layer.amplitude.fill_(0.0)
        p0, _ = residuals(model, batches)
        if weight is None:  # energies and forces: the mean of each part, as in the loss
            sizes = [(len(b.energy), 3 * len(b.forces)) for b in batches]
            is_e = np.concatenate([np.r_[np.ones(e, bool), np.zeros(f, bool)] for e, f in sizes])
            weight = np.where(is_e, 1.0 / is_e.sum(), 1.0 / (~is_e).sum())
        slope = (p1 - p0) / a0
        r = y - p0
        a_star = float(np.sum(weight * slope * r) / np.sum(weight * slope * slope))
        fixed = float(np.sum(weight * (y - p1) ** 2))
        refit = float(np.sum(weight * (r - a_star * slope) ** 2))
        print(f"| {mu:.3f} | {fixed:.3e} | {a_star:.4f} | {refit:.3e} |")


if __name__ == "__main__":
    main()
