"""PIMD stability: thermostatted ring-polymer MD with real i-PI; does any bead break a bond?

Runs TRPMD (i-PI's ``pile_g`` thermostat with ``pile_lambda`` 0.5: internal ring-polymer
modes damped at half the critical friction, the centroid under a global SVR thermostat,
here with a 100 fs time constant so that the centroid holds the target temperature from
the cold start of a minimum-energy crystal) of NH3-I with ``legato-ipi-driver``, in
segments that each restart i-PI from the RESTART file of the last one, so that an
interrupted run continues where it stopped (run the same command again).

After each segment every bead of every saved frame is checked with the criteria of
``legato stability``: each N–H bond against its running mean length (> 0.5 Å away is a
break; the mean is kept per bead and per bond, over the start structure and all earlier
checks) and the shortest interatomic distance (< 0.5 Å is a failure). The temperatures
come from i-PI: the kinetic temperature of the ring polymer, that of the centroid mode,
and the centroid-virial kinetic energy as a temperature, 2 K_cv / (3 N k_B), which holds
the quantum kinetic energy and so lies well above T for light atoms.

    python benchmarks/bench_pimd_stability.py --model nh3-legato --beads 16 \\
        --temperature-K 150 --time-ps 1.0 --timestep-fs 0.5 --out DIR
    python benchmarks/bench_pimd_stability.py --compare-batch 10  # batched or not: faster?

Writes to ``DIR``: ``summary.json`` (the verdict and the numbers), ``checks.npz`` (per
saved frame and bead: largest N–H excursion from its running mean, longest and shortest
N–H bond, shortest contact, shortest intermolecular contact), ``temperatures.txt.gz``,
``input.xml`` (the first segment's i-PI input) and ``pimd_stability.png``. The i-PI work
folders go to ``DIR/work`` (bead trajectories are deleted once checked;
``--keep-trajectories`` keeps them).
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
from ase import Atoms, units
from ase.geometry import find_mic

BREAK_A = 0.5  # legato stability's bond_deviation_A and min_distance_A defaults
CONTACT_A = 0.5
# Temperatures and the conserved-quantity drift are averaged after this time (ps): all beads
# start on the classical minimum, and the ring polymer takes a few tens of fs to spread out.
SETTLE_PS = 0.1
CHECK_FIELDS = ("max_excursion", "max_nh", "min_nh", "min_contact", "min_intermolecular")
CENTROID_FIELDS = ("centroid_excursion", "centroid_max_nh")  # one value per frame
TEMPERATURE_COLUMNS = ("step", "time_ps", "T_ring", "T_centroid", "kinetic_cv_eV", "conserved_eV",
                       "potential_eV")  # fmt: skip
PROPERTIES = (
    "[ step, time{picosecond}, temperature{kelvin}, temperature(nm=0){kelvin}, "
    "kinetic_cv{electronvolt}, conserved{electronvolt}, potential{electronvolt} ]"
)


# ----------------------------------------------------------------------------- checking


class BeadChecker:
    """The stability tool's bond and contact criteria for every bead of a ring polymer.

    Bonds are the N–H pairs of the start structure (``legato_ase.stability.find_bonds``);
    lengths are taken with the minimum image, so wrapped and unwrapped trajectories give
    the same answer. Each bead keeps its own running mean of each bond length.

    Args:
        start: the classical start structure (every bead starts there).
        n_beads: number of ring-polymer beads.
    """

    def __init__(self, start: Atoms, n_beads: int) -> None:
        from legato_ase.stability import find_bonds

        i, j, _ = find_bonds(start)
        self.i, self.j = i, j
        self.cell, self.pbc = start.cell.array.copy(), start.pbc.copy()
        self.molecule = _molecules(len(start), i, j)
        lengths = self._lengths(start.positions[None])[0]
        self.bond_sum = np.tile(lengths, (n_beads + 1, 1))  # [n_beads + centroid, n_bonds] Å
        self.n_seen = 1

    def _lengths(self, positions: np.ndarray) -> np.ndarray:
        """[n_beads + 1, n_bonds] bond lengths (Å) of each bead and, last, of the centroid,
        for positions [n_beads, n_atoms, 3] (Å)."""
        vectors = positions[:, self.j] - positions[:, self.i]
        vectors, _ = find_mic(vectors.reshape(-1, 3), self.cell, self.pbc)
        vectors = vectors.reshape(len(positions), -1, 3)
        vectors = np.concatenate([vectors, vectors.mean(axis=0, keepdims=True)])
        return np.linalg.norm(vectors, axis=2)

    def check(self, positions: np.ndarray) -> dict[str, np.ndarray]:
        """Check one frame of every bead, positions [n_beads, n_atoms, 3] in Å.

        Returns:
            each of ``CHECK_FIELDS`` as [n_beads] (Å), ``worst_bond`` [n_beads] (the index
            into the bond list of each bead's largest excursion), and ``CENTROID_FIELDS``
            (the same bond criterion for the ring-polymer centroid, Å).
        """
        lengths = self._lengths(positions)
        excursion = np.abs(lengths - self.bond_sum / self.n_seen)
        self.bond_sum += lengths
        self.n_seen += 1
        contacts = np.array([self._contacts(bead) for bead in positions])
        return {
            "max_excursion": excursion[:-1].max(axis=1),
            "worst_bond": excursion[:-1].argmax(axis=1),
            "max_nh": lengths[:-1].max(axis=1),
            "min_nh": lengths[:-1].min(axis=1),
            "min_contact": contacts[:, 0],
            "min_intermolecular": contacts[:, 1],
            "centroid_excursion": excursion[-1].max(),
            "centroid_max_nh": lengths[-1].max(),
        }

    def _contacts(self, positions: np.ndarray, cutoff: float = 3.0) -> tuple[float, float]:
        """Shortest distance of any two atoms and of two atoms in different molecules (Å)."""
        from vesin import NeighborList

        i, j, d = NeighborList(cutoff=cutoff, full_list=False).compute(
            points=positions, box=self.cell, periodic=bool(self.pbc.all()), quantities="ijd"
        )
        if len(d) == 0:
            return cutoff, cutoff
        inter = self.molecule[i] != self.molecule[j]
        return float(d.min()), float(d[inter].min()) if inter.any() else cutoff

    def state(self) -> dict[str, np.ndarray]:
        return {"bond_sum": self.bond_sum.copy(), "n_seen": np.array(self.n_seen)}

    def restore(self, state) -> None:
        self.bond_sum = np.array(state["bond_sum"], dtype=np.float64)
        self.n_seen = int(state["n_seen"])


def _molecules(n_atoms: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """[n_atoms] a molecule label per atom: connected components of the bond graph."""
    label = np.arange(n_atoms)
    for _ in range(n_atoms):
        new = label.copy()
        np.minimum.at(new, i, label[j])
        np.minimum.at(new, j, label[i])
        if np.array_equal(new, label):
            break
        label = new
    return label


def read_bead_trajectory(path: Path, n_atoms: int) -> tuple[np.ndarray, np.ndarray]:
    """i-PI's xyz trajectory of one bead: steps [n_frames] and positions [n_frames, n_atoms, 3].

    A frame cut short by a stopped run is dropped.
    """
    lines = path.read_text().splitlines()
    block = n_atoms + 2
    n_frames = len(lines) // block
    steps = np.array([int(lines[f * block + 1].split("Step:")[1].split()[0])
                      for f in range(n_frames)])  # fmt: skip
    rows = [
        line.split()[1:4]
        for f in range(n_frames)
        for line in lines[f * block + 2 : (f + 1) * block]
    ]
    return steps, np.array(rows, dtype=np.float64).reshape(n_frames, n_atoms, 3)


# ----------------------------------------------------------------------------- i-PI runs


@dataclasses.dataclass(frozen=True, kw_only=True)
class Plan:
    """What to run; saved in summary.json and checked on a restart."""

    model: str
    n_beads: int
    temperature_K: float
    timestep_fs: float
    total_steps: int
    segment_steps: int
    check_stride: int
    batch_size: int
    centroid_tau_fs: float
    seed: int
    structure: str


def first_input(atoms: Atoms, plan: Plan, folder: Path, end_step: int) -> Path:
    """The first segment's i-PI input, written by ``ipi_driver.write_simulation`` (TRPMD),
    plus a trajectory of every bead and a properties file with the centroid temperature."""
    from ipi_driver import SimulationSettings, write_simulation

    settings = SimulationSettings(
        kind="trpmd", temperature_K=plan.temperature_K, n_beads=plan.n_beads,
        timestep_fs=plan.timestep_fs, total_steps=end_step, seed=plan.seed,
        batch_size=plan.batch_size, tau_fs=plan.centroid_tau_fs,
        checkpoint_stride=plan.segment_steps,
        properties_stride=plan.check_stride, trajectory_stride=plan.check_stride,
    )  # fmt: skip
    path = write_simulation(atoms, settings, folder)
    extra = (
        f"    <trajectory filename='pos' stride='{plan.check_stride}' format='xyz' "
        f"cell_units='angstrom'> positions{{angstrom}} </trajectory>\n"
        f"    <properties stride='{plan.check_stride}' filename='temps'> {PROPERTIES} "
        f"</properties>\n  </output>"
    )
    path.write_text(path.read_text().replace("  </output>", extra, 1))
    return path


def continued_input(restart: Path, folder: Path, end_step: int) -> Path:
    """i-PI's RESTART of the previous segment, running on to ``end_step``."""
    tree = ET.parse(restart)
    root = tree.getroot()
    # i-PI leaves out fields that hold their default value (total_steps 1000)
    total = root.find("total_steps")
    if total is None:
        total = ET.SubElement(root, "total_steps")
    total.text = f" {end_step} "
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(restart.parent / "init.extxyz", folder / "init.extxyz")
    path = folder / "input.xml"
    tree.write(path)
    return path


def run_segment(folder: Path, plan: Plan, threads: int, timeout_s: float, log) -> tuple:
    """Run i-PI and legato-ipi-driver in ``folder`` (a fresh socket name).

    Returns:
        the wall time (s) and the (wall time s, step) samples of ``_watch``.
    """
    address = f"pimd_{uuid.uuid4().hex[:10]}"
    path = folder / "input.xml"
    tree = ET.parse(path)
    tree.getroot().find("ffsocket/address").text = f" {address} "
    tree.write(path)
    limit = ["timeout", "-k", "10", str(int(timeout_s))]
    driver_cmd = [sys.executable, "-m", "ipi_driver.cli", "--model", plan.model, "--template",
                  "init.extxyz", "--unix", address, "--threads", str(threads)]  # fmt: skip
    start = time.perf_counter()
    with open(folder / "ipi.log", "w") as ipi_log, open(folder / "driver.log", "w") as dlog:
        ipi = subprocess.Popen(limit + ["i-pi", "input.xml"], cwd=folder, stdout=ipi_log,
                               stderr=subprocess.STDOUT)  # fmt: skip
        driver = subprocess.Popen(limit + driver_cmd, cwd=folder, stdout=dlog,
                                  stderr=subprocess.STDOUT)  # fmt: skip
        try:
            seen = _watch(ipi, driver, folder / "simulation.temps", start, log)
        finally:  # stopped (Ctrl-C, SIGTERM) or failed: take both programs down with us
            for process in (ipi, driver):
                if process.poll() is None:
                    process.terminate()
    return time.perf_counter() - start, seen


def _watch(ipi, driver, properties: Path, start: float, log, every_s: float = 60.0) -> list:
    """Wait for i-PI, reporting the step reached every ``every_s``; stop i-PI 10 s after the
    driver has gone (a crashed driver), stop the driver 30 s after i-PI has gone.

    Returns:
        (wall time s, step) whenever i-PI's properties file showed a new step.
    """
    last_report = time.perf_counter()
    driver_gone, seen = None, [(0.0, -1)]
    while ipi.poll() is None:
        time.sleep(0.1)
        step = _last_step(properties)
        if step != seen[-1][1]:
            seen.append((time.perf_counter() - start, step))
        if driver_gone is None and driver.poll() is not None:
            driver_gone = time.perf_counter()
        if driver_gone is not None and time.perf_counter() - driver_gone > 10:
            ipi.terminate()
            ipi.wait(60)
        if time.perf_counter() - last_report > every_s:
            last_report = time.perf_counter()
            log(f"    step {step} after {last_report - start:.0f} s")
    try:
        driver.wait(30)
    except subprocess.TimeoutExpired:
        driver.terminate()
        driver.wait(30)
    return seen[1:]


def _last_step(properties: Path) -> int:
    if not properties.exists():
        return -1
    rows = [line for line in properties.read_text().splitlines() if line and line[0] != "#"]
    return int(float(rows[-1].split()[0])) if rows else -1


def read_temperatures(path: Path) -> np.ndarray:
    """[n_rows, 7] the ``temps`` properties of a segment (TEMPERATURE_COLUMNS)."""
    rows = [line.split() for line in path.read_text().splitlines() if line and line[0] != "#"]
    rows = [row for row in rows if len(row) == len(TEMPERATURE_COLUMNS)]
    return np.array(rows, dtype=np.float64).reshape(-1, len(TEMPERATURE_COLUMNS))


# ----------------------------------------------------------------------------- the campaign


class Progress:
    """What is finished, kept in ``summary.json`` and ``checks.npz`` after every segment."""

    def __init__(self, out: Path, plan: Plan, checker: BeadChecker) -> None:
        self.out, self.plan, self.checker = out, plan, checker
        self.last_step, self.n_segments, self.walls, self.failure = -1, 0, [], None
        self.steps = np.zeros(0, dtype=np.int64)
        self.checks = {name: np.zeros((0, plan.n_beads)) for name in CHECK_FIELDS}
        self.checks["worst_bond"] = np.zeros((0, plan.n_beads), dtype=np.int64)
        self.checks.update({name: np.zeros(0) for name in CENTROID_FIELDS})
        self.temperatures = np.zeros((0, len(TEMPERATURE_COLUMNS)))
        if (out / "summary.json").exists():
            self._load()

    def _load(self) -> None:
        summary = json.loads((self.out / "summary.json").read_text())
        if summary["plan"] != dataclasses.asdict(self.plan):
            raise ValueError(
                f"{self.out} holds a run with other settings ({summary['plan']}); "
                "give another --out or the same settings to continue it"
            )
        self.last_step, self.n_segments = summary["last_step"], summary["n_segments"]
        self.walls, self.failure = summary["segment_wall_s"], summary["failure"]
        with np.load(self.out / "checks.npz") as data:
            self.steps = data["step"]
            self.checks = {name: data[name] for name in self.checks}
            self.checker.restore({"bond_sum": data["bond_sum"], "n_seen": data["n_seen"]})
            self.temperatures = data["temperatures"]

    def add_frames(self, steps: np.ndarray, positions: np.ndarray) -> None:
        """Check new frames, steps [F] and positions [F, n_beads, n_atoms, 3] (Å)."""
        for step, frame in zip(steps, positions):
            result = self.checker.check(frame)
            self.steps = np.append(self.steps, step)
            for name, values in result.items():
                self.checks[name] = np.concatenate([self.checks[name], np.asarray(values)[None]])
            if self.failure is None:
                self.failure = _failure(int(step), result, self.checker)

    def save(self) -> None:
        """Write checks.npz, temperatures.txt.gz and summary.json (each atomically)."""
        tmp = self.out / "checks.tmp.npz"
        np.savez_compressed(tmp, step=self.steps, temperatures=self.temperatures,
                            **self.checks, **self.checker.state())  # fmt: skip
        os.replace(tmp, self.out / "checks.npz")
        with gzip.open(self.out / "temperatures.tmp.gz", "wt") as f:
            np.savetxt(f, self.temperatures, fmt="%.8g", header=" ".join(TEMPERATURE_COLUMNS))
        os.replace(self.out / "temperatures.tmp.gz", self.out / "temperatures.txt.gz")
        tmp = self.out / "summary.tmp.json"
        tmp.write_text(json.dumps(self.summary(), indent=1) + "\n")
        os.replace(tmp, self.out / "summary.json")

    def summary(self) -> dict:
        plan, c, t = self.plan, self.checks, self.temperatures
        n_atoms = self.checker.molecule.size
        settled = t[:, 1] > SETTLE_PS
        late = self.steps * plan.timestep_fs / 1000.0 > SETTLE_PS
        return {
            "plan": dataclasses.asdict(plan),
            "n_atoms": int(n_atoms),
            "last_step": int(self.last_step),
            "time_ps": self.last_step * plan.timestep_fs / 1000.0,
            "n_segments": self.n_segments,
            "segment_wall_s": self.walls,
            "wall_s": float(sum(self.walls)),
            "frames_checked": len(self.steps),
            "bead_frames_checked": int(len(self.steps) * plan.n_beads),
            "failure": self.failure,
            "survived": self.failure is None and self.last_step >= plan.total_steps,
            "max_nh_excursion_A": _extreme(c["max_excursion"], np.max),
            "max_nh_A": _extreme(c["max_nh"], np.max),
            "min_nh_A": _extreme(c["min_nh"], np.min),
            "min_contact_A": _extreme(c["min_contact"], np.min),
            "min_intermolecular_A": _extreme(c["min_intermolecular"], np.min),
            "bead_frames_over_limit": int((c["max_excursion"] > BREAK_A).sum()),
            "frames_with_a_bead_over_limit": int((c["max_excursion"] > BREAK_A).any(axis=1).sum()),
            "max_centroid_nh_excursion_A": _extreme(c["centroid_excursion"], np.max),
            "max_centroid_nh_A": _extreme(c["centroid_max_nh"], np.max),
            "first_centroid_break_ps": _first(self.steps, c["centroid_excursion"] > BREAK_A, plan),
            "settle_ps": SETTLE_PS,
            "max_nh_excursion_after_settle_A": _extreme(c["max_excursion"][late], np.max),
            "max_nh_after_settle_A": _extreme(c["max_nh"][late], np.max),
            "mean_T_ring_K": _mean(t[settled, 2]),
            "mean_T_centroid_K": _mean(t[settled, 3]),
            "mean_T_centroid_virial_K": _mean(2 * t[settled, 4] / (3 * n_atoms * units.kB)),
            "conserved_drift_meV_per_atom_ps": _drift(t[settled], n_atoms),
        }


def _first(steps: np.ndarray, flags: np.ndarray, plan: Plan) -> float | None:
    """The time (ps) of the first flagged frame, or None."""
    hits = np.flatnonzero(flags)
    return float(steps[hits[0]] * plan.timestep_fs / 1000.0) if len(hits) else None


def _extreme(values: np.ndarray, reduce) -> float | None:
    return float(reduce(values)) if values.size else None


def _mean(values: np.ndarray) -> float | None:
    return float(values.mean()) if values.size else None


def _drift(t: np.ndarray, n_atoms: int) -> float | None:
    """Slope of i-PI's conserved quantity (thermostat work included), meV/atom/ps."""
    if len(t) < 3:
        return None
    slope = np.polyfit(t[:, 1], t[:, 5], 1)[0]
    return float(1000.0 * slope / n_atoms)


def _failure(step: int, result: dict, checker: BeadChecker) -> dict | None:
    """The first broken criterion in one checked frame, or None."""
    bead = int(np.argmax(result["max_excursion"]))
    if result["max_excursion"][bead] > BREAK_A:
        k = int(result["worst_bond"][bead])
        return {"step": step, "bead": bead, "criterion": "bond",
                "bond": [int(checker.i[k]), int(checker.j[k])],
                "excursion_A": float(result["max_excursion"][bead])}  # fmt: skip
    bead = int(np.argmin(result["min_contact"]))
    if result["min_contact"][bead] < CONTACT_A:
        return {"step": step, "bead": bead, "criterion": "contact",
                "distance_A": float(result["min_contact"][bead])}  # fmt: skip
    return None


def check_segment(folder: Path, progress: Progress, keep: bool) -> int:
    """Check the bead frames and read the temperatures of a finished (or stopped) segment;
    returns the last step i-PI reached there."""
    plan, n_atoms = progress.plan, progress.checker.molecule.size
    width = len(str(plan.n_beads - 1))
    files = [folder / f"simulation.pos_{b:0{width}d}.xyz" for b in range(plan.n_beads)]
    if not all(f.exists() for f in files):
        raise FileNotFoundError(f"i-PI wrote no bead trajectories in {folder}: see ipi.log")
    beads = [read_bead_trajectory(f, n_atoms) for f in files]
    n_frames = min(len(steps) for steps, _ in beads)
    steps = beads[0][0][:n_frames]
    positions = np.stack([pos[:n_frames] for _, pos in beads], axis=1)
    new = steps > progress.last_step
    progress.add_frames(steps[new], positions[new])
    temps = read_temperatures(folder / "simulation.temps")
    temps = temps[
        temps[:, 0] > (progress.temperatures[-1, 0] if len(progress.temperatures) else -1)
    ]
    progress.temperatures = np.vstack([progress.temperatures, temps])
    if not keep:
        for f in files:
            f.unlink()
    return int(progress.temperatures[-1, 0]) if len(progress.temperatures) else -1


def run(plan: Plan, atoms: Atoms, out: Path, args, log=print) -> dict:
    """Run (or continue) the segments until the end or a failure; returns the summary."""
    out.mkdir(parents=True, exist_ok=True)
    progress = Progress(out, plan, BeadChecker(atoms, plan.n_beads))
    work = out / "work"
    while (
        not args.report
        and progress.last_step < plan.total_steps
        and (progress.failure is None or args.continue_after_failure)
    ):
        segment = progress.n_segments
        folder = work / f"seg_{segment:03d}"
        if folder.exists():
            shutil.rmtree(folder)  # an unfinished segment: run it again
        end = min(max(progress.last_step, 0) + plan.segment_steps, plan.total_steps)
        if segment == 0:
            shutil.copy(first_input(atoms, plan, folder, end), out / "input.xml")
        else:
            continued_input(work / f"seg_{segment - 1:03d}" / "RESTART", folder, end)
        wall, _ = run_segment(folder, plan, args.threads, args.segment_timeout_s, log)
        reached = check_segment(folder, progress, args.keep_trajectories)
        if reached < end and progress.failure is None:
            raise RuntimeError(
                f"segment {segment} stopped at step {reached} of {end} without a broken bond "
                f"or contact: see {folder}/ipi.log and driver.log; run again to retry it"
            )
        progress.last_step, progress.n_segments = reached, segment + 1
        progress.walls.append(round(wall, 1))
        progress.save()
        _report(progress, log)
    progress.save()  # a finished run gets its summary from this version of the script
    plot(out)
    return progress.summary()


def _report(progress: Progress, log) -> None:
    s = progress.summary()
    rate = s["wall_s"] / max(s["last_step"], 1)
    left = (progress.plan.total_steps - s["last_step"]) * rate
    log(f"step {s['last_step']}/{progress.plan.total_steps} ({s['time_ps']:.3f} ps) "
        f"wall {s['wall_s']:.0f} s ({rate:.2f} s/step, {left / 60:.0f} min left): "
        f"max N-H excursion {s['max_nh_excursion_A']:.3f} A, longest N-H {s['max_nh_A']:.3f} A, "
        f"min contact {s['min_contact_A']:.3f} A, failure {s['failure']}")  # fmt: skip


def compare_batch(plan: Plan, atoms: Atoms, out: Path, args, log=print) -> dict[int, float]:
    """Seconds per step of i-PI with the driver one bead per request or all beads in one,
    timed inside a run of ``args.compare_batch`` steps from the second step on (start-up
    and the first, slower model call left out)."""
    per_step = {}
    for batch in (1, plan.n_beads, 1, plan.n_beads):
        n_steps = 2 + args.compare_batch
        short = dataclasses.replace(plan, batch_size=batch, total_steps=n_steps,
                                    segment_steps=n_steps, check_stride=1)  # fmt: skip
        folder = out / f"batch{batch}"
        shutil.rmtree(folder, ignore_errors=True)
        first_input(atoms, short, folder, n_steps)
        wall, seen = run_segment(folder, short, args.threads, args.segment_timeout_s, log)
        (t0, s0), (t1, s1) = [(t, s) for t, s in seen if s >= 1][0], seen[-1]
        per_step.setdefault(batch, []).append((t1 - t0) / (s1 - s0))
        log(f"batch_size {batch:>3}: {per_step[batch][-1]:.3f} s/step over steps {s0}-{s1} "
            f"(run wall {wall:.1f} s)")  # fmt: skip
    return {batch: min(times) for batch, times in per_step.items()}


def plot(out: Path) -> None:
    """pimd_stability.png: bond excursions and contacts of the beads, temperatures, vs time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = json.loads((out / "summary.json").read_text())
    dt_ps = summary["plan"]["timestep_fs"] / 1000.0
    with np.load(out / "checks.npz") as data:
        time_ps, c, t = data["step"] * dt_ps, {k: data[k] for k in data.files}, data["temperatures"]
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(7, 6.5), sharex=True)
    ax1.plot(time_ps, c["max_nh"].max(axis=1), label="longest N–H bond, all beads")
    ax1.plot(time_ps, c["max_excursion"].max(axis=1), label="largest N–H excursion from its mean")
    ax1.plot(time_ps, c["centroid_excursion"], label="largest centroid N–H excursion")
    ax1.plot(time_ps, c["min_contact"].min(axis=1), label="shortest contact, all beads")
    ax1.plot(time_ps, c["min_intermolecular"].min(axis=1), label="shortest intermolecular contact")
    ax1.axhline(BREAK_A, color="k", ls=":", lw=0.8, label="0.5 Å: break / contact limit")
    ax1.set_ylabel("distance (Å)")
    ax1.legend(fontsize=7, loc="upper left", ncol=2)
    n_atoms = summary["n_atoms"]
    ax2.plot(t[:, 1], t[:, 2], lw=0.8, label="ring polymer")
    ax2.plot(t[:, 1], t[:, 3], lw=0.8, label="centroid")
    ax2.plot(t[:, 1], 2 * t[:, 4] / (3 * n_atoms * units.kB), lw=0.8, label="centroid virial")
    ax2.axhline(summary["plan"]["temperature_K"], color="k", ls=":", lw=0.8)
    ax2.set_xlabel("time (ps)")
    ax2.set_ylabel("temperature (K)")
    ax2.legend(fontsize=7)
    p = summary["plan"]
    ax1.set_title(f"TRPMD, {p['n_beads']} beads, {p['temperature_K']:g} K, "
                  f"{p['timestep_fs']:g} fs, {Path(p['model']).name}", fontsize=9)  # fmt: skip
    fig.tight_layout()
    fig.savefig(out / "pimd_stability.png", dpi=110)
    plt.close(fig)


def start_structure(spec: str) -> Atoms:
    """``nh3-crystal:AxBxC`` (``legato_ase.structures.ammonia_crystal``) or a file."""
    if spec.startswith("nh3-crystal:"):
        from legato_ase.structures import ammonia_crystal

        size = tuple(int(n) for n in spec.split(":", 1)[1].split("x"))
        if len(size) != 3:
            raise ValueError(
                f"--structure {spec!r}: expected nh3-crystal:AxBxC, e.g. nh3-crystal:2x2x2"
            )
        return ammonia_crystal(size)
    from ipi_driver.inputs import load_structure

    return load_structure(spec)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--model", default="nh3-legato", help="model file or bundled name")
    add("--structure", default="nh3-crystal:2x2x2", help="nh3-crystal:AxBxC or a structure file")
    add("--beads", type=int, default=16)
    add("--temperature-K", type=float, default=150.0)
    add("--time-ps", type=float, default=1.0)
    add("--timestep-fs", type=float, default=0.5)
    add("--segment-ps", type=float, default=0.1, help="i-PI runs this long between checks")
    add("--check-stride", type=int, default=2, help="steps between checked frames")
    add("--batch-size", type=int, default=None, help="beads per driver request (default: all)")
    add("--centroid-tau-fs", type=float, default=100.0,
        help="time constant of the global (SVR) centroid thermostat")  # fmt: skip
    add("--seed", type=int, default=12345)
    add("--threads", type=int, default=1, help="torch threads of the driver")
    add("--segment-timeout-s", type=float, default=6 * 3600)
    add("--keep-trajectories", action="store_true", help="keep i-PI's bead trajectories")
    add("--continue-after-failure", action="store_true",
        help="run on after a bead broke a bond (how often? does it recover?)")  # fmt: skip
    add("--report", action="store_true",
        help="only rewrite summary.json and the plot from what is finished")  # fmt: skip
    add("--compare-batch", type=int, default=0, metavar="STEPS",
        help="only time STEPS steps with batch_size 1 and with all beads, then stop")  # fmt: skip
    add("--out", default="pimd_stability", help="results folder (an existing run continues)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind: stop i-PI and driver
    if shutil.which("i-pi") is None:
        raise SystemExit("the i-pi command is missing: pip install 'ipi>=3.3'")
    steps = round(1000.0 * args.time_ps / args.timestep_fs)
    plan = Plan(
        model=args.model, n_beads=args.beads, temperature_K=args.temperature_K,
        timestep_fs=args.timestep_fs, total_steps=steps,
        segment_steps=max(1, round(1000.0 * args.segment_ps / args.timestep_fs)),
        check_stride=args.check_stride, batch_size=args.batch_size or args.beads,
        centroid_tau_fs=args.centroid_tau_fs,
        seed=args.seed, structure=args.structure,
    )  # fmt: skip
    if min(plan.n_beads, plan.total_steps, plan.check_stride) < 1:
        raise SystemExit("--beads, --time-ps / --timestep-fs and --check-stride must give >= 1")
    atoms, out = start_structure(args.structure), Path(args.out)
    log = lambda text: print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)  # noqa: E731
    if args.report and not (out / "summary.json").exists():
        raise SystemExit(f"--report: {out} holds no run (no summary.json)")
    if args.compare_batch:
        compare_batch(plan, atoms, out / "work", args, log)
        return 0
    summary = run(plan, atoms, out, args, log)
    log(json.dumps({k: v for k, v in summary.items() if k != "segment_wall_s"}, indent=1))
    return 0 if summary["survived"] else 1


if __name__ == "__main__":
    sys.exit(main())
