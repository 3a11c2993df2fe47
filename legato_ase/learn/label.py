"""Labelling frames with a reference method: energy, forces and (periodic cells) stress.

``label(frames, "gfn1-xtb", "out.extxyz")`` labels with GFN1-xTB from tblite, with the
settings of the bundled ammonia data (``TBLite(method="GFN1-xTB", verbosity=0)``, every
other setting at its default); any ASE calculator works as well. The output file is
append-only and resumable: each labelled frame carries ``label_index`` (its position in
the input), frames already in the file are not labelled again, and a frame whose
reference calculation fails is reported, listed in ``<output>.failed`` and skipped.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from ase.calculators.singlepoint import SinglePointCalculator

from .framelog import FrameLog

INDEX_KEY = "label_index"


def _tblite(method: str) -> Calculator:
    try:
        from tblite.ase import TBLite
    except ImportError as err:
        raise ImportError(
            f"labelling with {method} needs tblite: pip install 'legato-ase[xtb]' "
            "(or conda install -c conda-forge tblite-python)."
        ) from err
    return TBLite(method=method, verbosity=0)


def _emt() -> Calculator:
    from ase.calculators.emt import EMT

    return EMT()


# name -> (factory, reference string written into every frame)
METHODS: dict[str, tuple[Callable[[], Calculator], str]] = {
    "gfn1-xtb": (lambda: _tblite("GFN1-xTB"), "GFN1-xTB/tblite"),
    "gfn2-xtb": (lambda: _tblite("GFN2-xTB"), "GFN2-xTB/tblite"),
    "emt": (_emt, "EMT/ase"),
}


@dataclasses.dataclass(frozen=True)
class LabelFailure:
    """A frame whose reference calculation failed (it is never written)."""

    index: int
    reason: str


@dataclasses.dataclass(frozen=True)
class LabelResult:
    """What one call of :func:`label` did.

    Attributes:
        frames: the frames labelled by this call (labels in ``atoms.calc``), in the order
            they finished.
        already_done: frames found labelled in the output from an earlier call.
        failures: frames that failed in this call.
        earlier_failures: frames skipped because an earlier call recorded them as failed.
        output: the output file, or None for in-memory labelling.
        dropped_bytes: incomplete tail of the output cut off (left by a killed run).
    """

    frames: list[Atoms]
    already_done: int
    failures: list[LabelFailure]
    earlier_failures: int
    output: Path | None
    dropped_bytes: int = 0

    def summary(self) -> str:
        text = f"labelled {len(self.frames)} frames"
        if self.already_done:
            text += f", {self.already_done} were already labelled"
        if self.failures:
            text += f", {len(self.failures)} failed (skipped)"
        if self.earlier_failures:
            text += f", {self.earlier_failures} had failed before (skipped)"
        if self.dropped_bytes:
            text += f"; cut off an incomplete last frame ({self.dropped_bytes} bytes)"
        return text + (f"; output {self.output}" if self.output else "")


def resolve_calculator(calculator: Any) -> tuple[Callable[[], Calculator], str]:
    """A factory of the reference calculator and its name.

    Args:
        calculator: a method name (``"gfn1-xtb"``, ``"gfn2-xtb"``, ``"emt"``), an ASE
            calculator (copied into each worker process) or a function returning one.
    """
    if isinstance(calculator, str):
        key = calculator.lower()
        if key not in METHODS:
            raise ValueError(
                f"unknown labelling method '{calculator}'; choose one of {sorted(METHODS)}, "
                "or pass any ASE calculator from Python."
            )
        return METHODS[key]
    if isinstance(calculator, Calculator):
        return _Fixed(calculator), type(calculator).__name__
    if callable(calculator):
        return calculator, getattr(calculator, "__name__", "custom")
    raise TypeError(
        "calculator must be a method name, an ASE calculator or a function returning one, "
        f"got {type(calculator).__name__}."
    )


class _Fixed:
    """A picklable factory that hands out one given calculator."""

    def __init__(self, calculator: Calculator) -> None:
        self.calculator = calculator

    def __call__(self) -> Calculator:
        return self.calculator


def label_one(atoms: Atoms, calculator: Calculator, reference: str) -> Atoms:
    """A labelled copy of ``atoms``; raises when the calculation fails or is not finite."""
    out = Atoms(atoms.numbers, atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
    out.info.update(
        {k: v for k, v in atoms.info.items() if k not in ("energy", "free_energy", "stress")}
    )
    if atoms.has("momenta"):
        out.set_momenta(atoms.get_momenta())
    out.calc = calculator
    results = {"energy": out.get_potential_energy(), "forces": out.get_forces()}
    if out.pbc.all():
        results["stress"] = out.get_stress()
    bad = [k for k, v in results.items() if not np.all(np.isfinite(v))]
    if bad:
        raise FloatingPointError(f"the reference returned non-finite {', '.join(bad)}")
    out.calc = SinglePointCalculator(out, **{k: np.array(v) for k, v in results.items()})
    out.info["reference"] = reference
    return out


# One calculator per worker process, made once by the pool's initializer.
_WORKER: dict[str, Any] = {}


def _init_worker(factory: Callable[[], Calculator], reference: str) -> None:
    _WORKER["calculator"], _WORKER["reference"] = factory(), reference


def _init_process(factory: Callable[[], Calculator], reference: str) -> None:
    import torch

    torch.set_num_threads(1)
    _init_worker(factory, reference)


def _work(index: int, atoms: Atoms) -> tuple[int, Atoms | None, str]:
    try:
        return index, label_one(atoms, _WORKER["calculator"], _WORKER["reference"]), ""
    except Exception as err:  # noqa: BLE001 - any failure of the reference skips the frame
        first = (str(err).strip().splitlines() or [""])[0]
        return index, None, f"{type(err).__name__}: {first}"


def _read_input(frames: str | os.PathLike | Sequence[Atoms] | Sequence[str]) -> list[Atoms]:
    from ..datasets import read_frames
    from ..train.dataset import resolve_paths

    if isinstance(frames, (str, os.PathLike)):
        frames = [frames]
    frames = list(frames)
    if frames and all(isinstance(f, (str, os.PathLike)) for f in frames):
        paths = resolve_paths([str(f) for f in frames])
        return [atoms for path in paths for atoms in read_frames(path)]
    if not all(isinstance(f, Atoms) for f in frames):
        raise TypeError("frames must be ASE Atoms objects or file paths (not a mixture).")
    return frames


def _check_same(done: Atoms, given: Atoms, output: Path) -> None:
    index = done.info[INDEX_KEY]
    same = len(done) == len(given) and (done.numbers == given.numbers).all()
    if not same or not np.allclose(done.positions, given.positions, atol=1e-5):
        raise ValueError(
            f"{output} holds a frame {index} that differs from input frame {index}: the output "
            "belongs to other input frames. Choose another output file, or delete it to start over."
        )


def _done_indices(log: FrameLog, inputs: Sequence[Atoms]) -> set[int]:
    done = set()
    for atoms in log.frames():
        if INDEX_KEY not in atoms.info:
            raise ValueError(
                f"{log.path} holds frames without '{INDEX_KEY}': it was not written by "
                "legato label. Choose another output file."
            )
        index = int(atoms.info[INDEX_KEY])
        if not 0 <= index < len(inputs):
            raise ValueError(
                f"{log.path} holds frame {index}, but the input has only {len(inputs)} frames; "
                "the output belongs to other input frames."
            )
        _check_same(atoms, inputs[index], log.path)
        done.add(index)
    return done


def _failed_path(output: Path) -> Path:
    return output.with_name(output.name + ".failed")


def _earlier_failures(output: Path) -> set[int]:
    path = _failed_path(output)
    if not path.exists():
        return set()
    found = set()
    for line in path.read_text().splitlines():
        try:
            found.add(int(json.loads(line)["index"]))
        except (ValueError, KeyError):
            continue  # an incomplete last line from an interrupted run
    return found


def _record_failure(output: Path | None, failure: LabelFailure) -> None:
    if output is None:
        return
    with open(_failed_path(output), "a") as handle:
        handle.write(json.dumps(dataclasses.asdict(failure)) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def _results(
    pending: list[tuple[int, Atoms]], factory, reference: str, workers: int
) -> Iterable[tuple[int, Atoms | None, str]]:
    """Label the pending frames in this process or in ``workers`` processes, as they finish."""
    if workers <= 1:
        _init_worker(factory, reference)
        for index, atoms in pending:
            yield _work(index, atoms)
        return
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    context = multiprocessing.get_context("spawn")  # fork and torch/OpenMP threads do not mix
    old = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = "1"  # spawned workers inherit it before loading tblite
    try:
        with ProcessPoolExecutor(workers, context, _init_process, (factory, reference)) as pool:
            todo, running = iter(pending), set()
            while True:
                for index, atoms in todo:  # keep two frames per worker in flight
                    running.add(pool.submit(_work, index, atoms))
                    if len(running) >= 2 * workers:
                        break
                if not running:
                    return
                finished, running = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    yield future.result()
    finally:
        if old is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = old


def label(
    frames: str | os.PathLike | Sequence[Atoms] | Sequence[str],
    calculator: Any = "gfn1-xtb",
    output: str | os.PathLike | None = None,
    *,
    workers: int = 1,
    retry_failed: bool = False,
    progress: bool = True,
) -> LabelResult:
    """Label frames with a reference method; resumable when written to ``output``.

    Args:
        frames: ASE Atoms, or ASE-readable files (globs and ``bundled:`` names allowed).
        calculator: ``"gfn1-xtb"`` (tblite, the settings of the bundled data),
            ``"gfn2-xtb"``, ``"emt"``, an ASE calculator or a function returning one.
        output: extended-XYZ file to append to; frames already in it are skipped. None
            labels in memory only.
        workers: processes labelling in parallel (each with one thread).
        retry_failed: label again the frames an earlier call recorded as failed.
        progress: show a progress bar.

    Returns:
        A :class:`LabelResult`; ``energy`` (eV), ``forces`` (eV/Å) and, for 3-D periodic
        cells, ``stress`` (eV/Å³, ASE sign) are in each frame's ``calc``.
    """
    from tqdm.auto import tqdm

    inputs = _read_input(frames)
    factory, reference = resolve_calculator(calculator)
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}.")
    log = FrameLog(output) if output is not None else None
    done = _done_indices(log, inputs) if log else set()
    earlier = _earlier_failures(log.path) - done if log and not retry_failed else set()
    pending = [(i, a) for i, a in enumerate(inputs) if i not in done and i not in earlier]
    labelled, failures = [], []
    bar = tqdm(total=len(pending), desc="labelling", disable=not progress or not pending)
    for index, atoms, reason in _results(pending, factory, reference, workers):
        if atoms is None:
            failure = LabelFailure(index, reason)
            failures.append(failure)
            _record_failure(log.path if log else None, failure)
            bar.write(f"frame {index} failed and is skipped: {reason}")
        else:
            atoms.info[INDEX_KEY] = index
            if log:
                log.append(atoms)
            labelled.append(atoms)
        bar.update(1)
    bar.close()
    return LabelResult(
        labelled, len(done), failures, len(earlier), log.path if log else None,
        log.dropped_bytes if log else 0,
    )  # fmt: skip
