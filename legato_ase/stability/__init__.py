"""Time-to-failure of MD runs and fidelity scaling t_failure ∝ N^(−β).

After Ibayashi et al., ISC 2023, arXiv:2303.08169.

Typical use::

    from legato_ase.stability import StabilityPlan, run_campaign, fit_records
    plan = StabilityPlan(replicates=["1x1x1", "2x1x1", "2x2x1", "2x2x2"], n_replicas=8)
    records = run_campaign("nh3-legato", atoms, plan, results="legato.jsonl", label="legato")
    print(fit_records(records))
"""

from .campaign import StabilityPlan, parse_replicate, read_results, run_campaign, write_csv
from .criteria import FailureCriteria, FailureMonitor, find_bonds
from .md import ReplicaResult, run_replica
from .plot import plot_scaling, plot_survival
from .protocol import PROTOCOLS, MDProtocol, resolve_protocol
from .survival import (
    ScalingFit,
    fit_records,
    fit_scaling,
    log_rank_p,
    restricted_mean_interval,
    summarize,
    survival_curve,
)

__all__ = [
    "FailureCriteria",
    "FailureMonitor",
    "MDProtocol",
    "PROTOCOLS",
    "ReplicaResult",
    "ScalingFit",
    "StabilityPlan",
    "find_bonds",
    "fit_records",
    "fit_scaling",
    "log_rank_p",
    "parse_replicate",
    "plot_scaling",
    "plot_survival",
    "read_results",
    "resolve_protocol",
    "restricted_mean_interval",
    "run_campaign",
    "run_replica",
    "summarize",
    "survival_curve",
    "write_csv",
]
