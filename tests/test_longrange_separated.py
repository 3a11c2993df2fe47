"""The range-separated long-range layer (``exclude_short_range``): the near field is Allegro's.

What it must share with the full kernel (invariances, finite differences, stress, batches,
chunks, save/load, float32, extensivity) runs for both kernels in test_longrange.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.neighborlist import neighbor_list
from helpers import (
    random_structure,
    tiny_model,
)

import legato_ase
from legato_ase import LegatoCalculator
from legato_ase.config import LongRangeConfig
from legato_ase.io import content_checksum
from legato_ase.model.longrange import LongRange, real_space_kernel, short_range_switch

SEPARATED = {"exclude_short_range": True}
TRICLINIC = 1.013 * np.array([[5.0, 0.0, 0.0], [0.8, 4.6, 0.0], [-0.5, 0.7, 4.8]])


@pytest.fixture(scope="module")
def model():
    return tiny_model(long_range=SEPARATED)


def _calc(model, **kwargs):
    return LegatoCalculator(model, max_edges=None, **kwargs)


def _energy(model, atoms):
    atoms = atoms.copy()
    atoms.calc = _calc(model)
    return atoms.get_potential_energy()


def _layer(r_max: float, screening: float, separated: bool = True) -> LongRange:
    cfg = LongRangeConfig(
        channels=1,
        sigma=0.8,
        grid_spacing=0.4,
        truncation=7.0,
        screening=[screening],
        exclude_short_range=separated,
    )
    layer = LongRange(cfg, n_features=1, n_species=1, r_max=r_max).double()
    layer.amplitude.data.fill_(1.0)
    return layer.requires_grad_(False)


def test_switch_is_one_at_zero_zero_from_the_cutoff_on_and_twice_smooth():
    r = torch.tensor([0.0, 1e-3, 2.999, 3.0, 3.5, 9.0], dtype=torch.float64, requires_grad=True)
    s = short_range_switch(r, 3.0)
    (ds,) = torch.autograd.grad(s.sum(), r, create_graph=True)
    (d2s,) = torch.autograd.grad(ds.sum(), r)
    np.testing.assert_allclose(s.detach()[[0, 3, 4, 5]], [1.0, 0.0, 0.0, 0.0], atol=1e-15)
    np.testing.assert_allclose(ds.detach()[[0, 2, 3, 4]], 0.0, atol=1e-5)
    np.testing.assert_allclose(d2s[[0, 3, 4]], 0.0, atol=1e-12)
    assert abs(float(d2s[2])) < 5e-3  # continuous at the cutoff
    assert torch.all(ds.detach()[1:3] < 0)


def test_pair_kernel_is_the_full_one_beyond_r_max_and_switched_inside():
    """Two unit charges, direct sum: K·(1 − s(r/r_max)), the full kernel from r_max on."""
    full, separated = _layer(4.0, 0.3, separated=False), _layer(4.0, 0.3)
    q = torch.ones(2, 1, dtype=torch.float64)
    for r in (0.7, 2.0, 3.9, 4.0, 6.5):
        pos = torch.tensor([[0.0, 0.0, 0.0], [r, 0.0, 0.0]], dtype=torch.float64)
        got = float(separated.direct_potentials(pos, q)[0, 0])
        whole = float(full.direct_potentials(pos, q)[0, 0])
        switch = float(short_range_switch(torch.tensor(r, dtype=torch.float64), 4.0))
        assert got == pytest.approx(whole * (1.0 - switch), rel=1e-12, abs=1e-15)
        if r >= 4.0:
            assert got == pytest.approx(whole, rel=1e-12)


def test_grid_minus_near_field_equals_separated_direct_sum_in_a_large_box():
    """Periodic path (grid, then the near field subtracted over pairs) = direct K·(1 − s)."""
    rng = np.random.default_rng(0)
    positions = rng.random((8, 3)) * 5 + 10
    q = torch.tensor(rng.normal(size=(8, 1)))
    mu, box, r_max = 1.0, 24.0, 3.0  # images: exp(−μL) ≈ 4e-11
    layer = _layer(r_max, mu)
    from ase import Atoms

    atoms = Atoms("H8", positions=positions, cell=np.eye(3) * box, pbc=True)
    i, j, vec = neighbor_list("ijD", atoms, r_max)
    assert len(i) > 0
    pos = torch.tensor(positions)
    near = layer.near_potentials(q[j], torch.tensor(i), torch.tensor(vec), len(atoms))
    periodic = layer.periodic_potentials(pos, q, torch.eye(3, dtype=torch.float64) * box) - near
    k_zero = 4 * np.pi / mu**2 * float(q.sum()) / box**3  # left out on the grid
    direct = layer.direct_potentials(pos, q)
    np.testing.assert_allclose(periodic.numpy() + k_zero, direct.numpy(), atol=1e-9)
    kernel = real_space_kernel(torch.tensor([r_max]), torch.tensor(mu), 0.8)
    assert float(kernel) > 1e-3  # the check is not trivially small


def test_separation_changes_the_energy(model):
    atoms = random_structure(12)
    assert abs(_energy(model, atoms) - _energy(tiny_model(long_range={}), atoms)) > 1e-3


def test_files_written_before_the_setting_keep_the_full_kernel(tmp_path):
    full = tiny_model(long_range={})
    legato_ase.save_model(full, tmp_path / "full.pt")
    payload = torch.load(tmp_path / "full.pt", weights_only=True)
    del payload["config"]["long_range"]["exclude_short_range"]  # an older file
    payload["checksum"] = content_checksum(payload)
    torch.save(payload, tmp_path / "old.pt")
    old = legato_ase.load_model(tmp_path / "old.pt")
    assert not old.config.long_range.exclude_short_range
    atoms = random_structure(12)
    assert _energy(old, atoms) == _energy(full, atoms)


def test_non_boolean_setting_is_rejected():
    with pytest.raises(TypeError, match="exclude_short_range must be true or false"):
        legato_ase.build_model({"preset": "default", "long_range": {"exclude_short_range": 4}})
