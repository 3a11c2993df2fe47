"""Freed memory stays in the process for the next call (glibc malloc settings)."""

import os
import platform
import subprocess
import sys

import pytest

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"

# Allocates and frees blocks of the sizes network calls use (4-30 MiB at a hundred atoms, more
# for thousands), as every MD step does, and prints whether the settings took and the page
# faults per repeat.
_SCRIPT = """
import resource
import numpy as np
from legato_ase.memory import reuse_freed_memory

applied = reuse_freed_memory()
def step():
    blocks = [np.ones(mib * 2**20 // 8) for mib in (16, 8, 24, 4, 30, 12, 64)]
    del blocks
step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    step()
print(applied, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 20)
"""
PAGES_PER_STEP = 158 * 2**20 // 4096


def _run(**env) -> tuple[bool, float]:
    out = subprocess.run(
        [sys.executable, "-c", _SCRIPT],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    applied, faults = out.stdout.split()
    return applied == "True", float(faults)


@pytest.mark.skipif(not GLIBC, reason="the settings are glibc's (Linux)")
def test_repeated_calls_reuse_freed_memory_without_page_faults():
    applied, faults = _run(LEGATO_KEEP_FREED_MEMORY="1")
    assert applied
    assert faults < 0.01 * PAGES_PER_STEP


@pytest.mark.skipif(not GLIBC, reason="the settings are glibc's (Linux)")
def test_opt_out_keeps_glibc_defaults_which_fault_pages_in_every_call():
    applied, faults = _run(LEGATO_KEEP_FREED_MEMORY="0")
    assert not applied
    assert faults > 0.05 * PAGES_PER_STEP


_CALCULATOR = """
import sys
import legato_ase
from legato_ase import memory

model = legato_ase.build_model({"r_max": 3.0, "n_scalar": 8, "n_tensor": 4}, species=["H"])
legato_ase.LegatoCalculator(model, compile=sys.argv[1] == "1")
print(memory._applied)
"""


# memory._applied: None if never asked for; off glibc, asking gives False
@pytest.mark.parametrize(("compile", "applied"), [("1", str(GLIBC)), ("0", "None")])
def test_only_the_compiled_calculator_changes_the_malloc_settings(compile, applied):
    out = subprocess.run(
        [sys.executable, "-c", _CALCULATOR, compile],
        env={**os.environ, "LEGATO_KEEP_FREED_MEMORY": "1"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.split()[-1] == applied
