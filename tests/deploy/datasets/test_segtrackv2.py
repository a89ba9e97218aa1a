"""stseg_deploy.datasets.segtrackv2: reading a SegTrackV2 tree in its own layout (mixed extensions,
per-object subfolders, listings), decoding its masks to object ids, and the errors that name the
file, folder or line at fault."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from segtracktree import SEQUENCES, SIZE, mask, segtrack_tree, write_sequence

from stseg_deploy.datasets.listing import ListedSequence
from stseg_deploy.datasets.segtrackv2 import SegTrackTruth, read_segtrackv2
from stseg_deploy.errors import StsegInputError


def by_name(root: Path) -> dict[str, ListedSequence]:
    return {s.name: s for s in read_segtrackv2(root)["val"]}


def test_val_and_test_list_every_sequence_in_all_txt_order(tmp_path: Path) -> None:
    root = segtrack_tree(tmp_path / "SegTrackv2")
    splits = read_segtrackv2(root)
    assert sorted(splits) == ["test", "val"]
    for split in ("val", "test"):
        assert [s.name for s in splits[split]] == list(SEQUENCES)  # '*' stripped, blank line skipped, not sorted
    assert splits["val"] == splits["test"]


def test_frames_are_named_by_stem_whatever_their_extension(tmp_path: Path) -> None:
    root = segtrack_tree(tmp_path / "SegTrackv2")
    seqs = by_name(root)
    frog = seqs["frog"]
    assert [f.name for f in frog.frames] == ["frog_00000", "frog_00001", "frog_00002"]
    assert frog.frames[1].image == root / "JPEGImages" / "frog" / "frog_00001.bmp"
    assert all(f.mask is None for s in seqs.values() for f in s.frames)
    assert frog.folder == root / "JPEGImages" / "frog"
    bmx = seqs["bmx"]  # numbering starts at 06668; indexes start at 0
    assert [f.name for f in bmx.frames] == ["bmx_06668", "bmx_06669", "bmx_06670"]
    assert sorted(bmx.truth.annotated) == [0, 1, 2]


def test_masks_are_matched_to_frames_by_stem_one_per_object_folder(tmp_path: Path) -> None:
    root = segtrack_tree(tmp_path / "SegTrackv2")
    seqs = by_name(root)
    gt = root / "GroundTruth"
    frog = seqs["frog"].truth
    assert isinstance(frog, SegTrackTruth)
    assert frog.objects == (1,)
    assert frog.annotated == {t: (gt / "frog" / f"frog_{t:05d}.png",) for t in range(3)}  # .bmp frames, .png masks
    cheetah = seqs["cheetah"].truth
    assert cheetah.objects == (1, 2)
    assert cheetah.annotated[2] == (gt / "cheetah" / "1" / "cheetah_00002.bmp", gt / "cheetah" / "2" / "cheetah_00002.png")
    assert seqs["bmx"].truth.annotated[0] == (gt / "bmx" / "1" / "bmx_06668.png", gt / "bmx" / "2" / "bmx_06668.png")


def test_a_mask_is_its_object_above_127_in_its_largest_channel(tmp_path: Path) -> None:
    root = segtrack_tree(tmp_path / "SegTrackv2")
    truth = by_name(root)["frog"].truth
    for t in range(3):
        ids = truth.read(t)
        assert ids.dtype == np.uint8 and ids.shape == SIZE
        expected = np.zeros(SIZE, np.uint8)
        expected[3:12, 4 + 2 * t : 12 + 2 * t] = 1  # row 3 grey 128: object; row 12 grey 127: not
        np.testing.assert_array_equal(ids, expected)
        assert ids[8, 4 + 2 * t] == 1  # the box's left column is (0, 0, 255): object, though its red is 0


def test_overlapping_objects_keep_the_lower_number_and_never_255(tmp_path: Path) -> None:
    root = segtrack_tree(tmp_path / "SegTrackv2")
    seqs = by_name(root)
    for name in ("cheetah", "bmx"):
        for t in range(3):
            ids = seqs[name].truth.read(t)
            expected = np.zeros(SIZE, np.uint8)
            expected[7:16, 10 + 2 * t : 18 + 2 * t] = 2
            expected[3:12, 4 + 2 * t : 12 + 2 * t] = 1  # rows 8-11, cols 10-11 (+2t): both; object 1 keeps them
            np.testing.assert_array_equal(ids, expected, err_msg=f"{name} frame {t}")
            assert 255 not in ids


def test_object_ids_are_the_subfolder_numbers_in_numeric_order(tmp_path: Path) -> None:
    root = tmp_path / "SegTrackv2"
    write_sequence(root, "penguin", ["penguin_00000", "penguin_00001"], ".png", (".png",) * 10)
    truth = by_name(root)["penguin"].truth
    assert truth.objects == tuple(range(1, 11))  # 10/ after 9/, not after 1/
    assert [p.parent.name for p in truth.annotated[0]] == [str(k) for k in range(1, 11)]
    assert set(np.unique(truth.read(1))) == {0, 1, 2, 3}  # objects 4.. lie under objects 1-3, which keep their pixels


def test_truth_is_picklable(tmp_path: Path) -> None:
    root = segtrack_tree(tmp_path / "SegTrackv2")
    truth = by_name(root)["cheetah"].truth
    copy = pickle.loads(pickle.dumps(truth))
    assert copy == truth
    np.testing.assert_array_equal(copy.read(1), truth.read(1))


def test_without_all_txt_the_sequences_are_the_frame_folders(tmp_path: Path) -> None:
    root = segtrack_tree(tmp_path / "SegTrackv2")
    (root / "ImageSets" / "all.txt").unlink()
    (root / "JPEGImages" / ".thumbnails").mkdir()  # hidden: skipped
    assert [s.name for s in read_segtrackv2(root)["val"]] == ["bmx", "cheetah", "frog"]


def test_frames_without_a_listing_are_in_natural_order(tmp_path: Path) -> None:
    root = tmp_path / "SegTrackv2"
    write_sequence(root, "worm", ["worm_9", "worm_10", "worm_11"], ".png", (".png",))
    (worm,) = read_segtrackv2(root)["val"]
    assert [f.name for f in worm.frames] == ["worm_9", "worm_10", "worm_11"]
    assert worm.truth.annotated[1] == (root / "GroundTruth" / "worm" / "worm_10.png",)


def test_jpg_frames_are_accepted(tmp_path: Path) -> None:
    root = tmp_path / "SegTrackv2"
    write_sequence(root, "girl", ["girl_00000", "girl_00001"], ".jpg", (".bmp",))
    (girl,) = read_segtrackv2(root)["val"]
    assert [f.image.name for f in girl.frames] == ["girl_00000.jpg", "girl_00001.jpg"]


def test_a_sequence_listing_gives_the_frames_and_their_order(tmp_path: Path, caplog) -> None:
    root = segtrack_tree(tmp_path / "SegTrackv2")
    (root / "ImageSets" / "bmx.txt").write_text("bmx/\nbmx_06670\n\nbmx_06668.png\n")  # a listed extension is tolerated
    bmx = by_name(root)["bmx"]
    assert [f.name for f in bmx.frames] == ["bmx_06670", "bmx_06668"]
    assert [p.name for p in bmx.truth.annotated[0]] == ["bmx_06670.png", "bmx_06670.png"]
    assert sorted(bmx.truth.annotated) == [0, 1]
    assert "1 frame(s)" in caplog.text and "not listed" in caplog.text


@pytest.mark.parametrize(
    ("listing", "message"),
    [
        ("bmx/\nbmx_06668\nbmx_07000\n", r"bmx.txt, line 3: no frame 'bmx_07000' in .*JPEGImages/bmx"),
        ("bmx/\nbmx_06668\nbmx_06668\n", r"bmx.txt, line 3: frame 'bmx_06668' is listed twice"),
        ("bmx/\n\n", r"bmx.txt: lists no frames"),
        ("bmx/\nbmx_06669\n", r"JPEGImages/bmx: sequence 'bmx' has 1 frame; at least 2 are needed"),
    ],
)
def test_bad_sequence_listings_are_named(tmp_path: Path, listing: str, message: str) -> None:
    root = segtrack_tree(tmp_path / "SegTrackv2")
    (root / "ImageSets" / "bmx.txt").write_text(listing)
    with pytest.raises(StsegInputError, match=message):
        read_segtrackv2(root)


@pytest.mark.parametrize(
    ("all_txt", "message"),
    [
        ("*frog\n*ghost\n", r"all.txt, line 2: .*JPEGImages/ghost: no frame folder for sequence 'ghost'"),
        ("*frog\n*.hidden\n", r"all.txt, line 2: sequence name '.hidden' starts with a dot"),
        ("*frog\n\n*frog\n", r"all.txt, line 3: sequence 'frog' is listed twice"),
        ("\n\n", r"all.txt: lists no sequences"),
    ],
)
def test_bad_all_txt_lines_are_named(tmp_path: Path, all_txt: str, message: str) -> None:
    root = segtrack_tree(tmp_path / "SegTrackv2")
    (root / "ImageSets" / "all.txt").write_text(all_txt)
    with pytest.raises(StsegInputError, match=message):
        read_segtrackv2(root)


def test_a_root_without_jpegimages_says_what_it_holds(tmp_path: Path) -> None:
    root = segtrack_tree(tmp_path / "SegTrackv2")
    with pytest.raises(StsegInputError, match=r"JPEGImages: no such folder; is .* a SegTrackV2 dataset.*It holds SegTrackv2/$"):
        read_segtrackv2(root.parent)  # one level too high
    shutil.rmtree(root / "JPEGImages")
    with pytest.raises(StsegInputError, match=r"JPEGImages: no such folder; .*It holds GroundTruth/, ImageSets/$"):
        read_segtrackv2(root)
    with pytest.raises(StsegInputError, match=r"nowhere: no such folder"):
        read_segtrackv2(tmp_path / "nowhere")


def test_bad_frame_folders_are_named(tmp_path: Path) -> None:
    root = segtrack_tree(tmp_path / "SegTrackv2")
    for frame in (root / "JPEGImages" / "frog").iterdir():
        frame.unlink()
    (root / "JPEGImages" / "frog" / "notes.txt").write_text("")
    with pytest.raises(StsegInputError, match=r"JPEGImages/frog: no frames \(.png, .bmp, .jpg, .jpeg\)"):
        read_segtrackv2(root)
    (root / "ImageSets" / "all.txt").unlink()
    shutil.rmtree(root / "JPEGImages" / "frog")
    (root / "JPEGImages" / "bad name\x01").mkdir()
    with pytest.raises(StsegInputError, match=r"JPEGImages/bad name.*: sequence name .* holds a control character"):
        read_segtrackv2(root)


def test_a_single_frame_sequence_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "SegTrackv2"
    write_sequence(root, "frog", ["frog_00000"], ".bmp", (".png",))
    with pytest.raises(StsegInputError, match=r"JPEGImages/frog: sequence 'frog' has 1 frame; at least 2 are needed for optical flow"):
        read_segtrackv2(root)


def test_frames_of_one_stem_in_two_extensions_are_ambiguous(tmp_path: Path) -> None:
    root = segtrack_tree(tmp_path / "SegTrackv2")
    shutil.copy(root / "JPEGImages" / "frog" / "frog_00001.bmp", root / "JPEGImages" / "frog" / "frog_00001.png")
    with pytest.raises(StsegInputError, match=r"frog_00001.png: frog_00001.bmp has the same stem"):
        read_segtrackv2(root)


def test_bad_ground_truth_folders_are_named(tmp_path: Path) -> None:
    root = segtrack_tree(tmp_path / "SegTrackv2")
    gt = root / "GroundTruth"
    (gt / "cheetah" / "2").rename(gt / "cheetah" / "two")
    with pytest.raises(StsegInputError, match=r"GroundTruth/cheetah/two: object subfolder not named by a number"):
        read_segtrackv2(root)
    (gt / "cheetah" / "two").rename(gt / "cheetah" / "3")
    with pytest.raises(StsegInputError, match=r"GroundTruth/cheetah: object subfolders 1, 3; expected 1 to 2"):
        read_segtrackv2(root)
    (gt / "cheetah" / "3").rename(gt / "cheetah" / "2")
    shutil.copy(gt / "cheetah" / "2" / "cheetah_00000.png", gt / "cheetah" / "cheetah_00000.png")
    with pytest.raises(StsegInputError, match=r"GroundTruth/cheetah/cheetah_00000.png: mask beside the object subfolders"):
        read_segtrackv2(root)
    shutil.rmtree(gt / "frog")
    with pytest.raises(StsegInputError, match=r"GroundTruth/frog: no ground-truth folder for sequence 'frog'"):
        read_segtrackv2(root)
    (gt / "frog").mkdir()
    with pytest.raises(StsegInputError, match=r"GroundTruth/frog: no masks and no object subfolders"):
        read_segtrackv2(root)


def test_every_frame_needs_a_mask_in_every_object_folder_and_every_mask_a_frame(tmp_path: Path) -> None:
    root = segtrack_tree(tmp_path / "SegTrackv2")
    gt = root / "GroundTruth"
    (gt / "cheetah" / "2" / "cheetah_00001.png").unlink()
    with pytest.raises(StsegInputError, match=r"GroundTruth/cheetah/2: no mask for frame 'cheetah_00001' \(.*cheetah_00001.bmp\)"):
        read_segtrackv2(root)
    Image.fromarray(mask(2, 1)).save(gt / "cheetah" / "2" / "cheetah_00001.png")
    Image.fromarray(mask(1, 1)).save(gt / "frog" / "frog_00099.png")
    with pytest.raises(StsegInputError, match=r"GroundTruth/frog/frog_00099.png: no frame 'frog_00099' in .*JPEGImages/frog"):
        read_segtrackv2(root)


def test_a_mask_of_another_size_is_refused(tmp_path: Path) -> None:
    root = segtrack_tree(tmp_path / "SegTrackv2")
    Image.fromarray(np.zeros((10, 12, 3), np.uint8)).save(root / "GroundTruth" / "cheetah" / "2" / "cheetah_00002.png")
    with pytest.raises(StsegInputError, match=r"cheetah/2/cheetah_00002.png: mask is 12x10 but the frames of 'cheetah' are 32x24"):
        read_segtrackv2(root)


def test_an_unreadable_mask_is_named_when_read(tmp_path: Path) -> None:
    root = segtrack_tree(tmp_path / "SegTrackv2")
    truth = by_name(root)["frog"].truth
    truth.annotated[1][0].write_bytes(b"not an image")
    with pytest.raises(StsegInputError, match=r"frog_00001.png: not a readable image"):
        truth.read(1)


def test_a_davis_root_is_named_as_one(tmp_path: Path) -> None:
    from davistree import davis_tree

    root = davis_tree(tmp_path / "DAVIS", {"val": {"a": 3}})
    with pytest.raises(StsegInputError, match=r"JPEGImages/480p: no frames .*; it holds folders: is .*DAVIS a DAVIS dataset"):
        read_segtrackv2(root)


def test_a_sequence_listing_without_its_path_prefix_line_keeps_its_first_frame(tmp_path: Path) -> None:
    root = segtrack_tree(tmp_path / "SegTrackv2")
    (root / "ImageSets" / "bmx.txt").write_text("bmx_06668\nbmx_06669\nbmx_06670\n")
    bmx = next(s for s in read_segtrackv2(root)["val"] if s.name == "bmx")
    assert [f.name for f in bmx.frames] == ["bmx_06668", "bmx_06669", "bmx_06670"]


def test_a_listing_that_is_not_text_is_named(tmp_path: Path) -> None:
    root = segtrack_tree(tmp_path / "SegTrackv2")
    (root / "ImageSets" / "all.txt").write_bytes(b"*frog\n\xff\xfe\n")
    with pytest.raises(StsegInputError, match=r"ImageSets/all.txt: not a text listing \(byte \d+ is not UTF-8\)"):
        read_segtrackv2(root)
