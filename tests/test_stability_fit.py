"""Censored maximum-likelihood fit of t_failure ∝ N^(-β) (survival analysis)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from legato_ase.stability import (
    fit_records,
    fit_scaling,
    log_rank_p,
    plot_scaling,
    plot_survival,
    restricted_mean_interval,
    summarize,
    survival_curve,
)

SIZES = np.array([64, 128, 256, 512, 1024, 2048])


def synthetic(beta, n_per_size=40, sigma=0.5, cap=60.0, seed=0, exponential=False):
    """Weibull failure times with log t = a − β log N + σ W, right-censored at ``cap``."""
    rng = np.random.default_rng(seed)
    n = np.repeat(SIZES, n_per_size)
    w = np.log(rng.exponential(size=n.size))  # standard minimum-extreme-value variable
    scale = 1.0 if exponential else sigma
    t = np.exp(np.log(40.0) - beta * np.log(n / 256.0) + scale * w)
    return n, np.minimum(t, cap), t < cap


def test_fit_recovers_known_beta_with_censoring():
    n, t, failed = synthetic(beta=0.3)
    assert 0.15 < np.mean(~failed) < 0.5  # a real share of the replicas is censored
    fit = fit_scaling(n, t, failed)
    assert fit.beta_low < 0.3 < fit.beta_high
    assert abs(fit.beta - 0.3) < 0.07 and fit.beta_high - fit.beta_low < 0.25
    assert fit.sigma == pytest.approx(0.5, abs=0.1)
    assert (fit.n_failed, fit.n_censored) == (int(failed.sum()), int((~failed).sum()))


def test_ignoring_censoring_biases_beta_but_the_survival_fit_does_not():
    n, t, failed = synthetic(beta=0.3)
    naive_beta = -np.polyfit(np.log(n), np.log(t), 1)[0]  # censored times taken as failures
    assert naive_beta < 0.24
    assert abs(fit_scaling(n, t, failed).beta - 0.3) < abs(naive_beta - 0.3)


def test_two_models_with_different_beta_are_told_apart():
    allegro = fit_scaling(*synthetic(beta=0.29, seed=1))
    legato = fit_scaling(*synthetic(beta=0.0, seed=2))
    assert legato.beta_high < allegro.beta_low


def test_exponential_and_lognormal_models_and_bootstrap_interval():
    n, t, failed = synthetic(beta=0.4, exponential=True, cap=200.0, seed=3)
    fit = fit_scaling(n, t, failed, distribution="exponential")
    assert fit.sigma == 1.0 and fit.beta_low < 0.4 < fit.beta_high
    assert fit_scaling(n, t, failed, distribution="lognormal").beta == pytest.approx(0.4, abs=0.15)
    boot = fit_scaling(n, t, failed, distribution="exponential", ci_method="bootstrap",
                       n_bootstrap=60)  # fmt: skip
    assert boot.beta_low < fit.beta < boot.beta_high


def test_model_mean_time_matches_the_sample_mean_without_censoring():
    n, t, failed = synthetic(beta=0.2, n_per_size=200, cap=1e9, seed=4)
    fit = fit_scaling(n, t, failed)
    for size in (64, 2048):
        assert fit.mean_time(size) == pytest.approx(t[n == size].mean(), rel=0.15)


def test_fit_refuses_data_that_cannot_determine_beta():
    with pytest.raises(ValueError, match="no replica failed"):
        fit_scaling([64, 128], [10.0, 10.0], [False, False])
    with pytest.raises(ValueError, match="two or more system sizes"):
        fit_scaling([64, 64], [1.0, 2.0], [True, True])
    with pytest.raises(ValueError, match="positive"):
        fit_scaling([64, 128], [0.0, 2.0], [True, True])
    with pytest.raises(ValueError, match="unknown distribution"):
        fit_scaling([64, 128], [1.0, 2.0], [True, True], distribution="gamma")


def records_from(n, t, failed, label):
    return [{"label": label, "n_atoms": int(a), "time_ps": float(b), "failed": bool(c)}
            for a, b, c in zip(n, t, failed, strict=True)]  # fmt: skip


def test_summary_counts_failures_and_kaplan_meier_median():
    records = records_from([64] * 4 + [128] * 3, [1, 2, 3, 10, 1, 10, 10],
                           [True, True, True, False, True, False, False], "m")  # fmt: skip
    small, large = summarize(records)
    assert (small["n_failed"], small["mean_t_failed_ps"], small["median_t_ps"]) == (3, 2.0, 2.0)
    assert large["restricted_mean_t_ps"] == pytest.approx(7.0) and math.isnan(large["median_t_ps"])


def test_plot_shows_both_models_with_beta(tmp_path, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    data = {"allegro": records_from(*synthetic(0.29, 8, seed=5), "allegro"),
            "legato": records_from(*synthetic(0.14, 8, seed=6), "legato")}  # fmt: skip
    fits = {k: fit_records(v) for k, v in data.items()}
    ax = plot_scaling(data, fits)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[0].startswith("allegro: β =") and labels[1].startswith("legato: β =")
    assert ax.get_xscale() == ax.get_yscale() == "log"
    ax.figure.savefig(tmp_path / "scaling.png")


def test_failures_seen_only_at_coarse_checks_are_fitted_as_intervals():
    """Failures detected every 4 ps lie in (previous check, check]: interval censoring
    recovers β although many replicas share the same detection time."""
    n, t, failed = synthetic(beta=0.3, seed=7)
    checked = np.where(failed, np.ceil(t / 4.0) * 4.0, t)
    low = np.where(failed, checked - 4.0, 0.0)
    assert len(np.unique(checked[failed])) <= 15
    fit = fit_scaling(n, checked, failed, times_low=low)
    assert fit.beta_low < 0.3 < fit.beta_high and abs(fit.beta - 0.3) < 0.08
    with pytest.raises(ValueError, match="times_low"):
        fit_scaling(n, checked, failed, times_low=checked)


def test_fit_records_uses_the_check_interval_of_the_settings():
    settings = {"protocol": {"check_every": 10, "timestep_fs": 2.0}}
    records = [{"n_atoms": n, "time_ps": 0.02, "steps": 10, "failed": True, "settings": settings}
               for n in (64, 64, 128, 128)]  # all failed at the very first check  # fmt: skip
    records += [
        {"n_atoms": 128, "time_ps": 0.2, "steps": 100, "failed": False, "settings": settings}
    ]
    fit = fit_records(records)
    assert np.isfinite(fit.beta) and fit.sigma > 0.01  # no collapse onto identical times


def test_kaplan_meier_counts_failures_before_censorings_at_a_tied_time():
    """4 replicas at 10 ps, only one failed: survival 3/4, so the median is not reached."""
    for failed in ([False, False, False, True], [True, False, False, False]):
        (row,) = summarize(records_from([64] * 4, [10.0] * 4, failed, "m"))
        assert math.isnan(row["median_t_ps"])
    (row,) = summarize(records_from([64] * 4, [10.0] * 4, [False, True, False, True], "m"))
    assert row["median_t_ps"] == 10.0  # two of four failed at 10 ps: survival 1/2


def coarse_checks(step_ps, seed=7):
    """Synthetic replicas (β = 0.3, σ = 0.5) whose failures are seen only every step_ps."""
    n, t, failed = synthetic(beta=0.3, seed=seed)
    checked = np.where(failed, np.ceil(t / step_ps) * step_ps, t)
    return n, checked, failed, np.where(failed, checked - step_ps, 0.0)


def test_wide_check_intervals_bias_an_exact_time_fit_but_not_the_interval_fit():
    n, checked, failed, low = coarse_checks(20.0)
    fit = fit_scaling(n, checked, failed, times_low=low)
    assert abs(fit.beta - 0.3) < 0.04 and fit.sigma == pytest.approx(0.5, abs=0.05)
    exact = fit_scaling(n, checked, failed)  # detection times taken as failure times
    assert abs(exact.beta - 0.3) > 0.08 and exact.sigma < 0.4


def test_fit_records_fits_failures_as_intervals_between_checks():
    n, checked, failed, _ = coarse_checks(20.0)
    settings = {"protocol": {"check_every": 20, "timestep_fs": 1000.0}}  # a check every 20 ps
    records = [{"n_atoms": int(a), "time_ps": float(b), "failed": bool(c), "settings": settings,
                "steps": round(b)} for a, b, c in zip(n, checked, failed, strict=True)]  # fmt: skip
    fit = fit_records(records)
    assert abs(fit.beta - 0.3) < 0.04 and fit.sigma == pytest.approx(0.5, abs=0.05)


def _records(times, failed, n_atoms=64):
    return [
        {"n_atoms": n_atoms, "time_ps": float(t), "failed": bool(f)}
        for t, f in zip(times, failed, strict=True)
    ]


def test_survival_curve_is_kaplan_meier_by_hand():
    # failures at 1, 3, 4 ps; one replica stable at its 2 ps cap leaves the risk set there
    t, s = survival_curve(_records([1.0, 2.0, 3.0, 4.0], [True, False, True, True]))
    assert t.tolist() == [0.0, 1.0, 3.0, 4.0]
    assert s == pytest.approx([1.0, 0.75, 0.75 * 0.5, 0.0])
    t, s = survival_curve(_records([3.0, 3.0], [False, False]))  # nothing failed
    assert s.tolist() == [1.0, 1.0]


def test_log_rank_tells_early_failures_from_survivors_and_counts_censoring():
    rng = np.random.default_rng(1)
    early = _records(rng.uniform(0.2, 1.0, 12), [True] * 12)
    late = _records([3.0] * 12, [False] * 12)  # all stable at the cap
    assert log_rank_p(early, late) < 1e-3
    assert log_rank_p(early, early) == pytest.approx(1.0)
    # overlapping sets: whether the second set's replicas failed or were only stopped
    # (censored) at the same times changes the test
    times = rng.uniform(0.5, 1.5, 12)
    p_failed = log_rank_p(early, _records(times, [True] * 12))
    p_censored = log_rank_p(early, _records(times, [False] * 12))
    assert p_censored < p_failed


def test_restricted_mean_interval_brackets_the_mean():
    recs = _records(np.linspace(0.5, 3.0, 12), [True] * 11 + [False])
    low, high = restricted_mean_interval(recs)
    mean = np.mean([r["time_ps"] for r in recs])
    assert low < mean < high and high - low < 1.5
    assert restricted_mean_interval(_records([2.0] * 5, [True] * 5)) == pytest.approx((2.0, 2.0))


def test_comparisons_at_one_size_reject_mixed_sizes():
    mixed = _records([1.0], [True], 64) + _records([1.0], [True], 128)
    with pytest.raises(ValueError, match="one size"):
        log_rank_p(mixed, mixed)


def test_plot_survival_draws_each_model_with_its_p_value():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    by_label = {
        "adam": _records([0.5, 1.0, 2.0], [True, True, False]) + _records([0.2], [True], 128),
        "sam": _records([1.5, 2.0, 2.0], [True, False, False]),
    }
    ax = plot_survival(by_label)
    assert ax.get_title() == "64 atoms" and len(ax.get_lines()) == 2
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[0] == "adam (2/3 failed)" and "log-rank p =" in labels[1]
    with pytest.raises(ValueError, match="no replicas with 32 atoms"):
        plot_survival(by_label, n_atoms=32)
