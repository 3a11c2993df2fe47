"""Time-to-failure tools: failure criteria, MD protocols, resumable campaigns (legato stability)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk, molecule
from ase.calculators.emt import EMT

from legato_ase import build_model, save_model
from legato_ase.stability import (
    FailureCriteria,
    FailureMonitor,
    MDProtocol,
    StabilityPlan,
    parse_replicate,
    read_results,
    resolve_protocol,
    run_campaign,
    run_replica,
)
from legato_ase.stability.md import prepare_structure

TINY = {
    "r_max": 4.0, "n_layers": 1, "n_scalar": 16, "n_tensor": 8, "two_body_mlp": [16],
    "avg_num_neighbors": 30, "energy_shift": {"H": -10.0, "N": -50.0},
}  # fmt: skip


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def ammonia_box(n: int = 4, a: float = 7.0) -> Atoms:
    """n NH3 molecules in a periodic cube, far apart (no close contacts)."""
    atoms = Atoms(cell=[a, a, a], pbc=True)
    for corner in np.array([[0, 0, 0], [1, 1, 0], [1, 0, 1], [0, 1, 1]])[:n]:
        mol = molecule("NH3")
        mol.translate(corner * a / 2 + 1.0)
        atoms += mol
    return atoms


def set_temperature(atoms: Atoms, temperature_K: float) -> Atoms:
    rng = np.random.default_rng(0)
    atoms.set_momenta(rng.normal(size=(len(atoms), 3)))
    atoms.set_momenta(atoms.get_momenta() * np.sqrt(temperature_K / atoms.get_temperature()))
    return atoms


def monitor(atoms: Atoms, **criteria) -> FailureMonitor:
    return FailureMonitor(atoms, FailureCriteria(**criteria), temperature_K=200.0)


def test_temperature_inside_window_passes_and_outside_fails():
    atoms = set_temperature(ammonia_box(), 280.0)
    assert monitor(atoms).check(atoms) is None
    hot = set_temperature(ammonia_box(), 320.0)
    assert "temperature 320.0 K left [100, 300] K" in monitor(hot).check(hot)
    cold = set_temperature(ammonia_box(), 90.0)
    assert "left" in monitor(cold).check(cold)


def test_temperature_grace_skips_only_the_temperature_window():
    cold = set_temperature(ammonia_box(), 90.0)
    mon = monitor(cold, temperature_grace_steps=50)
    assert mon.check(cold, step=40) is None  # settling: the window is not applied yet
    assert "left [100, 300] K" in mon.check(cold, step=50)
    assert "left" in mon.check(cold)  # no step given: every criterion applies
    h_of_first, n_of_second = 1, 4
    cold.positions[h_of_first] = cold.positions[n_of_second] + [0.4, 0.0, 0.0]
    assert "apart (< 0.5 Å)" in mon.check(cold, step=0)  # contacts are checked while settling
    with pytest.raises(ValueError, match="temperature_grace_steps"):
        FailureCriteria(temperature_grace_steps=-1)


def test_nan_positions_or_forces_are_failures():
    atoms = set_temperature(ammonia_box(), 200.0)
    mon = monitor(atoms)
    forces = np.zeros((len(atoms), 3))
    forces[3, 1] = np.inf
    assert mon.check(atoms, forces) == "forces are NaN or infinite"
    atoms.positions[2, 0] = np.nan
    assert mon.check(atoms) == "positions are NaN or infinite"


def test_atoms_closer_than_threshold_are_a_failure():
    atoms = set_temperature(ammonia_box(), 200.0)
    mon = monitor(atoms, bond_deviation_A=None)
    h_of_first, n_of_second = 1, 4  # an H of molecule 0 and the N of molecule 1
    atoms.positions[h_of_first] = atoms.positions[n_of_second] + [0.4, 0.0, 0.0]
    assert "are 0.400 Å apart (< 0.5 Å)" in mon.check(atoms)


def test_bonds_of_ammonia_are_found():
    mon = monitor(ammonia_box(4))
    i, j, _ = mon.bonds
    assert len(i) == 12  # three N-H bonds per molecule, no H-H or intermolecular bonds
    symbols = np.array(ammonia_box(4).get_chemical_symbols())
    assert set(zip(symbols[i], symbols[j], strict=True)) <= {("N", "H"), ("H", "N")}


def test_bond_stretch_beyond_half_angstrom_from_its_mean_is_a_failure():
    """A crafted trajectory: a slow 0.05 Å/check drift is tolerated (the mean follows it),
    a sudden 0.6 Å stretch is not."""
    atoms = set_temperature(ammonia_box(), 200.0)
    mon = monitor(atoms, min_distance_A=None)
    n, h = 0, 1
    direction = (atoms.positions[h] - atoms.positions[n]) / atoms.get_distance(n, h)
    for _ in range(6):
        atoms.positions[h] += 0.05 * direction
        assert mon.check(atoms) is None
    atoms.positions[h] += 0.6 * direction
    assert "from its mean (> 0.5 Å)" in mon.check(atoms)


def test_bond_criterion_follows_bonds_across_the_periodic_boundary():
    atoms = molecule("NH3")
    atoms.set_cell([6.0, 6.0, 6.0])
    atoms.pbc = True
    atoms.translate([3.0, 3.0, 0.2 - atoms.positions[0, 2]])  # the H atoms hang below z = 0
    atoms.wrap()
    assert atoms.positions[1:, 2].min() > 5.0
    set_temperature(atoms, 200.0)
    mon = monitor(atoms)
    assert len(mon.bonds[0]) == 3
    bond = atoms.get_distance(0, 1, mic=True, vector=True)
    atoms.positions[1] += 0.2 * bond / np.linalg.norm(bond)  # stretched across the boundary
    assert mon.check(atoms) is None
    atoms.positions[1] += 0.6 * bond / np.linalg.norm(bond)
    assert "bond 0-1" in mon.check(atoms)


def test_protocol_presets_match_the_reference():
    paper, authors = resolve_protocol("paper"), resolve_protocol("authors")
    assert (paper.timestep_fs, paper.nvt_steps, paper.hydrogen_mass) == (2.0, 1000, None)
    assert (authors.timestep_fs, authors.nvt_steps, authors.hydrogen_mass) == (2.5, None, 2.014)
    assert paper.temperature_K == authors.temperature_K == 200.0


def test_bad_protocol_settings_are_explained():
    with pytest.raises(ValueError, match="did you mean 'timestep_fs'"):
        MDProtocol.from_dict({"timestep": 2.0})
    with pytest.raises(ValueError, match="unknown MD protocol 'paperr'"):
        resolve_protocol("paperr")
    with pytest.raises(ValueError, match="temperature_K must be positive"):
        MDProtocol(temperature_K=-5)
    with pytest.raises(ValueError, match="three positive integers"):
        parse_replicate("2x2")


def test_authors_protocol_gives_hydrogen_the_deuterium_mass():
    structure = prepare_structure(ammonia_box(), (2, 1, 1), resolve_protocol("authors"), seed=0)
    masses = structure.get_masses()[structure.numbers == 1]
    assert len(structure) == 32 and np.allclose(masses, 2.014)
    assert np.allclose(structure.get_momenta().sum(axis=0), 0.0, atol=1e-10)


def equilibrated_copper() -> Atoms:
    atoms = bulk("Cu", cubic=True).repeat((3, 3, 3))
    atoms.rattle(0.04, seed=1)  # roughly the thermal displacement at 200 K
    return atoms


def test_stable_run_reaching_the_cap_is_censored_and_nve_conserves_energy():
    protocol = MDProtocol(nvt_steps=40, max_steps=120, check_every=10)
    energies = {}
    result = run_replica(
        EMT(), equilibrated_copper(), protocol, seed=3, max_wall_s=60,
        on_check=lambda step, atoms: energies.__setitem__(step, atoms.get_total_energy()),
    )  # fmt: skip
    assert not result.failed and result.reason == "reached the step cap"
    assert result.steps == 120 and result.time_ps == pytest.approx(0.24)
    nve = [energies[s] for s in range(50, 121, 10)]
    nvt = [energies[s] for s in (10, 40)]
    assert np.ptp(nve) < 2e-3 < abs(nvt[1] - nvt[0])  # thermostat off after nvt_steps


def test_failure_time_is_the_step_of_the_first_failed_check():
    protocol = MDProtocol(nvt_steps=None, max_steps=200, check_every=10, temperature_K=200.0)
    criteria = FailureCriteria(temperature_window_K=1.0)  # T fluctuates by more than 1 K
    result = run_replica(EMT(), equilibrated_copper(), protocol, criteria, seed=0)
    assert result.failed and result.steps == 10 and "temperature" in result.reason


def test_perfect_lattice_dips_to_half_the_temperature_and_the_grace_lets_it_settle():
    """A perfect crystal started at T shares its kinetic energy with the potential at once
    (equipartition): T drops to about T/2, so a T/2 window fails it on the first checks unless
    the window waits for the lattice to settle."""
    lattice = bulk("Cu", cubic=True).repeat((3, 3, 3))
    protocol = MDProtocol(
        nvt_steps=None, tdamp_steps=20, max_steps=200, check_every=5, temperature_K=200.0
    )
    strict = FailureCriteria(temperature_window_K=80.0)
    dipped = run_replica(EMT(), lattice, protocol, strict, seed=0)
    assert dipped.failed and dipped.steps <= 20 and "temperature" in dipped.reason
    settled = FailureCriteria(temperature_window_K=80.0, temperature_grace_steps=100)
    result = run_replica(EMT(), lattice, protocol, settled, seed=0)
    assert not result.failed and result.steps == 200


def test_calculator_error_during_md_counts_as_a_failure_with_its_reason():
    from legato_ase import LegatoCalculator

    model = build_model(TINY)
    with torch.no_grad():
        next(model.parameters()).fill_(float("nan"))  # a corrupted model: NaN forces
    protocol = MDProtocol(max_steps=20, check_every=10)
    result = run_replica(LegatoCalculator(model), ammonia_box(2), protocol, max_wall_s=60)
    assert result.failed and "NaN or infinite" in result.reason
    assert result.reason.startswith("ValueError") and 1 <= result.steps < 10  # before a check


def test_overlapping_atoms_in_the_input_are_rejected_not_run():
    from legato_ase import LegatoCalculator

    atoms = ammonia_box(2)
    atoms.positions[4] = atoms.positions[0]
    with pytest.raises(ValueError, match="on top of each other"):
        run_replica(LegatoCalculator(build_model(TINY)), atoms, MDProtocol(max_steps=20))


def test_short_md_with_a_tiny_model_through_the_api():
    from legato_ase import LegatoCalculator

    calc = LegatoCalculator(build_model(TINY, seed=1))
    protocol = resolve_protocol("authors", max_steps=30, check_every=5)
    result = run_replica(calc, ammonia_box(), protocol, seed=7, replicate=(1, 1, 2), max_wall_s=60)
    assert result.n_atoms == 32 and 5 <= result.steps <= 30
    assert result.time_ps == pytest.approx(result.steps * 2.5e-3)
    assert result.failed != (result.reason == "reached the step cap")
    assert calc.n_evaluations >= result.steps


def test_campaign_is_resumable_and_seeds_are_distinct(tmp_path):
    model = build_model(TINY, seed=2)
    plan = StabilityPlan(
        replicates=["1x1x1", "2x1x1"], n_replicas=2,
        protocol=MDProtocol(nvt_steps=None, max_steps=20, check_every=5), max_wall_s=60,
    )  # fmt: skip
    results = tmp_path / "runs.jsonl"
    first = run_campaign(model, ammonia_box(), plan, results=results, label="tiny", progress=False)
    assert len(first) == 4 and len({r["seed"] for r in first}) == 4
    assert sorted(r["n_atoms"] for r in first) == [16, 16, 32, 32]
    with results.open("a") as handle:
        handle.write('{"label": "tiny", "trunc')  # a crash in the middle of a write
    again = run_campaign(model, ammonia_box(), plan, results=results, label="tiny", progress=False)
    assert [json.dumps(r) for r in again] == [json.dumps(r) for r in first]  # nothing re-run
    bigger = StabilityPlan(replicates=plan.replicates, n_replicas=3, protocol=plan.protocol,
                           max_wall_s=60)  # fmt: skip
    more = run_campaign(model, ammonia_box(), bigger, results=results, label="tiny", progress=False)
    assert len(more) == 6 and len(read_results(results)) == 6


def test_campaign_refuses_to_mix_settings_or_models_in_one_results_file(tmp_path):
    results = tmp_path / "runs.jsonl"
    plan = StabilityPlan(replicates=["1x1x1"], n_replicas=1,
                         protocol=MDProtocol(max_steps=10, check_every=5))  # fmt: skip
    run_campaign(build_model(TINY), ammonia_box(), plan, results=results, label="m", progress=False)
    other = StabilityPlan(
        replicates=["1x1x1"],
        n_replicas=1,
        protocol=MDProtocol(max_steps=10, check_every=5, timestep_fs=1.0),
    )
    with pytest.raises(ValueError, match="other settings"):
        run_campaign(build_model(TINY), ammonia_box(), other, results=results, label="m")
    with pytest.raises(ValueError, match="another model"):
        run_campaign(build_model(TINY, seed=9), ammonia_box(), plan, results=results, label="m")


def test_cli_run_then_fit(tmp_path, capsys):
    import ase.io

    from legato_ase.cli import main

    save_model(build_model(TINY, seed=0), tmp_path / "tiny.pt")
    ase.io.write(tmp_path / "box.extxyz", ammonia_box())
    results = tmp_path / "r.jsonl"
    args = ["stability", "run", str(tmp_path / "tiny.pt"), str(tmp_path / "box.extxyz"),
            "--replicate", "1x1x1", "2x1x1", "--replicas", "2", "--max-steps", "40",
            "--check-every", "5", "--nvt-steps", "-1", "--temperature-K", "600",
            "--window-K", "300", "--results", str(results)]  # fmt: skip
    assert main(args) == 0
    table = capsys.readouterr().out
    assert "atoms" in table and "median" in table and "{" not in table  # a table, not dicts
    assert {r["label"] for r in read_results(results)} == {"tiny"}
    code = main(["stability", "fit", str(results), "--plot", str(tmp_path / "p.png"),
                 "--csv", str(tmp_path / "r.csv")])  # fmt: skip
    out = capsys.readouterr().out
    if any(r["failed"] for r in read_results(results)):
        assert code == 0 and "tiny: beta =" in out and (tmp_path / "p.png").exists()
    assert main(["stability", "run", "nope.pt", str(tmp_path / "box.extxyz")]) == 2


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the 60 fs run overflows
def test_a_reference_method_runs_the_same_protocol_and_fails_a_time_step_too_long(tmp_path):
    """`legato stability run emt ...`: the reference itself, with the tool's seeds and criteria.

    Copper's fastest phonon (~7 THz) leaves velocity Verlet stable at 5 fs, not at 60 fs.
    """
    import ase.io

    from legato_ase.cli import main
    from legato_ase.stability.campaign import replica_seed

    ase.io.write(tmp_path / "cu.extxyz", equilibrated_copper())
    results = tmp_path / "r.jsonl"
    common = ["--replicate", "1x1x1", "--replicas", "2", "--max-steps", "40",
              "--check-every", "10", "--nvt-steps", "-1", "--temperature-K", "200",
              "--results", str(results)]  # fmt: skip
    for dt in ("5", "60"):
        run = ["stability", "run", "emt", str(tmp_path / "cu.extxyz"), "--timestep-fs", dt]
        assert main([*run, *common, "--label", f"emt-{dt}fs"]) == 0
    records = {(r["label"], r["replica"]): r for r in read_results(results)}
    assert len(records) == 4
    for k in range(2):
        short, long = records["emt-5fs", k], records["emt-60fs", k]
        assert short["seed"] == long["seed"] == replica_seed(0, (1, 1, 1), k)
        assert not short["failed"] and short["steps"] == 40
        assert long["failed"] and long["steps"] < 40
    assert len({r["model_sha256"] for r in records.values()}) == 1  # the method, not weights
    assert main([*run, *common, "--label", "emt-60fs"]) == 0  # finished replicas are kept
    assert len(read_results(results)) == 4


def test_parallel_workers_give_the_same_replicas_as_one_process(tmp_path):
    """Replicas depend only on their seeds: 2 processes reproduce the serial records."""
    plan = StabilityPlan(
        replicates=["1x1x1", "1x1x2"],
        n_replicas=1,
        protocol=MDProtocol(nvt_steps=None, max_steps=20, check_every=5),
        criteria=FailureCriteria(temperature_window_K=None),
        max_wall_s=60,
    )
    model = build_model({**TINY, "energy_shift": {}}, seed=4, dtype=torch.float64)
    kw = {"label": "m", "progress": False}
    serial = run_campaign(model, ammonia_box(), plan, results=tmp_path / "a.jsonl", **kw)
    parallel = run_campaign(
        model, ammonia_box(), plan, results=tmp_path / "b.jsonl", workers=2, **kw
    )
    key = lambda r: (r["n_atoms"], r["seed"])  # noqa: E731
    for s, p in zip(sorted(serial, key=key), sorted(parallel, key=key), strict=True):
        assert (s["steps"], s["failed"], s["reason"]) == (p["steps"], p["failed"], p["reason"])


@pytest.mark.slow
def test_cli_runs_the_papers_deployed_model_only_when_torchscript_is_allowed(
    shared_dir, tmp_path, capsys
):
    from legato_ase.cli import main

    model = str(shared_dir / "reference_models" / "allegro_nh3.pth")
    structure = str(shared_dir / "data" / "liquid_200.extxyz")
    results = tmp_path / "r.jsonl"
    args = ["stability", "run", model, structure, "--protocol", "authors",
            "--replicate", "1x1x1", "--replicas", "1", "--max-steps", "8",
            "--check-every", "4", "--results", str(results)]  # fmt: skip
    assert main(args) == 2
    assert "allow_torchscript" in capsys.readouterr().err
    assert main([*args, "--allow-torchscript"]) == 0
    (record,) = read_results(results)
    assert record["label"] == "allegro_nh3" and record["steps"] == 8 and not record["failed"]
