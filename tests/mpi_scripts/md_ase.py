"""mpirun -n P python md_ase.py OUT.json LOGFILE: 100 MD steps in parallel, then serially."""

import sys

import numpy as np
from ase import units
from ase.md.velocitydistribution import thermalize_momenta
from ase.md.verlet import VelocityVerlet
from common import ammonia_cell, out_path, tiny_model, triclinic, write_json
from mpi4py import MPI  # noqa: F401  (before ASE picks its world)

from legato_ase import LegatoCalculator

N_STEPS = 100


def run(calc, logfile=None):
    atoms = triclinic(ammonia_cell())
    thermalize_momenta(atoms, temperature_K=300, rng=np.random.default_rng(1))
    atoms.calc = calc
    dyn = VelocityVerlet(atoms, timestep=0.5 * units.fs, logfile=logfile, loginterval=10)
    energies = []
    dyn.attach(lambda: energies.append(atoms.get_total_energy()), interval=1)
    dyn.run(N_STEPS)
    return atoms, np.array(energies)


def main():
    model = tiny_model()
    par_atoms, par_energy = run(LegatoCalculator(model, parallel=True), logfile=sys.argv[2])
    # ASE's MD helpers are collective (momenta are broadcast): every rank runs the reference.
    ser_atoms, ser_energy = run(LegatoCalculator(model))
    spread = MPI.COMM_WORLD.allreduce(
        float(np.abs(par_atoms.positions).sum()), op=MPI.MAX
    ) - MPI.COMM_WORLD.allreduce(float(np.abs(par_atoms.positions).sum()), op=MPI.MIN)
    if MPI.COMM_WORLD.rank == 0:
        write_json(
            out_path(),
            {
                "size": MPI.COMM_WORLD.size,
                "max_position_difference": float(
                    np.abs(par_atoms.positions - ser_atoms.positions).max()
                ),
                "max_total_energy_difference": float(np.abs(par_energy - ser_energy).max()),
                "total_energy_drift": float(np.ptp(par_energy)),
                "rank_position_spread": spread,
                "n_energies": len(par_energy),
            },
        )


main()
