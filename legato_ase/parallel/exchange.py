"""Reverse exchange: forces computed on ghost atoms go back to the ranks that own them.

LAMMPS does not tell a fix which rank owns a ghost, so ownership is looked up through a
directory: atom tag t is registered on rank t mod P. Per step that is three all-to-all
exchanges, each carrying only this rank's ghosts (no rank ever holds all atoms).
"""

from __future__ import annotations

import numpy as np


def _by_destination(keys: np.ndarray, size: int, *payloads: np.ndarray) -> list:
    dest = keys % size
    return [tuple(p[dest == d] for p in (keys, *payloads)) for d in range(size)]


def _lookup(sorted_keys: np.ndarray, order: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    pos = np.searchsorted(sorted_keys, wanted)
    pos = np.clip(pos, 0, max(len(sorted_keys) - 1, 0))
    if len(wanted) and (len(sorted_keys) == 0 or np.any(sorted_keys[pos] != wanted)):
        missing = wanted[sorted_keys[pos] != wanted] if len(sorted_keys) else wanted
        raise RuntimeError(f"atoms {missing[:5].tolist()} have no owner rank (lost atoms?)")
    return order[pos]


def _sum_duplicates(tags: np.ndarray, forces: np.ndarray):
    unique, inverse = np.unique(tags, return_inverse=True)
    summed = np.zeros((len(unique), forces.shape[1]))
    np.add.at(summed, inverse, forces)
    return unique, summed


def reverse_exchange(
    comm, local_tags: np.ndarray, ghost_tags: np.ndarray, ghost_forces: np.ndarray
) -> np.ndarray:
    """Sum ghost-atom forces onto the owners' local atoms.

    Args:
        comm: a SerialComm or MPIComm.
        local_tags: [n_local] int64 global ids of this rank's owned atoms.
        ghost_tags: [n_ghost] int64 global ids of this rank's ghost atoms.
        ghost_forces: [n_ghost, 3] eV/Å force contributions computed on the ghosts (or
            any other [n_ghost, W] per-atom values to be summed onto the owners).

    Returns:
        [n_local, 3] (or [n_local, W]) forces to add to the owned atoms (from every
        rank's ghosts).
    """
    local_tags = np.asarray(local_tags, dtype=np.int64)
    ghost_forces = np.asarray(ghost_forces, dtype=np.float64)
    width = ghost_forces.shape[1] if ghost_forces.ndim == 2 else 3
    ghost_forces = ghost_forces.reshape(-1, width)
    tags, forces = _sum_duplicates(np.asarray(ghost_tags, dtype=np.int64), ghost_forces)
    order = np.argsort(local_tags)
    out = np.zeros((len(local_tags), width))
    if comm.size == 1:  # every ghost is a periodic image of one of our atoms
        np.add.at(out, _lookup(local_tags[order], order, tags), forces)
        return out
    size = comm.size
    registered = comm.alltoall([k for (k,) in _by_destination(local_tags, size)])
    dir_tags = np.concatenate(registered)
    dir_owner = np.concatenate([np.full(len(k), r) for r, k in enumerate(registered)])
    dir_order = np.argsort(dir_tags)
    queries = comm.alltoall(_by_destination(tags, size, forces))
    q_tags = np.concatenate([q[0] for q in queries])
    q_forces = np.concatenate([q[1] for q in queries]).reshape(-1, width)
    owners = dir_owner[_lookup(dir_tags[dir_order], dir_order, q_tags)]
    delivered = comm.alltoall([(q_tags[owners == r], q_forces[owners == r]) for r in range(size)])
    d_tags = np.concatenate([d[0] for d in delivered])
    d_forces = np.concatenate([d[1] for d in delivered]).reshape(-1, width)
    np.add.at(out, _lookup(local_tags[order], order, d_tags), d_forces)
    return out
