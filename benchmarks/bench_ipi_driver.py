"""i-PI driver benchmark: protocol overhead per step, beads per second with/without batching.

A server in this process speaks i-PI 3.3's wire format (STATUS, POSDATA+GETFORCE
back-to-back, FORCEREADY) to ``legato-ipi-driver`` running as a separate process over a
unix socket, exactly as i-PI would. Compared with calling the calculator directly in this
process, the difference is the driver's overhead (sockets, packing, unit conversion).
With ``--ipi`` the same model also runs real i-PI PIMD with batching off and on.

    python benchmarks/bench_ipi_driver.py [--model nh3-legato] [--repeat 5] [--threads 1]
        [--beads 8 32] [--ipi]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

from ipi_driver.adapter import from_atoms
from ipi_driver.protocol import (
    Stream,
    encode_init,
    encode_posdata,
    header,
    read_forceready,
)
from ipi_driver.structures import nh3_crystal


def load_calculator(model: str, threads: int):
    import torch

    from legato_ase import LegatoCalculator, build_model

    torch.set_num_threads(threads)
    os.environ["OMP_NUM_THREADS"] = str(threads)  # the same for the driver processes
    try:
        return LegatoCalculator(model), model
    except (FileNotFoundError, RuntimeError, ValueError) as err:
        print(f"# could not load {model} ({type(err).__name__}); using build_model('default')")
        return LegatoCalculator(build_model("default")), "build_model('default')"


class DriverProcess:
    """legato-ipi-driver in a subprocess, connected to a listening unix socket here."""

    def __init__(self, model_path: str, template: Path, batch_size: int):
        import socket

        self.path = f"/tmp/ipi_bench_{uuid.uuid4().hex[:8]}"
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(self.path)
        self.listener.listen(1)
        cmd = [sys.executable, "-m", "ipi_driver.cli", "--model", model_path, "--template",
               str(template), "--unix", self.path, "--quiet"]  # fmt: skip
        self.proc = subprocess.Popen(["timeout", "900", *cmd])
        self.listener.settimeout(300)
        self.stream = Stream(self.listener.accept()[0])
        self.batch_size = batch_size
        self.stream.send(encode_init(0, f"batch_size:{batch_size}" if batch_size > 1 else ""))

    def request(self, structures) -> None:
        s = self.stream
        s.send(header("STATUS"))
        assert s.read_header() == "READY"
        batched = self.batch_size > 1
        s.send(encode_posdata(from_atoms(structures), batched=batched) + header("GETFORCE"))
        assert s.read_header() == "FORCEREADY"
        read_forceready(s, len(structures[0]), self.batch_size)

    def close(self) -> None:
        self.stream.send(header("EXIT"))
        self.proc.wait(timeout=60)
        self.listener.close()
        os.unlink(self.path)


def beads(atoms, n_beads: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_beads):
        bead = atoms.copy()
        bead.positions += rng.normal(scale=0.02, size=bead.positions.shape)
        out.append(bead)
    return out


def save_model_file(calc, directory: Path, name: str) -> str:
    from legato_ase import save_model

    if calc.model.__class__.__name__ != "LegatoPotential":
        return name
    path = directory / "model.pt"
    save_model(calc.model, path)
    return str(path)


def overhead_table(calc, model_path, tmp: Path, sizes, repeat: int) -> None:

    print("\n## Driver overhead per step (one structure per request)")
    print("adapter = unit/cell conversion + packing in-process; socket = full exchange with")
    print("the driver in another process (2 messages round trip per step)")
    print(f"{'atoms':>6} {'direct (ms)':>12} {'adapter (ms)':>13} {'via socket (ms)':>16} "
          f"{'overhead (ms)':>14} {'ratio':>6}")  # fmt: skip
    for size in sizes:
        atoms = nh3_crystal(repeat=size)
        template = tmp / f"t{len(atoms)}.extxyz"
        atoms.write(template)
        direct, adapter, socket_t = _overhead_times(calc, model_path, template, atoms, repeat)
        print(f"{len(atoms):>6} {1e3 * direct:>12.2f} {1e3 * adapter:>13.2f} "
              f"{1e3 * socket_t:>16.2f} {1e3 * (socket_t - direct):>14.2f} "
              f"{socket_t / direct:>6.3f}")  # fmt: skip


def _overhead_times(calc, model_path, template, atoms, repeat):
    from ipi_driver.adapter import evaluate

    data = from_atoms([atoms])
    driver = DriverProcess(model_path, template, 1)
    functions = [
        lambda: calc.calculate_batch([atoms]),
        lambda: evaluate(calc, data, atoms),
        lambda: driver.request([atoms]),
    ]
    times = interleaved(functions, repeat)
    driver.close()
    return times


def interleaved(functions, repeat: int) -> list[float]:
    """Median times of several functions called in turn, so load from other processes on
    a shared machine hits them alike."""
    for f in functions:
        f()
        f()
    times = [[] for _ in functions]
    for _ in range(repeat):
        for k, f in enumerate(functions):
            start = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - start)
    return [float(np.median(t)) for t in times]


def batching_table(model_path, tmp: Path, size, bead_counts, repeat: int) -> None:
    atoms = nh3_crystal(repeat=size)
    template = tmp / "tb.extxyz"
    atoms.write(template)
    print(f"\n## Beads per second, {len(atoms)} atoms per bead, through the socket")
    print(f"{'beads':>6} {'unbatched (beads/s)':>20} {'batched (beads/s)':>18} {'speed-up':>9}")
    for n_beads in bead_counts:
        times = _batching_times(model_path, template, beads(atoms, n_beads), repeat)
        rates = [n_beads / t for t in times]
        print(f"{n_beads:>6} {rates[0]:>20.2f} {rates[1]:>18.2f} {rates[1] / rates[0]:>9.2f}")


def _batching_times(model_path, template, ring, repeat):
    plain = DriverProcess(model_path, template, 1)
    batched = DriverProcess(model_path, template, len(ring))

    def one_by_one():
        for bead in ring:
            plain.request([bead])

    times = interleaved([one_by_one, lambda: batched.request(ring)], repeat)
    plain.close()
    batched.close()
    return times


def ipi_table(model_path, tmp: Path, n_beads: int, steps: int) -> None:
    from ipi_driver import SimulationSettings
    from ipi_driver.launch import run_ipi

    atoms = nh3_crystal(repeat=(1, 1, 1))
    print(f"\n## Real i-PI PIMD, {len(atoms)} atoms, {n_beads} beads, {steps} steps")
    print("per-step time = (wall of the run - wall of a 1-step run) / (steps - 1)")
    print(f"{'batch_size':>10} {'wall (s)':>9} {'s/step':>8} {'beads/s':>8} {'last step':>10}")
    walls = {}
    for batch in (1, n_beads):
        for n_steps in (1, steps):
            address = f"b{uuid.uuid4().hex[:8]}"
            settings = SimulationSettings(
                kind="pimd", n_beads=n_beads, total_steps=n_steps, batch_size=batch,
                address=address,
            )  # fmt: skip
            run = run_ipi(atoms, settings, tmp / f"ipi{batch}_{n_steps}", model_path, timeout_s=900)
            walls[n_steps] = run.wall_s
        per_step = (walls[steps] - walls[1]) / (steps - 1)
        print(f"{batch:>10} {walls[steps]:>9.1f} {per_step:>8.3f} {n_beads / per_step:>8.1f} "
              f"{run.last_step:>10}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="nh3-legato")
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--beads", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--ipi", action="store_true", help="also run real i-PI")
    parser.add_argument("--ipi-steps", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process")
    args = parser.parse_args()
    calc, label = load_calculator(args.model, args.threads)
    print(f"# model: {label}, r_max {calc.r_max} Å, dtype {calc.model.dtype}, "
          f"torch threads {args.threads}, median of {args.repeat} calls")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        model_path = save_model_file(calc, tmp, args.model)
        overhead_table(calc, model_path, tmp, [(1, 1, 1), (2, 2, 2)], args.repeat)
        batching_table(model_path, tmp, (1, 1, 1), args.beads, args.repeat)
        if args.ipi:
            ipi_table(model_path, tmp, min(args.beads), args.ipi_steps)


if __name__ == "__main__":
    main()
