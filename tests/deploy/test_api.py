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
from stseg_deploy.pipeline import Segmenter
from stseg_deploy.preprocess import resize_labels
from stseg_deploy.settings import InferenceSettings
from stseg_deploy.sources import sequences_from_folders
from stseg_deploy.stages.linker import DEFAULT_LINK
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
    expected = Segmenter(FakeModel(), InferenceSettings.from_options(cut_size=3, tta="none", motion_split="none", link=DEFAULT_LINK)).segment(seq)
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


def test_the_result_gives_the_foreground_saves_and_draws(tmp_path: Path, monkeypatch) -> None:
    model = FakeModel()
    model.path = tmp_path / "m.onnx"
    model.path.write_bytes(b"a model file, for the record's SHA-256")
    monkeypatch.setattr(stseg_deploy.api, "load_model", lambda *a, **k: model)
    from stseg_deploy.io.flowio import write_flow

    names = [f"{t:05d}" for t in range(6)]
    rng = np.random.default_rng(0)
    (tmp_path / "walk").mkdir()
    for t, name in enumerate(names):  # a camera panning, a square moving against it
        flow = np.empty((2, 24, 32), np.float32)
        flow[0], flow[1] = 1.0, 0.0
        flow[:, 8:16, 10 + t : 18 + t] = np.array([-3.0, 2.0], np.float32)[:, None, None]
        write_flow(tmp_path / "walk" / f"{name}.flo", flow + rng.normal(scale=0.02, size=flow.shape).astype(np.float32))
    write_frames(tmp_path / "frames", names, size=(24, 32))
    progress = []
    result = st.segment(tmp_path / "walk", tmp_path / "m.onnx", frames=tmp_path / "frames", cut_size=3,
                        on_frame=lambda done, total: progress.append((done, total)))
    assert progress == [(t + 1, 6) for t in range(6)]
    assert repr(result).startswith("Segmentation('walk': 6 frames 32x24, 7 labels, model ") and len(repr(result)) < 200
    chosen = result.object_labels
    assert chosen.shape == (6, 7) and chosen.dtype == bool
    ids = result.objects
    expected = np.where(chosen[np.arange(6)[:, None, None], result.labels], result.labels + 1, 0)
    np.testing.assert_array_equal(ids, expected)
    np.testing.assert_array_equal(result.foreground, ids > 0)
    # save() writes what stseg-infer writes: the same folder, read back the same.
    from stseg_deploy.io.masks import read_mask_png
    from stseg_deploy.output.layout import FOREGROUND_DIR, read_label_maps, record_objects

    folder = result.save(tmp_path / "out")
    maps, record = read_label_maps(folder)
    np.testing.assert_array_equal(maps, result.labels)
    np.testing.assert_array_equal(record_objects(record), chosen)
    np.testing.assert_array_equal(read_mask_png(folder / FOREGROUND_DIR / "00002.png"), result.foreground[2])
    # The overlay tints the objects and leaves the background as the frame.
    from stseg_deploy.io.videoio import read_image

    drawn = list(result.overlay())
    frame = read_image(tmp_path / "frames" / "00002.png")
    assert len(drawn) == 6 and drawn[2].shape == (24, 32, 3)
    np.testing.assert_array_equal(drawn[2][~result.foreground[2]], frame[~result.foreground[2]])
    assert (drawn[2][result.foreground[2]] != frame[result.foreground[2]]).any()
    assert st.segment(tmp_path / "walk", tmp_path / "m.onnx", foreground="none").foreground is None

