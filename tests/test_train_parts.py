"""Parts of the training loop: loss weights, the weight average, checkpoint round trips."""

import types

import pytest
import torch
from helpers import TINY_TRAIN_MODEL
from test_train_loop import tiny_config

from legato_ase.io import atomic_torch_save, build_model
from legato_ase.train import trainer as trainer_module
from legato_ase.train.config import LossConfig
from legato_ase.train.dataset import Batch
from legato_ase.train.loss import loss_terms
from legato_ase.train.optim import WeightAverage


def _batch_and_prediction():
    torch.manual_seed(0)
    n_atoms = torch.tensor([3.0, 4.0], dtype=torch.float64)
    batch = Batch(
        graph=None, energy=torch.tensor([-1.0, -2.0], dtype=torch.float64),
        forces=torch.randn(7, 3, dtype=torch.float64), stress=None,
        volume=torch.ones(2, dtype=torch.float64), n_atoms=n_atoms,
    )  # fmt: skip
    pred = {"energy": torch.tensor([-1.3, -1.6], dtype=torch.float64),
            "forces": torch.randn(7, 3, dtype=torch.float64)}  # fmt: skip
    return batch, pred


def test_loss_is_the_weighted_sum_of_energy_and_force_errors():
    batch, pred = _batch_and_prediction()
    energy_mse = (((pred["energy"] - batch.energy) / batch.n_atoms) ** 2).mean()
    forces_mse = ((pred["forces"] - batch.forces) ** 2).mean()
    for we, wf in ((1.0, 0.0), (0.0, 1.0), (2.0, 3.0)):
        cfg = LossConfig(energy_weight=we, forces_weight=wf)
        loss = loss_terms(pred, batch, cfg)["loss"]
        torch.testing.assert_close(loss, we * energy_mse + wf * forces_mse, rtol=1e-14, atol=0)


def test_weight_average_moves_the_shadow_toward_the_live_weights():
    live = torch.nn.Linear(2, 1, bias=False).double()
    with torch.no_grad():
        live.weight.fill_(1.0)
    ema = WeightAverage(live, decay=0.9)
    with torch.no_grad():
        live.weight.fill_(2.0)
    ema.update(live)  # decay ramps up: min(0.9, 2/11), so the shadow keeps 2/11 of itself
    torch.testing.assert_close(ema.model.weight, torch.full((1, 2), 2 / 11 + 2 * 9 / 11).double())
    for _ in range(200):
        ema.update(live)
    with torch.no_grad():
        ema.model.weight.fill_(0.0)
    ema.update(live)  # late updates move the shadow 1 − 0.9 = 10 % of the way
    torch.testing.assert_close(ema.model.weight, torch.full((1, 2), 0.2).double())


def test_checkpoint_round_trip_restores_optimizer_sam_counter_scheduler_and_average(tmp_path):
    cfg = tiny_config(tmp_path, sam="sam", sam_interval=2)
    cfg = cfg.replace(schedule=cfg.schedule.__class__(epochs=3, plateau_patience=0))
    model = build_model(dict(TINY_TRAIN_MODEL), ["H", "N"], seed=0)
    state = trainer_module._new_state(cfg, model)
    for p in model.parameters():  # give Adam some moments
        p.grad = torch.ones_like(p)
    state.optimizer.base_optimizer.step()
    state.optimizer.n_steps = 3  # an odd count: the next step is not perturbed
    state.ema.update(model)
    state.scheduler.step(1.0)
    state.scheduler.step(2.0)  # a bad epoch with patience 0: lr halved, best stays 1.0
    state.epoch, state.best_loss = 2, 1.0
    data = types.SimpleNamespace(data_hash="h")
    atomic_torch_save(trainer_module._checkpoint(state, cfg, "h"), tmp_path / "c.pt")
    restored = trainer_module._restore(tmp_path / "c.pt", cfg, data)
    assert restored.optimizer.n_steps == 3
    assert restored.scheduler.state_dict() == state.scheduler.state_dict()
    assert restored.optimizer.param_groups[0]["lr"] == pytest.approx(0.005)
    assert restored.ema.n_updates == 1 and (restored.epoch, restored.best_loss) == (2, 1.0)
    saved, loaded = state.optimizer.state_dict()["base"], restored.optimizer.state_dict()["base"]
    for key, moments in saved["state"].items():
        torch.testing.assert_close(loaded["state"][key]["exp_avg"], moments["exp_avg"])
