"""Bundled labelled data: periodic ammonia frames labelled with GFN1-xTB.

Nine xz-compressed extended-XYZ files of 100 frames each (64-atom cells, 16 NH3 molecules):
four crystal states (``solid_060``, ``solid_120``, ``solid_180``, ``solid_c150``) and five
liquids (``liquid_200``, ``liquid_240``, ``liquid_300``, ``liquid_400``, ``liquid_dense260``).
Each frame carries ``energy`` (eV), ``forces`` (eV/Å) and ``stress`` (eV/Å³, ASE sign).
Frames within one file are time-correlated (one every 10 fs of Langevin MD): split
training and validation by file or by contiguous blocks for an honest validation error.
In training configs, write ``bundled:nh3_*.extxyz.xz`` to name these files.
"""

from __future__ import annotations

import importlib
import io
from pathlib import Path

DATASETS_DIR = Path(__file__).parent


def ammonia_files(pattern: str = "*") -> list[Path]:
    """Paths of the bundled ammonia files whose state matches ``pattern`` (e.g. ``"liquid_*"``)."""
    paths = sorted(DATASETS_DIR.glob(f"nh3_{pattern}.extxyz.xz"))
    if not paths:
        states = [p.name[4:-10] for p in sorted(DATASETS_DIR.glob("nh3_*.extxyz.xz"))]
        raise FileNotFoundError(f"no bundled ammonia file matches '{pattern}'; states: {states}")
    return paths


def read_frames(path: str | Path, index: str = ":") -> list:
    """ase.io.read as a list; .xz/.gz/.bz2 files are decompressed in memory first.

    (ASE reads compressed files with many backward seeks, each restarting the
    decompression: 30x slower for a 100-frame xz file.)
    """
    import ase.io
    from ase.io.formats import filetype

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"structure file '{path}' does not exist.")
    openers = {".xz": "lzma", ".gz": "gzip", ".bz2": "bz2"}
    text, fmt = None, "a structure file"
    try:
        if path.suffix in openers:
            with importlib.import_module(openers[path.suffix]).open(path, "rt") as handle:
                text = handle.read()
            fmt = filetype(str(path), read=False)
            read = ase.io.read(io.StringIO(text), index=index, format=fmt)
        else:
            fmt = filetype(str(path))
            read = ase.io.read(path, index=index)
    except Exception as err:  # ASE raises many types for malformed files
        if isinstance(err, (MemoryError, KeyboardInterrupt)):
            raise
        raise ValueError(_read_error(path, text, fmt, err)) from None
    return read if isinstance(read, list) else [read]


def _read_error(path: Path, text: str | None, fmt: str, err: Exception) -> str:
    where = None
    if fmt in ("xyz", "extxyz"):
        if text is None:
            text = path.read_text(errors="replace")
        where = _first_bad_xyz_line(text.splitlines())
    detail = f"line {where[0]}: {where[1]}" if where else f"{type(err).__name__}: {err}"
    return f"cannot read {path} ({fmt}): {detail}"


def _first_bad_xyz_line(lines: list[str]) -> tuple[int, str] | None:
    """(1-based line, what is wrong) of the first malformed line of an (ext)xyz text."""
    i = 0
    while i < len(lines) and lines[i].strip():
        try:
            n_atoms = int(lines[i].split()[0])
        except ValueError:
            return i + 1, f"expected the atom count of a frame, got '{lines[i].strip()[:60]}'"
        columns = _float_columns(lines[i + 1] if i + 1 < len(lines) else "")
        for k in range(i + 2, i + 2 + n_atoms):
            fields = lines[k].split() if k < len(lines) else []
            if len(fields) <= max(columns):
                return k + 1, f"expected an atom line, got '{' '.join(fields)[:60]}'"
            for c in columns:
                try:
                    float(fields[c])
                except ValueError:
                    return k + 1, f"'{fields[c]}' in column {c + 1} is not a number"
        i += n_atoms + 2
    return None


def _float_columns(comment: str) -> list[int]:
    """Columns of real numbers declared by an extxyz Properties=..., else x y z of plain xyz."""
    import re

    match = re.search(r"Properties=(\S+)", comment)
    if not match:
        return [1, 2, 3]
    parts, columns, start = match.group(1).split(":"), [], 0
    for kind, count in zip(parts[1::3], parts[2::3], strict=False):
        width = int(count) if count.isdigit() else 1
        if kind.upper() == "R":
            columns.extend(range(start, start + width))
        start += width
    return columns or [0]


def read_ammonia(pattern: str = "*", index: str = ":") -> list:
    """The bundled frames as a list of ASE Atoms (labels in ``atoms.calc``)."""
    return [atoms for path in ammonia_files(pattern) for atoms in read_frames(path, index)]


__all__ = ["DATASETS_DIR", "ammonia_files", "read_ammonia", "read_frames"]
