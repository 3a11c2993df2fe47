"""Where the time of one calculator call goes, and how far it is from the FLOP floor.

One energy+forces+stress call of ``LegatoCalculator``, eager, split by wall-clock timers
(exclusive times, the CPU runs eager ops synchronously) into: neighbour list and graph,
spherical harmonics + radial basis + embeddings (the rest of the forward), MLPs (two-body,
latent, edge energy), environment sum, tensor product, channel mixing, backward, and the
force/virial scatter + the rest. The compiled call (``compile=True``) is one fused graph and is
timed as a whole.

FLOP count: the matrix products of the call, forward and backward (counted at dispatch), which
are nearly all of its arithmetic; the floor is that count at the GEMM rate this core reaches
on a large square product in the same dtype. The ratio call time / floor is the distance.

    python benchmarks/bench_profile.py [--preset upstream|paper] [--threads 1] [--dtype float32]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import defaultdict
from contextlib import contextmanager

import torch
from _timing import print_table
from bench_upstream import ours_model
from torch.utils._python_dispatch import TorchDispatchMode

import legato_ase
import legato_ase.calculator as calculator_module
from legato_ase.model import allegro
from legato_ase.structures import ammonia_crystal


class MatmulFlops(TorchDispatchMode):
    """Counts the FLOPs (2·m·k·n) of every matrix product run inside it."""

    def __init__(self) -> None:
        super().__init__()
        self.flops = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        packet = func.overloadpacket
        aten = torch.ops.aten
        if packet in (aten.mm, aten.addmm, aten.bmm, aten.baddbmm):
            a, b = (args[0], args[1]) if packet in (aten.mm, aten.bmm) else (args[1], args[2])
            batch = a.shape[0] if a.dim() == 3 else 1
            self.flops += 2 * batch * a.shape[-2] * a.shape[-1] * b.shape[-1]
        return func(*args, **(kwargs or {}))


class Timers:
    """Exclusive wall time per region, nested regions subtracted from their parents."""

    def __init__(self) -> None:
        self.total: dict[str, float] = defaultdict(float)
        self.stack: list[list] = []
        self.undo: list[tuple] = []

    @contextmanager
    def region(self, name: str):
        self.stack.append([name, time.perf_counter(), 0.0])
        try:
            yield
        finally:
            name, start, children = self.stack.pop()
            spent = time.perf_counter() - start
            self.total[name] += spent - children
            if self.stack:
                self.stack[-1][2] += spent

    def wrap(self, owner, attr: str, name: str) -> None:
        fn = getattr(owner, attr)
        self.undo.append((owner, attr, fn))

        def timed(*args, **kwargs):
            with self.region(name):
                return fn(*args, **kwargs)

        setattr(owner, attr, timed)

    def restore(self) -> None:
        for owner, attr, fn in reversed(self.undo):
            setattr(owner, attr, fn)
        self.undo.clear()


def _instrument(timers: Timers) -> None:
    timers.wrap(calculator_module, "atoms_to_graph", "neighbour list + graph")
    timers.wrap(allegro.Allegro, "forward", "harmonics, radial, embeddings")
    timers.wrap(allegro.MLP, "forward", "MLPs")
    timers.wrap(allegro._Layer, "environment", "environment sum")
    timers.wrap(allegro._Layer, "tensor_product", "tensor product")
    timers.wrap(allegro._Layer, "_mix", "channel mixing")
    timers.wrap(torch.autograd, "grad", "backward")


def _model(preset: str, dtype: str):
    if preset == "paper":
        return legato_ase.build_model("legato-paper", dtype=getattr(torch, dtype), seed=0), 3
    return ours_model(dtype), 2


def _call(calc, atoms):
    def run():
        calc.reset()
        atoms.calc = calc
        atoms.get_stress(), atoms.get_forces()

    return run


def gemm_rate(dtype: torch.dtype, n: int = 1024, repeats: int = 5) -> float:
    """FLOP/s of an n×n×n matrix product on this core, best of `repeats`."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    best = min(_seconds(lambda: a @ b) for _ in range(repeats))
    return 2.0 * n**3 / best


