"""i-PI socket driver for Allegro-Legato models: path-integral MD and vibrational spectra.

The wire protocol (:mod:`ipi_driver.protocol`), the unit/cell adapter
(:mod:`ipi_driver.adapter`), the client loop, the input writer and the spectra need numpy
and ASE only; torch is imported when a model is loaded.
"""

from pathlib import Path

from .client import run_driver, serve
from .inputs import SimulationSettings, default_beads, render_input, write_simulation
from .protocol import Address

PES_FILE = Path(__file__).with_name("legato_ipi_pes.py")

__all__ = [
    "Address",
    "PES_FILE",
    "SimulationSettings",
    "default_beads",
    "render_input",
    "run_driver",
    "serve",
    "write_simulation",
]
