"""An append-only extended-XYZ file that survives being killed mid-write.

Each frame is encoded in memory and written with one ``write`` followed by ``fsync``, so a
crash can only leave an incomplete *last* frame. Opening the file again finds the complete
frames by their line counts and cuts such a tail off before anything is appended.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

from ase import Atoms


def encode_frame(atoms: Atoms) -> bytes:
    """One frame as extended-XYZ bytes (labels from ``atoms.calc``, info and arrays kept)."""
    import ase.io

    buffer = io.StringIO()
    ase.io.write(buffer, atoms, format="extxyz")
    return buffer.getvalue().encode()


def _frame_ends(data: bytes, path: Path) -> Iterator[int]:
    """Byte offsets just past each complete frame, in order."""
    pos = 0
    while pos < len(data):
        newline = data.find(b"\n", pos)
        if newline < 0:
            return  # a count line cut short
        head = data[pos:newline].strip()
        try:
            n_atoms = int(head)
        except ValueError:
            raise ValueError(
                f"{path} is not an extended-XYZ file written frame by frame (line at byte {pos} "
                f"should be an atom count, found {head[:40]!r}); choose another output file."
            ) from None
        end = newline
        for _ in range(n_atoms + 1):  # comment line + one line per atom
            end = data.find(b"\n", end + 1)
            if end < 0:
                return  # the frame is incomplete
        pos = end + 1
        yield pos


class FrameLog:
    """Append-only frame file; ``frames()`` lists what is in it, ``append()`` adds one frame.

    Args:
        path: the extended-XYZ file (created if missing).

    Attributes:
        dropped_bytes: size of the incomplete tail cut off when the file was opened
            (0 when the last write had finished).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.dropped_bytes = 0
        if self.path.exists():
            data = self.path.read_bytes()
            complete = max(_frame_ends(data, self.path), default=0)
            if complete < len(data):
                self.dropped_bytes = len(data) - complete
                os.truncate(self.path, complete)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def frames(self) -> list[Atoms]:
        """Every complete frame in the file (labels in ``atoms.calc``)."""
        import ase.io

        if not self.path.exists() or self.path.stat().st_size == 0:
            return []
        return list(ase.io.read(self.path, index=":", format="extxyz"))

    def append(self, atoms: Atoms) -> None:
        """Write one frame at the end of the file and force it to disk."""
        data = encode_frame(atoms)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