def _seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def profile(args) -> None:
    torch.set_num_threads(args.threads)
    model, size = _model(args.preset, args.dtype)
    atoms = ammonia_crystal(size)
    eager = _call(legato_ase.LegatoCalculator(model), atoms)
    with MatmulFlops() as counter:
        eager()
    flops = counter.flops
    eager()
    walls = [_seconds(eager) for _ in range(args.repeats)]
    timers = Timers()
    _instrument(timers)
    for _ in range(args.repeats):
        with timers.region("rest (forces, virial scatter, calculator)"):
            eager()
    timers.restore()  # the compiled path must trace the plain code
    rows = [
        [name, 1e3 * t / args.repeats, 100 * t / sum(timers.total.values())]
        for name, t in sorted(timers.total.items(), key=lambda kv: -kv[1])
    ]
    print(f"{len(atoms)}-atom NH3, {args.preset} settings, {args.dtype}, {args.threads} thread(s)")
    print_table(["region (eager, exclusive)", "ms/call", "%"], rows)
    _floor(args, flops, walls, atoms, model)


def _floor(args, flops: float, walls: list[float], atoms, model) -> None:
    rate = gemm_rate(getattr(torch, args.dtype))
    floor = flops / rate
    t_eager = min(walls)
    lines = [["eager", 1e3 * t_eager, 1e3 * statistics.median(walls), t_eager / floor]]
    if args.compiled:
        calc = legato_ase.LegatoCalculator(model, compile=True)
        compiled = _call(calc, atoms)
        first = _seconds(compiled)
        ts = [_seconds(compiled) for _ in range(args.repeats)]
        lines.append(["compiled", 1e3 * min(ts), 1e3 * statistics.median(ts), min(ts) / floor])
        print(f"compiled first call (compile or cache load): {first:.1f} s")
        _compiled_split(_model(args.preset, args.dtype)[0], atoms, args.repeats)
    print(
        f"matrix-product FLOPs per call (forward + backward): {flops / 1e9:.2f} GFLOP; "
        f"GEMM rate of this core: {rate / 1e9:.1f} GFLOP/s; floor {1e3 * floor:.1f} ms"
    )
    print_table(["path", "min ms", "median ms", "x floor"], lines)


def _compiled_split(model, atoms, repeats: int) -> None:
    """Self time of the compiled call by kind: GEMMs, Inductor's fused kernels, the rest.

    ``model`` must not have been compiled yet: it is compiled here with kernel markers.
    """
    from torch._inductor import config

    markers = {"cpp.enable_kernel_profile": True, "fx_graph_cache": False}
    torch._dynamo.reset()  # a graph compiled earlier in this process would serve this model
    no_cache = torch._functorch.config.patch(enable_autograd_cache=False)
    with config.patch(markers), no_cache:  # a separate compile, not from a cache, with markers
        call = _call(legato_ase.LegatoCalculator(model, compile=True), atoms)
        call()
    call()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for _ in range(repeats):
            call()
    split: dict[str, float] = defaultdict(float)
    for event in prof.key_averages():
        if event.key in ("aten::mm", "aten::addmm", "aten::bmm"):
            kind = "matrix products (MKL/oneDNN)"
        elif "cpp_fused" in event.key:
            kind = "fused element-wise, gather/scatter kernels (Inductor)"
        else:
            kind = "rest (neighbour list, calculator, graph launch)"
        split[kind] += event.self_cpu_time_total / 1e3 / repeats  # µs -> ms per call
    total = sum(split.values())
    rows = [[k, t, 100 * t / total] for k, t in sorted(split.items(), key=lambda kv: -kv[1])]
    print("compiled call, self time by kind (torch.profiler, Inductor kernel markers on):")
    print_table(["kind", "ms/call", "%"], rows)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", choices=["upstream", "paper"], default="upstream")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-compiled", dest="compiled", action="store_false")
    profile(parser.parse_args())


if __name__ == "__main__":
    main()
