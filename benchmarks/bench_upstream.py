"""legato-ase vs the current upstream nequip-allegro at equal settings, eager and compiled.

Settings (the issue's comparison): l_max 1, 2 layers, 64 scalar / 32 tensor features,
r_max 5 Å, 8 Bessel functions, one hidden layer of 64 in the two-body and latent MLPs,
readout 32, 128-atom ammonia box, energy+forces+stress per call (neighbour list included),
float32 and float64, 1 and 2 threads. Four contenders:

- ours eager: ``LegatoCalculator(model)``;
- ours compiled: ``LegatoCalculator(model, compile=True)`` (torch.compile, Inductor);
- upstream eager: ``NequIPCalculator`` around the eager ``AllegroModel``;
- upstream AOTInductor: the same model exported by upstream's own ``nequip-compile --mode
  aotinductor --target ase`` code path (``nequip.utils.aot.aot_export_model`` with the ASE
  target's fields and dynamic node/edge dimensions), loaded by
  ``NequIPCalculator.from_compiled_model``;
- upstream AOTInductor, tuned: the same export, run with the glibc malloc settings that
  ``LegatoCalculator(compile=True)`` applies to its own process (``legato_ase.memory``), here
  through glibc's environment variables: a control showing how much of the gap is that
  setting.

Upstream needs its own environment (it pins other versions):

    python -m venv /work/wt/upstream-venv
    /work/wt/upstream-venv/bin/pip install torch==2.13.0
    /work/wt/upstream-venv/bin/pip install nequip==0.19.1 nequip-allegro==0.8.3 ase vesin
    python benchmarks/bench_upstream.py --upstream-python /work/wt/upstream-venv/bin/python

Every (contender, dtype, threads) cell runs in its own process, in alternation with the others
and for several rounds, so that load changes hit all alike; min and median are over all calls
of all rounds. Compile costs (first call, or the export) are reported apart.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

R_MAX, L_MAX, LAYERS, SCALAR, TENSOR = 5.0, 1, 2, 64, 32
SIDES = ("ours-eager", "ours-compiled", "upstream-eager", "upstream-aoti", "upstream-aoti-tuned")
# legato_ase.memory's settings, as glibc reads them from the environment
TUNED_MALLOC = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(2**31 - 1)}
ROOT = Path(__file__).resolve().parents[1]


def _times(call, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        out.append(time.perf_counter() - start)
    return out


def _ase_call(calc, atoms):
    atoms.calc = calc

    def call():
        calc.reset()
        atoms.get_stress(), atoms.get_forces()

    return call


def ours_model(dtype: str):
    import torch

    import legato_ase

    config = {
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
    }
    return legato_ase.build_model(config, dtype=getattr(torch, dtype), seed=0)


def run_ours(dtype: str, repeats: int, compiled: bool) -> dict:
    import legato_ase
    from legato_ase.structures import ammonia_crystal

    model = ours_model(dtype)
    calc = legato_ase.LegatoCalculator(model, compile=compiled)
    call = _ase_call(calc, ammonia_crystal(2))
    start = time.perf_counter()
    call()
    first = time.perf_counter() - start
    params = sum(p.numel() for p in model.parameters())
    return {"times": _times(call, repeats), "first_call_s": first, "params": params}


def upstream_model(dtype: str):
    from allegro.model import AllegroModel

    return AllegroModel(
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


def _upstream_setup():
    from nequip.utils.global_state import set_global_state

    sys.path.insert(0, str(ROOT))  # legato_ase.structures is pure ASE
    set_global_state()


def _upstream_transforms():
    from nequip.data.transforms import ChemicalSpeciesToAtomTypeMapper, NeighborListTransform

    return [
        ChemicalSpeciesToAtomTypeMapper(model_type_names=["H", "N"]),
        NeighborListTransform(r_max=R_MAX),
    ]


def export_upstream(dtype: str, path: str) -> dict:
    """Upstream's `nequip-compile --mode aotinductor --target ase` steps on our model."""
    import torch
    from nequip.data.ase import from_ase
    from nequip.scripts._compile_utils import COMPILE_TARGET_DICT
    from nequip.scripts.compile import _AOT_METADATA_KEY, _parse_bounds_to_Dim
    from nequip.utils.aot import aot_export_model
    from nequip.utils.aoti_metadata import (
        NEQUIP_AOTI_INPUTS_KEY,
        NEQUIP_AOTI_OUTPUTS_KEY,
        serialize_aoti_keys,
    )
    from nequip.utils.global_state import get_latest_global_state

    _upstream_setup()
    from legato_ase.structures import ammonia_crystal

    model = upstream_model(dtype)
    data = from_ase(ammonia_crystal(2))
    for transform in _upstream_transforms():
        data = transform(data)
    target = COMPILE_TARGET_DICT["ase"]
    batch_map = {
        k: _parse_bounds_to_Dim(n, "2,inf")
        for k, n in (("graph", "num_frames"), ("node", "num_nodes"), ("edge", "num_edges"))
    }
    batch_map = target["batch_map_settings"](batch_map)
    data = target["data_settings"](data)
    metadata = {**model.metadata, **get_latest_global_state(only_metadata_related=True)}
    metadata = {k: str(int(v)) if isinstance(v, bool) else str(v) for k, v in metadata.items()}
    metadata[NEQUIP_AOTI_INPUTS_KEY] = serialize_aoti_keys(target["input"])
    metadata[NEQUIP_AOTI_OUTPUTS_KEY] = serialize_aoti_keys(target["output"])
    start = time.perf_counter()
    aot_export_model(
        model=model,
        device="cpu",
        input_fields=target["input"],
        output_fields=target["output"],
        data=data,
        batch_map=batch_map,
        output_path=path,
        inductor_configs={_AOT_METADATA_KEY: metadata},
        seed=1,
    )
    del torch
    return {"export_s": time.perf_counter() - start}


