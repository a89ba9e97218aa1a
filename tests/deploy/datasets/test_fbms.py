"""stseg_deploy.datasets.fbms: FBMS-59 as distributed and as processed, each quirk of its layout,
and one clear error for each way it can be broken."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from fbmstree import SIZE, definition, fbms_sequence, fbms_tree, key, processed_tree, squares
from PIL import Image

from stseg_deploy.datasets.fbms import read_definition, read_fbms
from stseg_deploy.errors import StsegInputError


def _expected_ids(t: int) -> np.ndarray:
    ids = np.zeros(SIZE, np.uint8)
    first, second = squares(t)
    ids[first], ids[second] = 1, 2
    return ids


def test_splits_frames_in_order_and_per_sequence_numbering(tmp_path: Path) -> None:
    splits = read_fbms(fbms_tree(tmp_path / "FBMS"))
    assert list(splits) == ["train", "val", "test"]
    assert [s.name for s in splits["train"]] == ["cars1"]
    assert [s.name for s in splits["val"]] == [s.name for s in splits["test"]] == ["bear01", "tennis"]
    cars, (bear, tennis) = splits["train"][0], splits["test"]
    assert [f.name for f in cars.frames] == ["cars1_01", "cars1_02", "cars1_03", "cars1_04"]
    assert [f.name for f in bear.frames] == ["bear01_0001", "bear01_0002", "bear01_0003", "bear01_0004"]
    assert [f.name for f in tennis.frames] == ["tennis454", "tennis455", "tennis456", "tennis457"]
    assert all(f.image.suffix == ".jpg" and f.mask is None for f in bear.frames)


def test_the_bmf_lists_ppm_names_for_jpg_frames_and_gives_the_order(tmp_path: Path) -> None:
    folder = fbms_sequence(tmp_path / "FBMS" / "Testset" / "marple4", start=325, annotated=(0,))
    # An image the .bmf does not list is not a frame; the .bmf's order is the frames' order.
    Image.fromarray(np.zeros((*SIZE, 3), np.uint8)).save(folder / "marple4_9999.jpg")
    (sequence,) = read_fbms(tmp_path / "FBMS")["test"]
    assert [f.name for f in sequence.frames] == ["marple4_0325", "marple4_0326", "marple4_0327", "marple4_0328"]
    bmf = folder / "marple4.bmf"
    lines = bmf.read_text().splitlines()
    bmf.write_text("\n".join([*lines[:3], lines[4], lines[3]]) + "\n")
    (sequence,) = read_fbms(tmp_path / "FBMS")["test"]
    assert [f.name for f in sequence.frames][2:] == ["marple4_0328", "marple4_0327"]
    # Def.dat's frame numbers are positions in that order: an image at another one is refused.
    bmf.write_text("\n".join([lines[0], lines[2], lines[1], *lines[3:]]) + "\n")
    with pytest.raises(StsegInputError, match=r"marple4Def.dat, line 22: frame number 0 but its input file 'marple4_0325.ppm' is frame 1"):
        read_fbms(tmp_path / "FBMS")


def test_without_a_bmf_the_frames_are_the_images_in_natural_order(tmp_path: Path) -> None:
    fbms_sequence(tmp_path / "FBMS" / "Testset" / "cars2", start=8, digits=1, bmf=False, annotated=(0,))
    (sequence,) = read_fbms(tmp_path / "FBMS")["test"]
    assert [f.name for f in sequence.frames] == ["cars2_8", "cars2_9", "cars2_10", "cars2_11"]


def test_def_dat_names_the_annotated_frames_zero_based(tmp_path: Path) -> None:
    splits = read_fbms(fbms_tree(tmp_path / "FBMS"))
    bear, tennis = splits["test"]
    assert sorted(bear.truth.annotated) == [0, 2]
    assert sorted(tennis.truth.annotated) == [0, 3]  # numbered from 454 in its names, 0 in Def.dat
    assert bear.truth.annotated[2][0].name == "bear01_0003_gt.ppm"


def test_colour_masks_white_background_and_regions_in_def_dat_order(tmp_path: Path) -> None:
    (bear, _) = read_fbms(fbms_tree(tmp_path / "FBMS"))["test"]
    # Def.dat lists red, blue, then white: white is the background whatever its place.
    assert bear.truth.ids == {key((255, 255, 255)): 0, key((255, 0, 0)): 1, key((0, 0, 255)): 2}
    np.testing.assert_array_equal(bear.truth.read(2), _expected_ids(2))


def test_grey_masks_black_background(tmp_path: Path) -> None:
    (cars,) = read_fbms(fbms_tree(tmp_path / "FBMS"))["train"]
    assert cars.truth.ids == {0: 0, 255: 1, 128: 2}
    np.testing.assert_array_equal(cars.truth.read(0), _expected_ids(0))


def test_probability_maps_and_prob_files_are_never_masks(tmp_path: Path) -> None:
    root = fbms_tree(tmp_path / "FBMS")
    gt = root / "Testset" / "bear01" / "GroundTruth"
    assert (gt / "bear01_0001_gt.pgm").is_file() and (gt / "bear01_0001PROB_gt.ppm").is_file()
    (bear, _) = read_fbms(root)["test"]
    files = [f.name for files in bear.truth.annotated.values() for f in files]
    assert files == ["bear01_0001_gt.ppm", "bear01_0003_gt.ppm"]


def test_a_value_def_dat_does_not_list_is_background_with_a_warning(tmp_path: Path, caplog) -> None:
    root = fbms_tree(tmp_path / "FBMS", train=(), test=("cats04",))
    mask = root / "Testset" / "cats04" / "GroundTruth" / "cats04_0003_gt.ppm"
    rgb = np.asarray(Image.open(mask)).copy()
    rgb[0:2, 0:2] = (0, 255, 0)
    Image.fromarray(rgb).save(mask)
    (cats,) = read_fbms(root)["test"]
    with caplog.at_level(logging.WARNING):
        ids = cats.truth.read(2)
    assert "cats04_0003_gt.ppm: value(s) #00ff00 not among its Def.dat's regions; read as background" in caplog.text
    np.testing.assert_array_equal(ids, _expected_ids(2))


def test_trainingset_spelled_with_a_capital_s(tmp_path: Path) -> None:
    fbms_sequence(tmp_path / "FBMS" / "TrainingSet" / "cars1", family="pgm", annotated=(1,))
    assert [s.name for s in read_fbms(tmp_path / "FBMS")["train"]] == ["cars1"]
    assert list(read_fbms(tmp_path / "FBMS")) == ["train"]


def test_processed_copy_is_detected_and_every_sequence_is_val_and_test(tmp_path: Path) -> None:
    splits = read_fbms(processed_tree(tmp_path / "FBMS_clean"))
    assert list(splits) == ["val", "test"] and splits["val"] == splits["test"]
    bear, cars = splits["val"]
    assert [f.name for f in bear.frames] == ["00001", "00002", "00003", "00004"]
    assert sorted(bear.truth.annotated) == [0, 2]  # 00001.png and 00003.png, by stem
    merged = (_expected_ids(2) > 0).astype(np.uint8)
    np.testing.assert_array_equal(bear.truth.read(2), merged)  # an RGB 0/255 mask
    np.testing.assert_array_equal(cars.truth.read(0), (_expected_ids(0) > 0).astype(np.uint8))


def test_read_definition_parses_every_field(tmp_path: Path) -> None:
    path = tmp_path / "xDef.dat"
    path.write_text(definition([16777215, 255], 10, [(0, "x_01_gt.ppm", "x_01.ppm"), (9, "x_10_gt.ppm", "x_10.ppm")]))
    parsed = read_definition(path)
    assert parsed.keys == (16777215, 255) and parsed.n_frames == 10
    assert [(f.index, f.file, f.input) for f in parsed.labelled] == [(0, "x_01_gt.ppm", "x_01.ppm"), (9, "x_10_gt.ppm", "x_10.ppm")]


def _break(root: Path, path: str, old: str, new: str) -> None:
    file = root / path
    file.write_text(file.read_text().replace(old, new, 1))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda r: _break(r, "Testset/bear01/GroundTruth/bear01Def.dat", "Total number of frames in this shot:\n4", "Total number of frames in this shot:\n5"),
         r"bear01Def.dat, line 18: says the shot has 5 frames, but .*/bear01 has 4"),
        (lambda r: (r / "Testset/bear01/GroundTruth/bear01_0003_gt.ppm").unlink(),
         r"bear01Def.dat, line \d+: mask 'bear01_0003_gt.ppm' not found in .*/bear01/GroundTruth"),
        (lambda r: _break(r, "Testset/bear01/GroundTruth/bear01Def.dat", "Frame number:\n2", "Frame number:\n7"),
         r"bear01Def.dat, line \d+: frame number 7 outside the shot's 4 frames \(0-based\)"),
        (lambda r: _break(r, "Testset/bear01/GroundTruth/bear01Def.dat", "Frame number:\n2", "Frame number:\n1"),
         r"bear01Def.dat, line \d+: frame number 1 but its input file 'bear01_0003.ppm' is frame 2 of"),
        (lambda r: _break(r, "Testset/bear01/GroundTruth/bear01Def.dat", "Total number of regions:", "Number of regions:"),
         r"bear01Def.dat, line 3: expected 'Total number of regions:', got 'Number of regions:'"),
        (lambda r: (r / "Testset/bear01/GroundTruth/bear01Def.dat").unlink(),
         r"bear01/GroundTruth: no bear01Def.dat, the ground-truth definition"),
        (lambda r: (r / "Testset/bear01/bear01_0002.jpg").unlink(),
         r"bear01.bmf, line 3: frame 'bear01_0002.ppm' not found in .*/bear01"),
        (lambda r: _break(r, "Testset/bear01/bear01.bmf", "4 1", "5 1"), r"bear01.bmf: announces 5 frames but lists 4"),
        (lambda r: Image.fromarray(np.zeros((16, 48, 3), np.uint8)).save(r / "Testset/bear01/GroundTruth/bear01_0001_gt.ppm"),
         r"bear01_0001_gt.ppm: mask is 48x16 but the frames of 'bear01' are 48x32"),
        (lambda r: __import__("shutil").rmtree(r / "Testset/tennis/GroundTruth"), r"tennis/GroundTruth: no such folder"),
    ],
)
def test_a_broken_layout_is_one_line_naming_the_file(tmp_path: Path, damage, message: str) -> None:
    root = fbms_tree(tmp_path / "FBMS")
    damage(root)
    with pytest.raises(StsegInputError, match=message):
        read_fbms(root)


def test_not_an_fbms_root(tmp_path: Path) -> None:
    (tmp_path / "x" / "Videos").mkdir(parents=True)
    with pytest.raises(StsegInputError, match=r"x: not an FBMS-59 root: neither Trainingset/ nor Testset/ .* it holds Videos"):
        read_fbms(tmp_path / "x")


def test_processed_copy_mask_without_a_frame(tmp_path: Path) -> None:
    root = processed_tree(tmp_path / "P")
    Image.fromarray(np.zeros(SIZE, np.uint8)).save(root / "Annotations" / "cars1" / "00009.png")
    with pytest.raises(StsegInputError, match=r"Annotations/cars1/00009.png: no frame 00009 in .*JPEGImages/cars1 \(copies made by FBMS_clean"):
        read_fbms(root)


def test_a_davis_root_is_named_as_one(tmp_path: Path) -> None:
    from davistree import davis_tree

    root = davis_tree(tmp_path / "DAVIS", {"val": {"a": 3}})
    with pytest.raises(StsegInputError, match=r"JPEGImages/480p: no frames but folders; is .*DAVIS a DAVIS dataset \(stseg-prepare davis\)\?"):
        read_fbms(root)


def test_processed_copy_of_the_annotated_frames_only_is_refused(tmp_path: Path) -> None:
    root = processed_tree(tmp_path / "P", names=("bear01",), n=3, annotated=(0, 1, 2))
    with pytest.raises(StsegInputError, match=r"Annotations/bear01: a mask for every frame .* 20 frames apart"):
        read_fbms(root)
