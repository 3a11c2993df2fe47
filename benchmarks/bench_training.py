"""Accuracy and training cost of Allegro (Adam) vs Allegro-Legato (SAM) on the ammonia data.

    python benchmarks/bench_training.py                 # accuracy + sharpness + cost
    python benchmarks/bench_training.py --skip-cost     # only the bundled models' errors
    python benchmarks/bench_training.py --quick         # small, for a smoke check

1. Validation errors of the bundled models nh3-allegro and nh3-legato on the validation frames
   of their training configs (the same seeded block split), and the Legato/Allegro ratios.
   Targets: force MAE < 43 meV/Å (1 kcal/mol/Å) for both, Legato within 10 % of Allegro.
2. Expected sharpness (Ibayashi et al. 2023) of both models on training frames.
3. Training cost per epoch of the bundled architecture with Adam, SAM, SAM every 2nd step
   and ASAM (same frames, one thread). CPU time of this process is reported next to wall
   time because the machine is shared; the ratios use CPU time. Target: SAM <= 2.1x Adam.

Results go to benchmarks/results/training/ (JSON and a text table).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from legato_ase import load_model
from legato_ase.train import evaluate_errors, expected_sharpness, load_train_config
from legato_ase.train.prepare import build_from_data, load_training_data, model_config
from legato_ase.train.trainer import _new_state, _train_epoch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "training"
MODELS = {"allegro": "nh3-allegro", "legato": "nh3-legato"}


def validation_data(quick: bool):
    cfg = load_train_config(ROOT / "configs" / "nh3-allegro.yaml")
    if quick:
        cfg = cfg.replace(data=cfg.data.__class__(**{**cfg.data.__dict__, "stride": 5}))
    return cfg, load_training_data(cfg, model_config(cfg).r_max)


def accuracy(data, batch_size: int = 8) -> dict:
    out = {}
    for name, model_name in MODELS.items():
        model = load_model(model_name)
        out[name] = evaluate_errors(model, data.validation, batch_size)
        out[name]["epochs"] = model.metadata.get("training", {}).get("epochs")
    return out


def sharpness(data, n_samples: int, n_frames: int) -> dict:
    frames = data.train[:: max(1, len(data.train) // n_frames)][:n_frames]
    out = {}
    for name, model_name in MODELS.items():
        r = expected_sharpness(load_model(model_name), frames, sigma=0.05, n_samples=n_samples)
        out[name] = {
            "sharpness": r.sharpness,
            "stderr": r.stderr,
            "base_loss": r.base_loss,
            "n_samples": n_samples,
            "n_frames": len(frames),
        }
    return out


def epoch_cost(cfg, data, n_frames: int, repeats: int) -> dict:
    """CPU and wall seconds per epoch of n_frames for each optimizer variant."""
    variants = {
        "adam": {"sam": "none"},
        "sam": {"sam": "sam"},
        "sam_every_2": {"sam": "sam", "sam_interval": 2},
        "asam": {"sam": "asam", "rho": 0.05},
    }
    frames = data.train[:n_frames]
    torch.set_num_threads(1)
    out = {}
    for name, changes in variants.items():
        opt = cfg.optimizer.__class__(**{**cfg.optimizer.__dict__, **changes})
        run_cfg = cfg.replace(optimizer=opt)
        state = _new_state(run_cfg, build_from_data(run_cfg, data, model_config(run_cfg)))
        cpu, wall = [], []
        for _ in range(repeats):
            c0, w0 = time.process_time(), time.perf_counter()
            _train_epoch(state, frames, run_cfg, show=False)
            cpu.append(time.process_time() - c0)
            wall.append(time.perf_counter() - w0)
        out[name] = {"cpu_s": min(cpu), "wall_s": min(wall), "frames": len(frames)}
    for name in out:
        out[name]["ratio_to_adam"] = out[name]["cpu_s"] / out["adam"]["cpu_s"]
    return out


def table(results: dict) -> str:
    lines = []
    if "accuracy" in results:
        acc = results["accuracy"]
        lines.append("validation errors (meV/Å, meV/atom)")
        lines.append(
            f"{'model':<10} {'epochs':>6}"
            + "".join(
                f"{h:>9}" for h in ("F MAE", "F RMSE", "F_H MAE", "F_N MAE", "E MAE", "E RMSE")
            )
        )
        keys = ("forces_mae", "forces_rmse", "forces_H_mae", "forces_N_mae")
        for name, m in acc.items():
            forces = "".join(f"{1e3 * m[k]:9.2f}" for k in keys)
            energy = "".join(
                f"{1e3 * m[k]:9.3f}" for k in ("energy_per_atom_mae", "energy_per_atom_rmse")
            )
            lines.append(f"{name:<10} {m['epochs']!s:>6}{forces}{energy}")
        ratio = acc["legato"]["forces_mae"] / acc["allegro"]["forces_mae"]
        lines.append(
            f"legato/allegro force MAE ratio: {ratio:.3f} (target <= 1.10); "
            f"both < 43.4 meV/Å: {max(m['forces_mae'] for m in acc.values()) < 0.0434}"
        )
    if "sharpness" in results:
        lines.append("expected sharpness (sigma 0.05)")
        for name, s in results["sharpness"].items():
            lines.append(
                f"{name:<10} S = {s['sharpness']:.4g} ± {s['stderr']:.2g}  "
                f"(L = {s['base_loss']:.4g}, {s['n_samples']} samples, {s['n_frames']} frames)"
            )
    if "cost" in results:
        lines.append("training cost per epoch (1 thread)")
        lines.append(f"{'optimizer':<12} {'frames':>6} {'CPU s':>8} {'wall s':>8} {'x Adam':>7}")
        for name, c in results["cost"].items():
            lines.append(
                f"{name:<12} {c['frames']:>6} {c['cpu_s']:8.2f} {c['wall_s']:8.2f} "
                f"{c['ratio_to_adam']:7.2f}"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--skip-cost", action="store_true")
    parser.add_argument("--skip-sharpness", action="store_true")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    cfg, data = validation_data(args.quick)
    results: dict = {"n_train": len(data.train), "n_validation": len(data.validation)}
    results["accuracy"] = accuracy(data)
    print(table(results), flush=True)
    if not args.skip_sharpness:
        results["sharpness"] = sharpness(data, 5 if args.quick else 50, 4 if args.quick else 40)
    if not args.skip_cost:
        results["cost"] = epoch_cost(cfg, data, 8 if args.quick else 40, 1 if args.quick else 2)
    text = table(results)
    print(text)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    suffix = "_quick" if args.quick else ""
    (out / f"bench_training{suffix}.json").write_text(json.dumps(results, indent=2))
    (out / f"bench_training{suffix}.txt").write_text(text + "\n")


if __name__ == "__main__":
    main()
