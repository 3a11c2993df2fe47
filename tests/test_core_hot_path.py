"""GPU readiness, checked on the CPU: one evaluation asks nothing of the host.

On a GPU, an op whose result the host must read (``.item()``, a boolean mask, ``nonzero``)
stalls the stream until every queued kernel has run. The model's code is the same on every
device, so a host read it asks for shows up on the CPU too. (Inside one op torch may check
more on the CPU than on a GPU, e.g. ``one_hot``'s index range: the check then errs on the
strict side.)
"""

import pytest
import torch
from helpers import random_structure, tiny_model
from torch.utils._python_dispatch import TorchDispatchMode

from legato_ase.data import atoms_to_graph

aten = torch.ops.aten
HOST_READS = {
    aten._local_scalar_dense,  # .item(), float(t), int(t), bool(t)
    aten.nonzero,
    aten.masked_select,
    aten.is_nonzero,
    aten.equal,
    aten.unique_consecutive,
    aten._unique2,
    aten.repeat_interleave,
}


class HostReads(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.overloadpacket in HOST_READS or _boolean_mask(func, args):
            self.seen.append(str(func))
        return func(*args, **(kwargs or {}))


def _boolean_mask(func, args) -> bool:
    """x[mask]: the result's size depends on the mask's values."""
    if func.overloadpacket not in (aten.index, aten.index_put):
        return False
    return any(
        isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in args[1] if i is not None
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_an_evaluation_with_forces_and_virial_reads_nothing_back_to_the_host(dtype):
    model = tiny_model(dtype=dtype)
    graph = atoms_to_graph(random_structure(14, seed=2), model.species, model.r_max)
    with HostReads() as reads:
        out = model.evaluate(graph, forces=True, virial=True)
    assert out["forces"].shape == (14, 3) and out["virial"].shape == (1, 3, 3)
    assert reads.seen == []


def test_the_check_sees_a_host_read():
    x = torch.ones(3)
    with HostReads() as reads:
        float(x.sum())
        x[x > 0]
    assert len(reads.seen) == 2
