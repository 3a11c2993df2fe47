"""The i-PI socket protocol: headers, payload packing and connections (numpy only, no torch).

Everything here is in i-PI's units and layout: atomic units (Bohr, Hartree), cell matrices
``h`` with the lattice vectors as **columns**. Conversion to ASE's conventions lives in
:mod:`ipi_driver.adapter`, the single boundary between the two.

Wire layout (native byte order), as sent by i-PI 3.3:

- ``INIT``: int32 replica id, int32 length, that many bytes of parameters; i-PI appends
  ``batch_size:N`` when it batches requests.
- ``POSDATA`` single: 9 f64 h, 9 f64 h⁻¹, int32 n_atoms, 3·n_atoms f64 positions.
- ``POSDATA`` batched (B = batch_size): int32 n_atoms, B × (9 f64 h, 9 f64 h⁻¹),
  B × 3·n_atoms f64 positions.
- ``FORCEREADY`` single: f64 energy, int32 n_atoms, 3·n_atoms f64 forces, 9 f64 virial,
  int32 length + extra bytes.
- ``FORCEREADY`` batched: B f64 energies, int32 n_atoms, B × 3·n_atoms f64 forces,
  B × 9 f64 virials, B × (int32 length + extra bytes).
"""

from __future__ import annotations

import dataclasses
import os
import socket
import time
from collections.abc import Callable

import numpy as np

from .guard import hang_up

HDRLEN = 12
MESSAGES = (
    "STATUS",
    "NEEDINIT",
    "READY",
    "HAVEDATA",
    "INIT",
    "POSDATA",
    "GETFORCE",
    "FORCEREADY",
    "EXIT",
)
DEFAULT_SOCKETS_PREFIX = "/tmp/ipi_"


class ProtocolError(RuntimeError):
    """The peer sent something the i-PI protocol does not allow here."""


class StreamClosed(ConnectionError):
    """The peer closed the connection (end of stream)."""


def header(name: str) -> bytes:
    """The 12-byte upper-case, space-padded header of a message."""
    if name.upper() not in MESSAGES:
        raise ValueError(f"unknown i-PI message {name!r}; valid messages are {MESSAGES}")
    return name.upper().ljust(HDRLEN).encode("ascii")


def decode_header(raw: bytes) -> str:
    """The message name of a 12-byte header."""
    name = raw.decode("ascii", errors="replace").strip().upper()
    if name not in MESSAGES:
        raise ProtocolError(f"unknown i-PI header {raw!r}; expected one of {MESSAGES}")
    return name


