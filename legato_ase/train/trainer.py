"""The training loop: epochs, validation, checkpoints, resume, the final model file.

Files in the run folder, all current after every epoch: ``checkpoint.pt`` (atomic),
``best.pt`` (best validation loss, EMA weights, a model file), ``model.pt`` (the model of the
run: a copy of ``best.pt``), ``learning_curve.csv`` and ``learning_curve.png``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import platform
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from ..config import ModelConfig
from ..files import copy_atomic
from ..io import atomic_torch_save, build_model, read_model_file, save_model
from .config import TrainConfig
from .curves import plot_curves, write_csv
from .dataset import Frame, batch_to, iterate_batches
from .loss import ErrorAccumulator, evaluate_errors, loss_terms, predict
from .optim import WeightAverage, base_of, make_optimizer
from .prepare import (
    DTYPES,
    TrainingData,
    build_from_data,
    build_from_file,
    init_path,
    load_training_data,
    model_config,
    set_trainable,
)
from .sam import SAM

CHECKPOINT_FORMAT = "legato-ase training checkpoint"


@dataclasses.dataclass(frozen=True)
class TrainResult:
    """Where the run left its files, and how it ended."""

    model_path: Path
    output_dir: Path
    epochs: int
    best_epoch: int
    best_metrics: dict
    stop_reason: str


@dataclasses.dataclass
class _State:
    """Everything that changes during training (and goes into the checkpoint)."""

    model: torch.nn.Module
    ema: WeightAverage
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.ReduceLROnPlateau
    epoch: int = 0
    history: list = dataclasses.field(default_factory=list)
    best_loss: float = float("inf")
    best_epoch: int = 0
    best_metrics: dict = dataclasses.field(default_factory=dict)
    bad_epochs: int = 0
    elapsed_s: float = 0.0


def _new_state(cfg: TrainConfig, model: torch.nn.Module) -> _State:
    set_trainable(model, cfg.trainable)
    optimizer = make_optimizer(model, cfg.optimizer)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        base_of(optimizer),
        factor=cfg.schedule.plateau_factor,
        patience=cfg.schedule.plateau_patience,
    )
    return _State(model, WeightAverage(model, cfg.optimizer.ema_decay), optimizer, scheduler)


# Progress fields of _State saved in a checkpoint and restored from it.
_PROGRESS = (
    "epoch",
    "history",
    "best_loss",
    "best_epoch",
    "best_metrics",
    "bad_epochs",
    "elapsed_s",
)


def _checkpoint(state: _State, cfg: TrainConfig, data_hash: str) -> dict:
    return {
        "format": CHECKPOINT_FORMAT,
        "train_config": cfg.to_dict(),
        "model_config": state.model.config.to_dict(),
        "species": list(state.model.species),
        "data_hash": data_hash,
        "model": state.model.state_dict(),
        "ema": state.ema.state_dict(),
        "optimizer": state.optimizer.state_dict(),
        "scheduler": state.scheduler.state_dict(),
        **{name: getattr(state, name) for name in _PROGRESS},
    }


def _restore(path: Path, cfg: TrainConfig, data: TrainingData) -> _State:
    saved = torch.load(path, map_location="cpu", weights_only=True)
    if saved.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a legato-ase training checkpoint.")
    if saved["data_hash"] != data.data_hash:
        raise ValueError(
            f"the data files changed since {path} was written (different hash); resume only "
            "with the same data, or start a new run in another output_dir."
        )
    model = build_model(
        ModelConfig.from_dict(saved["model_config"]),
        saved["species"],
        seed=cfg.seed,
        dtype=DTYPES[cfg.dtype],
        device=cfg.device,
    )
    model.load_state_dict(saved["model"])
    state = _new_state(cfg, model)
    state.ema.load_state_dict(saved["ema"])
    state.optimizer.load_state_dict(saved["optimizer"])
    state.scheduler.load_state_dict(saved["scheduler"])
    for name in _PROGRESS:
        setattr(state, name, saved[name])
    return state


def _train_step(state: _State, batch, cfg: TrainConfig, errors: ErrorAccumulator) -> float:
    """One optimizer step; metrics come from the first pass, at the unperturbed weights."""
    model, clip = state.model, cfg.optimizer.grad_clip

    def closure(record: bool = False):
        state.optimizer.zero_grad(set_to_none=True)
        pred = predict(model, batch, create_graph=True)
        terms = loss_terms(pred, batch, cfg.loss)
        terms["loss"].backward()
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        if record:
            errors.add(pred, batch)
        return float(terms["loss"].detach())

    loss = closure(record=True)
    if isinstance(state.optimizer, SAM):
        state.optimizer.step(closure)
    else:
        state.optimizer.step()
    state.ema.update(model)
    return loss


def _train_epoch(state: _State, frames: Sequence[Frame], cfg: TrainConfig, show: bool) -> dict:
    from tqdm.auto import tqdm

    generator = torch.Generator().manual_seed(cfg.seed * 100_003 + state.epoch)
    order = torch.randperm(len(frames), generator=generator).tolist()
    errors = ErrorAccumulator(state.model.species)
    n_batches = -(-len(frames) // cfg.schedule.batch_size)
    bar = tqdm(total=n_batches, desc=f"epoch {state.epoch + 1}", disable=not show, leave=False)
    losses = []
    for batch in iterate_batches(frames, cfg.schedule.batch_size, order):
        losses.append(_train_step(state, batch_to(batch, cfg.device), cfg, errors))
        bar.update(1)
        bar.set_postfix(loss=f"{losses[-1]:.3g}")
    bar.close()
    return {"loss": sum(losses) / len(losses), **errors.metrics()}


def _lbfgs_epoch(state: _State, frames: Sequence[Frame], cfg: TrainConfig, show: bool) -> dict:
    """One L-BFGS step (up to ``lbfgs_iterations`` line-searched iterations) on the loss of
    the whole training set, accumulated over batches of ``batch_size`` frames.

    The loss is the frame-weighted mean of the batch losses; the metrics are those at the
    weights the epoch started from (its first evaluation).
    """
    from tqdm.auto import tqdm

    model, n_frames = state.model, len(frames)
    errors = ErrorAccumulator(model.species)
    losses: list[float] = []
    bar = tqdm(desc=f"epoch {state.epoch + 1}", unit="eval", disable=not show, leave=False)

    def closure() -> float:
        state.optimizer.zero_grad(set_to_none=True)
        total = 0.0
        for batch in iterate_batches(frames, cfg.schedule.batch_size):
            batch = batch_to(batch, cfg.device)
            pred = predict(model, batch, create_graph=True)
            loss = loss_terms(pred, batch, cfg.loss)["loss"] * (batch.energy.numel() / n_frames)
            loss.backward()
            if not losses:
                errors.add(pred, batch)
            total += float(loss.detach())
        losses.append(total)
        bar.update(1)
        bar.set_postfix(loss=f"{total:.3g}")
        return total

    state.optimizer.step(closure)
    state.ema.update(model)
    bar.close()
    return {"loss": losses[0], **errors.metrics()}


def _record_epoch(state: _State, train_m: dict, val_m: dict, seconds: float) -> dict:
    row = {
        "epoch": state.epoch,
        "lr": base_of(state.optimizer).param_groups[0]["lr"],
        "time_s": seconds,
    }
    row.update({f"train_{k}": v for k, v in train_m.items()})
    row.update({f"val_{k}": v for k, v in val_m.items()})
    state.history.append(row)
    return row


def _metadata(cfg: TrainConfig, data: TrainingData, state: _State) -> dict:
    import ase
    import e3nn

    from .. import __version__

    opt = cfg.optimizer
    return {
        "training": {
            "optimizer": opt.name,
            "lr": opt.lr,
            "sam": opt.sam,
            "rho": opt.rho if opt.sam != "none" else None,
            "sam_interval": opt.sam_interval,
            "ema_decay": opt.ema_decay,
            "epochs": state.epoch,
            "best_epoch": state.best_epoch,
            "n_train": len(data.train),
            "n_validation": len(data.validation),
            "data_files": [Path(f).name for f in data.files],
            "data_hash": data.data_hash,
            "validation_metrics": state.best_metrics,
            "config": _portable_config(cfg),
            **_started_from(cfg),
        },
        "versions": {
            "legato_ase": __version__,
            "torch": str(torch.__version__),
            "e3nn": e3nn.__version__,
            "ase": ase.__version__,
            "python": platform.python_version(),
        },
    }


def _started_from(cfg: TrainConfig) -> dict:
    """With ``init_from``: the starting file's name, checksum and how it was made."""
    if not cfg.init_from:
        return {}
    path = init_path(cfg)
    payload = read_model_file(path)
    return {
        "started_from": {
            "file": _portable_start(cfg),
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "training": payload.get("metadata", {}).get("training"),
        }
    }


