"""Streaming a .npy frame by frame gives the same file np.save writes, and refuses misuse."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from stseg_deploy.io.npystream import NpyFrameWriter


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


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_full_disk_names_the_file_and_abort_keeps_the_first_error() -> None:
    writer = NpyFrameWriter("/dev/full", 2, (256, 256))
    with pytest.raises(OSError) as info:
        writer.write(0, np.zeros((256, 256)))  # 64 KB: past the write buffer
    assert info.value.filename == "/dev/full" and "No space left" in info.value.strerror
    writer.abort()  # the flush on close fails again: abort must not raise it
