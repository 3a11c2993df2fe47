"""Ready-made structures: crystalline ammonia (NH3-I) supercells."""

from __future__ import annotations

from ase import Atoms
from ase.spacegroup import crystal


def ammonia_crystal(size: int | tuple[int, int, int] = 3, a: float = 5.1305) -> Atoms:
    """Solid ammonia NH3-I (space group P2₁3, 4 molecules per cubic cell), replicated.

    Args:
        size: repetitions of the cubic cell along each axis (3 gives 108 molecules, 432 atoms).
        a: lattice constant in Å (5.1305 Å at 160 K, 5.084 Å at 77 K).

    Fractional coordinates of NH3-I (space group P2₁3): N (0.2107, 0.2107, 0.2107),
    H (0.3689, 0.2671, 0.1159), giving N–H 0.99 Å.
    """
    reps = (size, size, size) if isinstance(size, int) else tuple(size)
    unit = crystal(
        ["N", "H"],
        basis=[(0.2107, 0.2107, 0.2107), (0.3689, 0.2671, 0.1159)],
        spacegroup=198,
        cellpar=[a, a, a, 90, 90, 90],
    )
    order = sorted(range(len(unit)), key=lambda k: unit[k].symbol != "N")
    return unit[order] * reps
