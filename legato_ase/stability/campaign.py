"""Many replicas at several sizes, in parallel processes, resumable from a results file."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from .criteria import FailureCriteria
from .md import run_replica
from .protocol import MDProtocol, resolve_protocol

CSV_FIELDS = [
    "label", "n_atoms", "replicate", "replica", "seed", "steps", "time_ps", "failed", "reason",
    "wall_s",
]  # fmt: skip


@dataclasses.dataclass(frozen=True, kw_only=True)
class StabilityPlan:
    """What a time-to-failure campaign runs.

    Attributes:
        replicates: the (a, b, c) replications of the input cell, one per system size.
        n_replicas: independent replicas (distinct velocity seeds) per size.
        protocol: MD protocol (time step, thermostat, cap, check interval).
        criteria: failure criteria.
        seed: base seed; replica seeds derive from it, the size and the replica index.
        max_wall_s: optional wall-clock limit per replica (the run is then right-censored).
    """

    replicates: tuple[tuple[int, int, int], ...]
    n_replicas: int = 8
    protocol: MDProtocol = dataclasses.field(default_factory=lambda: resolve_protocol("paper"))
    criteria: FailureCriteria = dataclasses.field(default_factory=FailureCriteria)
    seed: int = 0
    max_wall_s: float | None = None

    def __post_init__(self) -> None:
        reps = tuple(parse_replicate(r) for r in self.replicates)
        if not reps:
            raise ValueError("replicates is empty: give at least one size, e.g. [(1, 1, 1)].")
        object.__setattr__(self, "replicates", reps)
        if int(self.n_replicas) < 1:
            raise ValueError(f"n_replicas must be at least 1, got {self.n_replicas}.")

    def settings(self) -> dict[str, Any]:
        """The settings that must match for results to be pooled (protocol and criteria)."""
        return {"protocol": self.protocol.to_dict(), "criteria": self.criteria.to_dict()}


def parse_replicate(value: str | Sequence[int]) -> tuple[int, int, int]:
    """``"2x2x1"``, ``"2,2,1"`` or ``(2, 2, 1)`` -> (2, 2, 1)."""
    parts = value.lower().replace(",", "x").split("x") if isinstance(value, str) else list(value)
    try:
        rep = tuple(int(p) for p in parts)
    except (TypeError, ValueError):
        rep = ()
    if len(rep) != 3 or min(rep) < 1:
        raise ValueError(
            f"a replication must be three positive integers like '2x2x1', got {value!r}."
        )
    return rep  # type: ignore[return-value]


def replica_seed(base_seed: int, replicate: Sequence[int], index: int) -> int:
    """A distinct, reproducible velocity seed for each (size, replica)."""
    entropy = [int(base_seed), *[int(r) for r in replicate], int(index)]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


def read_results(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Records of a JSON-lines results file; a last line cut off by a crash is skipped."""
    path = Path(path)
    if not path.exists():
        return []
    records = []
    lines = path.read_text().splitlines()
    for n, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if n == len(lines) - 1:
                continue
            raise ValueError(
                f"{path} line {n + 1} is not valid JSON; fix or remove that line."
            ) from None
    return records


def _drop_partial_line(path: Path) -> None:
    """Cut a last line left half-written by a crash, so that new records start on a fresh line."""
    if not path.exists():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with path.open("r+b") as handle:
            handle.truncate(data.rfind(b"\n") + 1)


def _append(path: Path, record: dict[str, Any]) -> None:
    with path.open("a") as handle:
        handle.write(json.dumps(record) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def write_csv(records: Iterable[dict[str, Any]], path: str | os.PathLike) -> None:
    """The records as a CSV table (one row per replica)."""
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_FIELDS, extrasaction="ignore")
        writer.writeheader()
        for rec in records:
            writer.writerow({**rec, "replicate": "x".join(map(str, rec["replicate"]))})


def _reference(model: Any) -> tuple[Any, str] | None:
    """(calculator factory, reference string) if ``model`` names a reference method
    (``"gfn1-xtb"``, ...), else None.

    A reference method runs the same protocol and criteria as a model: the way to tell
    whether a failure belongs to the potential or to the protocol (a time step too long for
    the reference's own bond vibrations fails it too).
    """
    from ..learn.label import METHODS

    return METHODS.get(model.lower()) if isinstance(model, str) else None


def model_fingerprint(model: Any, allow_torchscript: bool = False) -> str:
    """A short hash of a model's weights, stored with each record so that results of
    different models (e.g. a retrained file under the same name) are never pooled.

    For a reference method it is the hash of its reference string (e.g. "GFN1-xTB/tblite")."""
    import hashlib

    import torch

    reference = _reference(model)
    if reference is not None:
        return hashlib.sha256(reference[1].encode()).hexdigest()[:16]
    if isinstance(model, (str, os.PathLike)):
        from ..io import load_potential

        model = load_potential(model, allow_torchscript=allow_torchscript)
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().to(torch.float64).numpy().tobytes())
    return digest.hexdigest()[:16]


