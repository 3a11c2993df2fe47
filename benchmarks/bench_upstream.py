"""legato-ase vs the current upstream nequip-allegro at equal settings.

Settings (REFERENCE §2 item 9): l_max 1, 2 layers, 64 scalar / 32 tensor features, r_max 5 Å,
8 Bessel functions, one hidden layer of 64 in the two-body and latent MLPs, readout 32,
128-atom ammonia box, energy+forces+stress per call, float32 and float64, 1 thread.

Upstream needs its own environment (it pins other versions):

    python -m venv /tmp/venv_nequip
    /tmp/venv_nequip/bin/pip install torch==2.13.0 nequip-allegro ase vesin
    python benchmarks/bench_upstream.py --upstream-python /tmp/venv_nequip/bin/python

The two sides run in separate processes, alternately, so load changes hit both.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from _timing import best_of  # noqa: E402  (stdlib only: importable in both envs)

R_MAX, L_MAX, LAYERS, SCALAR, TENSOR = 5.0, 1, 2, 64, 32


def run_ours(dtype: str, repeats: int) -> dict:
    import torch

    import legato_ase
    from legato_ase.structures import ammonia_crystal

    torch.set_num_threads(1)
    model = legato_ase.build_model(
        {
            "r_max": R_MAX,
            "l_max": L_MAX,
            "n_layers": LAYERS,
            "n_scalar": SCALAR,
            "n_tensor": TENSOR,
            "two_body_mlp": [64],
            "latent_mlp": [64],
            "edge_energy_mlp": [32],
            "num_bessel": 8,
            "avg_num_neighbors": 50.0,
        },
        dtype=getattr(torch, dtype),
    )
    atoms = ammonia_crystal(2)
    atoms.calc = legato_ase.LegatoCalculator(model)

    def call():
        atoms.calc.reset()
        atoms.get_stress(), atoms.get_forces()

    return {"seconds": best_of(call, repeats), "params": sum(p.numel() for p in model.parameters())}


def run_upstream(dtype: str, repeats: int) -> dict:
    import torch
    from allegro.model import AllegroModel
    from nequip.data.transforms import ChemicalSpeciesToAtomTypeMapper, NeighborListTransform
    from nequip.integrations.ase import NequIPCalculator

    sys.path.insert(0, __file__.rsplit("/", 2)[0])
    from nequip.utils.global_state import set_global_state

    from legato_ase.structures import ammonia_crystal  # pure ASE; importable without our deps

    set_global_state()
    torch.set_num_threads(1)
    model = AllegroModel(
        seed=0,
        model_dtype=dtype,
        r_max=R_MAX,
        type_names=["H", "N"],
        l_max=L_MAX,
        parity=True,
        radial_chemical_embed={"_target_": "allegro.nn.TwoBodyBesselScalarEmbed", "num_bessels": 8},
        num_layers=LAYERS,
        num_scalar_features=SCALAR,
        num_tensor_features=TENSOR,
        allegro_mlp_hidden_layers_depth=1,
        allegro_mlp_hidden_layers_width=64,
        readout_mlp_hidden_layers_depth=1,
        readout_mlp_hidden_layers_width=32,
        avg_num_neighbors=50.0,
    ).eval()
    calc = NequIPCalculator(
        model,
        device="cpu",
        transforms=[
            ChemicalSpeciesToAtomTypeMapper(model_type_names=["H", "N"]),
            NeighborListTransform(r_max=R_MAX),
        ],
    )
    atoms = ammonia_crystal(2)
    atoms.calc = calc

    def call():
        calc.reset()
        atoms.get_stress(), atoms.get_forces()

    return {"seconds": best_of(call, repeats), "params": sum(p.numel() for p in model.parameters())}


def _child(python: str, side: str, dtype: str, repeats: int) -> dict:
    cmd = [python, __file__, "--side", side, "--dtype", dtype, "--repeats", str(repeats)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=1200)
    if out.returncode != 0:
        raise RuntimeError(f"{side} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--upstream-python", default="/tmp/venv_nequip/bin/python")
    parser.add_argument("--side", choices=["ours", "upstream"])
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if args.side:
        fn = run_ours if args.side == "ours" else run_upstream
        print(json.dumps(fn(args.dtype, args.repeats)))
        return
    print("128-atom NH3, l_max 1, 2 layers, 64/32 features, r_max 5, e+f+s per call, 1 thread")
    print(
        f"{'dtype':>8} {'legato-ase ms':>14} {'upstream ms':>12} {'speed-up':>9}"
        f" {'params ours/up':>16}"
    )
    for dtype in ("float32", "float64"):
        ours, up = [], []
        for _ in range(args.rounds):
            ours.append(_child(sys.executable, "ours", dtype, args.repeats))
            up.append(_child(args.upstream_python, "upstream", dtype, args.repeats))
        t_ours = min(r["seconds"] for r in ours)
        t_up = min(r["seconds"] for r in up)
        print(
            f"{dtype:>8} {1e3 * t_ours:14.1f} {1e3 * t_up:12.1f} {t_up / t_ours:9.2f} "
            f"{ours[0]['params']:>7}/{up[0]['params']:<8}"
        )


if __name__ == "__main__":
    main()
