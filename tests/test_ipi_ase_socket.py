"""Our driver against an independent i-PI protocol server: ASE's SocketIOCalculator."""

from __future__ import annotations

import threading
import uuid

import numpy as np
import pytest
from ase.calculators.socketio import SocketIOCalculator
from helpers import random_structure, tiny_model

from ipi_driver.client import run_driver
from ipi_driver.protocol import Address
from legato_ase import LegatoCalculator

TRICLINIC = np.array([[6.0, 0.0, 0.0], [1.3, 5.5, 0.0], [-0.9, 0.8, 5.8]])


def _relative(a, b):
    return np.max(np.abs(np.asarray(a) - np.asarray(b))) / np.max(np.abs(b))


@pytest.mark.parametrize("transport", ["unix", "inet"])
def test_driver_through_ase_socket_server_equals_direct_calculation(transport):
    direct_calc = LegatoCalculator(tiny_model())
    atoms = random_structure(n_atoms=16, cell=TRICLINIC, seed=3)
    name = f"legato_ase_{uuid.uuid4().hex[:8]}"
    if transport == "unix":
        server_kwargs, address = {"unixsocket": name}, Address.unix(name)
    else:
        port = 20000 + int(uuid.uuid4().int % 20000)
        server_kwargs, address = {"port": port}, Address(host="localhost", port=port)
    states = []
    driver = threading.Thread(
        target=lambda: states.append(run_driver(direct_calc, atoms.copy(), address, wait_s=30)),
        daemon=True,
    )
    driver.start()
    rng = np.random.default_rng(0)
    with SocketIOCalculator(timeout=30, **server_kwargs) as server_calc:
        for _ in range(3):  # several steps over one connection; positions leave the cell
            atoms.positions += rng.normal(scale=0.05, size=atoms.positions.shape) + 0.5
            via_socket = atoms.copy()
            via_socket.calc = server_calc
            reference = atoms.copy()
            reference.calc = direct_calc
            assert (
                _relative(via_socket.get_potential_energy(), reference.get_potential_energy())
                < 1e-10
            )
            assert _relative(via_socket.get_forces(), reference.get_forces()) < 1e-10
            assert _relative(via_socket.get_stress(), reference.get_stress()) < 1e-10
    driver.join(timeout=20)
    assert not driver.is_alive() and states[0].n_requests == 3
