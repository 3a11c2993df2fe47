"""Compiled inference: the Allegro edge network through ``torch.compile`` (Inductor).

What is compiled is the network from edge vectors to edge energies (its forward and, through
AOTAutograd, the backward that gives forces and the virial). Shapes are symbolic from the
first call, so changing atom and edge counts during MD do not trigger recompilation; Inductor
caches its kernels on disk (``TORCHINDUCTOR_CACHE_DIR``), so a later process with the same
model architecture starts in a fraction of the first compile time.

Compiling is for inference (energies, forces, stress): training needs double backward,
which compiled graphs do not offer. Where compilation is not available (no C++ compiler,
an unsupported platform or torch build) the first call warns once and the model runs eager,
with the same results.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import torch


class CompileFallbackWarning(UserWarning):
    """Compilation failed; the model runs eager (same results, eager speed)."""


class _CompiledForward:
    """Calls the compiled forward of a module; on a compile failure, warns and runs eager."""

    def __init__(self, module: torch.nn.Module, backend: str | Callable, dynamic: bool) -> None:
        self.eager = module.forward
        self.compiled = torch.compile(self.eager, backend=backend, dynamic=dynamic)
        self.failed: str | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        if self.failed is None:
            try:
                return self.compiled(*args, **kwargs)
            except Exception as err:  # noqa: BLE001  (any compiler failure: eager is correct)
                self._fall_back(err)
        return self.eager(*args, **kwargs)

    def _fall_back(self, err: Exception) -> None:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:300]
        self.failed = f"{type(err).__name__}: {first}"
        warnings.warn(
            f"torch.compile of the model failed ({self.failed}); running eager instead, with "
            "the same results. Compiling needs torch >= 2.2 and, on CPU, a C++ compiler "
            "(gcc or clang, found via $CXX or PATH). Pass compile=False to skip the attempt.",
            CompileFallbackWarning,
            stacklevel=4,
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
    if not isinstance(network.forward, _CompiledForward):
        network.forward = _CompiledForward(network, backend, dynamic)
    return model


def compile_status(model: torch.nn.Module) -> str:
    """``"compiled"``, ``"eager"`` (never compiled) or ``"fallback: <reason>"``."""
    forward = getattr(getattr(model, "allegro", None), "forward", None)
    if not isinstance(forward, _CompiledForward):
        return "eager"
    return "compiled" if forward.failed is None else f"fallback: {forward.failed}"
