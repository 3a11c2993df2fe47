"""The client loop: answers i-PI's messages until EXIT or end of stream (no torch here)."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable

from ase import Atoms

from .adapter import BatchEvaluator, evaluate
from .guard import Guard
from .protocol import (
    Address,
    ForceData,
    ProtocolError,
    Stream,
    batch_size_of,
    connect,
    encode_forceready,
    header,
    read_init,
    read_posdata,
)


@dataclasses.dataclass
class DriverState:
    """What the client knows between messages."""

    initialized: bool = False
    batch_size: int = 1
    pending: ForceData | None = None
    n_requests: int = 0
    n_structures: int = 0


def serve(
    stream: Stream,
    evaluator: BatchEvaluator,
    template: Atoms,
    log: Callable[[str], None] | None = None,
) -> DriverState:
    """Answer i-PI until it sends EXIT or closes the connection; return the final state.

    Handles STATUS/INIT/POSDATA/GETFORCE in any order the protocol allows, including
    POSDATA and GETFORCE back-to-back (i-PI ≥ 3.2) and batched requests (i-PI ≥ 3.3),
    each evaluated in one call of ``evaluator.calculate_batch``.
    """
    state = DriverState()
    while True:
        message = stream.read_header()
        if message is None or message == "EXIT":
            if log:
                log(f"i-PI {'closed the connection' if message is None else 'sent EXIT'}")
            return state
        _handle(message, stream, state, evaluator, template, log)


def _handle(
    message: str,
    stream: Stream,
    state: DriverState,
    evaluator: BatchEvaluator,
    template: Atoms,
    log: Callable[[str], None] | None,
) -> None:
    if message == "STATUS":
        reply = "NEEDINIT" if not state.initialized else "HAVEDATA" if state.pending else "READY"
        stream.send(header(reply))
    elif message == "INIT":
        replica, parameters = read_init(stream)
        state.batch_size = batch_size_of(parameters)
        state.initialized = True
        if log:
            log(f"INIT replica {replica}, batch_size {state.batch_size}")
    elif message == "POSDATA":
        if not state.initialized:
            raise ProtocolError("POSDATA before INIT")
        data = read_posdata(stream, state.batch_size)
        state.pending = evaluate(evaluator, data, template)
        state.n_requests += 1
        state.n_structures += len(data.cells)
    elif message == "GETFORCE":
        if state.pending is None:
            raise ProtocolError("GETFORCE before POSDATA: no forces to send")
        stream.send(encode_forceready(state.pending, batched=state.batch_size > 1))
        state.pending = None
    else:
        raise ProtocolError(f"a driver does not expect {message} from i-PI")


def run_driver(
    evaluator: BatchEvaluator,
    template: Atoms,
    address: Address,
    wait_s: float = 60.0,
    log: Callable[[str], None] | None = None,
) -> DriverState:
    """Connect to i-PI at ``address`` and serve until EXIT or end of stream.

    On any error the socket is closed before the error propagates, so i-PI sees the
    driver disconnect instead of waiting forever for forces. A :class:`~.guard.Guard`
    process hangs up cleanly in our place if this process is killed outright (SIGKILL,
    out of memory).
    """
    stream = Stream(connect(address, wait_s=wait_s, on_wait=log))
    guard = None
    try:
        guard = Guard(stream.sock)
        return serve(stream, evaluator, template, log=log)
    finally:
        stream.close()
        if guard is not None:
            guard.release()


def print_log(text: str) -> None:
    print(f"legato-ipi-driver: {text}", file=sys.stderr, flush=True)
