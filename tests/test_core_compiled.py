"""The compiled inference path: same results as eager, no recompiles in MD, clear fallback."""

import numpy as np
import pytest
import torch
from ase import units
from ase.md.verlet import VelocityVerlet
from helpers import random_structure, tiny_model

from legato_ase import LegatoCalculator
from legato_ase.data import atoms_to_graph
from legato_ase.model.compiled import CompileFallbackWarning, compile_model, compile_status


class CountingBackend:
    """A torch.compile backend that counts the graphs it is asked to compile."""

    def __init__(self, inner: str = "aot_eager") -> None:
        self.inner, self.compiles = inner, 0

    def __call__(self, gm, example_inputs):
        self.compiles += 1
        return torch._dynamo.lookup_backend(self.inner)(gm, example_inputs)


def _failing_backend(gm, example_inputs):
    raise RuntimeError("no C++ compiler here")


def _results(model, atoms):
    out = model.evaluate(atoms_to_graph(atoms, model.species, model.r_max))
    return {k: v.detach().numpy() for k, v in out.items()}


def _md_sizes(calc, sizes, steps=3):
    """Short MD on structures of different atom (and so edge) counts."""
    for n, size in enumerate(sizes):
        atoms = random_structure(size, seed=10 + n)
        atoms.calc = calc
        VelocityVerlet(atoms, timestep=0.5 * units.fs).run(steps)


def _assert_same(a, b, rtol):
    for key in a:
        scale = np.abs(a[key]).max() + 1e-300
        assert np.abs(a[key] - b[key]).max() <= rtol * scale, key


def test_compiled_graph_gives_eager_results_in_float64():
    torch._dynamo.reset()
    model, atoms = tiny_model(), random_structure(12, seed=4)
    eager = _results(model, atoms)
    compile_model(model, backend=CountingBackend())
    _assert_same(_results(model, atoms), eager, rtol=1e-12)
    assert compile_status(model) == "compiled"


def test_no_recompilation_when_atom_and_edge_counts_change():
    torch._dynamo.reset()
    backend = CountingBackend()
    model = compile_model(tiny_model(), backend=backend)
    calc = LegatoCalculator(model)
    _md_sizes(calc, [12])
    first = backend.compiles
    assert first >= 1
    _md_sizes(calc, [9, 14, 20])
    assert backend.compiles == first
    assert calc.n_evaluations == 4 * 4


def test_compile_failure_warns_once_and_runs_eager():
    torch._dynamo.reset()
    model, atoms = tiny_model(), random_structure(10, seed=5)
    eager = _results(model, atoms)
    compile_model(model, backend=_failing_backend)
    with pytest.warns(CompileFallbackWarning, match="running eager"):
        fallback = _results(model, atoms)
    _assert_same(fallback, eager, rtol=0.0)
    assert compile_status(model).startswith("fallback: ")


def test_compile_refuses_models_without_an_edge_network():
    with pytest.raises(TypeError, match="compile=False"):
        compile_model(torch.nn.Linear(2, 2))


def test_calculator_compile_keeps_the_saved_state():
    model = tiny_model()
    keys = list(model.state_dict())
    calc = LegatoCalculator(model, compile=True)
    assert compile_status(calc.model) == "compiled"
    assert list(calc.model.state_dict()) == keys


@pytest.mark.slow
def test_inductor_float64_matches_eager_without_recompiles_in_md():
    torch._dynamo.reset()
    model, atoms = tiny_model(), random_structure(12, seed=6)
    eager = _results(model, atoms)
    backend = CountingBackend("inductor")
    compile_model(model, backend=backend)
    _assert_same(_results(model, atoms), eager, rtol=1e-10)
    first = backend.compiles
    _md_sizes(LegatoCalculator(model), [9, 14, 20])
    assert backend.compiles == first
    assert compile_status(model) == "compiled"
