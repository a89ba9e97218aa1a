"""Tests for the three-line API (stseg_deploy.api, exported lazily by stseg_deploy)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fakes import FakeModel, write_frames
from fakes import write_sequence as _write_sequence

import stseg_deploy as st
import stseg_deploy.api
from stseg_deploy.linker import DEFAULT_LINK
from stseg_deploy.pipeline import Segmenter
from stseg_deploy.preprocess import resize_labels
from stseg_deploy.sources import sequences_from_folders
from stseg_deploy.zoo import DEFAULT_MODEL


def test_importing_the_package_loads_no_runtime_until_asked() -> None:
    code = (
        "import sys, stseg_deploy as st\n"
        "assert 'onnxruntime' not in sys.modules and 'stseg_deploy.pipeline' not in sys.modules\n"
        "assert callable(st.segment) and callable(st.list_models) and st.Segmenter.__name__ == 'Segmenter'\n"
        "assert 'stseg_deploy.pipeline' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_segment_a_flow_folder_as_stseg_infer_would(tmp_path: Path, monkeypatch) -> None:
    model = FakeModel()
    model.path = tmp_path / "m.onnx"
    monkeypatch.setattr(stseg_deploy.api, "load_model", lambda *a, **k: model)
    _write_sequence(tmp_path / "walk", 6, size=(25, 33))
    result = st.segment(tmp_path / "walk", tmp_path / "m.onnx", save_proba=True, tta="none", motion_split="none", cut_size=3)
    assert result.name == "walk" and result.frame_names == [f"{t:05d}" for t in range(6)]
    assert result.model == str(tmp_path / "m.onnx") and result.n_labels == 3
    (seq,) = sequences_from_folders([tmp_path / "walk"])
    expected = Segmenter(FakeModel(), cut_size=3, tta="none", split="none", link=DEFAULT_LINK).segment(seq)
    assert result.labels.shape == (6, 25, 33) and result.labels.dtype == np.uint8  # the frames' size
    np.testing.assert_array_equal(result.labels, np.stack([resize_labels(f, (25, 33)) for f in expected]))
    assert result.proba.shape == (6, 3, 12, 16)
    np.testing.assert_array_equal(result.proba.argmax(axis=1), expected)
    assert st.segment(tmp_path / "walk", tmp_path / "m.onnx", tta="none").proba is None


def test_segment_a_frame_folder_with_the_bundled_default(tmp_path: Path) -> None:
    write_frames(tmp_path / "clip", [f"{t:05d}" for t in range(5)], size=(48, 64))
    result = st.segment(tmp_path / "clip", flow_method="dis", threads=1)
    assert result.model == DEFAULT_MODEL and result.labels.shape == (4, 48, 64)
    assert result.labels.max() < result.n_labels and result.stats.n_frames == 4


def test_list_models_names_the_default() -> None:
    models = st.list_models()
    assert DEFAULT_MODEL in models and models[DEFAULT_MODEL].startswith("(default) ")
    assert "J_objects" in models[DEFAULT_MODEL]


def test_frames_of_a_flow_folder_guide_the_refinement(tmp_path: Path, monkeypatch) -> None:
    model = FakeModel()
    monkeypatch.setattr(stseg_deploy.api, "load_model", lambda *a, **k: model)
    _write_sequence(tmp_path / "walk", 6, size=(24, 30))
    write_frames(tmp_path / "frames", [f"{t:05d}" for t in range(6)], size=(48, 60))
    plain = st.segment(tmp_path / "walk", "m.onnx", tta="none", motion_split="none")
    refined = st.segment(tmp_path / "walk", "m.onnx", tta="none", motion_split="none", frames=tmp_path / "frames", guided_radius=32)
    assert plain.labels.shape == (6, 24, 30) and refined.labels.shape == (6, 48, 60)  # at the frames' size
    assert st.segment(tmp_path / "walk", "m.onnx", motion_split_extra=2, tta="none").n_labels == 3 + 2
    with pytest.raises(FileNotFoundError, match="no frame for flow"):
        st.segment(tmp_path / "walk", "m.onnx", frames=tmp_path / "walk")
