"""Keep freed memory in the process for the next model call (glibc's malloc settings).

Every call of the network allocates and frees the same set of large temporary buffers
(edge features, their gradients: tens of MB for a hundred atoms). With glibc's default
settings, blocks of this size are either mapped fresh from the kernel on every call or
returned to it when freed (heap trimming), so each call faults its buffers in again, page
by page, at about 1 µs a page, and its time swings as glibc adapts its thresholds.

:func:`reuse_freed_memory` tells glibc to serve every block from its heap (no separate
mapping per large block, ``M_MMAP_MAX`` 0) and to trim the heap only when more than 2 GiB
at its top is free (``M_TRIM_THRESHOLD``): freed memory stays with the process and the next
call reuses it. The price is that the process keeps up to 2 GiB of freed heap after a
peak, as PyTorch's caching allocator does on GPUs; it is the same trade as running PyTorch
under jemalloc or tcmalloc, which PyTorch's CPU performance guide recommends, without a
preloaded library. Measured in float64 (docs/speed.md): 128 atoms, 13,800 page faults per
compiled call before, none after; 1,024 atoms 221,000 before; 3,456 atoms 956,000 before
and 1.6x faster after.

The setting is process-wide. ``LegatoCalculator(compile=True)``, ``legato md``,
``legato lammps`` and the i-PI driver apply it; set ``LEGATO_KEEP_FREED_MEMORY=0`` in the
environment to leave glibc's defaults alone.
"""

from __future__ import annotations

import ctypes
import os
import platform

# glibc's mallopt parameters (malloc.h); the trim threshold is a C int.
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4
TRIM_THRESHOLD_BYTES = 2**31 - 1
_applied: bool | None = None


def reuse_freed_memory() -> bool:
    """Make glibc keep freed memory for reuse (see the module docstring). Idempotent.

    Returns:
        True when the settings are in force; False where they do not apply (not glibc,
        e.g. macOS, Windows or musl) or ``LEGATO_KEEP_FREED_MEMORY=0`` is set.
    """
    global _applied
    if _applied is None:
        _applied = _apply()
    return _applied


def _apply() -> bool:
    if os.environ.get("LEGATO_KEEP_FREED_MEMORY", "1").strip().lower() in ("0", "false", "no"):
        return False
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # mallopt returns 1 on success. Without mappings per block, glibc's dynamic thresholds
    # (which would trim freed blocks again) play no part.
    ok = mallopt(_M_MMAP_MAX, 0) == 1
    return mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES) == 1 and ok
