"""`legato learn` end to end on a tiny system (EMT labels), resume, config errors, selection."""

import csv

import numpy as np
import pytest
from helpers import TINY_TRAIN_MODEL

from legato_ase import load_model
from legato_ase.datasets import read_ammonia
from legato_ase.learn import LearnConfig, classify, label, learn, pick_candidates
from legato_ase.learn import stages as stages_module
from legato_ase.learn.config import SelectConfig
from legato_ase.learn.framelog import FrameLog


@pytest.fixture(scope="module")
def emt_data(tmp_path_factory):
    """Ten 64-atom ammonia frames labelled with EMT (a cheap stand-in reference)."""
    path = tmp_path_factory.mktemp("data") / "emt.extxyz"
    label(read_ammonia("liquid_300", index="::15"), "emt", path, progress=False)
    return path


def learn_config(tmp_path, data, **changes):
    settings = {
        "data": [str(data)],
        "train": {
            "model": TINY_TRAIN_MODEL,
            "data": {"split": "random", "val_fraction": 0.25},
            "optimizer": {"lr": 0.01},
            "schedule": {"epochs": 1, "batch_size": 2},
            "threads": 1,
        },
        "committee": {"size": 2},
        "explore": {
            "structures": [str(data)],
            "temperatures_K": [300],
            "timesteps_fs": [0.5],
            "steps": 10,
            "record_every": 2,
            "criteria": {  # a barely trained model heats up at once: record frames anyway
                "temperature_window_K": None,
                "min_distance_A": None,
                "bond_deviation_A": None,
            },
        },
        "select": {"trust_lo": 0.0, "trust_hi": 1.0e6, "max_candidates": 2},
        "label": {"method": "emt"},
        "max_iterations": 2,
        "output_dir": str(tmp_path / "learn"),
        **changes,
    }
    return LearnConfig.from_dict(settings)


def labelled_indices(path):
    return sorted(int(a.info["label_index"]) for a in FrameLog(path).frames())


def test_two_iterations_label_candidates_and_train_on_them(tmp_path, emt_data, capsys):
    import yaml

    from legato_ase.cli import main

    settings = learn_config(tmp_path, emt_data).to_dict()
    (tmp_path / "learn.yaml").write_text(yaml.safe_dump(settings))
    assert main(["learn", str(tmp_path / "learn.yaml"), "--no-progress"]) == 0
    assert "stopped at max_iterations after 2 iterations" in capsys.readouterr().out
    root = tmp_path / "learn"
    assert labelled_indices(root / "iter_000" / "labelled.extxyz") == [0, 1]
    first = FrameLog(root / "iter_000" / "labelled.extxyz").frames()[0]
    assert first.info["reference"] == "EMT/ase" and "max_force_deviation" in first.info
    state = (root / "iter_001" / "state.json").read_text()
    assert "iter_000/labelled.extxyz" in state  # the new labels joined the training data
    with open(root / "learning.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["iteration"] for r in rows] == ["0", "1"]
    assert float(rows[0]["candidate_fraction"]) == 1.0 and rows[1]["data_files"] == "2"
    assert float(rows[0]["val_forces_mae_meV_A"]) > 0 and float(rows[0]["train_s"]) > 0
    assert (root / "learning.png").stat().st_size > 0
    member = load_model(root / "iter_001" / "train" / "member_1" / "model.pt")
    start = member.metadata["training"]["config"]["init_from"]  # warm start
    assert start.endswith("iter_000/train/member_1/model.pt")


def test_interrupted_labelling_resumes_without_losing_or_repeating_frames(
    tmp_path, emt_data, monkeypatch
):
    import importlib

    from ase.calculators.emt import EMT

    label_module = importlib.import_module("legato_ase.learn.label")

    class InterruptOnce(EMT):
        calls = 0

        def calculate(self, *args, **kwargs):
            InterruptOnce.calls += 1
            if InterruptOnce.calls == 2:
                raise KeyboardInterrupt
            super().calculate(*args, **kwargs)

    original = label_module.METHODS["emt"]
    monkeypatch.setitem(label_module.METHODS, "emt", (InterruptOnce, "EMT/ase"))
    cfg = learn_config(tmp_path, emt_data, max_iterations=1)
    first = learn(cfg, progress=False)
    labelled = tmp_path / "learn" / "iter_000" / "labelled.extxyz"
    assert first.interrupted and labelled_indices(labelled) == [0]
    label_module.METHODS["emt"] = original
    calls = []
    original_train = stages_module.train_stage
    monkeypatch.setattr(
        stages_module, "train_stage", lambda *a: calls.append(1) or original_train(*a)
    )
    second = learn(cfg, progress=False)
    assert not second.interrupted and not calls  # training is not repeated
    assert labelled_indices(labelled) == [0, 1]


def test_interrupted_exploration_resumes_at_the_first_unfinished_run(
    tmp_path, emt_data, monkeypatch
):
    import importlib

    explore_module = importlib.import_module("legato_ase.learn.explore")
    original, started = explore_module.explore_run, []

    def interrupt_second_run(calculator, start, spec, cfg):
        started.append(spec.name)
        if len(started) == 2:
            raise KeyboardInterrupt
        return original(calculator, start, spec, cfg)

    monkeypatch.setattr(explore_module, "explore_run", interrupt_second_run)
    settings = learn_config(tmp_path, emt_data, max_iterations=1).to_dict()
    settings["explore"]["temperatures_K"] = [300, 310]
    cfg = LearnConfig.from_dict(settings)
    assert learn(cfg, progress=False).interrupted and started == ["run_000", "run_001"]
    assert not learn(cfg, progress=False).interrupted
    assert started == ["run_000", "run_001", "run_001"]  # run_000 is not repeated
    assert labelled_indices(tmp_path / "learn" / "iter_000" / "labelled.extxyz") == [0, 1]


def test_a_run_folder_with_other_settings_is_refused(tmp_path, emt_data):
    from legato_ase.learn.loop import _check_same_config

    _check_same_config(learn_config(tmp_path, emt_data), tmp_path)
    _check_same_config(learn_config(tmp_path, emt_data, max_iterations=7), tmp_path)
    with pytest.raises(ValueError, match="seed"):
        _check_same_config(learn_config(tmp_path, emt_data, seed=5), tmp_path)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"selct": {}}, "did you mean 'select'"),
        ({"explore": {"structures": ["x"], "temperature_K": [300]}}, "temperatures_K"),
        ({"select": {"trust_lo": 0.3, "trust_hi": 0.1}}, "trust_lo < trust_hi"),
        ({"train": {"optimiser": {}}}, "did you mean 'optimizer'"),
        ({"train": {"data": {"train": ["a"]}}}, "set by legato learn"),
        ({"train": {"data": {"stride": 5}}}, "thin the initial data"),
        ({"label": {"method": "dft"}}, "gfn1-xtb"),
        ({"explore": {"structures": ["x"], "criteria": {"min_dist": 1}}}, "min_distance_A"),
    ],
)
def test_bad_keys_get_clear_errors(tmp_path, change, message):
    base = {"data": ["x.extxyz"], "explore": {"structures": ["x.extxyz"]}}
    with pytest.raises(ValueError, match=message):
        LearnConfig.from_dict({**base, **change})


