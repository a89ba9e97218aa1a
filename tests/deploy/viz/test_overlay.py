"""Label overlays and contact sheets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from stseg_deploy.io.masks import davis_palette, label_palette
from stseg_deploy.viz.overlay import blend_labels, contact_sheet


def test_blend_draws_no_segment_black_and_leaves_the_background_untinted() -> None:
    frame = np.full((2, 3, 3), 100, dtype=np.uint8)
    labels = np.array([[0, 1, 2], [3, 1, 0]], dtype=np.uint8)
    out = blend_labels(frame, labels, alpha=0.5)
    davis = davis_palette()
    expected = np.rint(0.5 * 100 + 0.5 * davis[labels + 1].astype(float)).astype(np.uint8)
    np.testing.assert_array_equal(out, expected)
    # Label 0 is drawn in DAVIS red (128, 0, 0), the PNG's colour for it: 0.5 * 100 + 0.5 * 128 = 114.
    assert tuple(out[0, 0]) == (114, 50, 50)
    # With the foreground decided, the background's pixels stay the frame.
    background = np.isin(labels, [0, 3])
    out = blend_labels(frame, labels, alpha=0.5, untinted=background)
    np.testing.assert_array_equal(out[background], frame[background])
    np.testing.assert_array_equal(out[~background], expected[~background])
    with pytest.raises(ValueError, match="untinted"):
        blend_labels(frame, labels, untinted=background[:1])


def test_alpha_limits_and_custom_palette() -> None:
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    labels = rng.integers(0, 4, (5, 7))
    np.testing.assert_array_equal(blend_labels(frame, labels, alpha=0.0), frame)
    np.testing.assert_array_equal(blend_labels(frame, labels, alpha=1.0), label_palette()[labels])
    palette = np.array([[255, 255, 255], [0, 0, 255], [0, 255, 0], [255, 0, 0]], dtype=np.uint8)
    np.testing.assert_array_equal(blend_labels(frame, labels, alpha=1.0, palette=palette), palette[labels])


def test_blend_errors() -> None:
    frame = np.zeros((4, 4, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="must have the frame's"):
        blend_labels(frame, np.zeros((4, 5), dtype=np.uint8))
    with pytest.raises(ValueError, match="alpha"):
        blend_labels(frame, np.zeros((4, 4), dtype=np.uint8), alpha=1.5)
    with pytest.raises(ValueError, match="labels must lie"):
        blend_labels(frame, np.full((4, 4), 5), palette=np.zeros((3, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match="uint8 RGB"):
        blend_labels(frame.astype(np.float32), np.zeros((4, 4), dtype=np.uint8))
    with pytest.raises(ValueError, match="integers"):
        blend_labels(frame, np.zeros((4, 4), dtype=np.float32))


def test_contact_sheet_layout(tmp_path: Path) -> None:
    red = np.zeros((20, 30, 3), dtype=np.uint8)
    red[..., 0] = 255
    mask = np.zeros((20, 30), dtype=bool)
    mask[5:15, 10:20] = True
    half = np.full((10, 15, 3), 40, dtype=np.uint8)  # scaled up 2x to fill its cell
    rows = [[red, red, red], [mask, None, half], [red]]
    titles = ["flow", "segments", "ground truth"]
    path = contact_sheet(rows, titles, tmp_path / "sheet.png", column_titles=["00000", "00001", "00002"])
    assert path == tmp_path / "sheet.png"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sheet.png"]  # no temp file left
    sheet = np.asarray(Image.open(path).convert("RGB"))
    # Exact pictures appear unchanged somewhere on the sheet: find the first red cell.
    ys, xs = np.nonzero((sheet == (255, 0, 0)).all(axis=-1))
    top, left = ys.min(), xs.min()
    np.testing.assert_array_equal(sheet[top : top + 20, left : left + 30], red)
    width = sheet.shape[1]
    assert width > 3 * 30 and sheet.shape[0] > 3 * 20
    # Row 2 (mask, blank, scaled picture) lies one cell + padding below row 1.
    step = 20 + 4
    np.testing.assert_array_equal(sheet[top + step : top + step + 20, left : left + 30, 0], np.where(mask, 255, 0))
    col_step = 30 + 4
    assert (sheet[top + step : top + step + 20, left + col_step : left + col_step + 30] == 128).all()
    assert (sheet[top + step : top + step + 20, left + 2 * col_step : left + 2 * col_step + 30] == 40).all()
    # The short third row is padded with blank cells; titles drew dark text left of the cells.
    assert (sheet[top + 2 * step : top + 2 * step + 20, left + col_step : left + col_step + 30] == 128).all()
    assert (sheet[:, :left] < 100).any()


def test_contact_sheet_errors(tmp_path: Path) -> None:
    picture = np.zeros((4, 4, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="titles"):
        contact_sheet([[picture]], ["a", "b"], tmp_path / "x.png")
    with pytest.raises(ValueError, match="at least one picture"):
        contact_sheet([[None]], ["a"], tmp_path / "x.png")
    with pytest.raises(ValueError, match="uint8 or bool"):
        contact_sheet([[picture.astype(np.float64)]], ["a"], tmp_path / "x.png")
    assert list(tmp_path.iterdir()) == []