def _portable_config(cfg: TrainConfig) -> dict:
    """The config for a model's metadata, without the paths of the machine that trained it."""
    out = cfg.to_dict()
    out.pop("base_dir", None)
    out["output_dir"] = _portable_path(out["output_dir"])
    if out.get("init_from"):
        out["init_from"] = _portable_start(cfg)
    for key in ("train", "validation"):
        out["data"][key] = [_portable_path(p) for p in out["data"][key]]
    return out


def _portable_start(cfg: TrainConfig) -> str:
    """``init_from`` as given if relative, else relative to the run's output folder."""
    if not Path(cfg.init_from).is_absolute():
        return cfg.init_from
    return os.path.relpath(cfg.init_from, Path(cfg.output_dir).resolve())


def _portable_path(path: str) -> str:
    return Path(path).name if Path(path).is_absolute() else path


def _after_epoch(
    state: _State, cfg: TrainConfig, data: TrainingData, out: Path, row: dict
) -> str | None:
    """Keep the best model, write curve and checkpoint; the reason to stop, if any."""
    state.scheduler.step(row["val_loss"])
    if row["val_loss"] < state.best_loss:
        state.best_loss, state.best_epoch, state.bad_epochs = row["val_loss"], state.epoch, 0
        state.best_metrics = {k[4:]: v for k, v in row.items() if k.startswith("val_")}
        save_model(state.ema.model, out / "best.pt", _metadata(cfg, data, state))
        copy_atomic(out / "best.pt", out / "model.pt")
    else:
        state.bad_epochs += 1
    write_csv(state.history, out / "learning_curve.csv")
    plot_curves({Path(cfg.output_dir).name: state.history}, out / "learning_curve.png")
    atomic_torch_save(_checkpoint(state, cfg, data.data_hash), out / "checkpoint.pt")
    sched = cfg.schedule
    if base_of(state.optimizer).param_groups[0]["lr"] < sched.min_lr:
        return "learning rate below min_lr"
    if (
        sched.early_stopping_patience is not None
        and state.bad_epochs >= sched.early_stopping_patience
    ):
        return f"no validation improvement in {state.bad_epochs} epochs"
    if sched.max_minutes is not None and state.elapsed_s > 60 * sched.max_minutes:
        return f"time budget of {sched.max_minutes} min used"
    return None