class Stream:
    """Exact-length reads and whole writes on a connected socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def read(self, n_bytes: int) -> bytes:
        """Exactly ``n_bytes`` bytes; StreamClosed if the peer hangs up first."""
        buf = bytearray(n_bytes)
        view, got = memoryview(buf), 0
        while got < n_bytes:
            part = self.sock.recv_into(view[got:], n_bytes - got)
            if part == 0:
                raise StreamClosed(f"connection closed after {got} of {n_bytes} bytes")
            got += part
        return bytes(buf)

    def read_array(self, dtype: type, count: int) -> np.ndarray:
        size = np.dtype(dtype).itemsize * count
        return np.frombuffer(self.read(size), dtype=dtype, count=count).copy()

    def read_int(self) -> int:
        return int(self.read_array(np.int32, 1)[0])

    def read_header(self) -> str | None:
        """The next message name, or None when the peer closed between messages."""
        first = self.sock.recv(HDRLEN)
        if not first:
            return None
        rest = self.read(HDRLEN - len(first)) if len(first) < HDRLEN else b""
        return decode_header(first + rest)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close(self) -> None:
        """Hang up so that the peer reads an end of stream.

        Unread input (e.g. a GETFORCE that came right behind the POSDATA we failed on) is
        drained first: closing with unread data sends a reset instead, and i-PI 3.3's
        consolidated-message reader dies on a reset and leaves the simulation hanging.
        """
        hang_up(self.sock, limit_s=0.2)


@dataclasses.dataclass(frozen=True)
class PosData:
    """One POSDATA message in atomic units.

    Attributes:
        cells: [B, 3, 3] float64 cell matrices h in Bohr, lattice vectors as columns.
        positions: [B, N, 3] float64 Cartesian positions in Bohr (not wrapped).
    """

    cells: np.ndarray
    positions: np.ndarray


def encode_posdata(data: PosData, batched: bool) -> bytes:
    """The POSDATA message as i-PI sends it (used by tests and local servers)."""
    n_structures, n_atoms = data.positions.shape[:2]
    if not batched and n_structures != 1:
        raise ValueError(f"a non-batched POSDATA carries one structure, got {n_structures}")
    cells = np.ascontiguousarray(data.cells, dtype=np.float64)
    inverses = np.linalg.inv(cells)
    natoms = np.int32(n_atoms).tobytes()
    positions = np.ascontiguousarray(data.positions, dtype=np.float64)
    if not batched:
        return (
            header("POSDATA")
            + cells[0].tobytes()
            + inverses[0].tobytes()
            + natoms
            + (positions[0].tobytes())
        )
    cell_block = b"".join(h.tobytes() + ih.tobytes() for h, ih in zip(cells, inverses, strict=True))
    return header("POSDATA") + natoms + cell_block + positions.tobytes()


def read_posdata(stream: Stream, batch_size: int) -> PosData:
    """The payload of a POSDATA message whose header was already read."""
    if batch_size == 1:
        cell = stream.read_array(np.float64, 9).reshape(3, 3)
        stream.read_array(np.float64, 9)  # h^-1: redundant, recomputed when needed
        n_atoms = _checked_natoms(stream.read_int())
        positions = stream.read_array(np.float64, 3 * n_atoms).reshape(1, n_atoms, 3)
        return PosData(cells=cell[None], positions=positions)
    n_atoms = _checked_natoms(stream.read_int())
    cell_block = stream.read_array(np.float64, 18 * batch_size).reshape(batch_size, 2, 3, 3)
    positions = stream.read_array(np.float64, 3 * n_atoms * batch_size)
    return PosData(cells=cell_block[:, 0].copy(), positions=positions.reshape(batch_size, -1, 3))


def _checked_natoms(n_atoms: int) -> int:
    if n_atoms <= 0:
        raise ProtocolError(f"POSDATA announced {n_atoms} atoms")
    return n_atoms


@dataclasses.dataclass(frozen=True)
class ForceData:
    """One FORCEREADY reply in atomic units.

    Attributes:
        energies: [B] float64 potential energies in Hartree.
        forces: [B, N, 3] float64 forces in Hartree/Bohr.
        virials: [B, 3, 3] float64 virials in Hartree (−V·σ, no kinetic part), i-PI layout.
        extras: B strings (JSON or empty) passed to i-PI's ``extras`` output.
    """

    energies: np.ndarray
    forces: np.ndarray
    virials: np.ndarray
    extras: tuple[str, ...]


def encode_forceready(data: ForceData, batched: bool) -> bytes:
    """The FORCEREADY reply (header included) in the single or the batched layout."""
    n_structures, n_atoms = data.forces.shape[:2]
    if not batched and n_structures != 1:
        raise ValueError(f"a non-batched FORCEREADY carries one structure, got {n_structures}")
    energies = np.ascontiguousarray(data.energies, dtype=np.float64)
    forces = np.ascontiguousarray(data.forces, dtype=np.float64)
    virials = np.ascontiguousarray(data.virials, dtype=np.float64)
    extras = [e.encode("utf-8") for e in data.extras]
    packed = [np.int32(len(e)).tobytes() + e for e in extras]
    natoms = np.int32(n_atoms).tobytes()
    if not batched:
        body = energies[:1].tobytes() + natoms + forces[0].tobytes() + virials[0].tobytes()
        return header("FORCEREADY") + body + packed[0]
    body = energies.tobytes() + natoms + forces.tobytes() + virials.tobytes()
    return header("FORCEREADY") + body + b"".join(packed)


def read_forceready(stream: Stream, n_atoms: int, batch_size: int) -> ForceData:
    """The payload of a FORCEREADY message whose header was already read (server side)."""
    energies = stream.read_array(np.float64, batch_size if batch_size > 1 else 1)
    if batch_size == 1:
        got_atoms = stream.read_int()
        forces = stream.read_array(np.float64, 3 * got_atoms).reshape(1, got_atoms, 3)
        virials = stream.read_array(np.float64, 9).reshape(1, 3, 3)
    else:
        got_atoms = stream.read_int()
        forces = stream.read_array(np.float64, 3 * got_atoms * batch_size)
        forces = forces.reshape(batch_size, got_atoms, 3)
        virials = stream.read_array(np.float64, 9 * batch_size).reshape(batch_size, 3, 3)
    if got_atoms != n_atoms:
        raise ProtocolError(f"FORCEREADY for {got_atoms} atoms, expected {n_atoms}")
    extras = tuple(stream.read(stream.read_int()).decode("utf-8") for _ in energies)
    return ForceData(energies=energies, forces=forces, virials=virials, extras=extras)


def encode_init(replica: int, parameters: str) -> bytes:
    raw = parameters.encode("utf-8")
    return header("INIT") + np.int32(replica).tobytes() + np.int32(len(raw)).tobytes() + raw


def read_init(stream: Stream) -> tuple[int, str]:
    """(replica id, parameter string) of an INIT message whose header was already read."""
    replica = stream.read_int()
    return replica, stream.read(stream.read_int()).decode("utf-8", errors="replace")


def batch_size_of(parameters: str) -> int:
    """The ``batch_size:N`` token i-PI ≥ 3.3 appends to the INIT string (1 if absent)."""
    for token in parameters.replace(" ", ",").split(","):
        key, sep, value = token.partition(":")
        if sep and key.strip() == "batch_size":
            size = int(value.strip())
            if size < 1:
                raise ProtocolError(f"INIT announced batch_size {size}")
            return size
    return 1


@dataclasses.dataclass(frozen=True)
class Address:
    """Where i-PI listens: a unix socket path, or an inet host and port."""

    unix_path: str | None = None
    host: str | None = None
    port: int | None = None

    def __post_init__(self) -> None:
        if (self.unix_path is None) == (self.host is None and self.port is None):
            raise ValueError("give either a unix socket (--unix NAME) or --host and --port")
        if self.unix_path is None and (self.host is None or self.port is None):
            raise ValueError(
                "an inet socket needs both --host and --port (i-PI and ASE "
                "use different default ports, so none is assumed)"
            )

    @classmethod
    def unix(cls, name: str, prefix: str = DEFAULT_SOCKETS_PREFIX) -> Address:
        """i-PI's ``<address>NAME</address>`` in unix mode is the file ``prefix + NAME``."""
        return cls(unix_path=name if name.startswith("/") else prefix + name)


