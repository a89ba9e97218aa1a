"""stseg-eval --davis17: the DAVIS-2017 export (background and paper modes), its folder as one
output unit, its size and cut size."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from evalkit import FRAMES, gt_from_label, read_summary, run_eval
from fakes import FakeModel
from fakes import write_sequence as _write_sequence

from stseg_deploy.cli.eval import eval_main
from stseg_deploy.errors import StsegInputError
from stseg_deploy.eval.evaluation import evaluate
from stseg_deploy.eval.options import EvalOptions
from stseg_deploy.io.masks import read_label_png, write_mask_png
from stseg_deploy.output.folder import segment_to_folder
from stseg_deploy.output.layout import read_sequence_output
from stseg_deploy.pipeline import Segmenter
from stseg_deploy.preprocess import resize_labels
from stseg_deploy.settings import InferenceSettings
from stseg_deploy.sources import sequences_from_folders


def test_datasplit_ground_truth_and_davis17(outputs: Path) -> None:
    gt_dir = gt_from_label(outputs, 0)
    rows = "".join(f"flows/cat/{t:05d}.flo,gt/cat/{t:05d}.png,cat,{t}\n" for t in range(6))
    (outputs / "S_val.csv").write_text("Flow,GtMask,Sequence,Sequence_Index\n" + rows)
    by_split = evaluate(outputs / "out", EvalOptions(data_file=outputs / "S", base_dir=outputs))
    by_dir = evaluate(outputs / "out", EvalOptions(gt_dir=gt_dir))
    assert by_split.overall == by_dir.overall
    result = run_eval(outputs, "--gt-dir", str(gt_dir), "--davis17", str(outputs / "d17"))
    assert result.exit_code == 0, result.output
    written = sorted((outputs / "d17" / "cat").glob("*.png"))
    assert len(written) == 6 and read_label_png(written[0]).shape == (24, 32)


def test_davis17_paper_mode_is_the_originals_export(outputs: Path) -> None:
    """Every label + 1, none made background, and the last map repeated for the video's
    last frame (frame 00006, which has no flow): transcribed from the original's export."""
    gt_dir = gt_from_label(outputs, 0)
    result = run_eval(outputs, "--gt-dir", str(gt_dir), "--davis17", str(outputs / "d17"), "--davis17-mode", "paper")
    assert result.exit_code == 0, result.output
    labels, record = read_sequence_output(outputs / "out" / "cat")
    written = sorted((outputs / "d17" / "cat").glob("*.png"))
    assert [p.stem for p in written] == [f"{t:05d}" for t in range(7)]
    size = tuple(record["original_size"])
    for t, path in enumerate(written):
        expected = resize_labels(labels[min(t, len(labels) - 1)], size).astype(np.int64) + 1
        np.testing.assert_array_equal(read_label_png(path), expected)
    assert json.loads((outputs / "d17" / "davis17.json").read_text())["mode"] == "paper"
    # Without --davis17 the mode would do nothing: refused.
    alone = run_eval(outputs, "--gt-dir", str(gt_dir), "--davis17-mode", "paper")
    assert alone.exit_code == 2 and "--davis17" in alone.output


def test_davis17_export_needs_its_folder_in_the_options(outputs: Path) -> None:
    from stseg_deploy.eval.davis17 import export_davis17

    with pytest.raises(ValueError, match="davis17: no folder to export to"):
        export_davis17(outputs / "out", EvalOptions())
    assert export_davis17(outputs / "out", EvalOptions(davis17=outputs / "d17", davis17_mode="paper")) == 7  # no ground truth needed
    assert json.loads((outputs / "d17" / "davis17.json").read_text())["mode"] == "paper"


def test_davis17_paper_mode_needs_numbered_frames() -> None:
    from stseg_deploy.eval.davis17 import next_frame_name

    assert next_frame_name("00078", "x") == "00079" and next_frame_name("9", "x") == "10"
    with pytest.raises(StsegInputError, match="frame_a"):
        next_frame_name("frame_a", "out/cat")


