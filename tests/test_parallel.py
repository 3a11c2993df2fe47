"""Domain decomposition: the sum over domains equals the serial calculator (plain pytest)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent / "mpi_scripts"))
from common import ammonia_cell, clustered, comparison_cells, tiny_model, triclinic  # noqa: E402

from legato_ase import LegatoCalculator  # noqa: E402
from legato_ase.calculator import ParallelLegatoCalculator  # noqa: E402
from legato_ase.parallel import (  # noqa: E402
    ParallelEvaluator,
    SerialComm,
    choose_grid,
    decompose,
    evaluate_local,
    make_frame,
    select_device,
)
from legato_ase.parallel.calculator import _unpack  # noqa: E402

TOL = 1e-10


class RankView(SerialComm):
    """Pretend to be rank r of P, to evaluate every domain in one process."""

    def __init__(self, rank: int, size: int) -> None:
        self.rank, self.size = rank, size


@pytest.fixture(scope="module")
def model():
    return tiny_model()


def summed_over_domains(model, atoms, n_domains, grid=None):
    shares = [
        ParallelEvaluator(model, RankView(r, n_domains), grid).local_share(atoms)[0]
        for r in range(n_domains)
    ]
    return _unpack(np.sum(shares, axis=0), [atoms])[0]


@pytest.mark.parametrize("name", list(comparison_cells()))
@pytest.mark.parametrize("n_domains,grid", [(3, None), (8, None), (4, (4, 1, 1))])
def test_domains_sum_to_serial_energy_forces_stress(model, name, n_domains, grid):
    atoms = comparison_cells()[name]
    ref = LegatoCalculator(model).calculate_batch([atoms])[0]
    got = summed_over_domains(model, atoms, n_domains, grid)
    assert set(got) == set(ref)
    for key in ref:
        np.testing.assert_allclose(got[key], ref[key], rtol=0, atol=TOL, err_msg=key)


def test_every_atom_is_owned_by_exactly_one_domain():
    atoms = triclinic(ammonia_cell())
    frame = make_frame(atoms.positions, atoms.cell.array, atoms.pbc)
    owned = np.concatenate(
        [decompose(frame, atoms.positions, 4.0, (2, 3, 1), r).owned for r in range(6)]
    )
    assert np.array_equal(np.sort(owned), np.arange(len(atoms)))


def test_domains_thinner_than_r_max_see_several_image_layers():
    atoms = ammonia_cell()  # 8.6 Å cube: 8 slabs are 1.08 Å thick, r_max 4 Å
    frame = make_frame(atoms.positions, atoms.cell.array, atoms.pbc)
    domain = decompose(frame, atoms.positions, 4.0, (8, 1, 1), 0)
    copies = np.bincount(domain.indices, minlength=len(atoms))
    assert copies.max() >= 2  # the same atom appears at more than one image


def test_empty_domain_contributes_nothing(model):
    atoms = clustered(ammonia_cell())
    frame = make_frame(atoms.positions, atoms.cell.array, atoms.pbc)
    domain = decompose(frame, atoms.positions, model.r_max, (2, 1, 1), 1)
    assert len(domain.owned) == 0
    share, _ = ParallelEvaluator(model, RankView(1, 2), (2, 1, 1)).local_share(atoms)
    assert not share.any()


def test_double_halo_gives_complete_forces_on_owned_atoms(model):
    """With a 2·r_max halo and ghost centres, owned forces need no reverse exchange."""
    atoms = triclinic(ammonia_cell())
    ref = LegatoCalculator(model).calculate_batch([atoms])[0]
    frame = make_frame(atoms.positions, atoms.cell.array, atoms.pbc)
    energy, virial = 0.0, np.zeros((3, 3))
    for rank in range(4):
        domain = decompose(frame, atoms.positions, 2 * model.r_max, (4, 1, 1), rank)
        species = np.array([model.species.index(s) for s in atoms.get_chemical_symbols()])
        res = evaluate_local(
            model, domain.positions, species[domain.indices], len(domain.owned), halo="double"
        )
        n = len(domain.owned)
        np.testing.assert_allclose(res.forces[:n], ref["forces"][domain.owned], atol=TOL)
        energy, virial = energy + res.energy, virial + res.virial
    assert abs(energy - ref["energy"]) < TOL
    np.testing.assert_allclose(
        -virial.flat[[0, 4, 8, 5, 2, 1]] / atoms.get_volume(), ref["stress"], atol=TOL
    )


def test_grid_choice_prefers_thick_domains():
    assert choose_grid(4, np.array([20.0, 10.0, 10.0])) == (2, 2, 1) or choose_grid(
        4, np.array([20.0, 10.0, 10.0])
    ) == (2, 1, 2)
    assert choose_grid(2, np.array([5.0, 5.0, 30.0])) == (1, 1, 2)
    assert choose_grid(1, np.ones(3)) == (1, 1, 1)


def test_grid_that_does_not_match_the_ranks_is_refused(model):
    with pytest.raises(ValueError, match="product is the number of ranks"):
        ParallelEvaluator(model, SerialComm(), grid=(2, 1, 1))


def test_serial_parallel_calculator_equals_serial_calculator(model):
    atoms = triclinic(ammonia_cell())
    atoms.calc = ParallelLegatoCalculator(model)
    ref = LegatoCalculator(model).calculate_batch([atoms])[0]
    assert abs(atoms.get_potential_energy() - ref["energy"]) < TOL
    np.testing.assert_allclose(atoms.get_forces(), ref["forces"], atol=TOL)
    np.testing.assert_allclose(atoms.get_stress(), ref["stress"], atol=TOL)


def test_one_gpu_per_rank_from_the_local_rank_and_cpu_fallback():
    assert select_device("cuda", local_rank=3, n_gpus=2) == "cuda:1"
    assert select_device("auto", local_rank=0, n_gpus=0) == "cpu"
    with pytest.warns(UserWarning, match="no GPU"):
        assert select_device("cuda", local_rank=0, n_gpus=0) == "cpu"
    assert select_device("cpu", local_rank=5) == "cpu"
    if not torch.cuda.is_available():
        assert ParallelLegatoCalculator(tiny_model(), device="auto").device == torch.device("cpu")


def test_reverse_exchange_returns_image_forces_to_their_atom():
    from legato_ase.parallel.exchange import reverse_exchange

    local = np.array([7, 3, 5])
    ghosts = np.array([3, 3, 7])  # two images of atom 3, one of atom 7
    forces = np.array([[1.0, 0, 0], [0, 2.0, 0], [0, 0, 3.0]])
    out = reverse_exchange(SerialComm(), local, ghosts, forces)
    np.testing.assert_array_equal(out, [[0, 0, 3.0], [1.0, 2.0, 0], [0, 0, 0]])
    with pytest.raises(RuntimeError, match="no owner"):
        reverse_exchange(SerialComm(), local, np.array([9]), forces[:1])


def test_serial_null_communicator_outside_mpirun_and_bad_comm_refused(monkeypatch):
    from legato_ase.parallel import get_comm

    for var in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MPI_LOCALNRANKS", "PMIX_RANK"):
        monkeypatch.delenv(var, raising=False)
    comm = get_comm()
    assert isinstance(comm, SerialComm) and (comm.rank, comm.size) == (0, 1)
    np.testing.assert_array_equal(comm.sum_to_all(np.arange(3.0)), np.arange(3.0))
    with pytest.raises(TypeError, match="mpi4py communicator"):
        get_comm(42)


def test_legato_calculator_parallel_flag_gives_serial_results(model):
    atoms = clustered(ammonia_cell())
    atoms.calc = LegatoCalculator(model, parallel=True)
    ref = LegatoCalculator(model).calculate_batch([atoms])[0]
    assert abs(atoms.get_potential_energy() - ref["energy"]) < TOL
    np.testing.assert_allclose(atoms.get_forces(), ref["forces"], atol=TOL)
    np.testing.assert_allclose(atoms.get_stress(), ref["stress"], atol=TOL)
