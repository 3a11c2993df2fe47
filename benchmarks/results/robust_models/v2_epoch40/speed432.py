import statistics
import time
from pathlib import Path

import torch
torch.set_num_threads(1)
from legato_ase import LegatoCalculator
from legato_ase.structures import ammonia_crystal
atoms = ammonia_crystal((3, 3, 3)); print(len(atoms), "atoms")
models = {"nh3-legato (bundled)": "nh3-legato", "v2 epoch 40": str(Path(__file__).resolve().parents[1] / "v2_run" / "model.pt")}
calcs = {k: LegatoCalculator(v) for k, v in models.items()}
times = {k: [] for k in models}
for k, c in calcs.items():
    atoms.calc = c; atoms.get_forces()
for r in range(8):
    for k, c in calcs.items():
        atoms.rattle(0.001, seed=r); atoms.calc = c
        t = time.perf_counter(); atoms.get_potential_energy(); atoms.get_forces(); times[k].append(time.perf_counter() - t)
ref = min(times["nh3-legato (bundled)"])
for k, ts in times.items():
    print(f"{k:22s} min {1e3*min(ts):7.1f} ms  median {1e3*statistics.median(ts):7.1f} ms  ratio(min) {min(ts)/ref:.2f}")
