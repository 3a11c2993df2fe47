"""Compiled inference: the Allegro edge network through ``torch.compile`` (Inductor).

Inference needs the edge energies and their gradient with respect to the edge vectors (forces
and the virial follow from it). Compiled, that is **one graph**: the forward and its
vector-Jacobian product are traced together (``torch.func.vjp``), so Inductor fuses across
the two, keeps no activations for a separate backward call and runs no autograd machinery.
Models with a long-range layer, training (which needs the gradient of the forces) and the
domain pass with charge adjoints use the compiled forward alone, with the backward from
AOTAutograd.

Shapes are symbolic from the first call, so changing atom and edge counts during MD do not
trigger recompilation; Inductor caches its kernels on disk (``TORCHINDUCTOR_CACHE_DIR``), so a
later process with the same model architecture starts in a fraction of the first compile
time. Where compilation is not available (no C++ compiler, an unsupported platform or torch
build) the first call warns once and the model runs eager, with the same results.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import torch


class CompileFallbackWarning(UserWarning):
    """Compilation failed; the model runs eager (same results, eager speed)."""


class CompiledNetwork:
    """The compiled entry points of one Allegro network, with one shared fallback.

    Attributes:
        failed: ``None`` while compiled code runs; after a compiler failure, its reason
            (both entry points then run eager).
    """

    def __init__(self, network: torch.nn.Module, backend: str | Callable, dynamic: bool) -> None:
        self.eager_forward = network.forward
        self.eager_energy_and_gradient = network.energy_and_gradient
        eager_forward = network.forward

        def energy_and_gradient(vectors, species, edge_index, n_atoms, cotangent):
            energy, pullback = torch.func.vjp(
                lambda v: eager_forward(v, species, edge_index, n_atoms), vectors
            )
            return energy, pullback(cotangent)[0]

        self._forward = torch.compile(eager_forward, backend=backend, dynamic=dynamic)
        self._energy_and_gradient = torch.compile(
            energy_and_gradient, backend=backend, dynamic=dynamic
        )
        self.failed: str | None = None

    def forward(self, *args: Any, **kwargs: Any):
        return self._run(self._forward, self.eager_forward, args, kwargs)

    def energy_and_gradient(self, *args: Any) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():  # the graph holds its own gradient; nothing for autograd to record
            return self._run(self._energy_and_gradient, self.eager_energy_and_gradient, args, {})

    def _run(self, compiled: Callable, eager: Callable, args, kwargs):
        if self.failed is None:
            try:
                return compiled(*args, **kwargs)
            except Exception as err:  # noqa: BLE001  (any compiler failure: eager is correct)
                self._fall_back(err)
        return eager(*args, **kwargs)

    def _fall_back(self, err: Exception) -> None:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:300]
        self.failed = f"{type(err).__name__}: {first}"
        warnings.warn(
            f"torch.compile of the model failed ({self.failed}); running eager instead, with "
            "the same results. Compiling needs torch >= 2.2 and, on CPU, a C++ compiler "
            "(gcc or clang, found via $CXX or PATH). Pass compile=False to skip the attempt.",
            CompileFallbackWarning,
            stacklevel=5,
        )


def compile_model(
    model: torch.nn.Module, backend: str | Callable = "inductor", dynamic: bool = True
) -> torch.nn.Module:
    """Compile a legato-ase model's edge network in place, for inference.

    Args:
        model: a model from :func:`legato_ase.build_model` or :func:`legato_ase.load_model`.
        backend: the ``torch.compile`` backend (``"inductor"``, or a callable for testing).
        dynamic: symbolic atom and edge counts (no recompilation when they change).

    Returns:
        The same model; its state dict and saved files are unchanged.

    Raises:
        TypeError: for a model without an Allegro edge network (e.g. a TorchScript file).
    """
    network = getattr(model, "allegro", None)
    if not isinstance(network, torch.nn.Module):
        raise TypeError(
            f"compile applies to legato-ase models (build_model/load_model); got "
            f"{type(model).__name__}. Deployed TorchScript models are already scripted: "
            "run them with compile=False."
        )
    if not hasattr(torch, "compile"):
        warnings.warn(
            f"torch {torch.__version__} has no torch.compile (needs >= 2.2); running eager.",
            CompileFallbackWarning,
            stacklevel=2,
        )
        return model
    if not isinstance(getattr(network, "compiled", None), CompiledNetwork):
        compiled = CompiledNetwork(network, backend, dynamic)
        network.compiled = compiled
        network.forward = compiled.forward
        network.energy_and_gradient = compiled.energy_and_gradient
    return model


def compile_status(model: torch.nn.Module) -> str:
    """``"compiled"``, ``"eager"`` (never compiled) or ``"fallback: <reason>"``."""
    compiled = getattr(getattr(model, "allegro", None), "compiled", None)
    if not isinstance(compiled, CompiledNetwork):
        return "eager"
    return "compiled" if compiled.failed is None else f"fallback: {compiled.failed}"
