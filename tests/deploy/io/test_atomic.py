"""Atomic writes: complete files or none, and errors that name the file the user asked for."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from stseg_deploy.errors import error_line
from stseg_deploy.io.atomic import atomic_write, write_npy


def test_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_write(target, "w") as handle:
            handle.write("half")
            raise RuntimeError
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_errors_name_the_target_not_the_temp_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(OSError) as info:
        with atomic_write(tmp_path / "file" / "sheet.png") as handle:
            handle.write(b"x")
    assert error_line(info.value).startswith(f"{tmp_path / 'file'}: ")  # the parent in the way
    if Path("/proc/self").is_dir():  # a folder where no file can be created
        with pytest.raises(OSError) as info:
            with atomic_write("/proc/sheet.png") as handle:
                handle.write(b"x")
        assert error_line(info.value) == "/proc/sheet.png: no such file or directory"


@pytest.mark.parametrize("array", [np.float32(3), np.arange(12, dtype=np.float16).reshape(3, 4).T, np.zeros((0, 3)), np.ones((2, 3, 4), bool)])
def test_write_npy_round_trips(tmp_path: Path, array) -> None:
    write_npy(tmp_path / "a.npy", array)
    back = np.load(tmp_path / "a.npy")
    assert back.dtype == array.dtype and back.shape == np.shape(array)
    np.testing.assert_array_equal(back, array)
