"""Allegro-Legato as a PES for i-PI's own Python driver and for ``<ffdirect>``.

i-PI loads this file by path (it has no entry points), so it has a unique file stem and
uses absolute imports. Find its path with ``legato-ipi-driver --pes-path``. Then::

    i-pi-py_driver -m custom -P $(legato-ipi-driver --pes-path) \\
        -o template=init.extxyz,model=nh3-legato -u -a NAME

or inside i-PI (no socket at all)::

    <ffdirect name="legato" pbc="false">
      <pes>custom</pes>
      <pes_path>/path/printed/by/legato-ipi-driver --pes-path</pes_path>
      <parameters>{template: init.extxyz, model: nh3-legato}</parameters>
      <batch_size>8</batch_size>
    </ffdirect>

It shares the evaluation with ``legato-ipi-driver`` (:func:`ipi_driver.adapter.evaluate`).
"""

from __future__ import annotations

import numpy as np

from ipi_driver.adapter import evaluate
from ipi_driver.protocol import PosData

__DRIVER_NAME__ = "legato"
__DRIVER_CLASS__ = "LegatoPES"


class LegatoPES:
    """Called by i-PI as ``pes(cell, pos)`` (a.u., cell columns) or with lists (batched).

    Args:
        template: ASE-readable file of the structure i-PI starts from (symbols, pbc).
        model: model file or bundled model name (e.g. ``nh3-legato``).
        device: ``cpu`` or ``cuda``.
        verbose, verbosity: accepted for i-PI's driver and ``<ffdirect>``; unused.
    """

    def __init__(self, template, model, device="cpu", verbose=False, verbosity=None, **kwargs):
        if kwargs:
            raise ValueError(
                f"unknown parameters {sorted(kwargs)} for the legato PES; valid: template, "
                "model, device"
            )
        from ase.io import read

        from legato_ase import LegatoCalculator

        self.template = read(str(template))
        self.calculator = LegatoCalculator(str(model), device=str(device))

    def __call__(self, cell, pos):
        batched = isinstance(cell, (list, tuple))
        cells = np.stack(cell) if batched else np.asarray(cell)[None]
        positions = np.stack(pos) if batched else np.asarray(pos)[None]
        data = PosData(
            cells=cells.astype(np.float64),
            positions=positions.reshape(len(cells), -1, 3).astype(np.float64),
        )
        out = evaluate(self.calculator, data, self.template)
        results = [
            (float(out.energies[n]), out.forces[n], out.virials[n], out.extras[n])
            for n in range(len(cells))
        ]
        return results if batched else results[0]
