"""The streaming pipeline and its outputs, with a fake numpy model (no torch needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from fakes import FakeModel
from fakes import write_sequence as _write_sequence
from PIL import Image

from stseg_deploy.errors import StsegInputError
from stseg_deploy.io.flowio import write_flow
from stseg_deploy.linker import StreamLinker, rename_proba
from stseg_deploy.outputs import read_sequence_output, segment_to_folder
from stseg_deploy.preprocess import resize_labels
from stseg_deploy.pipeline import Segmenter
from stseg_deploy.sources import sequences_from_datasplit, sequences_from_folders
from stseg_kernels import link_windows, unravel_windows


@settings(max_examples=80, deadline=None)
@given(
    n_win=st.integers(1, 14),
    n_labels=st.integers(2, 5),
    cut=st.one_of(st.none(), st.integers(1, 6)),
    batch=st.integers(1, 5),
    method=st.sampled_from(["naive", "optimal"]),
    seed=st.integers(0, 2**31),
)
def test_stream_linking_equals_whole_array(n_win, n_labels, cut, batch, method, seed) -> None:
    rng = np.random.default_rng(seed)
    proba = rng.random((n_win, n_labels, 3, 4, 5)).astype(np.float32)
    proba /= proba.sum(axis=1, keepdims=True)
    labels = proba.argmax(axis=1).astype(np.uint8)  # as the pipeline makes them
    expected = unravel_windows(link_windows(labels, n_labels, cut, method))
    linker = StreamLinker(n_labels, n_win, cut, method)
    frames = []
    for start in range(0, n_win, batch):
        frames.extend(linker.push(labels[start : start + batch], proba[start : start + batch]))
    assert [f.index for f in frames] == list(range(n_win + 2))
    np.testing.assert_array_equal(np.stack([f.labels for f in frames]), expected)
    for f in frames:
        # The saved probabilities agree with the saved labels, merged or not.
        np.testing.assert_array_equal(f.proba.argmax(axis=0), f.labels)
        if method == "optimal":  # one-to-one: a permutation keeps the sum
            np.testing.assert_allclose(f.proba.sum(axis=0), 1.0, rtol=1e-5)


def test_rename_proba_merges_labels() -> None:
    proba = np.array([[0.5], [0.3], [0.2]], dtype=np.float32)
    np.testing.assert_allclose(rename_proba(proba, np.array([2, 2, 0])), [[0.2], [0.0], [0.5]])


def test_merged_small_labels_do_not_outvote_the_winner() -> None:
    # Label 0 wins the pixel; 2 and 3 merge into 2. Summing them (0.6) would make the
    # saved probabilities' argmax 2 where labels.npy says 0.
    proba = np.array([[0.4], [0.0], [0.3], [0.3]], dtype=np.float32)
    mapping = np.array([0, 1, 2, 2])
    renamed = rename_proba(proba, mapping)
    assert renamed.argmax(axis=0)[0] == mapping[proba.argmax(axis=0)[0]] == 0
    np.testing.assert_allclose(renamed[:, 0], [0.4, 0.0, 0.3, 0.0])


def test_segmenter_matches_batch_reference(tmp_path: Path) -> None:
    paths = _write_sequence(tmp_path / "seq", 9)
    model = FakeModel()
    seq = sequences_from_folders([tmp_path / "seq"])[0]
    labels = Segmenter(model, batch_size=4, cut_size=3).segment(seq)
    assert model.calls == [4, 3]  # 7 windows, streamed in batches
    # Reference: all windows at once through the kernels.
    from stseg_deploy.io.flowio import read_flow
    from stseg_deploy.preprocess import flow_windows, resize_flow

    flows = np.stack([resize_flow(read_flow(p), (12, 16)) for p in paths])
    windows = flow_windows(flows)
    argmax = FakeModel().run(windows).argmax(axis=1).astype(np.uint8)
    np.testing.assert_array_equal(labels, unravel_windows(link_windows(argmax, 3, 3)))


@pytest.mark.parametrize("mode", ["antialias", "plain"])
def test_segmenter_resizes_flow_as_the_model_was_trained(tmp_path: Path, mode: str) -> None:
    paths = _write_sequence(tmp_path / "seq", 4, size=(25, 33))
    model = FakeModel(resize=mode)
    seq = sequences_from_folders([tmp_path / "seq"])[0]
    Segmenter(model, batch_size=8, cut_size=None).segment(seq)
    from stseg_deploy.io.flowio import read_flow
    from stseg_deploy.preprocess import flow_windows, resize_flow

    expected = flow_windows(np.stack([resize_flow(read_flow(p), (12, 16), mode) for p in paths]))
    np.testing.assert_allclose(model.inputs[0], expected, rtol=1e-6, atol=1e-6)
    other = "plain" if mode == "antialias" else "antialias"
    wrong = flow_windows(np.stack([resize_flow(read_flow(p), (12, 16), other) for p in paths]))
    assert not np.allclose(model.inputs[0], wrong, atol=1e-3)


def test_segment_to_folder_writes_outputs(tmp_path: Path) -> None:
    _write_sequence(tmp_path / "flows" / "walk", 5, size=(25, 33))
    seq = sequences_from_folders([tmp_path / "flows" / "walk"])[0]
    segmenter = Segmenter(FakeModel(), batch_size=2, cut_size=None)
    stats = segment_to_folder(segmenter, seq, tmp_path / "out", save_proba=True, save_features=True)
    out = tmp_path / "out" / "walk"
    labels, record = read_sequence_output(out)
    assert labels.shape == (5, 12, 16) and labels.dtype == np.uint8
    assert record["frames"] == ["00000", "00001", "00002", "00003", "00004"]
    assert record["original_size"] == [25, 33] and stats.frames == 5
    with Image.open(out / "00003.png") as image:
        assert image.mode == "P" and image.size == (33, 25)
        np.testing.assert_array_equal(np.asarray(image), resize_labels(labels[3], (25, 33)))
    proba = np.load(out / "proba" / "00003.npy")
    assert proba.shape == (3, 12, 16)
    np.testing.assert_array_equal(proba.argmax(axis=0), labels[3])
    assert np.load(out / "features" / "00000.npy").dtype == np.float16
    assert not list(out.glob(".*"))  # no temporary files left


def test_bad_sequences(tmp_path: Path) -> None:
    _write_sequence(tmp_path / "short", 2)
    seq = sequences_from_folders([tmp_path / "short"])[0]
    with pytest.raises(StsegInputError, match="'short': 2 flow frame"):
        Segmenter(FakeModel()).segment(seq)
    paths = _write_sequence(tmp_path / "mixed", 4)
    write_flow(paths[2], np.zeros((2, 10, 10), np.float32))
    seq = sequences_from_folders([tmp_path / "mixed"])[0]
    with pytest.raises(StsegInputError, match="00002.flo: flow size 10x10 differs"):
        segment_to_folder(Segmenter(FakeModel()), seq, tmp_path / "out")
    assert not (tmp_path / "out" / "mixed").exists()  # nothing half-written is left


def test_outputs_follow_the_frames_size_when_flow_was_computed_smaller(tmp_path: Path) -> None:
    """Flow at half the frames' size (stseg-prepare --flow-scale 0.5) still gives masks on the
    frames' grid, where their ground truth lies; without an Image column, the flows' grid."""
    _write_sequence(tmp_path / "Flows" / "a", 5, size=(20, 30))
    (tmp_path / "img").mkdir()
    Image.fromarray(np.zeros((40, 60, 3), np.uint8)).save(tmp_path / "img" / "00000.jpg")
    rows = "".join(f"Flows/a/{t:05d}.flo,,img/00000.jpg,a,{t}\n" for t in range(5))
    (tmp_path / "S_val.csv").write_text("Flow,GtMask,Image,Sequence,Sequence_Index\n" + rows)
    (seq,) = sequences_from_datasplit(tmp_path / "S", "val", tmp_path)
    assert seq.frame_size == (40, 60)
    segment_to_folder(Segmenter(FakeModel(), batch_size=2), seq, tmp_path / "out")
    labels, record = read_sequence_output(tmp_path / "out" / "a")
    assert record["original_size"] == [40, 60]
    with Image.open(tmp_path / "out" / "a" / "00002.png") as image:
        assert image.size == (60, 40)
        # Nearest-neighbour upsampling of the model-size labels: every value is one of theirs.
        assert set(np.unique(np.asarray(image))) <= set(np.unique(labels[2]))
    (tmp_path / "T_val.csv").write_text("Flow,GtMask,Sequence,Sequence_Index\n" + "".join(f"Flows/a/{t:05d}.flo,,a,{t}\n" for t in range(5)))
    assert sequences_from_datasplit(tmp_path / "T", "val", tmp_path)[0].frame_size is None
    (tmp_path / "img" / "00000.jpg").unlink()
    with pytest.raises(FileNotFoundError, match="00000.jpg: Image of sequence 'a' not found"):
        sequences_from_datasplit(tmp_path / "S", "val", tmp_path)


def test_video_flow_recipe_can_be_replaced_after_opening(tmp_path: Path) -> None:
    """stseg-infer opens videos first (bad inputs are named before the model is loaded), then
    gives them the flow the model was trained on."""
    from stseg_deploy.sources import open_video_sequence, with_flow

    (tmp_path / "clip").mkdir()
    for t in range(4):
        Image.fromarray(np.full((300, 400, 3), 40 * t, np.uint8)).save(tmp_path / "clip" / f"{t:05d}.png")
    seq = open_video_sequence(tmp_path / "clip")
    assert (seq.method, seq.size, seq.frame_size, seq.n_frames) == ("deepflow", (240, 320), (300, 400), 3)
    other = with_flow(seq, "dis", scale=0.5)
    assert (other.method, other.size, other.n_frames, other.name) == ("dis", (150, 200), 3, "clip")
    assert with_flow(seq, "farneback", scale=1).size is None
    with pytest.raises(ValueError, match="unknown optical-flow method"):
        with_flow(seq, "raft")


def test_datasplit_source_names_missing_flow(tmp_path: Path) -> None:
    _write_sequence(tmp_path / "Flows" / "a", 3)
    (tmp_path / "S_val.csv").write_text(
        "Flow,GtMask,Sequence,Sequence_Index\n"
        + "".join(f"Flows/a/{t:05d}.flo,,a,{t}\n" for t in range(4))
    )
    with pytest.raises(FileNotFoundError, match="00003.flo: flow file of sequence 'a' not found"):
        sequences_from_datasplit(tmp_path / "S", "val", tmp_path)


def test_rerun_replaces_the_previous_output(tmp_path: Path) -> None:
    _write_sequence(tmp_path / "flows" / "walk", 6)
    seq = sequences_from_folders([tmp_path / "flows" / "walk"])[0]
    segment_to_folder(Segmenter(FakeModel()), seq, tmp_path / "out", save_proba=True)
    # A shorter sequence of the same name, then a failing one: nothing of the first stays.
    (tmp_path / "flows" / "walk" / "00005.flo").unlink()
    (tmp_path / "flows" / "walk" / "00004.flo").unlink()
    seq = sequences_from_folders([tmp_path / "flows" / "walk"])[0]
    segment_to_folder(Segmenter(FakeModel()), seq, tmp_path / "out")
    out = tmp_path / "out" / "walk"
    assert sorted(p.name for p in out.glob("*.png")) == ["00000.png", "00001.png", "00002.png", "00003.png"]
    assert not (out / "proba").exists()
    (tmp_path / "flows" / "walk" / "00003.flo").write_bytes(b"PIEH broken")
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with pytest.raises(Exception, match="00003.flo"):
        segment_to_folder(Segmenter(FakeModel()), sequences_from_folders([tmp_path / "flows" / "walk"])[0], tmp_path / "out")
    # The failed rerun leaves the earlier good output exactly as it was, and no temp folder.
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["walk"]


def test_parent_of_sequence_folders_gets_a_hint(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from stseg_deploy.cli import infer_main

    for name in ("bear", "cat"):
        _write_sequence(tmp_path / "flows" / name, 3)
    result = CliRunner().invoke(infer_main, ["--model", "m.onnx", str(tmp_path / "flows"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert "holds no flow files or frames, but 2 folder(s) (bear, cat)" in result.output