def test_trust_levels_split_accurate_candidate_failed():
    cfg = SelectConfig(trust_lo=0.05, trust_hi=0.3)
    classes = classify(np.array([0.01, 0.05, 0.2, 0.3, np.nan]), cfg)
    assert classes.tolist() == ["accurate", "candidate", "candidate", "failed", "failed"]


def test_diverse_picks_take_distinct_structures_before_near_copies():
    frames = read_ammonia("liquid_300", index="::50") + read_ammonia("solid_060", index="::50")
    copies = []
    for atoms in frames[:1] * 4 + frames:  # four copies of one frame, then distinct frames
        atoms = atoms.copy()
        atoms.info["max_force_deviation"] = 0.1
        copies.append(atoms)
    picked = pick_candidates(copies, SelectConfig(max_candidates=4, pick="diverse"))
    assert len(picked) == 4 and sum(k < 5 for k in picked) == 1
    highest = pick_candidates(copies, SelectConfig(max_candidates=4, pick="highest"))
    assert len(highest) == 4


def test_the_example_config_is_valid():
    from pathlib import Path

    from legato_ase.learn import load_learn_config

    path = Path(__file__).resolve().parents[1] / "configs" / "nh3-learn.yaml"
    cfg = load_learn_config(path)
    assert cfg.committee.size == 4 and cfg.label.method == "gfn1-xtb"
    assert cfg.train_config(["x.extxyz"], "out", 0).optimizer.sam == "sam"


def tiny_committee():
    from helpers import tiny_model

    from legato_ase import LegatoCalculator

    return LegatoCalculator([tiny_model(seed=0), tiny_model(seed=1)])


def test_exploration_records_deviations_and_stops_at_a_failure():
    from legato_ase.learn.config import ExploreConfig
    from legato_ase.learn.explore import RunSpec, explore_run
    from legato_ase.stability import FailureCriteria

    start = read_ammonia("liquid_300", index="-1")[0]
    spec = RunSpec(name="run_000", structure=0, replicate=(1, 1, 1), temperature_K=300.0,
                   pressure_GPa=None, timestep_fs=0.5, seed=0)  # fmt: skip
    off = FailureCriteria(temperature_window_K=None, min_distance_A=None, bond_deviation_A=None)
    cfg = ExploreConfig(structures=["x"], steps=9, record_every=3, criteria=off)
    outcome, frames = explore_run(tiny_committee(), start, spec, cfg)
    assert outcome.steps == 9 and len(frames) == 3 and [a.info["step"] for a in frames] == [3, 6, 9]
    assert all(a.info["max_force_deviation"] > 0 for a in frames)
    strict = ExploreConfig(structures=["x"], steps=9, record_every=3,
                           criteria=FailureCriteria(temperature_window_K=1.0))  # fmt: skip
    outcome, frames = explore_run(tiny_committee(), start, spec, strict)
    assert outcome.failed and "temperature" in outcome.reason and outcome.steps == 3


def test_exploration_at_a_pressure_changes_the_cell():
    from legato_ase.learn.config import ExploreConfig
    from legato_ase.learn.explore import RunSpec, explore_run

    start = read_ammonia("liquid_300", index="-1")[0]
    spec = RunSpec(name="run_000", structure=0, replicate=(1, 1, 1), temperature_K=300.0,
                   pressure_GPa=5.0, timestep_fs=0.5, seed=0)  # fmt: skip
    cfg = ExploreConfig(structures=["x"], steps=4, record_every=2, pdamp_fs=20.0)
    _, frames = explore_run(tiny_committee(), start, spec, cfg)
    assert frames[-1].get_volume() != pytest.approx(start.get_volume(), rel=1e-6)