def connect(
    address: Address, wait_s: float = 60.0, on_wait: Callable[[str], None] | None = None
) -> socket.socket:
    """Connect to i-PI, waiting up to ``wait_s`` seconds for it to open the socket.

    ``on_wait`` is told once, when the server is not there yet, what is awaited and how long.
    """
    deadline = time.monotonic() + wait_s
    where = (
        f"unix socket {address.unix_path}"
        if address.unix_path
        else f"inet socket {address.host}:{address.port}"
    )
    told = on_wait is None
    while True:
        try:
            return _connect_once(address)
        except (FileNotFoundError, ConnectionRefusedError) as err:
            if not told:
                on_wait(f"waiting up to {wait_s:.0f} s for i-PI to open the {where}")
                told = True
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"no i-PI server at {where} after {wait_s:.0f} s ({err}); start i-PI "
                    "first or check the socket name/port in its <ffsocket> block"
                ) from err
            time.sleep(0.1)


def _connect_once(address: Address) -> socket.socket:
    if address.unix_path is not None:
        if not os.path.exists(address.unix_path):
            raise FileNotFoundError(address.unix_path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        target: object = address.unix_path
    else:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        target = (address.host, address.port)
    try:
        sock.connect(target)
    except OSError:
        sock.close()
        raise
    return sock