def _pending(
    plan: StabilityPlan, label: str, done: list[dict[str, Any]], fingerprint: str
) -> list[tuple]:
    settings = plan.settings()
    finished = set()
    for rec in done:
        if rec.get("label") != label:
            continue
        if rec.get("settings") != settings:
            raise ValueError(
                f"the results file already holds runs labelled '{label}' made with other settings "
                f"({rec.get('settings')}); use another results file or label to keep them apart."
            )
        if rec.get("model_sha256") != fingerprint:
            raise ValueError(
                f"the results file already holds runs labelled '{label}' made with another model "
                f"(weights hash {rec.get('model_sha256')}, this one {fingerprint}); use another "
                "results file or label."
            )
        finished.add((tuple(rec["replicate"]), int(rec["replica"])))
    return [
        (rep, k, replica_seed(plan.seed, rep, k))
        for rep in plan.replicates
        for k in range(plan.n_replicas)
        if (rep, k) not in finished
    ]


_WORKER_CALCULATORS: dict[tuple[str, str], Any] = {}  # one per worker process, reused by its tasks


def _worker_run(
    model_path: str, device: str, torchscript: bool, atoms: Atoms, plan: StabilityPlan, task: tuple
) -> dict:
    import torch

    torch.set_num_threads(1)
    key = (model_path, device)
    if key not in _WORKER_CALCULATORS:
        _WORKER_CALCULATORS[key] = _calculator(model_path, device, torchscript)
    return _run_task(_WORKER_CALCULATORS[key], atoms, plan, task)


def _calculator(model: Any, device: str, torchscript: bool) -> Any:
    """The ASE calculator of a model, or of a reference method named by ``model``."""
    reference = _reference(model)
    if reference is not None:
        return reference[0]()
    from ..calculator import LegatoCalculator

    return LegatoCalculator(model, device=device, allow_torchscript=torchscript)


def _run_task(calculator: Any, atoms: Atoms, plan: StabilityPlan, task: tuple) -> dict:
    replicate, index, seed = task
    result = run_replica(
        calculator, atoms, plan.protocol, plan.criteria,
        seed=seed, replicate=replicate, max_wall_s=plan.max_wall_s,
    )  # fmt: skip
    return {**result.to_dict(), "replica": index}


def run_campaign(
    model: Any,
    atoms: Atoms,
    plan: StabilityPlan,
    *,
    results: str | os.PathLike | None = None,
    label: str = "model",
    workers: int = 1,
    device: str = "cpu",
    progress: bool = True,
    allow_torchscript: bool = False,
) -> list[dict[str, Any]]:
    """Run every (size, replica) of ``plan`` not already in ``results``; return all records.

    Args:
        model: a model file, a bundled model name, a model object (LegatoPotential), or a
            reference method (``"gfn1-xtb"``, ``"gfn2-xtb"``, ``"emt"``: the labeller's
            methods) to run the same protocol with the reference itself.
        atoms: the periodic input cell; it is replicated as the plan says.
        plan: sizes, replicas per size, protocol, criteria, seed.
        results: JSON-lines file; each finished replica is appended at once, so a re-run
            skips finished replicas (resume after a crash or a kill).
        label: name of the model in the records (e.g. ``"allegro"``, ``"legato"``).
        workers: parallel processes (each uses one thread); 1 runs in this process.
        device: where the model runs.
        progress: show a tqdm progress bar.
        allow_torchscript: also run deployed TorchScript models (e.g. the paper's
            nequip-0.5 files), which execute code stored in the file: trusted files only.
    """
    path = Path(results) if results is not None else None
    if path is not None:
        _drop_partial_line(path)
    done = read_results(path) if path is not None else []
    fingerprint = model_fingerprint(model, allow_torchscript)
    tasks = _pending(plan, label, done, fingerprint)
    records = [r for r in done if r.get("label") == label]
    base = {"label": label, "model_sha256": fingerprint, "settings": plan.settings()}
    run = _execute(model, atoms, plan, tasks, workers, (device, allow_torchscript), progress, label)
    for record in run:
        record = {**base, **record}
        records.append(record)
        if path is not None:
            _append(path, record)
    return records


def _execute(model, atoms, plan, tasks, workers, where, progress, label):  # noqa: PLR0913
    from tqdm.auto import tqdm

    device, torchscript = where
    bar = tqdm(total=len(tasks), desc=f"stability {label}", disable=not progress or not tasks)
    if workers <= 1 or len(tasks) <= 1:
        calculator = _calculator(model, device, torchscript) if tasks else None
        for task in tasks:
            yield _run_task(calculator, atoms, plan, task)
            bar.update()
        bar.close()
        return
    with tempfile.TemporaryDirectory() as tmp:
        model_path = _model_file(model, Path(tmp))
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            futures = [
                pool.submit(_worker_run, model_path, device, torchscript, atoms, plan, t)
                for t in tasks
            ]
            for future in as_completed(futures):
                yield future.result()
                bar.update()
    bar.close()


def _model_file(model: Any, folder: Path) -> str:
    """A path the worker processes can load: the given file, or the model saved to ``folder``
    (a reference method's name passes through)."""
    if _reference(model) is not None:
        return model
    if isinstance(model, (str, os.PathLike)):
        from ..io import resolve_model_path

        return str(resolve_model_path(model))
    from ..io import save_model

    path = folder / "model.pt"
    save_model(model, path)
    return str(path)
