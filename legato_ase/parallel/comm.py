"""Communicators: a serial null object and an mpi4py wrapper with the same few methods.

Every parallel code path takes a communicator, so the same code runs under plain pytest
(``SerialComm``) and under ``mpirun`` (``MPIComm``). Collective sums are reduced on rank 0
and broadcast, so every rank holds bit-identical results and replicated MD runs (ASE mode)
never drift apart.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from typing import Any

import numpy as np

ABORT_GRACE_S = 1.0  # seconds between a rank's error report and MPI_Abort

_LAUNCHER_SIZE_VARS = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MPI_LOCALNRANKS", "PMIX_RANK")
_LOCAL_RANK_VARS = (
    "MPI_LOCALRANKID",
    "OMPI_COMM_WORLD_LOCAL_RANK",
    "SLURM_LOCALID",
    "PMI_LOCAL_RANK",
)


class SerialComm:
    """One rank: every collective is the identity."""

    rank = 0
    size = 1
    local_rank = 0

    def sum_to_all(self, values: np.ndarray) -> np.ndarray:
        return np.asarray(values, dtype=np.float64).copy()

    def max_to_all(self, value: float) -> float:
        return float(value)

    def bcast(self, obj: Any, root: int = 0) -> Any:
        return obj

    def allgather(self, obj: Any) -> list[Any]:
        return [obj]

    def alltoall(self, objs: list[Any]) -> list[Any]:
        return list(objs)

    def barrier(self) -> None:
        pass

    def abort(self, code: int = 1) -> None:
        raise SystemExit(code)

    @property
    def mpi4py_comm(self) -> None:
        return None


class MPIComm:
    """Wraps an mpi4py communicator (``MPI.COMM_WORLD`` by default)."""

    def __init__(self, comm: Any = None) -> None:
        from mpi4py import MPI

        self._MPI = MPI
        self.comm = MPI.COMM_WORLD if comm is None else comm
        self.rank = self.comm.Get_rank()
        self.size = self.comm.Get_size()
        node = self.comm.Split_type(MPI.COMM_TYPE_SHARED)
        self.local_rank = node.Get_rank()
        node.Free()

    def sum_to_all(self, values: np.ndarray) -> np.ndarray:
        send = np.ascontiguousarray(values, dtype=np.float64)
        out = np.empty_like(send)
        self.comm.Reduce(send, out if self.rank == 0 else None, op=self._MPI.SUM, root=0)
        self.comm.Bcast(out, root=0)
        return out

    def max_to_all(self, value: float) -> float:
        return float(self.comm.allreduce(float(value), op=self._MPI.MAX))

    def bcast(self, obj: Any, root: int = 0) -> Any:
        return self.comm.bcast(obj, root=root)

    def allgather(self, obj: Any) -> list[Any]:
        return self.comm.allgather(obj)

    def alltoall(self, objs: list[Any]) -> list[Any]:
        return self.comm.alltoall(objs)

    def barrier(self) -> None:
        self.comm.Barrier()

    def abort(self, code: int = 1) -> None:
        # MPI_Abort makes the launcher kill every rank at once, and it may exit before it has
        # forwarded what this rank wrote just before (seen in CI: an empty stderr after a
        # rank's error report). A moment's grace lets the report reach the user first.
        sys.stdout.flush()
        sys.stderr.flush()
        time.sleep(ABORT_GRACE_S)
        self.comm.Abort(code)

    @property
    def mpi4py_comm(self) -> Any:
        return self.comm


def launched_by_mpirun() -> bool:
    """True when the process was started by an MPI launcher with more than one rank."""
    for var in _LAUNCHER_SIZE_VARS[:3]:
        if var in os.environ:
            return int(os.environ[var]) > 1
    return "PMIX_RANK" in os.environ


def get_comm(comm: Any = None) -> SerialComm | MPIComm:
    """The communicator to use.

    Args:
        comm: ``None`` (MPI world when launched by ``mpirun`` with several ranks, else
            serial), ``"serial"``, ``"mpi"``, an mpi4py communicator, or a ready
            ``SerialComm``/``MPIComm``.
    """
    if isinstance(comm, (SerialComm, MPIComm)):
        return comm
    if comm == "serial" or (comm is None and not launched_by_mpirun()):
        return SerialComm()
    if comm in (None, "mpi") or hasattr(comm, "Get_rank"):
        try:
            import mpi4py  # noqa: F401  (import before ASE picks its world)
        except ImportError as err:
            raise ImportError(
                "MPI runs need mpi4py: pip install mpich mpi4py (or legato-ase[mpi])"
            ) from err
        return MPIComm(None if isinstance(comm, str) else comm)
    raise TypeError(f"comm must be None, 'serial', 'mpi' or an mpi4py communicator; got {comm!r}")


def local_rank_from_env() -> int:
    """Rank within the node from the launcher's environment (0 when unknown)."""
    for var in _LOCAL_RANK_VARS:
        if var in os.environ:
            return int(os.environ[var])
    return 0


def install_abort_hook(comm: SerialComm | MPIComm) -> None:
    """End every rank when one rank dies of an uncaught exception (instead of a hang).

    Prints the traceback with the rank number, then calls ``MPI_Abort``. Only affects
    runs with more than one rank; equivalent to ``python -m mpi4py script.py``.
    """
    if comm.size == 1 or getattr(sys.excepthook, "_legato_abort", False):
        return

    def hook(kind, value, tb):
        text = "".join(traceback.format_exception(kind, value, tb))
        sys.stderr.write(f"[rank {comm.rank}] uncaught error, aborting all ranks:\n{text}")
        sys.stderr.flush()
        comm.abort(1)

    hook._legato_abort = True
    sys.excepthook = hook
