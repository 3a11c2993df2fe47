"""Run i-PI and the Legato driver side by side (subprocesses with wall-clock limits)."""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .inputs import SimulationSettings, write_simulation


@dataclasses.dataclass(frozen=True)
class IpiRun:
    """The outcome of one i-PI run. i-PI exits 0 even when stopped early: check ``properties``."""

    directory: Path
    ipi_returncode: int
    driver_returncode: int | None
    wall_s: float
    properties: dict[str, np.ndarray]
    note: str = ""  # set when the launcher stopped i-PI, and why

    @property
    def last_step(self) -> int:
        steps = self.properties.get("step", np.array([]))
        return int(steps[-1]) if len(steps) else -1


def read_properties(path: str | Path) -> dict[str, np.ndarray]:
    """Columns of an i-PI properties file by name, units stripped (``potential``, ``step``...)."""
    names, rows = [], []
    for line in Path(path).read_text().splitlines():
        if line.startswith("#"):
            match = re.match(r"#\s*column\s+(\d+)(?:-\d+)?\s+-->\s+([^\s{(:]+)", line)
            if match:
                names.append(match.group(2))
        elif line.strip():
            rows.append([float(x) for x in line.split()])
    # a run stopped mid-step leaves a partial last line
    rows = [row for row in rows if len(row) == len(names)]
    table = np.array(rows).reshape(len(rows), len(names))
    return {name: table[:, k] for k, name in enumerate(names)}


def run_ipi(
    structure,
    settings: SimulationSettings,
    directory: str | Path,
    model: str | Sequence[str] | None = None,
    *,
    device: str = "cpu",
    threads: int | None = None,
    timeout_s: float = 600.0,
    compile: bool = False,
) -> IpiRun:
    """Write the inputs, start i-PI and (for a socket force field) ``legato-ipi-driver``.

    Both processes run under ``timeout``. A driver that ends while i-PI still runs (an
    error, a crash, SIGKILL) is watched for: i-PI gets 5 s to stop by itself
    (``exit_on_disconnect``), then SIGTERM, a clean i-PI exit. So this returns soon after
    the driver dies, and within ``timeout_s`` whatever happens.
    ``threads`` sets the driver's torch threads (1 is best when cores are shared).
    ``model`` is a list of models for ``forcefield="committee"``. ``compile`` runs the
    driver's network compiled (``legato-ipi-driver --compile``).
    """
    ipi = shutil.which("i-pi")
    if ipi is None:
        raise FileNotFoundError("the i-pi command is missing: pip install 'ipi>=3.2'")
    directory = Path(directory)
    write_simulation(structure, settings, directory)
    limit = ["timeout", "-k", "5", str(int(timeout_s))]
    start = time.perf_counter()
    with open(directory / "ipi.log", "w") as ipi_log, open(directory / "driver.log", "w") as dlog:
        server = subprocess.Popen(
            limit + [ipi, "input.xml"], cwd=directory, stdout=ipi_log, stderr=subprocess.STDOUT
        )
        driver = None
        if settings.forcefield in ("socket", "committee"):
            if model is None:
                raise ValueError("a socket run needs model= for legato-ipi-driver")
            driver = subprocess.Popen(
                limit + _driver_command(settings, model, device, threads, compile),
                cwd=directory,
                stdout=dlog,
                stderr=subprocess.STDOUT,
            )
        note = _wait(server, driver)
        driver_rc = _stop(driver) if driver is not None else None
    wall = time.perf_counter() - start
    out = directory / f"{settings.prefix}.out"
    props = read_properties(out) if out.exists() else {}
    return IpiRun(directory, server.returncode, driver_rc, wall, props, note)


def _wait(server: subprocess.Popen, driver: subprocess.Popen | None, grace_s: float = 5.0) -> str:
    """Wait for i-PI; stop it (SIGTERM, a clean exit) when the driver has ended and i-PI
    has not followed within ``grace_s``. Returns why the launcher stopped i-PI, or ""."""
    ended_at = None
    while server.poll() is None:
        if driver is not None and ended_at is None and driver.poll() is not None:
            ended_at = time.monotonic()
        if ended_at is not None and time.monotonic() - ended_at > grace_s:
            server.terminate()
            server.wait(timeout=30)
            return f"the driver ended (exit code {driver.returncode}); i-PI stopped by SIGTERM"
        time.sleep(0.05)
    return ""


def _stop(driver: subprocess.Popen, grace_s: float = 30.0) -> int:
    """The driver's exit code; SIGTERM it if it outlives i-PI (e.g. never connected)."""
    try:
        return driver.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        driver.terminate()
        return driver.wait(timeout=30)


def _driver_command(
    settings: SimulationSettings,
    model: str | Sequence[str],
    device: str,
    threads: int | None,
    compile: bool,
) -> list[str]:
    models = [model] if isinstance(model, (str, Path)) else list(model)
    where = (
        ["--unix", settings.address, "--sockets-prefix", settings.sockets_prefix]
        if settings.socket_mode == "unix"
        else ["--host", settings.address, "--port", str(settings.port)]
    )
    return [
        sys.executable,
        "-m",
        "ipi_driver.cli",
        "--model",
        *(str(m) for m in models),
        "--template",
        "init.extxyz",
        "--device",
        device,
        *where,
        *(["--threads", str(threads)] if threads else []),
        *(["--compile"] if compile else []),
    ]
