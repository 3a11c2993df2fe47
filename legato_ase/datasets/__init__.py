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
    openers = {".xz": "lzma", ".gz": "gzip", ".bz2": "bz2"}
    if path.suffix in openers:
        with importlib.import_module(openers[path.suffix]).open(path, "rt") as handle:
            source = io.StringIO(handle.read())
        read = ase.io.read(source, index=index, format=filetype(str(path), read=False))
    else:
        read = ase.io.read(path, index=index)
    return read if isinstance(read, list) else [read]


def read_ammonia(pattern: str = "*", index: str = ":") -> list:
    """The bundled frames as a list of ASE Atoms (labels in ``atoms.calc``)."""
    return [atoms for path in ammonia_files(pattern) for atoms in read_frames(path, index)]


__all__ = ["DATASETS_DIR", "ammonia_files", "read_ammonia", "read_frames"]
