"""Tests for stseg_deploy.pipeline: the Segmenter, with a fake numpy model (no torch needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fakes import FakeModel
from fakes import write_sequence as _write_sequence

from stseg_deploy.errors import StsegInputError
from stseg_deploy.io.flowio import write_flow
from stseg_deploy.outputs import segment_to_folder
from stseg_deploy.pipeline import Segmenter
from stseg_deploy.sources import sequences_from_folders
from stseg_kernels import link_windows, unravel_windows


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


def test_labels_come_from_the_model_unless_probabilities_are_kept(tmp_path: Path) -> None:
    """Without probabilities or features the pipeline asks the model for labels only (the
    in-graph argmax of an export); with them it reduces the probabilities itself. Same maps."""

    class Recording(FakeModel):
        def __init__(self) -> None:
            super().__init__()
            self.asked: list[str] = []

        def run(self, flow, features=False):
            self.asked.append("run")
            return super().run(flow, features)

        def labels(self, flow):
            self.asked.append("labels")
            return super().run(flow).argmax(axis=1).astype(np.uint8)

    _write_sequence(tmp_path / "seq", 9)
    (seq,) = sequences_from_folders([tmp_path / "seq"])
    plain, kept = Recording(), Recording()
    labels = Segmenter(plain, batch_size=4, cut_size=3).segment(seq)
    frames = list(Segmenter(kept, batch_size=4, cut_size=3).linked_frames(seq, keep_proba=True))
    assert plain.asked == ["labels", "labels"] and kept.asked == ["run", "run"]
    np.testing.assert_array_equal(labels, np.stack([f.labels for f in frames]))
    np.testing.assert_array_equal(labels, np.stack([f.proba.argmax(axis=0) for f in frames]))


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


