"""The guard process: a driver killed outright (SIGKILL) with a message from i-PI still
unread must look like a clean hang-up (end of stream) to i-PI, never a connection reset."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

_DRIVER = """
import socket, sys, time
from ipi_driver.guard import Guard
sock = socket.socket(fileno=int(sys.argv[1]))
guard = Guard(sock) if sys.argv[2] == "guarded" else None
print("ready", flush=True)
time.sleep(120)
"""


def _what_ipi_reads_after_the_kill(mode: str) -> bytes | str:
    """Start a stand-in driver, send it a header it never reads, SIGKILL it, read."""
    ipi_end, driver_end = socket.socketpair()
    driver = subprocess.Popen(
        [sys.executable, "-c", _DRIVER, str(driver_end.fileno()), mode],
        pass_fds=(driver_end.fileno(),), stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    driver_end.close()
    try:
        assert driver.stdout.readline().strip() == "ready"
        ipi_end.sendall(b"STATUS      ")  # queued, unread: the driver is "busy"
        driver.kill()
        driver.wait(timeout=30)
        ipi_end.settimeout(30)
        try:
            return ipi_end.recv(64)
        except ConnectionResetError:
            return "reset"
    finally:
        driver.kill()
        ipi_end.close()


def test_killed_driver_without_guard_resets_the_connection():
    """The failure the guard exists for (if the kernel ever stops doing this, the guard
    is unnecessary, and this test says so)."""
    assert _what_ipi_reads_after_the_kill("bare") == "reset"


@pytest.mark.parametrize("repeat", range(3))
def test_killed_driver_with_guard_hangs_up_cleanly(repeat):
    assert _what_ipi_reads_after_the_kill("guarded") == b""
