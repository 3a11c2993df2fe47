"""The i-PI wire protocol, the unit/cell adapter and the client loop, against an in-process
server speaking i-PI 3.3's byte layout (single and batched) with a real LegatoCalculator."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
import uuid

import numpy as np
import pytest
from ase import Atoms
from helpers import random_structure, tiny_model

from ipi_driver.adapter import (
    BOHR_A,
    HARTREE_EV,
    evaluate,
    from_atoms,
    from_wire,
    to_atoms,
    to_wire,
)
from ipi_driver.client import run_driver, serve
from ipi_driver.protocol import (
    Address,
    ForceData,
    PosData,
    ProtocolError,
    Stream,
    batch_size_of,
    encode_forceready,
    encode_init,
    encode_posdata,
    header,
    read_forceready,
    read_posdata,
)
from legato_ase import LegatoCalculator

TRICLINIC = np.array([[6.0, 0.0, 0.0], [1.3, 5.5, 0.0], [-0.9, 0.8, 5.8]])


@pytest.fixture(scope="module")
def calc():
    return LegatoCalculator(tiny_model())


def _structure(seed=0):
    return random_structure(n_atoms=12, cell=TRICLINIC, seed=seed)


def _pair():
    a, b = socket.socketpair()
    return Stream(a), Stream(b)


def test_constants_are_ase_units():
    import ase.units

    assert BOHR_A == ase.units.Bohr and HARTREE_EV == ase.units.Hartree


def test_wire_protocol_and_adapter_import_no_torch():
    code = (
        "import sys, ipi_driver, ipi_driver.protocol, ipi_driver.adapter, ipi_driver.client, "
        "ipi_driver.spectra, ipi_driver.inputs, ipi_driver.structures; "
        "sys.exit('torch' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0


@pytest.mark.parametrize("batched", [False, True])
def test_posdata_round_trip_on_triclinic_cell_keeps_cell_rows_and_positions(batched):
    structures = [_structure(seed) for seed in range(3 if batched else 1)]
    server, client = _pair()
    server.send(encode_posdata(from_atoms(structures), batched=batched))
    assert client.read_header() == "POSDATA"
    back = to_atoms(read_posdata(client, len(structures) if batched else 1), structures[0])
    for original, got in zip(structures, back, strict=True):
        np.testing.assert_allclose(got.cell.array, original.cell.array, rtol=0, atol=1e-13)
        np.testing.assert_allclose(got.positions, original.positions, rtol=0, atol=1e-13)


def test_cell_on_the_wire_has_lattice_vectors_as_columns_in_bohr():
    data = from_atoms([_structure()])
    np.testing.assert_allclose(data.cells[0][:, 1], TRICLINIC[1] / BOHR_A, rtol=1e-15)


@pytest.mark.parametrize("batched", [False, True])
def test_forceready_round_trip_keeps_energy_forces_and_stress(calc, batched):
    structures = [_structure(seed) for seed in range(2 if batched else 1)]
    results = calc.calculate_batch(structures)
    server, client = _pair()
    client.send(encode_forceready(to_wire(results, structures), batched=batched))
    assert server.read_header() == "FORCEREADY"
    got = from_wire(read_forceready(server, 12, len(structures)), structures)
    for want, have in zip(results, got, strict=True):
        assert have["energy"] == pytest.approx(want["energy"], rel=1e-14)
        np.testing.assert_allclose(have["forces"], want["forces"], rtol=1e-13, atol=1e-14)
        np.testing.assert_allclose(have["stress"], want["stress"], rtol=1e-13, atol=1e-15)


def test_virial_is_minus_volume_times_stress_in_hartree(calc):
    atoms = _structure()
    (result,) = calc.calculate_batch([atoms])
    wire = to_wire([result], [atoms])
    xx, yy, zz, yz, xz, xy = result["stress"]
    stress = np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])
    np.testing.assert_allclose(wire.virials[0] * HARTREE_EV, -atoms.get_volume() * stress)
    assert abs(np.trace(wire.virials[0])) > 0


def test_init_string_announces_batch_size():
    assert batch_size_of("") == 1
    assert batch_size_of("{}, batch_size:4") == 4
    assert batch_size_of("batch_size:8") == 8
    with pytest.raises(ProtocolError):
        batch_size_of("batch_size:0")


def test_unknown_header_is_a_clear_error():
    with pytest.raises(ValueError, match="valid messages"):
        header("FORCES")


def _talk(server: Stream, structures, batch: int, n_atoms: int) -> ForceData:
    """One i-PI 3.3 exchange: STATUS, POSDATA and GETFORCE back-to-back, FORCEREADY."""
    server.send(header("STATUS"))
    assert server.read_header() == "READY"
    data = from_atoms(structures)
    server.send(encode_posdata(data, batched=batch > 1) + header("GETFORCE"))
    assert server.read_header() == "FORCEREADY"
    return read_forceready(server, n_atoms, batch)


def _start_client(client: Stream, calc, template):
    box = {}
    thread = threading.Thread(
        target=lambda: box.setdefault("state", serve(client, calc, template)), daemon=True
    )
    thread.start()
    return thread, box


def test_client_handshake_and_batched_request_in_one_model_call(calc):
    structures = [_structure(seed) for seed in range(3)]
    server, client = _pair()
    thread, box = _start_client(client, calc, structures[0])
    server.send(header("STATUS"))
    assert server.read_header() == "NEEDINIT"
    server.send(encode_init(0, "batch_size:4"))
    before = calc.n_evaluations
    # i-PI pads an incomplete batch by repeating the last structure
    out = from_wire(_talk(server, structures + structures[-1:], 4, 12), structures)
    assert calc.n_evaluations - before == 1
    direct = [calc.calculate_batch([s])[0] for s in structures]
    for want, have in zip(direct, out, strict=True):
        assert have["energy"] == pytest.approx(want["energy"], rel=1e-12)
        np.testing.assert_allclose(have["forces"], want["forces"], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(have["stress"], want["stress"], rtol=1e-10, atol=1e-13)
    server.send(header("EXIT"))
    thread.join(timeout=10)
    assert box["state"].n_structures == 4 and box["state"].n_requests == 1


def test_unwrapped_positions_give_the_wrapped_result(calc):
    atoms = _structure()
    unwrapped = atoms.copy()
    unwrapped.positions += np.array([2, -1, 3]) @ TRICLINIC  # i-PI does not wrap by default
    server, client = _pair()
    thread, _ = _start_client(client, calc, atoms)
    server.send(encode_init(0, ""))
    a = from_wire(_talk(server, [atoms], 1, 12), [atoms])[0]
    b = from_wire(_talk(server, [unwrapped], 1, 12), [unwrapped])[0]
    server.close()  # end of stream: the client returns
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert b["energy"] == pytest.approx(a["energy"], rel=1e-12)
    np.testing.assert_allclose(b["forces"], a["forces"], atol=1e-10)


def test_wrong_atom_count_stops_the_client_and_closes_its_socket(calc):
    atoms = _structure()
    path = f"/tmp/ipi_legato_test_{uuid.uuid4().hex[:8]}"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)
    errors = []

    def drive():
        try:
            run_driver(calc, atoms, Address(unix_path=path), wait_s=10)
        except Exception as err:  # noqa: BLE001
            errors.append(err)

    thread = threading.Thread(target=drive, daemon=True)
    thread.start()
    server = Stream(listener.accept()[0])
    server.send(encode_init(0, "") + encode_posdata(from_atoms([atoms[:6]]), batched=False))
    server.sock.settimeout(10)
    assert server.sock.recv(12) == b""  # the driver hung up instead of leaving us waiting
    thread.join(timeout=10)
    listener.close()
    assert "6 atoms but the template has 12" in str(errors[0])


def test_client_waits_for_the_socket_file_and_serves_over_inet_too(calc):
    atoms = _structure()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    path = f"/tmp/ipi_legato_test_{uuid.uuid4().hex[:8]}"
    states = []
    for address in (Address(host="127.0.0.1", port=port), Address.unix(path[len("/tmp/ipi_") :])):
        threading.Thread(
            target=lambda a=address: states.append(run_driver(calc, atoms, a, wait_s=20)),
            daemon=True,
        ).start()
    time.sleep(0.3)  # the drivers start before the servers exist
    unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    unix.bind(path)
    for sock in (listener, unix):
        sock.listen(1)
        server = Stream(sock.accept()[0])
        server.send(encode_init(0, ""))
        result = from_wire(_talk(server, [atoms], 1, 12), [atoms])[0]
        assert np.isfinite(result["energy"])
        server.send(header("EXIT"))
        sock.close()
    deadline = time.monotonic() + 10
    while len(states) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [s.n_requests for s in states] == [1, 1]


def test_connect_gives_up_with_a_clear_message():
    from ipi_driver.protocol import connect

    with pytest.raises(TimeoutError, match="start i-PI first"):
        connect(Address(unix_path=f"/tmp/ipi_missing_{uuid.uuid4().hex}"), wait_s=0.3)


def test_waiting_driver_says_for_what_address_and_how_long():
    from ipi_driver.protocol import connect

    path = f"/tmp/ipi_missing_{uuid.uuid4().hex}"
    said = []
    with pytest.raises(TimeoutError):
        connect(Address(unix_path=path), wait_s=0.3, on_wait=said.append)
    assert said == [f"waiting up to 0 s for i-PI to open the unix socket {path}"]


@pytest.mark.parametrize("batch_size", [1, 4])
@pytest.mark.parametrize("kind", ["nvt", "pimd", "trpmd", "npt"])
def test_written_inputs_are_well_formed_xml_with_the_hang_guards(kind, batch_size):
    import xml.etree.ElementTree as ElementTree

    from ipi_driver import SimulationSettings
    from ipi_driver.inputs import render_input

    settings = SimulationSettings(
        kind=kind, batch_size=batch_size, n_beads=1 if kind == "nvt" else 4
    )
    socket = ElementTree.fromstring(render_input(settings)).find(".//ffsocket")
    assert socket.find("exit_on_disconnect").text.strip() == "true"
    consolidated = socket.find("consolidate_messages").text.strip()
    assert consolidated == "true"  # the reader that ends on a clean hang-up, batched or not


def test_address_needs_unix_or_host_and_port():
    with pytest.raises(ValueError, match="--host and --port"):
        Address(host="localhost")
    with pytest.raises(ValueError, match="either a unix socket"):
        Address()


def test_evaluate_rejects_structures_of_the_wrong_size(calc):
    data = PosData(cells=TRICLINIC[None] / BOHR_A, positions=np.zeros((1, 3, 3)))
    with pytest.raises(ValueError, match="--template"):
        evaluate(calc, data, Atoms("H4", cell=TRICLINIC, pbc=True))


def test_command_line_prints_the_pes_path_and_rejects_missing_arguments():
    from ipi_driver import PES_FILE

    run = [sys.executable, "-m", "ipi_driver.cli"]
    out = subprocess.run([*run, "--pes-path"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == str(PES_FILE) and PES_FILE.exists()
    out = subprocess.run([*run, "--unix", "x"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "--model and --template are required" in out.stderr
    out = subprocess.run(
        [*run, "--model", "m.pt", "--template", "t.xyz"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 1 and "--unix NAME" in out.stderr
