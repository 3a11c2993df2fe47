"""Fidelity scaling t_failure ∝ N^(-β) fitted by censored maximum likelihood.

Accelerated-failure-time model: log t = a − β·log(N/N_ref) + σ·W, with W a standard
minimum-extreme-value variable (Weibull failure times), or σ = 1 (exponential), or W ~ N(0, 1)
(log-normal). Failed replicas contribute the density, censored ones (still stable at the cap)
the survival probability, so runs that never failed are neither dropped nor counted as failures.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from scipy import optimize, stats

DISTRIBUTIONS = ("weibull", "exponential", "lognormal")


@dataclasses.dataclass(frozen=True, kw_only=True)
class ScalingFit:
    """A fitted fidelity-scaling law.

    Attributes:
        beta: exponent β in t_failure ∝ N^(−β).
        beta_low, beta_high: confidence interval of β.
        confidence: level of the interval (e.g. 0.95).
        ci_method: ``"profile"`` (profile likelihood) or ``"bootstrap"``.
        intercept: a, the location of log t (t in ps) at N = n_ref.
        sigma: scale σ of the log-time noise (1 for the exponential model).
        n_ref: reference size (geometric mean of the sizes).
        distribution: ``"weibull"``, ``"exponential"`` or ``"lognormal"``.
        n_failed, n_censored: replicas that failed / were censored.
        log_likelihood: maximised log-likelihood.
    """

    beta: float
    beta_low: float
    beta_high: float
    confidence: float
    ci_method: str
    intercept: float
    sigma: float
    n_ref: float
    distribution: str
    n_failed: int
    n_censored: int
    log_likelihood: float

    def mean_time(self, n_atoms: float | np.ndarray) -> np.ndarray:
        """Model mean time to failure (ps) at a size: exp(a − β x)·E[exp(σW)]."""
        x = np.log(np.asarray(n_atoms, dtype=float) / self.n_ref)
        return np.exp(self.intercept - self.beta * x) * _mean_factor(self.distribution, self.sigma)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _mean_factor(distribution: str, sigma: float) -> float:
    if distribution == "lognormal":
        return math.exp(0.5 * sigma**2)
    return math.gamma(1.0 + sigma) if sigma < 50 else math.inf


def _log_pdf_sf(z: np.ndarray, distribution: str) -> tuple[np.ndarray, np.ndarray]:
    """log density and log survival function of the standardised log-time W."""
    if distribution == "lognormal":
        return stats.norm.logpdf(z), stats.norm.logsf(z)
    ez = np.exp(np.minimum(z, 700.0))
    return z - ez, -ez


@dataclasses.dataclass(frozen=True)
class _Data:
    """Replicas as the likelihood sees them: x = log(N/N_ref), log times, failure flags."""

    x: np.ndarray
    log_t: np.ndarray
    failed: np.ndarray
    log_t_low: np.ndarray | None  # log of the last passing check of failed replicas (or None)
    distribution: str

    def take(self, pick: np.ndarray) -> _Data:
        low = None if self.log_t_low is None else self.log_t_low[pick]
        x = self.x[pick] - self.x[pick].mean()
        return _Data(x, self.log_t[pick], self.failed[pick], low, self.distribution)


def _neg_log_likelihood(params, d: _Data) -> float:
    a, beta = params[0], params[1]
    # σ is kept in [e^-8, e^5]: identical failure times would otherwise drive it to zero.
    log_sigma = 0.0 if d.distribution == "exponential" else float(np.clip(params[2], -8.0, 5.0))
    sigma, f = math.exp(log_sigma), d.failed
    with np.errstate(all="ignore"):
        log_pdf, log_sf = _log_pdf_sf((d.log_t - a + beta * d.x) / sigma, d.distribution)
        if d.log_t_low is None:  # failure times known exactly
            ll_failed = np.sum(log_pdf[f] - log_sigma - d.log_t[f])
        else:  # failed between the last passing check and this one: log(S(t_low) − S(t))
            log_sf_low = _log_pdf_sf((d.log_t_low - a + beta * d.x) / sigma, d.distribution)[1]
            gap = np.minimum(log_sf[f] - log_sf_low[f], -1e-300)
            ll_failed = np.sum(log_sf_low[f] + np.log(-np.expm1(gap)))
        ll = ll_failed + np.sum(log_sf[~f])
    return -float(ll) if np.isfinite(ll) else 1e300


def _check_data(n_atoms, times, failed, times_low):
    n_atoms = np.asarray(n_atoms, dtype=float)
    times = np.asarray(times, dtype=float)
    failed = np.asarray(failed, dtype=bool)
    if not n_atoms.shape == times.shape == failed.shape or n_atoms.ndim != 1:
        raise ValueError("n_atoms, times and failed must be 1-D sequences of the same length.")
    if np.any(times <= 0) or np.any(n_atoms <= 0) or not np.isfinite(times).all():
        raise ValueError("times and n_atoms must be positive and finite (a replica ran 0 steps?).")
    if len(np.unique(n_atoms)) < 2:
        raise ValueError("fitting β needs replicas at two or more system sizes (≥ 4 recommended).")
    if not failed.any():
        raise ValueError(
            "no replica failed, so β cannot be estimated: raise the temperature, the time step "
            "or the step cap until some replicas fail."
        )
    if times_low is not None:
        times_low = np.asarray(times_low, dtype=float)
        if times_low.shape != times.shape or np.any(times_low < 0) or np.any(times_low >= times):
            raise ValueError("times_low must be one time per replica with 0 <= times_low < times.")
    return n_atoms, times, failed, times_low


def _maximise(d: _Data, beta: float | None = None) -> tuple[np.ndarray, float]:
    """(params a, β, log σ; max log-likelihood); with ``beta`` given, β is held fixed (profile)."""
    n_free = 2 if d.distribution == "exponential" else 3
    start = np.array([np.log(np.mean(np.exp(d.log_t))), 0.0, 0.0][:n_free])

    def objective(p):
        return _neg_log_likelihood(p if beta is None else np.insert(p, 1, beta), d)

    if beta is not None:
        start = np.delete(start, 1)
    best = None
    for method in ("BFGS", "Nelder-Mead"):
        with np.errstate(all="ignore"):
            res = optimize.minimize(objective, start, method=method)
        if best is None or res.fun < best.fun:
            best = res
        start = best.x
    params = best.x if beta is None else np.insert(best.x, 1, beta)
    return params, -float(best.fun)


def fit_scaling(
    n_atoms: Iterable[float],
    times: Iterable[float],
    failed: Iterable[bool],
    *,
    times_low: Iterable[float] | None = None,
    distribution: str = "weibull",
    confidence: float = 0.95,
    ci_method: str = "profile",
    n_bootstrap: int = 200,
    seed: int = 0,
) -> ScalingFit:
    """Fit t_failure ∝ N^(−β) to replicas, censored ones included, with a confidence interval.

    Args:
        n_atoms: [R] atoms of each replica.
        times: [R] time (ps) at failure, or at the cap for censored replicas.
        failed: [R] True for a failure, False for a right-censored replica.
        times_low: optional [R] time (ps) of the last check a failed replica passed: the
            failure is then known to lie in (times_low, times] (interval censoring, right for
            failures detected every k steps). None treats failure times as exact.
        distribution: ``"weibull"`` (default), ``"exponential"`` or ``"lognormal"``.
        confidence: level of the interval on β.
        ci_method: ``"profile"`` (profile likelihood, χ²₁) or ``"bootstrap"`` (percentile,
            replicas resampled within each size).
        n_bootstrap: bootstrap resamples.
        seed: seed of the bootstrap.
    """
    if distribution not in DISTRIBUTIONS:
        raise ValueError(f"unknown distribution '{distribution}'; choose one of {DISTRIBUTIONS}.")
    if ci_method not in ("profile", "bootstrap"):
        raise ValueError(f"unknown ci_method '{ci_method}'; choose 'profile' or 'bootstrap'.")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}.")
    n_atoms, times, failed, times_low = _check_data(n_atoms, times, failed, times_low)
    n_ref = float(np.exp(np.mean(np.log(n_atoms))))
    with np.errstate(divide="ignore"):  # log(0) = -inf: S(0) = 1 as it should be
        log_low = None if times_low is None else np.log(times_low)
    data = _Data(np.log(n_atoms / n_ref), np.log(times), failed, log_low, distribution)
    params, ll = _maximise(data)
    if ci_method == "profile":
        low, high = _profile_interval(data, params[1], ll, confidence)
    else:
        low, high = _bootstrap_interval(data, n_atoms, confidence, n_bootstrap, seed)
    return ScalingFit(
        beta=float(params[1]), beta_low=low, beta_high=high, confidence=confidence,
        ci_method=ci_method, intercept=float(params[0]),
        sigma=1.0 if distribution == "exponential" else float(np.exp(np.clip(params[2], -8, 5))),
        n_ref=n_ref, distribution=distribution, n_failed=int(failed.sum()),
        n_censored=int((~failed).sum()), log_likelihood=ll,
    )  # fmt: skip


def _profile_interval(data: _Data, beta_hat: float, ll_max: float, confidence: float):
    """Where 2·(ll_max − ll_profile(β)) reaches the χ²₁ quantile, on each side of β̂."""
    drop = 0.5 * stats.chi2.ppf(confidence, df=1)

    def excess(beta):
        return ll_max - _maximise(data, beta)[1] - drop

    bounds = []
    for direction in (-1.0, 1.0):
        step, edge = 0.05, beta_hat
        for _ in range(12):  # |β − β̂| up to ~200; beyond that the bound is reported as ±inf
            trial = beta_hat + direction * step
            if excess(trial) > 0:
                lo, hi = min(edge, trial), max(edge, trial)
                bounds.append(float(optimize.brentq(excess, lo, hi, xtol=1e-4)))
                break
            edge, step = trial, step * 2.0
        else:
            bounds.append(direction * math.inf)
    return bounds[0], bounds[1]


def _bootstrap_interval(data: _Data, n_atoms, confidence, n_bootstrap, seed):
    rng = np.random.default_rng(seed)
    groups = [np.flatnonzero(n_atoms == n) for n in np.unique(n_atoms)]
    betas = []
    for _ in range(int(n_bootstrap)):
        pick = np.concatenate([rng.choice(g, size=len(g), replace=True) for g in groups])
        if data.failed[pick].any():
            betas.append(_maximise(data.take(pick))[0][1])
    if len(betas) < 10:
        raise ValueError("too few bootstrap resamples had a failure; use ci_method='profile'.")
    tail = 50.0 * (1.0 - confidence)
    return float(np.percentile(betas, tail)), float(np.percentile(betas, 100.0 - tail))


def fit_records(records: Iterable[Mapping[str, Any]], **options: Any) -> ScalingFit:
    """:func:`fit_scaling` on campaign records (n_atoms, time_ps, failed, steps, settings).

    A failure detected at a check is known only to lie after the previous check, so failures
    are interval-censored with the check interval recorded in the records' settings.
    """
    records = list(records)
    options.setdefault("times_low", _last_passing_check(records))
    return fit_scaling(
        [r["n_atoms"] for r in records], [r["time_ps"] for r in records],
        [r["failed"] for r in records], **options,
    )  # fmt: skip


def _last_passing_check(records: list[Mapping[str, Any]]) -> list[float] | None:
    try:
        out = []
        for r in records:
            protocol = r["settings"]["protocol"]
            every, dt_ps = int(protocol["check_every"]), protocol["timestep_fs"] / 1000.0
            out.append(((int(r["steps"]) - 1) // every) * every * dt_ps if r["failed"] else 0.0)
        return out
    except (KeyError, TypeError):  # records without settings: treat failure times as exact
        return None


def summarize(records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per size: replicas, failures, mean time of failed replicas, and the restricted mean
    (censored replicas counted at their cap: a lower bound on the true mean)."""
    by_size: dict[int, list[Mapping[str, Any]]] = {}
    for rec in records:
        by_size.setdefault(int(rec["n_atoms"]), []).append(rec)
    rows = []
    for n in sorted(by_size):
        recs = by_size[n]
        t = np.array([r["time_ps"] for r in recs], dtype=float)
        f = np.array([bool(r["failed"]) for r in recs])
        rows.append({
            "n_atoms": n, "n_replicas": len(recs), "n_failed": int(f.sum()),
            "mean_t_failed_ps": float(t[f].mean()) if f.any() else math.nan,
            "restricted_mean_t_ps": float(t.mean()),
            "median_t_ps": _km_median(t, f),
        })  # fmt: skip
    return rows


