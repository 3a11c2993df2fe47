"""The four stages of one learning iteration; each returns the summary kept in state.json."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from ..files import write_text_atomic
from .config import LearnConfig
from .framelog import encode_frame
from .select import ACCURATE, CANDIDATE, FAILED, classify, pick_candidates
from .state import Iteration


def train_stage(
    cfg: LearnConfig, it: Iteration, previous: Iteration | None, files: list[str], progress: bool
) -> dict[str, Any]:
    """Train the committee (different seeds); warm start from the previous iteration."""
    from ..train import train

    finished = it.state.setdefault("members_done", {})
    for k in range(cfg.committee.size):
        if str(k) in finished:
            continue
        out = it.dir / "train" / f"member_{k}"
        seed = cfg.seed + 1000 * it.number + k
        start = None
        if previous is not None and cfg.committee.warm_start:
            start = str(previous.member_model(k))
        tcfg = cfg.train_config(files, str(out), seed, init_from=start)
        resume = (out / "checkpoint.pt").exists()
        result = train(tcfg, resume=resume, progress=progress)
        if result.stop_reason.startswith("interrupted"):
            raise KeyboardInterrupt
        finished[str(k)] = result.best_metrics
        it.save()
    metrics = [finished[str(k)] for k in range(cfg.committee.size)]
    keys = sorted(set.intersection(*(set(m) for m in metrics)))
    mean = {f"val_{key}": float(np.mean([m[key] for m in metrics])) for key in keys}
    return {"files": files, **mean}


def _start_structures(cfg: LearnConfig) -> list:
    from ..datasets import read_frames
    from ..train.dataset import resolve_paths

    paths = resolve_paths(cfg.explore.structures, cfg.base_dir)
    return [read_frames(path, index="-1")[0] for path in paths]


def _committee(cfg: LearnConfig, it: Iteration):
    from ..calculator import LegatoCalculator

    models = [str(it.member_model(k)) for k in range(cfg.committee.size)]
    return LegatoCalculator(models, device=cfg.device)


def explore_stage(cfg: LearnConfig, it: Iteration, progress: bool) -> dict[str, Any]:
    """Every exploration run not yet done, one after the other; a summary of all."""
    import dataclasses

    from tqdm.auto import tqdm

    from .explore import RunOutcome, explore_run, run_specs

    starts = _start_structures(cfg)
    specs = run_specs(cfg.explore, len(starts), seed=cfg.seed + 1000 * it.number)
    folder = it.dir / "explore"
    calculator, outcomes = None, []
    for spec in tqdm(specs, desc=f"exploring (iteration {it.number})", disable=not progress):
        record = folder / f"{spec.name}.json"
        if record.exists():
            outcomes.append(RunOutcome(**json.loads(record.read_text())["outcome"]))
            continue
        calculator = calculator or _committee(cfg, it)
        outcome, frames = explore_run(calculator, starts[spec.structure], spec, cfg.explore)
        text = b"".join(encode_frame(frame) for frame in frames).decode()
        write_text_atomic(folder / f"{spec.name}.extxyz", text)
        entry = {"spec": dataclasses.asdict(spec), "outcome": dataclasses.asdict(outcome)}
        write_text_atomic(record, json.dumps(entry, indent=1))
        outcomes.append(outcome)
    failed = [o for o in outcomes if o.failed]
    return {
        "runs": len(outcomes),
        "runs_failed": len(failed),
        "mean_run_ps": float(np.mean([o.time_ps for o in outcomes])),
        "failure_reasons": sorted({o.reason for o in failed}),
    }


def explored_frames(it: Iteration) -> list:
    """All frames recorded by an iteration's exploration runs, in run order."""
    import ase.io

    frames = []
    for path in sorted((it.dir / "explore").glob("run_*.extxyz")):
        if path.stat().st_size:
            frames.extend(ase.io.read(path, index=":", format="extxyz"))
    return frames


def select_stage(cfg: LearnConfig, it: Iteration) -> dict[str, Any]:
    """Classify the explored frames, pick candidates, and decide convergence."""
    frames = explored_frames(it)
    deviation = np.array([a.info["max_force_deviation"] for a in frames], dtype=float)
    classes = classify(deviation, cfg.select)
    n = max(len(frames), 1)
    fractions = {c: float(np.sum(classes == c) / n) for c in (ACCURATE, CANDIDATE, FAILED)}
    picked = pick_candidates(frames, cfg.select, seed=cfg.seed + it.number)
    text = b"".join(encode_frame(frames[k]) for k in picked).decode()
    write_text_atomic(it.dir / "candidates.extxyz", text)
    runs_failed = it.result("explore")["runs_failed"]
    converged = (
        fractions[CANDIDATE] < cfg.converge_fraction
        and fractions[FAILED] < cfg.converge_fraction
        and runs_failed == 0
    )
    return {
        "frames": len(frames),
        **{f"{c}_fraction": v for c, v in fractions.items()},
        "max_force_deviation_median": float(np.median(deviation)) if len(frames) else None,
        "selected": len(picked),
        "converged": bool(converged),
    }


def label_stage(cfg: LearnConfig, it: Iteration, progress: bool) -> dict[str, Any]:
    """Label the candidates (resumes where an interrupted call stopped)."""
    from .label import label

    candidates = it.dir / "candidates.extxyz"
    if candidates.stat().st_size == 0:
        it.labelled.touch()
        return {"labelled": 0, "failed": 0}
    result = label(
        [str(candidates)], cfg.label.method, it.labelled,
        workers=cfg.label.workers, progress=progress,
    )  # fmt: skip
    n_failed = len(result.failures) + result.earlier_failures
    return {"labelled": len(result.frames) + result.already_done, "failed": n_failed}
