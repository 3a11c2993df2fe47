"""``legato stability run|fit``: time-to-failure campaigns and the fidelity-scaling fit."""

from __future__ import annotations

import argparse
import math


def add_parsers(sub) -> None:
    parser = sub.add_parser("stability", help="MD time-to-failure and fidelity scaling")
    actions = parser.add_subparsers(dest="action", required=True)
    run = actions.add_parser("run", help="run MD replicas at several sizes until they fail")
    run.add_argument(
        "model",
        help="model file or bundled model name (e.g. nh3-legato), or a reference method "
        "(gfn1-xtb, gfn2-xtb, emt) to test the protocol itself with it",
    )
    run.add_argument("structure", help="periodic structure file (ASE-readable; last frame used)")
    run.add_argument("--replicate", nargs="+", default=["1x1x1", "2x1x1", "2x2x1", "2x2x2"])
    run.add_argument("--replicas", type=int, default=8, help="replicas per size")
    run.add_argument("--protocol", default="paper", choices=["paper", "authors"])
    run.add_argument("--temperature-K", type=float)
    run.add_argument("--timestep-fs", type=float)
    run.add_argument("--nvt-steps", type=int, help="NVT steps before NVE; -1: NVT throughout")
    run.add_argument("--max-steps", type=int, help="step cap (runs reaching it are censored)")
    run.add_argument("--check-every", type=int)
    run.add_argument("--window-K", type=float, default=100.0, help="failure: |T - target| > this")
    run.add_argument(
        "--settle-steps",
        type=int,
        default=0,
        help="apply the temperature window only from this step on (bonds and contacts are "
        "checked from the start): for runs started from a perfect lattice, whose temperature "
        "first drops to about T/2",
    )
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--workers", type=int, default=1, help="parallel processes")
    run.add_argument("--results", default="stability.jsonl", help="JSON-lines file (resumable)")
    run.add_argument("--label", help="model label in the results (default: model name)")
    run.add_argument(
        "--allow-torchscript",
        action="store_true",
        help="also run deployed TorchScript models (e.g. the paper's .pth files); they "
        "execute code stored in the file, so use trusted files only",
    )
    run.set_defaults(func=_run)
    fit = actions.add_parser("fit", help="fit t_failure ∝ N^-beta to results (censoring-aware)")
    fit.add_argument("results", nargs="+", help="JSON-lines results files")
    fit.add_argument(
        "--distribution", default="weibull", choices=["weibull", "exponential", "lognormal"]
    )
    fit.add_argument("--ci", default="profile", choices=["profile", "bootstrap"])
    fit.add_argument("--plot", help="write a log-log plot here (png/pdf)")
    fit.add_argument("--csv", help="write all replicas as CSV here")
    fit.set_defaults(func=_fit)


def _run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..datasets import read_frames
    from . import FailureCriteria, StabilityPlan, resolve_protocol, run_campaign, summarize

    nvt = args.nvt_steps
    protocol = resolve_protocol(
        args.protocol, temperature_K=args.temperature_K, timestep_fs=args.timestep_fs,
        max_steps=args.max_steps, check_every=args.check_every,
    )  # fmt: skip
    if nvt is not None:
        protocol = protocol.replace(nvt_steps=None if nvt < 0 else nvt)
    plan = StabilityPlan(
        replicates=args.replicate, n_replicas=args.replicas, protocol=protocol, seed=args.seed,
        criteria=FailureCriteria(
            temperature_window_K=args.window_K, temperature_grace_steps=args.settle_steps
        ),
    )  # fmt: skip
    atoms = read_frames(args.structure, -1)[-1]
    label = args.label or Path(args.model).stem
    records = run_campaign(
        args.model, atoms, plan, results=args.results, label=label, workers=args.workers,
        allow_torchscript=args.allow_torchscript,
    )  # fmt: skip
    print(summary_table(summarize(records)))
    return 0


def summary_table(rows: list[dict], indent: str = "") -> str:
    """Rows of :func:`summarize` as a text table (times in ps; "-" where undefined)."""

    def ps(value: float) -> str:
        return "-" if math.isnan(value) else f"{value:.3g}"

    lines = [f"{indent}{'atoms':>7} {'replicas':>8} {'failed':>6} {'median':>9} "
             f"{'mean(failed)':>12} {'mean(all, capped)':>17}  (ps)"]  # fmt: skip
    for r in rows:
        lines.append(
            f"{indent}{r['n_atoms']:>7} {r['n_replicas']:>8} {r['n_failed']:>6} "
            f"{ps(r['median_t_ps']):>9} {ps(r['mean_t_failed_ps']):>12} "
            f"{ps(r['restricted_mean_t_ps']):>17}"
        )
    return "\n".join(lines)


def _fit(args: argparse.Namespace) -> int:
    from . import fit_records, plot_scaling, read_results, summarize, write_csv

    records = [r for path in args.results for r in read_results(path)]
    by_label: dict[str, list] = {}
    for rec in records:
        by_label.setdefault(rec["label"], []).append(rec)
    fits = {}
    for label, recs in by_label.items():
        fits[label] = fit_records(recs, distribution=args.distribution, ci_method=args.ci)
        f = fits[label]
        print(f"{label}: beta = {f.beta:.3f} [{f.beta_low:.3f}, {f.beta_high:.3f}] "
              f"({f.n_failed} failed, {f.n_censored} censored)")  # fmt: skip
        print(summary_table(summarize(recs), indent="  "))
    if args.csv:
        write_csv(records, args.csv)
    if args.plot:
        plot_scaling(by_label, fits).figure.savefig(args.plot, dpi=150, bbox_inches="tight")
    return 0
