"""What does a trained local + LRC model of the Yukawa case do at growing box sizes?

    python benchmarks/results/long_range_learning/diagnose.py MODEL.pt

On the benchmark's Yukawa test boxes (3 each of 7, 10, 14 Å) prints the force RMSE, the
forces of the layer's two energy terms (½·q·φ and the head), the range of the potentials φ
and the spread of the charges; then the layer's effective pair kernel against the true long
part e^{−0.3r}/r: with the charges at their mean q̄ and the head linearised (slope w) at the
mean φ, V_eff(r) = Σ_c a_c·(q̄_c² + 2·w_c·q̄_c)·K_c(r), plus the head's curvature.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from bench_long_range_learning import dataset  # noqa: E402

from legato_ase import LegatoCalculator, load_model  # noqa: E402
from legato_ase.model.longrange import real_space_kernel  # noqa: E402


def _terms(layer, record: dict):
    """Energy functions of the layer keeping one term, recording charges and potentials."""
    full = layer.energies

    def keep(term):
        def energies(q, phi):
            record.setdefault("q", []).append(q.detach())
            record.setdefault("phi", []).append(phi.detach())
            if term == "all":
                return full(q, phi)
            if term == "charges":
                return 0.5 * (q * phi).sum(-1)
            if term == "head":
                return layer.head(phi).squeeze(-1)
            return 0.0 * (q * phi).sum(-1)

        return energies

    return keep


def by_box(model) -> tuple[torch.Tensor, torch.Tensor]:
    """Print the per-box table; return the charges and potentials of the largest boxes."""
    layer, record = model.long_range, {}
    keep = _terms(layer, record)
    calc = LegatoCalculator(model, max_edges=None)
    rms = lambda x: float(np.sqrt(np.mean(x**2)))  # noqa: E731
    print("| L (Å) | force RMSE | |F| | F(½qφ) | F(head) | φ min..max (std) | q std/|mean| |")
    print("|---|---|---|---|---|---|---|")
    for length in (7.0, 10.0, 14.0):
        frames = dataset("yukawa", length, 3, seed=20_000 + int(length))
        forces = {}
        for term in ("all", "charges", "head", "none"):
            layer.energies = keep(term)
            record.clear()
            forces[term] = np.concatenate([calc.calculate_batch([a])[0]["forces"] for a in frames])
            if term == "all":
                q, phi = torch.cat(record["q"]), torch.cat(record["phi"])
        ref = np.concatenate([a.arrays["forces"] for a in frames])
        spread = (q.std(0) / q.mean(0).abs()).tolist()
        cells = [
            f"{length:g}",
            f"{rms(forces['all'] - ref):.4f}",
            f"{rms(ref):.3f}",
            f"{rms(forces['charges'] - forces['none']):.4f}",
            f"{rms(forces['head'] - forces['none']):.4f}",
            f"{phi.min():.2f}..{phi.max():.2f} ({', '.join(f'{s:.3f}' for s in phi.std(0))})",
            ", ".join(f"{s:.3f}" for s in spread),
        ]
        print("| " + " | ".join(cells) + " |")
    del layer.energies  # back to the class method
    return q, phi


def effective_kernel(layer, q: torch.Tensor, phi: torch.Tensor) -> None:
    """Print V_eff(r) against e^{−0.3r}/r, and the head's slope and curvature."""
    centre = phi.mean(0)
    slope = torch.func.grad(lambda p: layer.head(p.unsqueeze(0)).sum())(centre)
    curvature = torch.func.hessian(lambda p: layer.head(p.unsqueeze(0)).sum())(centre)
    print(f"\nhead slope {slope.tolist()}, curvature {curvature.tolist()}")
    print(f"amplitudes {layer.amplitude.tolist()}, screenings {layer.screening.abs().tolist()}")
    r = torch.tensor([4.0, 6.0, 8.0, 10.0, 12.0, 14.0], dtype=torch.float64)
    kernel = real_space_kernel(r.unsqueeze(-1), layer.screening.abs(), layer.sigma)
    qm = q.mean(0)
    v_eff = ((qm**2 + 2 * slope * qm) * layer.amplitude * kernel).sum(-1)
    true = torch.exp(-0.3 * r) / r
    print("\n| r (Å) | " + " | ".join(f"{x:g}" for x in r.tolist()) + " |")
    print("|---|" + "---|" * len(r))
    print("| V_eff / true | " + " | ".join(f"{x:.3f}" for x in (v_eff / true).tolist()) + " |")


def main() -> None:
    torch.set_num_threads(1)
    model = load_model(sys.argv[1])
    q, phi = by_box(model)
    effective_kernel(model.long_range, q, phi)


if __name__ == "__main__":
    main()
