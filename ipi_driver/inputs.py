"""i-PI inputs from the XML templates in ``ipi_driver/templates`` (classical NVT, PIMD,
TRPMD, NPT), filled for a given structure, temperature and number of beads."""

from __future__ import annotations

import dataclasses
import math
import string
from pathlib import Path

from ase import Atoms

TEMPLATE_DIR = Path(__file__).parent / "templates"
KINDS = {"nvt": "nvt.xml", "pimd": "pimd.xml", "trpmd": "trpmd.xml", "npt": "npt.xml"}
_HC_OVER_KB_CM_K = 1.438776877  # second radiation constant, cm K


def default_beads(temperature_K: float, max_frequency_cm1: float = 3500.0) -> int:
    """Beads for converged quantum statistics: P ≈ ħω_max / k_B T (N–H stretch ≈ 3500 cm⁻¹).

    About 25 at 200 K and 34 at 150 K.
    """
    if temperature_K <= 0:
        raise ValueError(f"temperature must be positive, got {temperature_K} K")
    return max(1, math.ceil(_HC_OVER_KB_CM_K * max_frequency_cm1 / temperature_K))


@dataclasses.dataclass(frozen=True, kw_only=True)
class SimulationSettings:
    """What goes into an i-PI input.

    Attributes:
        kind: ``nvt`` (classical, Langevin), ``pimd`` (PILE-L), ``trpmd`` (spectra), ``npt``.
        n_beads: None picks 1 for nvt and :func:`default_beads` otherwise.
        tau_fs: thermostat time constant; None gives 100 fs for pimd/npt, 500 fs for the
            classical nvt (weak, for spectra) and 1 ps for the TRPMD centroid.
        trajectory_stride: steps between saved centroid positions/velocities; None saves
            every step up to 1 fs (enough resolution for N–H stretches).
        address: unix socket name (file ``sockets_prefix + address``) or inet host.
        exit_on_disconnect: stop i-PI when the driver disconnects (a crashed driver then
            ends the run instead of leaving i-PI waiting). The input keeps i-PI's
            consolidated messages on, also without batching: i-PI 3.3's other reader loops
            for ever on a clean end of stream while it waits for forces, and the driver's
            guard process (:mod:`ipi_driver.guard`) makes every hang-up a clean one.
        forcefield: ``socket`` (``<ffsocket>``, run ``legato-ipi-driver`` beside i-PI),
            ``direct`` (``<ffdirect>``: i-PI loads the model itself; needs ``model``) or
            ``committee`` (the socket inside i-PI's ``<ffcommittee>``, for
            ``legato-ipi-driver --model a.pt b.pt ...``; i-PI writes the members' energies
            and its committee uncertainty to ``PREFIX.committee_<bead>``).
        model: model file or bundled name for ``forcefield="direct"``.
    """

    kind: str = "pimd"
    temperature_K: float = 150.0
    n_beads: int | None = None
    timestep_fs: float = 0.5
    total_steps: int = 1000
    seed: int = 12345
    tau_fs: float | None = None
    pressure_GPa: float = 0.0
    barostat_tau_fs: float = 200.0
    socket_mode: str = "unix"
    address: str = "legato"
    port: int = 31415
    sockets_prefix: str = "/tmp/ipi_"
    batch_size: int = 1
    exit_on_disconnect: bool = True
    trajectory_stride: int | None = None
    properties_stride: int = 10
    checkpoint_stride: int = 1000
    prefix: str = "simulation"
    forcefield: str = "socket"
    model: str | None = None
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown simulation kind {self.kind!r}; valid: {sorted(KINDS)}")
        if self.socket_mode not in ("unix", "inet"):
            raise ValueError(f"socket_mode must be 'unix' or 'inet', got {self.socket_mode!r}")
        for name in ("temperature_K", "timestep_fs"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.n_beads is not None and self.n_beads < 1:
            raise ValueError(f"n_beads must be at least 1, got {self.n_beads}")
        if self.kind == "nvt" and self.n_beads not in (None, 1):
            raise ValueError("kind='nvt' is classical (one bead); use 'pimd' or 'trpmd' for beads")
        if self.forcefield not in ("socket", "direct", "committee"):
            raise ValueError(
                f"forcefield must be 'socket', 'direct' or 'committee', got {self.forcefield!r}"
            )
        if self.forcefield == "direct" and not self.model:
            raise ValueError("forcefield='direct' loads the model inside i-PI: set model=")
        if self.batch_size < 1 or self.total_steps < 0:
            raise ValueError("batch_size must be >= 1 and total_steps >= 0")

    @property
    def beads(self) -> int:
        if self.n_beads is not None:
            return self.n_beads
        return 1 if self.kind == "nvt" else default_beads(self.temperature_K)

    @property
    def sample_stride(self) -> int:
        """Steps between saved centroid frames (every step up to 1 fs when not set)."""
        return self.trajectory_stride or max(1, int(1.0 / self.timestep_fs))

    def substitutions(self, structure_file: str) -> dict[str, str]:
        default_tau = {"trpmd": 1000.0, "nvt": 500.0}.get(self.kind, 100.0)
        tau = self.tau_fs if self.tau_fs is not None else default_tau
        return {
            "structure_file": structure_file,
            "n_beads": str(self.beads),
            "temperature_K": repr(float(self.temperature_K)),
            "timestep_fs": repr(float(self.timestep_fs)),
            "tau_fs": repr(float(tau)),
            "pressure_MPa": repr(1000.0 * self.pressure_GPa),
            "barostat_tau_fs": repr(float(self.barostat_tau_fs)),
            "total_steps": str(self.total_steps),
            "seed": str(self.seed),
            "socket_mode": self.socket_mode,
            "address": self.address,
            "port": str(self.port),
            "sockets_prefix": self.sockets_prefix,
            "batch_size": str(self.batch_size),
            "exit_on_disconnect": str(self.exit_on_disconnect).lower(),
            # The only i-PI 3.3 reader that ends on a clean hang-up (the threaded one spins
            # on b"" while waiting for FORCEREADY); batching requires it anyway.
            "consolidate_messages": "true",
            "trajectory_stride": str(self.sample_stride),
            "properties_stride": str(self.properties_stride),
            "checkpoint_stride": str(self.checkpoint_stride),
            "prefix": self.prefix,
            "model": str(self.model),
            "device": self.device,
            "pes_path": str(Path(__file__).with_name("legato_ipi_pes.py")),
        }


def render_input(settings: SimulationSettings, structure_file: str = "init.extxyz") -> str:
    """The i-PI XML input for ``settings`` as text."""
    values = settings.substitutions(structure_file)
    ff_file = "ffdirect.xml" if settings.forcefield == "direct" else "ffsocket.xml"
    values["forcefield"] = _fill(ff_file, values)
    values["committee_output"] = ""
    if settings.forcefield == "committee":
        values["member_socket"] = values["forcefield"].replace("name='legato'", "name='members'")
        values["forcefield"] = _fill("ffcommittee.xml", values)
        values["committee_output"] = _COMMITTEE_OUTPUT.format(stride=settings.properties_stride)
    values["common"] = _fill("common.xml", values)
    return string.Template((TEMPLATE_DIR / KINDS[settings.kind]).read_text()).substitute(values)


_COMMITTEE_OUTPUT = (
    "\n    <trajectory filename='committee' stride='{stride}' "
    "extra_type='committee_pot,committee_uncertainty'> extras </trajectory>"
)


def _fill(name: str, values: dict[str, str]) -> str:
    return string.Template((TEMPLATE_DIR / name).read_text()).substitute(values).rstrip("\n")


def write_simulation(structure: Atoms, settings: SimulationSettings, directory) -> Path:
    """Write ``input.xml`` and its start structure ``init.extxyz``; return the input path.

    Run with ``i-pi input.xml`` in that directory and, beside it,
    ``legato-ipi-driver --model M --template init.extxyz --unix ADDRESS``.
    """
    from ase.io import write

    if not structure.pbc.all() or structure.cell.rank < 3:
        raise ValueError(
            "i-PI needs a 3-D periodic cell: set atoms.cell and atoms.pbc=True "
            "(use a large box for a molecule)"
        )
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    clean = Atoms(
        structure.get_chemical_symbols(),
        positions=structure.positions,
        cell=structure.cell,
        pbc=True,
    )
    write(directory / "init.extxyz", clean, format="extxyz")
    path = directory / "input.xml"
    path.write_text(render_input(settings, "init.extxyz"))
    return path


def load_structure(name_or_path: str) -> Atoms:
    """``nh3-solid`` (NH3-I, 2×2×2 cells, 128 atoms), ``nh3-liquid`` or any ASE-readable file."""
    from .structures import nh3_crystal, nh3_liquid

    if name_or_path == "nh3-solid":
        return nh3_crystal()
    if name_or_path == "nh3-liquid":
        return nh3_liquid()
    if not Path(name_or_path).exists():
        raise FileNotFoundError(
            f"{name_or_path} is neither a structure file nor one of nh3-solid, nh3-liquid"
        )
    from legato_ase.datasets import read_frames

    return read_frames(name_or_path, -1)[-1]
