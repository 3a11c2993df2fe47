"""Labelling: correct labels, append-only resumable output, failures skipped and recorded."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import ase.io
import numpy as np
import pytest
from ase.calculators.emt import EMT

from legato_ase.datasets import read_ammonia
from legato_ase.learn import label
from legato_ase.learn.framelog import FrameLog
from legato_ase.train import load_frames


def frames(n=6, stride=15):
    return read_ammonia("liquid_300", index=f"::{stride}")[:n]


class FlakyEMT(EMT):
    """EMT that fails like a non-converged SCF on frames marked ``bad``."""

    def calculate(self, atoms=None, *args, **kwargs):
        if atoms is not None and atoms.info.get("bad"):
            raise RuntimeError("SCF not converged in 250 cycles")
        super().calculate(atoms, *args, **kwargs)


def by_index(atoms_list):
    return {int(a.info["label_index"]): a for a in atoms_list}


def test_labels_equal_the_reference_calculator_and_train_reads_them(tmp_path):
    out = tmp_path / "labelled.extxyz"
    result = label(frames(3), "emt", out, progress=False)
    assert len(result.frames) == 3 and not result.failures
    for index, atoms in by_index(FrameLog(out).frames()).items():
        reference = frames(3)[index].copy()
        reference.calc = EMT()
        assert atoms.get_potential_energy() == pytest.approx(reference.get_potential_energy())
        np.testing.assert_allclose(atoms.get_forces(), reference.get_forces(), atol=1e-6)
        np.testing.assert_allclose(atoms.get_stress(), reference.get_stress(), atol=1e-8)
        assert atoms.info["reference"] == "EMT/ase"
    loaded = load_frames([str(out)], ["H", "N"], 3.0)
    assert len(loaded) == 3 and loaded[0].stress is not None


def test_a_second_call_labels_only_the_missing_frames(tmp_path):
    out = tmp_path / "labelled.extxyz"
    label(frames(2), "emt", out, progress=False)
    result = label(frames(5), "emt", out, progress=False)
    assert result.already_done == 2 and len(result.frames) == 3
    assert sorted(by_index(FrameLog(out).frames())) == [0, 1, 2, 3, 4]


def test_a_frame_cut_off_mid_write_is_dropped_and_labelled_again(tmp_path):
    out = tmp_path / "labelled.extxyz"
    label(frames(4), "emt", out, progress=False)
    whole = out.read_bytes()
    out.write_bytes(whole[: len(whole) - 1234])  # as if killed while writing the last frame
    result = label(frames(4), "emt", out, progress=False)
    assert result.dropped_bytes > 0 and result.already_done == 3 and len(result.frames) == 1
    assert sorted(by_index(FrameLog(out).frames())) == [0, 1, 2, 3]
    assert out.read_bytes() == whole


def test_failed_frames_are_reported_skipped_and_not_retried(tmp_path):
    inputs = frames(4)
    inputs[1].info["bad"] = True
    out = tmp_path / "labelled.extxyz"
    result = label(inputs, FlakyEMT(), out, progress=False)
    assert [f.index for f in result.failures] == [1]
    assert "SCF not converged" in result.failures[0].reason
    assert sorted(by_index(FrameLog(out).frames())) == [0, 2, 3]
    recorded = [json.loads(line) for line in Path(f"{out}.failed").read_text().splitlines()]
    assert [r["index"] for r in recorded] == [1]
    again = label(inputs, FlakyEMT(), out, progress=False)
    assert again.earlier_failures == 1 and not again.frames and not again.failures
    del inputs[1].info["bad"]
    retried = label(inputs, FlakyEMT(), out, progress=False, retry_failed=True)
    assert [int(a.info["label_index"]) for a in retried.frames] == [1]


def test_an_output_of_other_frames_is_refused(tmp_path):
    out = tmp_path / "labelled.extxyz"
    label(frames(2), "emt", out, progress=False)
    with pytest.raises(ValueError, match="other input frames"):
        label(frames(2, stride=7), "emt", out, progress=False)


@pytest.mark.slow  # starting two spawned processes takes ~30 s on a loaded machine
def test_worker_processes_give_the_serial_labels(tmp_path):
    serial = label(frames(4), "emt", progress=False)
    parallel = label(frames(4), "emt", tmp_path / "p.extxyz", workers=2, progress=False)
    a, b = by_index(serial.frames), by_index(parallel.frames)
    assert sorted(a) == sorted(b) == [0, 1, 2, 3]
    for index in a:
        np.testing.assert_array_equal(a[index].get_forces(), b[index].get_forces())


SLOW_LABELLER = """
import sys, time
from ase.calculators.emt import EMT
from legato_ase.datasets import read_ammonia
from legato_ase.learn import label

class SlowEMT(EMT):
    def calculate(self, *args, **kwargs):
        time.sleep(0.2)
        super().calculate(*args, **kwargs)

label(read_ammonia("liquid_300", index="::5"), SlowEMT(), sys.argv[1], progress=False)
"""


def test_kill_9_while_labelling_loses_and_repeats_no_frame(tmp_path):
    out = tmp_path / "labelled.extxyz"
    script = tmp_path / "slow.py"
    script.write_text(SLOW_LABELLER)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, str(script), str(out)], env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if out.exists() and out.read_bytes().count(b"Lattice=") >= 3:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = len(FrameLog(out).frames())
    assert 3 <= before < 20
    result = label(read_ammonia("liquid_300", index="::5"), "emt", out, progress=False)
    assert result.already_done == before and len(result.frames) == 20 - before
    assert sorted(by_index(FrameLog(out).frames())) == list(range(20))


def test_unknown_method_names_the_choices():
    with pytest.raises(ValueError, match="gfn1-xtb"):
        label(frames(1), "gfn1xtb", progress=False)


@pytest.mark.slow
def test_gfn1_xtb_reproduces_the_bundled_labels_and_skips_a_failed_scf(tmp_path):
    from tblite.ase import TBLite

    data = read_ammonia("solid_120", index=":1")
    result = label(data, "gfn1-xtb", tmp_path / "x.extxyz", progress=False)
    (atoms,) = result.frames
    assert atoms.get_potential_energy() == pytest.approx(data[0].get_potential_energy(), abs=1e-5)
    np.testing.assert_allclose(atoms.get_forces(), data[0].get_forces(), atol=1e-3)
    np.testing.assert_allclose(atoms.get_stress(), data[0].get_stress(), atol=1e-6)

    def unconverged():
        return TBLite(method="GFN1-xTB", verbosity=0, max_iterations=2)

    failed = label(data, unconverged, tmp_path / "y.extxyz", progress=False)
    assert not failed.frames and "SCF not converged" in failed.failures[0].reason


def test_legato_label_command_labels_and_resumes(tmp_path, capsys):
    from legato_ase.cli import main

    source = tmp_path / "in.extxyz"
    ase.io.write(source, frames(3))
    out = tmp_path / "out.extxyz"
    assert main(["label", str(source), "-o", str(out), "--method", "emt", "--no-progress"]) == 0
    assert main(["label", str(source), "-o", str(out), "--method", "emt", "--no-progress"]) == 0
    assert "3 were already labelled" in capsys.readouterr().out
    assert len(FrameLog(out).frames()) == 3
