"""Streaming a .npy frame by frame gives the same file np.save writes, and refuses misuse."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from stseg_deploy.npystream import NpyFrameWriter


def test_streamed_file_equals_np_save(tmp_path: Path) -> None:
    frames = np.random.default_rng(0).integers(0, 4, size=(5, 7, 9)).astype(np.uint8)
    writer = NpyFrameWriter(tmp_path / "s.npy", 5, (7, 9), np.uint8)
    for t, frame in enumerate(frames):
        writer.write(t, frame)
    writer.close()
    np.save(tmp_path / "ref.npy", frames)
    assert (tmp_path / "s.npy").read_bytes() == (tmp_path / "ref.npy").read_bytes()


def test_order_shape_and_count_are_checked(tmp_path: Path) -> None:
    writer = NpyFrameWriter(tmp_path / "s.npy", 3, (2, 2))
    with pytest.raises(ValueError, match="frame 1 written out of order"):
        writer.write(1, np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"frame of shape \(3, 2\), expected \(2, 2\)"):
        writer.write(0, np.zeros((3, 2)))
    writer.write(0, np.zeros((2, 2)))
    with pytest.raises(ValueError, match="1 of 3 frames written"):
        writer.close()
