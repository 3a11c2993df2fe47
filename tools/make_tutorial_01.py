"""Writes tutorials/01_calculator_quickstart.ipynb (kept unexecuted in git)."""

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

cells = [
    new_markdown_cell(
        "# LegatoCalculator quickstart\n\n"
        "Energy, forces and stress of ammonia from a bundled Allegro-Legato model in an ASE "
        "script: "
        "single points, a relaxation, and a short molecular-dynamics run with a plot.\n\n"
        "Set `LEGATO_SMOKE=1` to run everything small and quick (the test suite does)."
    ),
    new_code_cell(
        "import os\n"
        "import matplotlib.pyplot as plt\n"
        "import numpy as np\n"
        "from ase import units\n"
        "from ase.filters import FrechetCellFilter\n"
        "from ase.optimize import BFGS\n\n"
        "from legato_ase import LegatoCalculator\n"
        "from legato_ase.md import run_nvt\n"
        "from legato_ase.structures import ammonia_crystal\n\n"
        "SMOKE = os.environ.get('LEGATO_SMOKE') == '1'\n"
        "SIZE = 2 if SMOKE else 3          # NH3-I cubic cells per axis (3 -> 432 atoms)\n"
        "MD_STEPS = 20 if SMOKE else 2000\n"
        "RELAX_STEPS = 5 if SMOKE else 100"
    ),
    new_markdown_cell(
        "## Single points\n\nOne model call gives energy, per-atom energies, forces and stress "
        "(Voigt order xx, yy, zz, yz, xz, xy; eV/Å³; ASE sign), all float64."
    ),
    new_code_cell(
        "atoms = ammonia_crystal(SIZE)\n"
        "calc = LegatoCalculator('nh3-legato')\n"
        "atoms.calc = calc\n"
        "print(len(atoms), 'atoms, species', calc.species, ', r_max', calc.r_max, 'Å')\n"
        "print('energy     ', atoms.get_potential_energy(), 'eV')\n"
        "print('max |force|', np.abs(atoms.get_forces()).max(), 'eV/Å')\n"
        "print('stress     ', atoms.get_stress() / units.GPa, 'GPa')\n"
        "print('pressure   ', -atoms.get_stress()[:3].mean() / units.GPa, 'GPa')\n"
        "print('model calls', calc.n_evaluations)"
    ),
    new_markdown_cell("An isolated molecule works too (no cell, no stress):"),
    new_code_cell(
        "from ase.build import molecule\n"
        "nh3 = molecule('NH3')\n"
        "nh3.calc = calc\n"
        "print(nh3.get_potential_energy(), nh3.get_forces().round(3))"
    ),
    new_markdown_cell(
        "## Relaxation of positions and cell\n\n`FrechetCellFilter` relaxes the cell with "
        "the stress from the same model call."
    ),
    new_code_cell(
        "relaxed = atoms.copy()\n"
        "relaxed.calc = calc\n"
        "opt = BFGS(FrechetCellFilter(relaxed), logfile='-' if not SMOKE else None)\n"
        "opt.run(fmax=0.05, steps=RELAX_STEPS)\n"
        "print('energy per molecule:', atoms.get_potential_energy() / (len(atoms) / 4),\n"
        "      '->', relaxed.get_potential_energy() / (len(relaxed) / 4), 'eV')\n"
        "print('cell lengths:', atoms.cell.lengths().round(3), '->',\n"
        "      relaxed.cell.lengths().round(3))"
    ),
    new_markdown_cell("## Molecular dynamics (Langevin NVT, 150 K)"),
    new_code_cell(
        "md_atoms = ammonia_crystal(SIZE)\n"
        "md_atoms.calc = LegatoCalculator('nh3-legato')\n"
        "log = run_nvt(md_atoms, temperature_K=150, steps=MD_STEPS, timestep_fs=1.0,\n"
        "              trajectory='quickstart_md.traj', loginterval=max(1, MD_STEPS // 40))"
    ),
    new_code_cell(
        "t = [r['time_fs'] for r in log]\n"
        "fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.5))\n"
        "ax1.plot(t, [r['temperature_K'] for r in log])\n"
        "ax1.axhline(150, color='k', ls='--', lw=0.8)\n"
        "ax1.set(xlabel='time (fs)', ylabel='temperature (K)')\n"
        "ax2.plot(t, [r['epot_eV'] for r in log], label='potential')\n"
        "ax2.plot(t, [r['etot_eV'] for r in log], label='total')\n"
        "ax2.set(xlabel='time (fs)', ylabel='energy (eV)')\n"
        "ax2.legend()\n"
        "fig.tight_layout()"
    ),
    new_markdown_cell(
        "The trajectory `quickstart_md.traj` opens with `ase gui quickstart_md.traj`. "
        "Next: train your own model (tutorial 02) or run path-integral MD with i-PI (tutorial 03)."
    ),
]
nb = new_notebook(
    cells=cells,
    metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
)
nbformat.write(nb, "tutorials/01_calculator_quickstart.ipynb")