def test_davis17_target_is_one_output_unit(outputs: Path) -> None:
    gt_dir = gt_from_label(outputs, 0)
    target = outputs / "d17"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    result = run_eval(outputs, "--gt-dir", str(gt_dir), "--davis17", str(target))
    assert result.exit_code == 1 and "did not write (notes.txt)" in result.stderr
    assert sorted(p.name for p in target.iterdir()) == ["notes.txt"]
    assert not (outputs / "out" / "eval.json").exists()  # a failed eval writes no scores
    (target / "notes.txt").unlink()
    for _ in range(2):  # a rerun replaces its own earlier export
        result = run_eval(outputs, "--gt-dir", str(gt_dir), "--davis17", str(target))
        assert result.exit_code == 0, result.output
    marker = json.loads((target / "davis17.json").read_text())
    assert marker["stseg"]["tool"] == "stseg-davis17" and marker["stseg"]["complete"] is True
    assert sorted(marker["stseg"]["files"]) == [f"cat/{f}.png" for f in FRAMES]
    assert [p.name for p in outputs.iterdir() if p.name.startswith(".d17")] == []
    # An export inside OUT is another tool's output: the next eval ignores it.
    inside = run_eval(outputs, "--gt-dir", str(gt_dir), "--davis17", str(outputs / "out" / "d17"))
    assert inside.exit_code == 0, inside.output
    assert run_eval(outputs, "--gt-dir", str(gt_dir)).exit_code == 0
    assert list(read_summary(outputs).index) == ["cat", "overall"]


def test_davis17_at_ground_truth_size_and_same_cut_size(tmp_path: Path) -> None:
    _write_sequence(tmp_path / "flows" / "cat", 6, size=(12, 16))
    seq = sequences_from_folders([tmp_path / "flows" / "cat"])[0]
    segment_to_folder(Segmenter(FakeModel(), InferenceSettings.from_options(cut_size=2)), seq, tmp_path / "out")
    labels, _ = read_sequence_output(tmp_path / "out" / "cat")
    for t in range(6):
        write_mask_png(tmp_path / "gt" / "cat" / f"{t:05d}.png", resize_labels(labels[t], (48, 64)) == 1)
    result = CliRunner().invoke(
        eval_main, [str(tmp_path / "out"), "--gt-dir", str(tmp_path / "gt"), "--resize-gt", "--davis17", str(tmp_path / "d17")]
    )
    assert result.exit_code == 0, result.output
    assert read_label_png(tmp_path / "d17" / "cat" / "00000.png").shape == (48, 64)
    same = evaluate(tmp_path / "out", EvalOptions(gt_dir=tmp_path / "gt", resize_gt=True))
    explicit = evaluate(tmp_path / "out", EvalOptions(gt_dir=tmp_path / "gt", cut_size=2, resize_gt=True))
    pd.testing.assert_frame_equal(same.scores, explicit.scores)


def test_davis17_exports_the_refined_maps_of_a_refined_output(tmp_path: Path) -> None:
    from evalkit import infer_refined

    folder = infer_refined(tmp_path)
    refined = np.stack([read_label_png(folder / f"{f}.png") for f in FRAMES])
    result = run_eval(tmp_path, "--gt-dir", str(gt_refined(tmp_path, refined)), "--davis17", str(tmp_path / "d17"))
    assert result.exit_code == 0, result.output
    exported = np.stack([read_label_png(tmp_path / "d17" / "cat" / f"{f}.png") for f in FRAMES])
    biggest = int(np.argmax(np.bincount(refined.reshape(-1))))
    lut = np.arange(256, dtype=np.uint8)
    lut[0], lut[biggest] = biggest, 0
    np.testing.assert_array_equal(exported, lut[refined])


def gt_refined(root: Path, refined: np.ndarray) -> Path:
    for t, name in enumerate(FRAMES):
        write_mask_png(root / "gt" / "cat" / f"{name}.png", refined[t] == 1)
    return root / "gt"
