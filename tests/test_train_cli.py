"""`legato train`, `legato test` and `legato sharpness` from the command line."""

import yaml
from helpers import TINY_TRAIN_MODEL

from legato_ase.cli import main

DATA = "bundled:nh3_liquid_300.extxyz.xz"


def _write_config(tmp_path, **extra):
    cfg = {
        "data": {"train": [DATA], "stride": 25, "split": "random", "val_fraction": 0.25},
        "model": dict(TINY_TRAIN_MODEL),
        "schedule": {"epochs": 1, "batch_size": 2},
        "output_dir": str(tmp_path / "run"),
        **extra,
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_train_then_test_then_sharpness(tmp_path, capsys):
    out = tmp_path / "model.pt"
    assert main(["train", str(_write_config(tmp_path)), "--no-progress", "-o", str(out)]) == 0
    assert out.exists()
    assert main(["test", str(out), DATA, "--stride", "50"]) == 0
    table = capsys.readouterr().out
    for row in ("energy per atom", "forces on H", "forces on N", "stress"):
        assert row in table
    assert main(["sharpness", str(out), DATA, "--stride", "50", "--samples", "2"]) == 0
    assert "expected sharpness" in capsys.readouterr().out


def test_bad_config_key_exits_with_a_suggestion(tmp_path, capsys):
    path = _write_config(tmp_path, schedul={"epochs": 1})
    assert main(["train", str(path)]) == 2
    assert "did you mean 'schedule'" in capsys.readouterr().err


def test_ctrl_c_before_the_first_epoch_ends_quietly(tmp_path, capsys, monkeypatch):
    from legato_ase.train import trainer

    def interrupt(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer, "_train_epoch", interrupt)
    assert main(["train", str(_write_config(tmp_path)), "--no-progress"]) == 130
    assert "legato train: interrupted" in capsys.readouterr().err
