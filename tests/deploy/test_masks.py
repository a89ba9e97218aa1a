from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from stseg_deploy.errors import StsegInputError
from stseg_deploy.masks import davis_palette, read_label_png, read_mask_png, write_label_png, write_mask_png


def test_palette_matches_davis() -> None:
    palette = davis_palette()
    assert palette[:4].tolist() == [[0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0]]
    assert len({tuple(c) for c in palette}) == 256  # every label its own colour


def test_label_png_roundtrip(tmp_path: Path) -> None:
    labels = np.random.default_rng(0).integers(0, 8, (9, 13)).astype(np.uint8)
    write_label_png(tmp_path / "l.png", labels)
    with Image.open(tmp_path / "l.png") as image:
        assert image.mode == "P"
    np.testing.assert_array_equal(read_label_png(tmp_path / "l.png"), labels)


def test_mask_png_any_nonzero_is_foreground(tmp_path: Path) -> None:
    mask = np.eye(5, dtype=bool)
    write_mask_png(tmp_path / "m.png", mask)
    np.testing.assert_array_equal(read_mask_png(tmp_path / "m.png"), mask)
    grey = np.zeros((3, 3), np.uint8)
    grey[1, 1] = 1
    Image.fromarray(grey).save(tmp_path / "one.png")
    assert read_mask_png(tmp_path / "one.png").sum() == 1


def test_bad_mask_file(tmp_path: Path) -> None:
    (tmp_path / "bad.png").write_bytes(b"garbage")
    with pytest.raises(StsegInputError, match="bad.png: not a readable image"):
        read_mask_png(tmp_path / "bad.png")
    with pytest.raises(FileNotFoundError, match="nope.png"):
        read_mask_png(tmp_path / "nope.png")