def _km_median(times: np.ndarray, failed: np.ndarray) -> float:
    """Kaplan-Meier median survival time (NaN when more than half are still stable at the end)."""
    t, s = _kaplan_meier(times, failed)
    below = np.flatnonzero(s <= 0.5)
    return float(t[below[0]]) if below.size else math.nan


def _kaplan_meier(times: np.ndarray, failed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Times at which the Kaplan-Meier estimate steps (from 0) and its value just after each.

    At a tied time, failures come before censorings: a replica still stable at t was at risk
    of the failures at t (Kaplan & Meier 1958).
    """
    if not failed.any():
        return np.array([0.0, times.max()]), np.array([1.0, 1.0])
    sf = stats.ecdf(stats.CensoredData.right_censored(times, ~failed)).sf
    steps = np.isin(sf.quantiles, times[failed])  # scipy also lists censoring times (no step)
    return (
        np.concatenate([[0.0], sf.quantiles[steps]]),
        np.concatenate([[1.0], sf.probabilities[steps]]),
    )


def _times_failed(records: Iterable[Mapping[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    records = list(records)
    if not records:
        raise ValueError("no replicas: run a campaign first (legato stability run)")
    sizes = {int(r["n_atoms"]) for r in records}
    if len(sizes) > 1:
        raise ValueError(
            f"replicas of several sizes {sorted(sizes)}: compare models at one size "
            "(select the records with one n_atoms)"
        )
    t = np.array([r["time_ps"] for r in records], dtype=float)
    return t, np.array([bool(r["failed"]) for r in records])


def survival_curve(records: Iterable[Mapping[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """Kaplan-Meier estimate of P(still stable at t) from the replicas of one size.

    Returns the times (ps) at which the estimate steps, starting at 0, and its value just after
    each; censored replicas (stable at the cap) leave the risk set without a step.
    """
    return _kaplan_meier(*_times_failed(records))


def log_rank_p(
    records_a: Iterable[Mapping[str, Any]], records_b: Iterable[Mapping[str, Any]]
) -> float:
    """Two-sided p-value of the log-rank test that two models' replicas (one size) fail alike.

    Censoring is handled (Mantel 1966); a small p says the survival curves differ.
    """
    (ta, fa), (tb, fb) = _times_failed(records_a), _times_failed(records_b)
    if not (fa.any() or fb.any()):
        return 1.0
    result = stats.logrank(
        stats.CensoredData.right_censored(ta, ~fa), stats.CensoredData.right_censored(tb, ~fb)
    )
    return float(result.pvalue)


def restricted_mean_interval(
    records: Iterable[Mapping[str, Any]],
    confidence: float = 0.95,
    n_bootstrap: int = 2000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile-bootstrap interval (over replicas) of one size's restricted mean time (ps)."""
    t, _ = _times_failed(records)
    rng = np.random.default_rng(seed)
    means = t[rng.integers(0, t.size, size=(n_bootstrap, t.size))].mean(axis=1)
    tail = (1.0 - confidence) / 2.0
    return float(np.quantile(means, tail)), float(np.quantile(means, 1.0 - tail))
