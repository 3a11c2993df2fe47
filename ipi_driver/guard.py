"""A guard process that hangs up cleanly for a driver killed outright.

A driver killed by SIGKILL or the out-of-memory killer cannot close its socket. The kernel
closes it, and if a message from i-PI is still unread at that moment (a STATUS or POSDATA
that arrived while the driver was not scheduled) the peer gets a connection *reset*
instead of an end of stream. i-PI 3.3's consolidated-message reader, used when requests
are batched, dies on a reset and leaves the simulation waiting for ever.

So the driver starts this module as a tiny separate process that holds a duplicate of the
socket and blocks on a pipe from the driver. A driver that ends normally hangs up itself and
writes one byte to the pipe, and the guard just leaves. A driver killed outright closes the
pipe without a word; the socket is still open (the guard holds it), so the guard reads
whatever is unread, hangs up and closes it: i-PI always sees a clean end of stream.

Run as a script (``python guard.py SOCKET_FD PIPE_FD``), never imported by the guard
process itself: it needs only the standard library and starts in a few tens of ms.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

_DRAIN_S = 2.0


def hang_up(sock: socket.socket, limit_s: float = _DRAIN_S) -> None:
    """Send an end of stream, read until the peer closes (or ``limit_s``; 0: only what has
    arrived), then close.

    Reading what is left before closing is what turns a reset into a clean hang-up.
    """
    deadline = time.monotonic() + limit_s
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    try:
        while True:  # with no time left, still read what has already arrived
            sock.settimeout(max(deadline - time.monotonic(), 0.0))
            if not sock.recv(65536):
                break
    except OSError:
        pass
    sock.close()


class Guard:
    """The driver's side: starts the guard process and releases it at the end.

    Args:
        sock: the connected socket to i-PI.
    """

    def __init__(self, sock: socket.socket) -> None:
        read_end, self._write_end = os.pipe()
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-I", "-S", __file__, str(sock.fileno()), str(read_end)],
                pass_fds=(sock.fileno(), read_end),
                stdin=subprocess.DEVNULL,
            )
        finally:
            os.close(read_end)

    def release(self) -> None:
        """Let the guard go after the driver closed the socket itself (normal end)."""
        if self._write_end is not None:
            os.write(self._write_end, b"x")  # "closed already": the guard leaves at once
            os.close(self._write_end)
            self._write_end = None
            try:
                self._process.wait(timeout=_DRAIN_S + 5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()


def _main(socket_fd: int, pipe_fd: int) -> None:
    # Ctrl-C reaches the whole process group; the driver decides how to stop, the guard
    # stays until the driver is gone.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sock = socket.socket(fileno=socket_fd)
    if os.read(pipe_fd, 1):  # the driver hung up itself and says so
        sock.detach()
        return
    hang_up(sock, limit_s=0.0)  # the driver died: read what is unread and close at once


if __name__ == "__main__":
    _main(int(sys.argv[1]), int(sys.argv[2]))
