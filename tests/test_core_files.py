"""Crash-safe writes: a failure mid-write leaves the old file, new files are not private."""

from __future__ import annotations

import os
import stat

import pytest

from legato_ase.files import atomic_output, copy_atomic, write_text_atomic


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "state.json"
    write_text_atomic(target, "old")
    with pytest.raises(RuntimeError), atomic_output(target, "w") as handle:
        handle.write("half of the new")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_new_files_get_ordinary_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        write_text_atomic(tmp_path / "a.txt", "x")
        copy_atomic(tmp_path / "a.txt", tmp_path / "sub" / "b.txt")
    finally:
        os.umask(old)
    for name in ("a.txt", "sub/b.txt"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644
    assert (tmp_path / "sub" / "b.txt").read_text() == "x"
