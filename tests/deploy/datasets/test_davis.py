"""stseg_deploy.datasets.davis: reading a DAVIS tree's listings, and the errors that name the
line or file at fault."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from davistree import SIZE, davis2017_tree, davis_tree
from PIL import Image

from stseg_deploy.datasets.davis import read_davis
from stseg_deploy.datasets.listing import image_size
from stseg_deploy.errors import StsegInputError


def test_splits_sequences_and_frames_in_listing_order(tmp_path: Path) -> None:
    root = davis_tree(tmp_path / "DAVIS", {"train": {"b": 3, "a": 2}, "val": {"c": 2}})
    splits = read_davis(root)
    assert sorted(splits) == ["train", "val"]
    assert [s.name for s in splits["train"]] == ["b", "a"]  # first appearance, not sorted
    b = splits["train"][0]
    assert [f.name for f in b.frames] == ["00000", "00001", "00002"]
    assert b.folder == root / "JPEGImages" / "480p" / "b"
    assert b.frames[1].mask == root / "Annotations" / "480p" / "b" / "00001.png"
    assert image_size(b.frames[0].image) == SIZE


def test_a_test_listing_may_leave_masks_out(tmp_path: Path) -> None:
    root = davis_tree(tmp_path / "DAVIS", {"val": {"c": 2}})
    listing = root / "ImageSets" / "480p" / "test.txt"
    listing.write_text("/JPEGImages/480p/c/00000.jpg\n\n/JPEGImages/480p/c/00001.jpg\n")
    (test,) = read_davis(root)["test"]
    assert [f.mask for f in test.frames] == [None, None]


def test_other_listings_are_skipped_with_a_warning(tmp_path: Path, caplog) -> None:
    root = davis_tree(tmp_path / "DAVIS", {"val": {"c": 2}})
    (root / "ImageSets" / "480p" / "trainval.txt").write_text("")
    assert sorted(read_davis(root)) == ["val"]
    assert "trainval.txt: not one of the splits" in caplog.text


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("a b c", r"train.txt, line 4: expected 'IMAGE \[MASK\]', got 3 fields"),
        ("/JPEGImages/480p/a/00009.jpg", r"train.txt, line 4: .*00009.jpg: listed but not found"),
    ],
)
def test_bad_lines_are_named(tmp_path: Path, line: str, message: str) -> None:
    root = davis_tree(tmp_path / "DAVIS", {"train": {"a": 3}})
    listing = root / "ImageSets" / "480p" / "train.txt"
    listing.write_text(listing.read_text() + line + "\n")
    with pytest.raises(StsegInputError, match=message):
        read_davis(root)


def test_sequences_must_be_contiguous_and_listings_not_empty(tmp_path: Path) -> None:
    root = davis_tree(tmp_path / "DAVIS", {"train": {"a": 2, "b": 2}})
    listing = root / "ImageSets" / "480p" / "train.txt"
    lines = listing.read_text().splitlines()
    listing.write_text("\n".join([lines[0], lines[2], lines[1]]) + "\n")
    with pytest.raises(StsegInputError, match=r"line 3: sequence 'a' continues after another sequence began"):
        read_davis(root)
    listing.write_text("\n")
    with pytest.raises(StsegInputError, match=r"train.txt: lists no frames"):
        read_davis(root)


def test_missing_files_and_wrong_sizes_name_the_file(tmp_path: Path) -> None:
    root = davis_tree(tmp_path / "DAVIS", {"train": {"a": 3}})
    with pytest.raises(StsegInputError, match=r"ImageSets/240p: no such folder.*ImageSets has 480p"):
        read_davis(root, "240p")
    (root / "JPEGImages" / "480p" / "a" / "00001.jpg").unlink()
    with pytest.raises(StsegInputError, match=r"train.txt, line 2: .*00001.jpg: listed but not found"):
        read_davis(root)
    Image.fromarray(np.zeros((*SIZE, 3), np.uint8)).save(root / "JPEGImages" / "480p" / "a" / "00001.jpg")
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(root / "Annotations" / "480p" / "a" / "00002.png")
    with pytest.raises(StsegInputError, match=r"00002.png: mask is 10x10 but the frames of 'a' are 48x32"):
        read_davis(root)
    (root / "JPEGImages" / "480p" / "a" / "00000.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(StsegInputError, match=r"00000.jpg: not a readable image"):
        read_davis(root)


def test_davis2017_lists_sequences_and_takes_their_frames_and_masks(tmp_path: Path) -> None:
    root = davis2017_tree(tmp_path / "D17", {"train": {"dogs": 4, "bike": 3}, "val": {"cows": 5}})
    (root / "ImageSets" / "2017" / "test-dev.txt").write_text("cows\n")  # another edition's listing: skipped
    splits = read_davis(root, year=2017)
    assert list(splits) == ["train", "val"]
    assert [s.name for s in splits["train"]] == ["dogs", "bike"]  # listing order, not name order
    (cows,) = splits["val"]
    assert [f.name for f in cows.frames] == ["00000", "00001", "00002", "00003", "00004"]
    ids = np.asarray(Image.open(cows.frames[2].mask))
    assert set(np.unique(ids)) == {0, 1, 2}  # object ids as they are
    assert not (root / "ImageSets" / "480p").exists()  # 2016's listings are not needed


def test_davis2017_frames_without_a_mask_have_none(tmp_path: Path) -> None:
    root = davis2017_tree(tmp_path / "D17", {"test": {"gold": 4}}, annotated=1)
    (gold,) = read_davis(root, year=2017)["test"]
    assert gold.frames[0].mask is not None and all(f.mask is None for f in gold.frames[1:])


def test_davis2017_errors_name_the_line_or_file(tmp_path: Path) -> None:
    root = davis2017_tree(tmp_path / "D17", {"val": {"cows": 3}})
    listing = root / "ImageSets" / "2017" / "val.txt"
    listing.write_text("cows\ncows\n")
    with pytest.raises(StsegInputError, match=r"val.txt, line 2: sequence 'cows' is listed twice"):
        read_davis(root, year=2017)
    listing.write_text("cows\nhorse\n")
    with pytest.raises(StsegInputError, match=r"val.txt, line 2: .*JPEGImages/480p/horse: no frame folder"):
        read_davis(root, year=2017)
    listing.write_text("cows\n")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(root / "Annotations" / "480p" / "cows" / "00001.png")
    with pytest.raises(StsegInputError, match=r"cows/00001.png: mask is 8x8 but the frames of 'cows' are 48x32"):
        read_davis(root, year=2017)
    with pytest.raises(StsegInputError, match=r"ImageSets/2017: no such folder"):
        read_davis(tmp_path / "empty", year=2017)
    with pytest.raises(ValueError, match="year must be one of"):
        read_davis(root, year=2018)
