from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from stseg_deploy.errors import StsegInputError
from stseg_deploy.io.masks import (
    VOID,
    davis_palette,
    label_palette,
    read_label_png,
    read_mask_png,
    read_object_png,
    write_label_png,
    write_mask_png,
    write_object_png,
)


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


def test_label_pngs_draw_no_segment_black_and_the_background_black(tmp_path: Path) -> None:
    # DAVIS users read black as background: a segment is drawn in the colour of label + 1
    # (its object id's), and with the foreground decided every other segment is black.
    davis = davis_palette()
    np.testing.assert_array_equal(label_palette()[:8], davis[1:9])
    objects = np.array([False, True, False, True])
    palette = label_palette(objects)
    np.testing.assert_array_equal(palette[[0, 2]], 0)
    np.testing.assert_array_equal(palette[[1, 3]], davis[[2, 4]])
    np.testing.assert_array_equal(palette[4:8], davis[5:9])  # labels past the decision keep theirs
    labels = np.array([[0, 1], [2, 3]], dtype=np.uint8)
    write_label_png(tmp_path / "l.png", labels, objects)
    with Image.open(tmp_path / "l.png") as image:
        rgb = np.asarray(image.convert("RGB"))
    np.testing.assert_array_equal(rgb[0, 0], 0)
    np.testing.assert_array_equal(rgb[0, 1], davis[2])
    np.testing.assert_array_equal(read_label_png(tmp_path / "l.png"), labels)  # the values stay the labels


def test_object_png_is_davis2017_style(tmp_path: Path) -> None:
    ids = np.array([[0, 2], [4, 0]], dtype=np.uint8)
    write_object_png(tmp_path / "o.png", ids)
    np.testing.assert_array_equal(read_object_png(tmp_path / "o.png"), ids)
    with Image.open(tmp_path / "o.png") as image:
        assert image.mode == "P"
        np.testing.assert_array_equal(np.asarray(image.convert("RGB"))[0, 0], 0)
    with pytest.raises(ValueError, match="uint8"):
        write_object_png(tmp_path / "o.png", ids.astype(np.int32))


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


def test_object_png_reads_davis2016_and_davis2017_annotations(tmp_path: Path) -> None:
    # DAVIS-2017: indexed, palette index = object id, 255 = void.
    ids = np.array([[0, 1, 2], [3, VOID, 1]], np.uint8)
    write_label_png(tmp_path / "d17.png", ids)
    np.testing.assert_array_equal(read_object_png(tmp_path / "d17.png"), ids)
    # DAVIS-2016: greyscale 0/255 is one object, id 1 (255 is not void there).
    write_mask_png(tmp_path / "d16.png", ids > 0)
    np.testing.assert_array_equal(read_object_png(tmp_path / "d16.png"), (ids > 0).astype(np.uint8))
    Image.fromarray(ids > 0).save(tmp_path / "bilevel.png")  # mode 1
    np.testing.assert_array_equal(read_object_png(tmp_path / "bilevel.png"), (ids > 0).astype(np.uint8))
    # Greyscale that is not 0/255: grey level = object id.
    Image.fromarray(np.array([[0, 1, 2]], np.uint8)).save(tmp_path / "grey.png")
    assert read_object_png(tmp_path / "grey.png").tolist() == [[0, 1, 2]]


def test_object_png_colours(tmp_path: Path) -> None:
    palette = davis_palette()
    ids = np.array([[0, 1, 2, 2]], np.uint8)
    Image.fromarray(palette[ids]).save(tmp_path / "rgb.png")  # an indexed mask saved as RGB
    assert read_object_png(tmp_path / "rgb.png").tolist() == [[0, 1, 2, 2]]
    Image.fromarray(np.array([[[0, 0, 0], [255, 255, 255]]], np.uint8)).save(tmp_path / "white.png")
    assert read_object_png(tmp_path / "white.png").tolist() == [[0, 1]]  # one colour: one object
    Image.fromarray(np.array([[[0, 0, 0], [10, 20, 30], [128, 0, 0]]], np.uint8)).save(tmp_path / "odd.png")
    with pytest.raises(StsegInputError, match=r"odd.png: 2 colours, and \(10, 20, 30\) is not a DAVIS palette colour"):
        read_object_png(tmp_path / "odd.png")


def test_bad_object_png(tmp_path: Path) -> None:
    (tmp_path / "bad.png").write_bytes(b"garbage")
    with pytest.raises(StsegInputError, match="bad.png: not a readable image"):
        read_object_png(tmp_path / "bad.png")
    with pytest.raises(FileNotFoundError, match="nope.png"):
        read_object_png(tmp_path / "nope.png")
    Image.fromarray(np.zeros((2, 2), np.float32)).save(tmp_path / "float.tif")
    with pytest.raises(StsegInputError, match="float.tif: expected an object mask PNG .* got mode F"):
        read_object_png(tmp_path / "float.tif")
