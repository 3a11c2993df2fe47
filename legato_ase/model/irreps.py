"""Which irreps each Allegro layer carries, and the dense Clebsch–Gordan tensors.

An irrep is a pair (l, p) with parity p = ±1. Spherical harmonics carry (l, (−1)^l).
Tensor products are channel-wise ("uuu"); a layer's paths run from its input irreps and
the spherical-harmonic irreps to the output irreps that can still reach a scalar (0e)
by the last layer. Everything here is plain bookkeeping done once at construction.
"""

from __future__ import annotations

import dataclasses
import math

import torch
from e3nn import o3

Irrep = tuple[int, int]
SCALAR: Irrep = (0, 1)


def sh_irreps(l_max: int) -> list[Irrep]:
    return [(l, (-1) ** l) for l in range(l_max + 1)]


def irreps_dim(irreps: list[Irrep]) -> int:
    return sum(2 * l + 1 for l, _ in irreps)


def _products(a: Irrep, b: Irrep, l_max: int, parity: bool) -> list[Irrep]:
    out = []
    for l in range(abs(a[0] - b[0]), min(a[0] + b[0], l_max) + 1):
        p = a[1] * b[1]
        if parity or p == (-1) ** l:
            out.append((l, p))
    return out


def layer_irreps(l_max: int, n_layers: int, parity: bool) -> list[list[Irrep]]:
    """Irreps of the tensor features entering each layer, plus the last output [0e].

    Returns a list of n_layers + 1 irreps lists: inputs of layers 0..L−1 and the output
    of the last layer. Irreps that cannot reach 0e by the end are pruned.
    """
    sh = sh_irreps(l_max)
    forward = [sh]
    for _ in range(n_layers - 1):
        produced = {c for a in forward[-1] for b in sh for c in _products(a, b, l_max, parity)}
        forward.append(sorted(produced))
    needed: list[list[Irrep]] = [[SCALAR]]
    for layer in reversed(range(n_layers)):
        keep = [
            a
            for a in forward[layer]
            if any(c in needed[0] for b in sh for c in _products(a, b, l_max, parity))
        ]
        needed.insert(0, keep)
    return needed


@dataclasses.dataclass(frozen=True)
class Path:
    irrep_in: Irrep
    irrep_sh: Irrep
    irrep_out: Irrep


def layer_paths(irreps_in: list[Irrep], sh: list[Irrep], irreps_out: list[Irrep]) -> list[Path]:
    """All (in ⊗ sh → out) paths obeying the triangle and parity rules, grouped by output."""
    paths = []
    for c in irreps_out:
        for a in irreps_in:
            for b in sh:
                if abs(a[0] - b[0]) <= c[0] <= a[0] + b[0] and a[1] * b[1] == c[1]:
                    paths.append(Path(a, b, c))
    return paths


def _offsets(irreps: list[Irrep]) -> dict[Irrep, int]:
    offsets, start = {}, 0
    for irrep in irreps:
        offsets[irrep] = start
        start += 2 * irrep[0] + 1
    return offsets


def cg_tensor(
    irreps_in: list[Irrep], sh: list[Irrep], paths: list[Path], dtype: torch.dtype
) -> torch.Tensor:
    """Dense coupling tensor C[a, b, k]: path outputs stacked along k, path order kept.

    Each block is e3nn's Wigner-3j (unit Frobenius norm) times sqrt(2 l_out + 1), so that
    unit-variance inputs give unit-variance outputs ("component" normalisation).
    """
    off_in, off_sh = _offsets(irreps_in), _offsets(sh)
    k_dim = sum(2 * p.irrep_out[0] + 1 for p in paths)
    c = torch.zeros(irreps_dim(irreps_in), irreps_dim(sh), k_dim, dtype=torch.float64)
    k = 0
    for path in paths:
        (la, _), (lb, _), (lc, _) = path.irrep_in, path.irrep_sh, path.irrep_out
        w3j = o3.wigner_3j(la, lb, lc, dtype=torch.float64) * math.sqrt(2 * lc + 1)
        a0, b0 = off_in[path.irrep_in], off_sh[path.irrep_sh]
        c[a0 : a0 + 2 * la + 1, b0 : b0 + 2 * lb + 1, k : k + 2 * lc + 1] = w3j
        k += 2 * lc + 1
    return c.to(dtype)


def expand_index(irreps: list[Irrep]) -> torch.Tensor:
    """For every component m of an irreps vector, the index of its irrep: [dim]."""
    return torch.tensor(
        [i for i, (l, _) in enumerate(irreps) for _ in range(2 * l + 1)], dtype=torch.long
    )
