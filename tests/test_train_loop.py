"""The training loop on a tiny dataset: loss decreases, resume is exact, files are usable."""

import csv

import pytest
import torch
from helpers import TINY_TRAIN_MODEL as TINY_MODEL

from legato_ase import LegatoCalculator, load_model
from legato_ase.datasets import read_ammonia
from legato_ase.train import TrainConfig, train
from legato_ase.train import trainer as trainer_module


def tiny_config(tmp_path, epochs=3, **optimizer):
    return TrainConfig.from_dict(
        {
            "data": {
                "train": ["bundled:nh3_liquid_300.extxyz.xz"],
                "stride": 25,
                "split": "random",
                "val_fraction": 0.2,
            },
            "model": TINY_MODEL,
            "optimizer": {"lr": 0.01, **optimizer},
            "schedule": {"epochs": epochs, "batch_size": 2},
            "output_dir": str(tmp_path / "run"),
            "seed": 1,
        }
    )


def test_a_few_epochs_lower_the_training_loss(tmp_path):
    result = train(tiny_config(tmp_path, epochs=4), progress=False)
    with open(result.output_dir / "learning_curve.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 4
    assert float(rows[-1]["train_loss"]) < 0.7 * float(rows[0]["train_loss"])
    assert (result.output_dir / "learning_curve.png").stat().st_size > 0


def test_sam_training_lowers_the_training_loss(tmp_path):
    result = train(tiny_config(tmp_path, epochs=3, sam="sam", rho=0.01), progress=False)
    with open(result.output_dir / "learning_curve.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])
    meta = load_model(result.model_path).metadata["training"]
    assert meta["sam"] == "sam" and meta["rho"] == 0.01 and len(meta["data_hash"]) == 64


def test_resume_continues_exactly_where_it_stopped(tmp_path):
    straight = train(
        tiny_config(tmp_path / "a", epochs=3, sam="sam", sam_interval=2), progress=False
    )
    train(tiny_config(tmp_path / "b", epochs=2, sam="sam", sam_interval=2), progress=False)
    resumed = train(
        tiny_config(tmp_path / "b", epochs=3, sam="sam", sam_interval=2),
        resume=True,
        progress=False,
    )
    a = torch.load(straight.output_dir / "checkpoint.pt", weights_only=True)
    b = torch.load(resumed.output_dir / "checkpoint.pt", weights_only=True)
    assert a["epoch"] == b["epoch"] == 3
    for key in a["model"]:
        torch.testing.assert_close(a["model"][key], b["model"][key], rtol=0, atol=0)
    assert a["history"][-1]["val_loss"] == b["history"][-1]["val_loss"]


def _lbfgs_config(tmp_path, start, epochs):
    lbfgs = {"name": "lbfgs", "lr": 1.0, "ema_decay": None, "lbfgs_iterations": 4}
    return tiny_config(tmp_path, epochs=epochs, **lbfgs).replace(init_from=str(start), model={})


def test_lbfgs_lowers_the_whole_set_loss_at_every_epoch_and_resumes_exactly(tmp_path):
    start = train(tiny_config(tmp_path / "adam", epochs=1), progress=False).model_path
    straight = train(_lbfgs_config(tmp_path / "a", start, epochs=3), progress=False)
    with open(straight.output_dir / "learning_curve.csv") as handle:
        losses = [float(row["train_loss"]) for row in csv.DictReader(handle)]
    # the loss of an epoch's first evaluation is the whole training set's at its start
    # weights; the line search only accepts steps that lower it
    assert losses[1] < losses[0] and losses[2] < losses[1]
    assert losses[2] < 0.7 * losses[0]
    train(_lbfgs_config(tmp_path / "b", start, epochs=2), progress=False)
    resumed = train(_lbfgs_config(tmp_path / "b", start, epochs=3), resume=True, progress=False)
    a = torch.load(straight.output_dir / "checkpoint.pt", weights_only=True)
    b = torch.load(resumed.output_dir / "checkpoint.pt", weights_only=True)
    for key in a["model"]:
        torch.testing.assert_close(a["model"][key], b["model"][key], rtol=0, atol=0)
    assert load_model(resumed.model_path).metadata["training"]["optimizer"] == "lbfgs"


def test_an_existing_run_is_not_overwritten_without_resume(tmp_path):
    train(tiny_config(tmp_path, epochs=1), progress=False)
    with pytest.raises(ValueError, match="--resume"):
        train(tiny_config(tmp_path, epochs=1), progress=False)


def test_ctrl_c_leaves_a_model_and_a_resumable_checkpoint(tmp_path, monkeypatch):
    original = trainer_module._train_epoch

    def interrupt_in_second_epoch(state, *args):
        if state.epoch == 1:
            raise KeyboardInterrupt
        return original(state, *args)

    monkeypatch.setattr(trainer_module, "_train_epoch", interrupt_in_second_epoch)
    result = train(tiny_config(tmp_path, epochs=3), progress=False)
    assert result.stop_reason.startswith("interrupted") and result.epochs == 1
    assert load_model(result.model_path) is not None
    monkeypatch.setattr(trainer_module, "_train_epoch", original)
    resumed = train(tiny_config(tmp_path, epochs=3), resume=True, progress=False)
    assert resumed.epochs == 3


def test_trained_model_file_runs_in_the_ase_calculator(tmp_path):
    result = train(tiny_config(tmp_path, epochs=1), progress=False)
    atoms = read_ammonia("liquid_300", index="0:1")[0]
    atoms.calc = LegatoCalculator(str(result.model_path))
    energy, forces = atoms.get_potential_energy(), atoms.get_forces()
    # The fitted energy shifts put the energy near the reference (-32.9 eV/atom), not at 0.
    assert abs(energy / len(atoms) + 32.9) < 0.5
    assert forces.shape == (64, 3)


def test_early_stopping_ends_a_run_whose_validation_loss_stalls(tmp_path):
    cfg = tiny_config(tmp_path, epochs=10, lr=1e-12, ema_decay=None)
    cfg = cfg.replace(
        schedule=cfg.schedule.__class__(
            epochs=10, batch_size=2, early_stopping_patience=1, min_lr=0.0
        )
    )
    result = train(cfg, progress=False)
    assert result.epochs == 2 and "no validation improvement" in result.stop_reason


def test_trainer_takes_sam_steps_not_plain_base_steps(tmp_path):
    adam = train(tiny_config(tmp_path / "adam", epochs=1), progress=False)
    sam = train(tiny_config(tmp_path / "sam", epochs=1, sam="sam", rho=0.05), progress=False)
    a = torch.load(adam.output_dir / "checkpoint.pt", weights_only=True)
    s = torch.load(sam.output_dir / "checkpoint.pt", weights_only=True)
    assert s["optimizer"]["n_steps"] == 2  # 3 training frames in batches of 2
    assert any(not torch.equal(a["model"][k], s["model"][k]) for k in a["model"])


def test_best_model_holds_the_weight_average_not_the_live_weights(tmp_path):
    result = train(tiny_config(tmp_path, epochs=1), progress=False)
    saved = torch.load(result.output_dir / "checkpoint.pt", weights_only=True)
    best = load_model(result.output_dir / "best.pt").state_dict()
    assert result.best_epoch == 1
    for key, value in saved["ema"]["model"].items():
        torch.testing.assert_close(best[key], value, rtol=0, atol=0)
    assert any(not torch.equal(best[k], v) for k, v in saved["model"].items())


def test_model_file_and_plot_are_current_after_every_epoch(tmp_path, monkeypatch):
    seen = []
    original = trainer_module._after_epoch

    def after_epoch(state, cfg, data, out, row):
        stop = original(state, cfg, data, out, row)
        model = torch.load(out / "model.pt", weights_only=True)
        seen.append(
            (
                model["metadata"]["training"]["best_epoch"],
                (out / "learning_curve.png").stat().st_mtime_ns,
            )
        )
        return stop

    monkeypatch.setattr(trainer_module, "_after_epoch", after_epoch)
    cfg = tiny_config(tmp_path, epochs=2, ema_decay=None)
    train(cfg, progress=False)
    best_epochs = [best for best, _ in seen]
    assert len(seen) == 2 and best_epochs[0] == 1 and seen[1][1] >= seen[0][1]


def test_files_written_by_training_have_ordinary_permissions(tmp_path):
    import os

    result = train(tiny_config(tmp_path, epochs=1), progress=False)
    umask = os.umask(0o022)
    os.umask(umask)
    for name in ("checkpoint.pt", "best.pt", "model.pt", "learning_curve.csv"):
        mode = (result.output_dir / name).stat().st_mode & 0o777
        assert mode == 0o666 & ~umask, (name, oct(mode))


def test_model_metadata_holds_no_absolute_paths(tmp_path):
    meta = load_model(train(tiny_config(tmp_path, epochs=1), progress=False).model_path).metadata
    config = meta["training"]["config"]
    assert "base_dir" not in config and config["output_dir"] == "run"
    assert str(tmp_path) not in str(meta)


def test_resume_says_where_it_continues_and_without_a_checkpoint_that_it_starts_fresh(
    tmp_path, capsys
):
    train(tiny_config(tmp_path / "a", epochs=1), resume=True, progress=False)
    assert "no checkpoint in" in capsys.readouterr().out
    train(tiny_config(tmp_path / "a", epochs=2), resume=True, progress=False)
    assert "resuming from epoch 1 of 2" in capsys.readouterr().out


def test_ctrl_c_before_the_first_epoch_ends_raises_keyboard_interrupt(tmp_path, monkeypatch):
    def interrupt(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer_module, "_train_epoch", interrupt)
    with pytest.raises(KeyboardInterrupt):
        train(tiny_config(tmp_path, epochs=2), progress=False)


def test_a_fine_tuned_model_records_the_model_it_started_from(tmp_path):
    """`legato info` of a fine-tuned model shows the whole chain: the start file's
    checksum and how that file was trained (no absolute paths)."""
    import hashlib

    start = train(tiny_config(tmp_path / "a", epochs=1), progress=False).model_path
    settings = {**tiny_config(tmp_path / "b", epochs=1).to_dict(), "model": {}}
    settings.pop("base_dir")
    cfg = TrainConfig.from_dict({**settings, "init_from": str(start)})
    meta = load_model(train(cfg, progress=False).model_path).metadata["training"]
    origin = meta["started_from"]
    assert origin["sha256"] == hashlib.sha256(start.read_bytes()).hexdigest()
    assert origin["training"] == load_model(start).metadata["training"]
    assert origin["file"] == meta["config"]["init_from"] == "../../a/run/model.pt"
    assert str(tmp_path) not in str(meta)
