"""Crash-safe file writing: a kill or an exception leaves either the old file or the new one."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


@contextmanager
def atomic_output(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success flush, fsync and rename it over ``path``.

    The new file gets ordinary permissions (0666 less the umask), not mkstemp's private 0600.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write a text file atomically."""
    with atomic_output(path, "w") as handle:
        handle.write(text)


def copy_atomic(source: str | os.PathLike, target: str | os.PathLike) -> None:
    """Copy a file atomically (the target is never seen half-written)."""
    with open(source, "rb") as src, atomic_output(target) as handle:
        shutil.copyfileobj(src, handle)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
