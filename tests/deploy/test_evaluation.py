"""stseg-eval: mask selection, Jaccard at ground-truth resolution, files and errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from fakes import FakeModel
from fakes import write_sequence as _write_sequence

from stseg_deploy.cli import eval_main
from stseg_deploy.errors import StsegInputError
from stseg_deploy.evaluation import evaluate
from stseg_deploy.masks import read_label_png, write_mask_png
from stseg_deploy.outputs import read_sequence_output, segment_to_folder
from stseg_deploy.pipeline import Segmenter
from stseg_deploy.preprocess import resize_labels
from stseg_deploy.sources import sequences_from_folders

GT_SIZE = (24, 32)  # a multiple of the model size, so nearest resizing is exact


@pytest.fixture
def outputs(tmp_path: Path) -> Path:
    _write_sequence(tmp_path / "flows" / "cat", 6, size=GT_SIZE)
    seq = sequences_from_folders([tmp_path / "flows" / "cat"])[0]
    segment_to_folder(Segmenter(FakeModel(), cut_size=2), seq, tmp_path / "out")
    return tmp_path


def _gt_from_label(root: Path, label: int, skip: tuple[int, ...] = ()) -> Path:
    labels, record = read_sequence_output(root / "out" / "cat")
    for t, name in enumerate(record["frames"]):
        if t not in skip:
            write_mask_png(root / "gt" / "cat" / f"{name}.png", resize_labels(labels[t], GT_SIZE) == label)
    return root / "gt"


def test_gt_equal_to_a_segment_scores_one(outputs: Path) -> None:
    labels, _ = read_sequence_output(outputs / "out" / "cat")
    label = int(np.bincount(labels.ravel()).argmax())
    gt_dir = _gt_from_label(outputs, label, skip=(4,))
    scores, summary, overall = evaluate(outputs / "out", gt_dir=gt_dir, cut_size=2)
    assert list(scores["frame"]) == ["00000", "00001", "00002", "00003", "00005"]
    np.testing.assert_allclose(scores["jaccard"], 1.0)
    assert overall == 1.0 and summary.loc[0, "frames"] == 5
    _, _, fair = evaluate(outputs / "out", gt_dir=gt_dir, binary="fair")
    assert fair == 1.0


def test_exceptbiggest_and_cli_files(outputs: Path) -> None:
    labels, _ = read_sequence_output(outputs / "out" / "cat")
    biggest = np.array([np.bincount(f.ravel(), minlength=3).argmax() for f in labels])
    for t, name in enumerate(["00000", "00001", "00002", "00003", "00004", "00005"]):
        write_mask_png(outputs / "gt" / "cat" / f"{name}.png", resize_labels(labels[t], GT_SIZE) != biggest[t])
    result = CliRunner().invoke(eval_main, [str(outputs / "out"), "--gt-dir", str(outputs / "gt"), "--binary", "exceptbiggest"])
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1] == "J=1.000"
    summary = pd.read_csv(outputs / "out" / "summary.csv")
    assert list(summary["sequence"]) == ["cat", "overall"]
    assert len(pd.read_csv(outputs / "out" / "scores.csv")) == 6


def test_datasplit_ground_truth_and_davis17(outputs: Path) -> None:
    gt_dir = _gt_from_label(outputs, 0)
    rows = "".join(f"flows/cat/{t:05d}.flo,gt/cat/{t:05d}.png,cat,{t}\n" for t in range(6))
    (outputs / "S_val.csv").write_text("Flow,GtMask,Sequence,Sequence_Index\n" + rows)
    by_split = evaluate(outputs / "out", data_file=outputs / "S", base_dir=outputs)
    by_dir = evaluate(outputs / "out", gt_dir=gt_dir)
    assert by_split[2] == by_dir[2]
    result = CliRunner().invoke(
        eval_main, [str(outputs / "out"), "--gt-dir", str(gt_dir), "--davis17", str(outputs / "d17")]
    )
    assert result.exit_code == 0, result.output
    written = sorted((outputs / "d17" / "cat").glob("*.png"))
    assert len(written) == 6 and read_label_png(written[0]).shape == (24, 32)


def test_mismatched_ground_truth(outputs: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nothing: ground-truth folder not found"):
        evaluate(outputs / "out", gt_dir=outputs / "nothing")
    (outputs / "gt").mkdir()
    with pytest.raises(StsegInputError, match="no sequence could be scored: cat .*no ground-truth folder for sequence 'cat'"):
        evaluate(outputs / "out", gt_dir=outputs / "gt")
    (outputs / "gt" / "cat").mkdir(parents=True)
    write_mask_png(outputs / "gt" / "cat" / "frame_999.png", np.zeros(GT_SIZE, bool))
    with pytest.raises(StsegInputError, match="no ground-truth mask matches any of its 6 frames"):
        evaluate(outputs / "out", gt_dir=outputs / "gt")
    write_mask_png(outputs / "gt" / "cat" / "00000.png", np.zeros(GT_SIZE, bool))
    write_mask_png(outputs / "gt" / "cat" / "00001.png", np.zeros((5, 5), bool))
    with pytest.raises(StsegInputError, match=r"00001.png: mask size \(5, 5\) differs"):
        evaluate(outputs / "out", gt_dir=outputs / "gt")
    result = CliRunner().invoke(eval_main, [str(outputs / "nowhere"), "--gt-dir", str(outputs / "gt")])
    assert result.exit_code != 0 and "nowhere: output folder not found" in result.output


def test_davis17_at_ground_truth_size_and_same_cut_size(tmp_path: Path) -> None:
    _write_sequence(tmp_path / "flows" / "cat", 6, size=(12, 16))
    seq = sequences_from_folders([tmp_path / "flows" / "cat"])[0]
    segment_to_folder(Segmenter(FakeModel(), cut_size=2), seq, tmp_path / "out")
    labels, _ = read_sequence_output(tmp_path / "out" / "cat")
    for t in range(6):
        write_mask_png(tmp_path / "gt" / "cat" / f"{t:05d}.png", resize_labels(labels[t], (48, 64)) == 1)
    result = CliRunner().invoke(
        eval_main, [str(tmp_path / "out"), "--gt-dir", str(tmp_path / "gt"), "--davis17", str(tmp_path / "d17")]
    )
    assert result.exit_code == 0, result.output
    assert read_label_png(tmp_path / "d17" / "cat" / "00000.png").shape == (48, 64)
    same = evaluate(tmp_path / "out", gt_dir=tmp_path / "gt")
    explicit = evaluate(tmp_path / "out", gt_dir=tmp_path / "gt", cut_size=2)
    pd.testing.assert_frame_equal(same[0], explicit[0])


def test_a_sequence_without_ground_truth_is_skipped(outputs: Path, caplog) -> None:
    _write_sequence(outputs / "flows" / "dog", 4, size=GT_SIZE, seed=3)
    segment_to_folder(Segmenter(FakeModel()), sequences_from_folders([outputs / "flows" / "dog"])[0], outputs / "out")
    gt_dir = _gt_from_label(outputs, 0)
    with caplog.at_level("WARNING"):
        scores, summary, _ = evaluate(outputs / "out", gt_dir=gt_dir)
    assert list(summary["sequence"]) == ["cat"]
    assert "scored without 1 sequence(s): dog" in caplog.text
