"""legato-ase: Allegro-Legato interatomic potentials for ASE, i-PI and MPI."""

from .calculator import LegatoCalculator
from .committee import UncertaintyError, UncertaintyWarning
from .config import PRESETS, ModelConfig
from .io import build_model, load_model, save_model

__version__ = "0.1.0"


def _register_with_ase() -> None:
    """Make ``get_calculator_class("legato")`` work (ASE's registry; experimental API)."""
    try:
        from ase.calculators import calculator as ase_calculator

        if "legato" not in getattr(ase_calculator, "external_calculators", {}):
            ase_calculator.register_calculator_class("legato", LegatoCalculator)
    except (ImportError, AttributeError):  # pragma: no cover - ASE without the registry
        pass


_register_with_ase()

__all__ = [
    "LegatoCalculator",
    "ModelConfig",
    "PRESETS",
    "UncertaintyError",
    "UncertaintyWarning",
    "build_model",
    "load_model",
    "save_model",
    "__version__",
]
