"""SAM: the perturbation is ρ·g/‖g‖ (global L2 ball) and the base update uses g(w + ε̂)."""

import pytest
import torch

from legato_ase.train import SAM


def _quadratic(w, a):
    return 0.5 * (w * (a * w)).sum()  # L(w) = ½ Σ a_k w_k², ∇L = a·w


def _setup(adaptive=False, interval=1, lr=0.1, rho=0.05):
    a = torch.tensor([1.0, 3.0, 0.5, 2.0], dtype=torch.float64)
    w = torch.nn.Parameter(torch.tensor([0.7, -0.4, 1.2, 0.3], dtype=torch.float64))
    sam = SAM(torch.optim.SGD([w], lr=lr), rho=rho, adaptive=adaptive, interval=interval)
    return a, w, sam


def _grad(w, a, sam):
    sam.zero_grad()
    loss = _quadratic(w, a)
    loss.backward()
    return loss


def test_first_step_moves_weights_by_rho_along_the_normalised_gradient():
    a, w, sam = _setup()
    w0 = w.detach().clone()
    _grad(w, a, sam)
    g = a * w0
    sam.first_step()
    torch.testing.assert_close(w.detach(), w0 + 0.05 * g / g.norm(), rtol=0, atol=1e-15)
    assert torch.isclose((w.detach() - w0).norm(), torch.tensor(0.05, dtype=torch.float64))


def test_second_step_restores_weights_then_applies_base_update_with_perturbed_gradient():
    a, w, sam = _setup()
    w0 = w.detach().clone()
    _grad(w, a, sam)
    sam.first_step()
    _grad(w, a, sam)  # gradient at the perturbed point
    sam.base_optimizer.step = lambda: None  # look at the weights before the base update
    sam.second_step()
    torch.testing.assert_close(w.detach(), w0, rtol=0, atol=1e-15)


def test_full_step_equals_sgd_step_with_gradient_at_perturbed_point():
    a, w, sam = _setup(lr=0.1)
    w0 = w.detach().clone()
    _grad(w, a, sam)
    g = a * w0
    w_adv = w0 + 0.05 * g / g.norm()
    sam.step(lambda: _grad(w, a, sam))
    torch.testing.assert_close(w.detach(), w0 - 0.1 * a * w_adv, rtol=0, atol=1e-14)


def test_asam_scales_the_perturbation_by_weight_magnitude():
    a, w, sam = _setup(adaptive=True, rho=0.5)
    w0 = w.detach().clone()
    _grad(w, a, sam)
    g = a * w0
    sam.first_step()
    expected = 0.5 * w0.abs() ** 2 * g / (w0.abs() * g).norm()
    torch.testing.assert_close(w.detach() - w0, expected, rtol=0, atol=1e-14)


def test_interval_sam_perturbs_only_every_kth_step():
    a, w, sam = _setup(interval=3)
    calls = []

    def closure():
        calls.append(1)
        return _grad(w, a, sam)

    for _ in range(6):
        _grad(w, a, sam)
        sam.step(closure)
    assert len(calls) == 2  # steps 0 and 3


def test_sam_minimises_a_quadratic():
    a, w, sam = _setup(lr=0.2, rho=0.01)
    for _ in range(200):
        _grad(w, a, sam)
        sam.step(lambda: _grad(w, a, sam))
    assert _quadratic(w, a).item() < 1e-4


def test_bad_rho_is_rejected():
    w = torch.nn.Parameter(torch.zeros(2))
    with pytest.raises(ValueError, match="rho"):
        SAM(torch.optim.SGD([w], lr=0.1), rho=0.0)


def test_perturbation_of_several_tensors_uses_one_global_norm():
    """ε̂ = ρ·g/‖g‖ over all parameters together: ‖ε̂‖ = ρ, not ρ per tensor."""
    a = [torch.tensor([1.0, 3.0], dtype=torch.float64), torch.tensor([0.5, 2.0, 4.0])]
    a[1] = a[1].double()
    w = [
        torch.nn.Parameter(torch.tensor([0.7, -0.4], dtype=torch.float64)),
        torch.nn.Parameter(torch.tensor([1.2, 0.3, -0.1], dtype=torch.float64)),
    ]
    sam = SAM(torch.optim.SGD(w, lr=0.1), rho=0.05)
    w0 = [p.detach().clone() for p in w]
    sam.zero_grad()
    sum(_quadratic(p, c) for p, c in zip(w, a, strict=True)).backward()
    g = [c * p for c, p in zip(a, w0, strict=True)]
    norm = torch.cat(g).norm()
    sam.first_step()
    for p, p0, gi in zip(w, w0, g, strict=True):
        torch.testing.assert_close(p.detach() - p0, 0.05 * gi / norm, rtol=0, atol=1e-15)
    total = torch.cat([p.detach() - p0 for p, p0 in zip(w, w0, strict=True)]).norm()
    assert torch.isclose(total, torch.tensor(0.05, dtype=torch.float64))