def _finish(
    state: _State, cfg: TrainConfig, data: TrainingData, out: Path, reason: str
) -> TrainResult:
    if not (out / "model.pt").exists():  # a run from before model.pt was kept current
        copy_atomic(out / "best.pt", out / "model.pt")
    return TrainResult(
        out / "model.pt", out, state.epoch, state.best_epoch, state.best_metrics, reason
    )


def _loop(state: _State, cfg: TrainConfig, data: TrainingData, out: Path, show: bool) -> str:
    from tqdm.auto import tqdm

    if state.epoch >= cfg.schedule.epochs:
        return "all epochs already done"
    bar = tqdm(total=cfg.schedule.epochs, initial=state.epoch, desc="training", disable=not show)
    reason = f"{cfg.schedule.epochs} epochs done"
    run_epoch = _lbfgs_epoch if cfg.optimizer.name == "lbfgs" else _train_epoch
    while state.epoch < cfg.schedule.epochs:
        start = time.perf_counter()
        state.model.train()
        train_m = run_epoch(state, data.train, cfg, show)
        val_m = evaluate_errors(state.ema.model, data.validation, cfg.schedule.batch_size, cfg.loss)
        state.epoch += 1
        seconds = time.perf_counter() - start
        state.elapsed_s += seconds
        row = _record_epoch(state, train_m, val_m, seconds)
        stop = _after_epoch(state, cfg, data, out, row)
        bar.update(1)
        bar.set_postfix(
            val_loss=f"{row['val_loss']:.3g}", f_mae=f"{1000 * row['val_forces_mae']:.1f}meV/Å"
        )
        if stop:
            reason = stop
            break
    bar.close()
    return reason


def _start(cfg: TrainConfig, data, base: ModelConfig, checkpoint: Path, resume: bool) -> _State:
    """A restored or a new training state, saying which."""
    if resume and checkpoint.exists():
        state = _restore(checkpoint, cfg, data)
        print(f"resuming from epoch {state.epoch} of {cfg.schedule.epochs} ({checkpoint})")
        return state
    if resume:
        print(f"no checkpoint in {checkpoint.parent} to resume from: starting a fresh run")
    build = build_from_file if cfg.init_from else build_from_data
    return _new_state(cfg, build(cfg, data, base))


def train(cfg: TrainConfig, resume: bool = False, progress: bool = True) -> TrainResult:
    """Train a model as ``cfg`` says; with ``resume`` continue from the run folder's checkpoint.

    Ctrl-C stops with ``model.pt`` from the best epoch so far; the last epoch's checkpoint
    stays valid, so ``resume=True`` continues from it. Ctrl-C before the first epoch ends
    raises KeyboardInterrupt (nothing to keep).
    """
    from ..parallel.device import check_device

    check_device(cfg.device)
    out = Path(cfg.output_dir)
    checkpoint = out / "checkpoint.pt"
    if checkpoint.exists() and not resume:
        raise ValueError(
            f"{out} already holds a run (checkpoint.pt); continue it with --resume, or choose "
            "another output_dir."
        )
    old_threads = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    try:
        base = model_config(cfg)
        data = load_training_data(cfg, base.r_max)
        out.mkdir(parents=True, exist_ok=True)
        state = _start(cfg, data, base, checkpoint, resume)
        try:
            reason = _loop(state, cfg, data, out, progress)
        except KeyboardInterrupt:
            if not (out / "best.pt").exists():
                raise
            reason = "interrupted (Ctrl-C); continue with --resume"
        return _finish(state, cfg, data, out, reason)
    finally:
        torch.set_num_threads(old_threads)
