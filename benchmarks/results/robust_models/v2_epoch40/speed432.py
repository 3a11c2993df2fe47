"""Energy + forces on the 432-atom crystal: the bundled nh3-legato against v2 at epoch 40.

Calls alternate between the models in one process; the ratio of minima is what to read.
"""

import statistics
import time
from pathlib import Path

import torch

from legato_ase import LegatoCalculator
from legato_ase.structures import ammonia_crystal

torch.set_num_threads(1)
atoms = ammonia_crystal((3, 3, 3))
print(len(atoms), "atoms")
models = {
    "nh3-legato (bundled)": "nh3-legato",
    "v2 epoch 40": str(Path(__file__).resolve().parents[1] / "v2_run" / "model.pt"),
}
calcs = {name: LegatoCalculator(path) for name, path in models.items()}
times = {name: [] for name in models}
for calc in calcs.values():  # warm-up
    atoms.calc = calc
    atoms.get_forces()
for repeat in range(8):
    for name, calc in calcs.items():
        atoms.rattle(0.001, seed=repeat)
        atoms.calc = calc
        start = time.perf_counter()
        atoms.get_potential_energy()
        atoms.get_forces()
        times[name].append(time.perf_counter() - start)
ref = min(times["nh3-legato (bundled)"])
for name, ts in times.items():
    print(
        f"{name:22s} min {1e3 * min(ts):7.1f} ms  median {1e3 * statistics.median(ts):7.1f} ms  "
        f"ratio(min) {min(ts) / ref:.2f}"
    )
