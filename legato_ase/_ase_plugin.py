"""ASE plug-in entry point (``ase info --plugins``); cheap to import: no torch here."""

try:  # the plug-in API is experimental in ASE 3.29
    from ase._4.plugins.plugin import CalculatorPlugin

    __ase_plugins__ = {
        CalculatorPlugin(
            "legato",
            implementation="legato_ase.calculator.LegatoCalculator",
            citation="Ibayashi et al., Allegro-Legato, ISC 2023 (arXiv:2303.08169)",
        )
    }
except ImportError:  # pragma: no cover - older or newer ASE
    __ase_plugins__ = set()
