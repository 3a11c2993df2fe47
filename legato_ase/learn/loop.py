"""The concurrent-learning loop: train a committee, explore, select, label, grow the data.

Files in ``output_dir``::

    learning.csv, learning.png     one row per iteration (fractions, errors, time per stage)
    iter_000/state.json            stages done, their results and seconds (atomic writes)
    iter_000/train/member_K/       one ``legato train`` run folder per committee member
    iter_000/explore/run_NNN.*     each run's frames (extxyz) and outcome (json)
    iter_000/candidates.extxyz     the picked candidates
    iter_000/labelled.extxyz       their labels (append-only; joins the data afterwards)

Every stage records its completion in ``state.json``; a run started again skips finished
stages and continues an unfinished one (training from its checkpoint, exploration from the
first unfinished MD run, labelling from the first unlabelled frame).
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

from ..files import write_text_atomic
from .config import LearnConfig
from .report import learning_row, write_report
from .state import Iteration

STAGES = ("train", "explore", "select", "label")


@dataclasses.dataclass(frozen=True)
class LearnResult:
    """How a ``legato learn`` run ended.

    Attributes:
        iterations: rows of the per-iteration table (dicts, as in ``learning.csv``).
        models: model files of the last trained committee.
        converged: the last exploration found few enough candidates and no failures.
        interrupted: stopped by Ctrl-C; run again to continue.
        output_dir: the run folder.
    """

    iterations: list[dict[str, Any]]
    models: list[Path]
    converged: bool
    interrupted: bool
    output_dir: Path

    def summary(self) -> str:
        if self.interrupted:
            state = "interrupted (run the same command again to continue)"
        else:
            state = "converged" if self.converged else "stopped at max_iterations"
        return (
            f"{state} after {len(self.iterations)} iterations; committee: "
            f"{', '.join(str(p) for p in self.models)}; table: {self.output_dir / 'learning.csv'}"
        )


def _data_files(cfg: LearnConfig, iterations: list[Iteration]) -> list[str]:
    """The initial data and every earlier iteration's labelled frames."""
    files = list(cfg.data)
    for it in iterations:
        if it.done("label") and it.labelled.exists() and it.labelled.stat().st_size > 0:
            files.append(str(it.labelled.resolve()))
    return files


def _run_stage(it: Iteration, stage: str, func, *args) -> None:
    """Run one stage unless done; its seconds are kept also when it is interrupted."""
    if it.done(stage):
        return
    start = time.perf_counter()
    try:
        result = func(*args)
    except BaseException:
        it.add_seconds(stage, time.perf_counter() - start)
        it.save()
        raise
    it.finish(stage, result, time.perf_counter() - start)


def _iterate(cfg: LearnConfig, it: Iteration, earlier: list[Iteration], progress: bool) -> None:
    from .stages import explore_stage, label_stage, select_stage, train_stage

    previous = earlier[-1] if earlier else None
    files = _data_files(cfg, earlier)
    _run_stage(it, "train", train_stage, cfg, it, previous, files, progress)
    _run_stage(it, "explore", explore_stage, cfg, it, progress)
    _run_stage(it, "select", select_stage, cfg, it)
    if not it.result("select")["converged"]:
        _run_stage(it, "label", label_stage, cfg, it, progress)


def learn(cfg: LearnConfig, progress: bool = True) -> LearnResult:
    """Run (or continue) the concurrent-learning loop that ``cfg`` describes.

    Ctrl-C stops after saving what the current stage finished; calling ``learn`` again
    with the same config continues without losing or repeating labelled frames.
    """
    root = Path(cfg.output_dir).resolve()
    root.mkdir(parents=True, exist_ok=True)
    _check_same_config(cfg, root)
    iterations: list[Iteration] = []
    interrupted, converged, current = False, False, None
    try:
        for number in range(cfg.max_iterations):
            current = Iteration(root, number)
            _iterate(cfg, current, iterations, progress)
            iterations.append(current)
            write_report(root, [learning_row(cfg, i) for i in iterations])
            converged = current.result("select")["converged"]
            if progress:
                _print_row(learning_row(cfg, current))
            if converged:
                break
    except KeyboardInterrupt:
        interrupted = True
    rows = [learning_row(cfg, i) for i in iterations]
    trained = [i for i in iterations + [current] if i is not None and i.done("train")]
    models = [trained[-1].member_model(k) for k in range(cfg.committee.size)] if trained else []
    return LearnResult(rows, models, converged, interrupted, root)


def _print_row(row: dict[str, Any]) -> None:
    from tqdm.auto import tqdm

    def fraction(key: str) -> str:
        return "-" if row[key] is None else f"{100 * row[key]:.1f} %"

    tqdm.write(
        f"iteration {row['iteration']}: accurate {fraction('accurate_fraction')}, "
        f"candidates {fraction('candidate_fraction')}, failed {fraction('failed_fraction')}; "
        f"labelled {row['labelled'] if row['labelled'] is not None else '-'}; "
        f"MD runs failed {row['runs_failed']}/{row['runs']}"
    )


def _check_same_config(cfg: LearnConfig, root: Path) -> None:
    """Refuse to continue a run folder with other settings (max_iterations, device and
    label.workers may change)."""
    saved = root / "learn_config.json"
    current = _config_record(cfg)
    if saved.exists():
        before = json.loads(saved.read_text())
        changed = sorted(k for k in set(before) | set(current) if before.get(k) != current.get(k))
        if changed:
            raise ValueError(
                f"{root} holds a run with other settings ({', '.join(changed)} changed); "
                "continue it with the same config (max_iterations may change), or choose "
                "another output_dir."
            )
    else:
        write_text_atomic(saved, json.dumps(current, indent=1))


def _config_record(cfg: LearnConfig) -> dict[str, Any]:
    record = cfg.to_dict()
    for key in ("max_iterations", "output_dir", "device"):  # free to change between calls
        record.pop(key, None)
    record["label"].pop("workers", None)
    return record