def run_upstream(dtype: str, repeats: int, aoti_path: str | None) -> dict:
    from nequip.integrations.ase import NequIPCalculator

    _upstream_setup()
    from legato_ase.structures import ammonia_crystal

    if aoti_path:
        calc = NequIPCalculator.from_compiled_model(aoti_path, device="cpu")
        params = None
    else:
        model = upstream_model(dtype)
        calc = NequIPCalculator(model, device="cpu", transforms=_upstream_transforms())
        params = sum(p.numel() for p in model.parameters())
    call = _ase_call(calc, ammonia_crystal(2))
    start = time.perf_counter()
    call()
    first = time.perf_counter() - start
    return {"times": _times(call, repeats), "first_call_s": first, "params": params}


def _child(python: str, args: list[str], env: dict | None = None) -> dict:
    cmd = [python, __file__, *args]
    env = {**os.environ, **env} if env else None
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=3600, env=env)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def child_main(args) -> None:
    import torch

    torch.set_num_threads(args.threads)
    if args.side == "upstream-export":
        result = export_upstream(args.dtype, args.aoti_path)
    elif args.side.startswith("ours"):
        result = run_ours(args.dtype, args.repeats, args.side == "ours-compiled")
    else:
        aoti = args.aoti_path if args.side.startswith("upstream-aoti") else None
        result = run_upstream(args.dtype, args.repeats, aoti)
    print(json.dumps(result))


def _measure(args, workdir: Path) -> dict:
    """Alternating child processes: rounds × dtypes × threads × sides."""
    aoti = {d: str(workdir / f"allegro-{d}.nequip.pt2") for d in args.dtypes}
    samples: dict[tuple, list] = {}
    if any(side.startswith("upstream-aoti") for side in args.sides):
        for dtype in args.dtypes:
            if Path(aoti[dtype]).exists():
                continue
            cmd = ["--side", "upstream-export", "--dtype", dtype, "--aoti-path", aoti[dtype]]
            res = _child(args.upstream_python, cmd)
            print(f"# upstream AOTInductor export ({dtype}): {res['export_s']:.0f} s", flush=True)
    for _ in range(args.rounds):
        for dtype in args.dtypes:
            for threads in args.threads:
                for side in args.sides:
                    python = sys.executable if side.startswith("ours") else args.upstream_python
                    cmd = ["--side", side, "--dtype", dtype, "--threads", str(threads)]
                    cmd += ["--repeats", str(args.repeats), "--aoti-path", aoti[dtype]]
                    res = _child(python, cmd, TUNED_MALLOC if side.endswith("tuned") else None)
                    samples.setdefault((dtype, threads, side), []).append(res)
                    print(f"# {dtype} {threads} {side} {json.dumps(res)}", flush=True)
    return samples


def _report(samples: dict, args) -> None:
    print("128-atom NH3, l_max 1, 2 layers, 64/32 features, r_max 5, e+f+s per call (ms)")
    print(f"{args.rounds} alternating processes x {args.repeats} calls per cell; min / median")
    head = f"{'dtype':>8} {'thr':>3} " + " ".join(f"{s:>21}" for s in args.sides)
    print(head)
    for dtype in args.dtypes:
        for threads in args.threads:
            cells, stats = [], {}
            for side in args.sides:
                times = [t for r in samples[(dtype, threads, side)] for t in r["times"]]
                stats[side] = (min(times), statistics.median(times))
                cells.append(f"{1e3 * stats[side][0]:9.1f} / {1e3 * stats[side][1]:9.1f}")
            print(f"{dtype:>8} {threads:>3} " + " ".join(f"{c:>21}" for c in cells))
            _ratios(stats, dtype, threads)
    first = {
        s: max(r["first_call_s"] for k, rs in samples.items() if k[2] == s for r in rs)
        for s in args.sides
    }
    print(
        "slowest first call (compile, or cache load) per contender, s: "
        + ", ".join(f"{s} {t:.1f}" for s, t in first.items())
    )


def _ratios(stats: dict, dtype: str, threads: int) -> None:
    pairs = [
        ("upstream-aoti", "ours-compiled"),
        ("upstream-aoti-tuned", "ours-compiled"),
        ("upstream-eager", "ours-eager"),
        ("upstream-aoti", "ours-eager"),
        ("ours-eager", "ours-compiled"),
    ]
    parts = []
    for slow, fast in pairs:
        if slow in stats and fast in stats:
            r_min = stats[slow][0] / stats[fast][0]
            r_med = stats[slow][1] / stats[fast][1]
            parts.append(f"{slow}/{fast} {r_min:.2f} (median {r_med:.2f})")
    print(f"{'':>13}speed-up {dtype} {threads} thr: " + "; ".join(parts))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--upstream-python", default="/work/wt/upstream-venv/bin/python")
    parser.add_argument("--side", choices=[*SIDES, "upstream-export"])
    parser.add_argument("--aoti-path")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--dtypes", nargs="+", default=["float32", "float64"])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--sides", nargs="+", default=list(SIDES), choices=SIDES)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--aoti-dir", help="keep the upstream exports here (reused if present)")
    args = parser.parse_args()
    if args.side:
        args.threads = args.threads[0]
        child_main(args)
        return
    if args.aoti_dir:
        _report(_measure(args, Path(args.aoti_dir)), args)
        return
    with tempfile.TemporaryDirectory() as tmp:
        _report(_measure(args, Path(tmp)), args)


if __name__ == "__main__":
    main()
