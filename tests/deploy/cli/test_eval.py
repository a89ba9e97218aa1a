"""The stseg-eval command line: mask selection, Jaccard at ground-truth resolution, files and errors.

Also that stseg-eval states exactly what it scored: every sequence folder is scored or named
as skipped, frames without ground truth are counted, mixed models and ground truth of
another size are refused, and its files in OUT follow the output-safety rule.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from evalkit import FRAMES, GT_SIZE, eval_marker, gt_from_label, infer, object_gt, read_summary, run_eval
from fakes import FakeModel

from stseg_deploy.cli.eval import eval_main
from stseg_deploy.errors import StsegInputError
from stseg_deploy.eval.evaluation import evaluate
from stseg_deploy.eval.options import EvalOptions
from stseg_deploy.io.masks import davis_palette, read_label_png, write_mask_png
from stseg_deploy.output.layout import read_sequence_output
from stseg_deploy.preprocess import resize_labels


def test_exceptbiggest_and_cli_files(outputs: Path) -> None:
    labels, _ = read_sequence_output(outputs / "out" / "cat")
    biggest = np.array([np.bincount(f.ravel(), minlength=3).argmax() for f in labels])
    for t, name in enumerate(FRAMES):
        write_mask_png(outputs / "gt" / "cat" / f"{name}.png", resize_labels(labels[t], GT_SIZE) != biggest[t])
    result = run_eval(outputs, "--gt-dir", str(outputs / "gt"), "--binary", "exceptbiggest")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines()[-1] == "J=1.000"
    summary = pd.read_csv(outputs / "out" / "summary.csv")
    assert list(summary["sequence"]) == ["cat", "overall"]
    assert len(pd.read_csv(outputs / "out" / "scores.csv")) == 6


def test_frames_without_ground_truth_are_counted_and_do_not_fail(outputs: Path) -> None:
    gt_dir = gt_from_label(outputs, 0, skip=(1, 4))
    result = run_eval(outputs, "--gt-dir", str(gt_dir))
    assert result.exit_code == 0, result.output  # sparse annotation is normal
    assert "2 frame(s) without ground truth" in result.stdout
    scores = pd.read_csv(outputs / "out" / "scores.csv", dtype={"frame": str})
    assert list(scores.columns) == ["sequence", "frame", "has_gt", "jaccard"]
    assert list(scores["frame"]) == FRAMES  # one row per output frame
    assert list(scores["has_gt"]) == [True, False, True, True, False, True]
    assert scores["jaccard"].isna().tolist() == [False, True, False, False, True, False]
    summary = read_summary(outputs)
    assert list(summary.columns) == ["status", "frames", "frames_without_gt", "jaccard_mean", "reason"]
    assert summary.loc["cat", "status"] == "scored" and summary.loc["cat", "frames"] == 4
    assert summary.loc["cat", "frames_without_gt"] == 2
    assert summary.loc["overall", "frames_without_gt"] == 2


def test_every_sequence_folder_is_scored_or_named(outputs: Path) -> None:
    gt_dir = gt_from_label(outputs, 0)
    out = outputs / "out"
    (out / "notes").mkdir()
    (out / "notes" / "readme.txt").write_text("mine")
    # An output whose sequence.json lacks the completeness marker (an older or cut run).
    shutil.copytree(out / "cat", out / "old")
    record = json.loads((out / "old" / "sequence.json").read_text())
    del record["stseg"]
    (out / "old" / "sequence.json").write_text(json.dumps(record))
    # A killed stseg-infer: dog never completed; cat has a complete output and a leftover.
    (out / ".dog.stseg-tmp.elsewhere.4242").mkdir()
    (out / ".dog.stseg-tmp.elsewhere.4242" / "labels.npy").write_bytes(b"\x93NUMPY")
    (out / ".cat.stseg-tmp.elsewhere.4243").mkdir()
    # Another stseg tool's output inside OUT is ignored without complaint.
    (out / "d17").mkdir()
    (out / "d17" / "davis17.json").write_text(json.dumps({"stseg": {"tool": "stseg-davis17", "complete": True, "files": []}}))
    result = run_eval(outputs, "--gt-dir", str(gt_dir))
    assert result.exit_code == 1, result.output
    assert "3 of 4 sequence(s) could not be scored" in result.stderr
    assert ".cat.stseg-tmp.elsewhere.4243" in result.stderr  # the leftover is mentioned
    assert result.stdout.strip().splitlines()[-1] == "J=1.000"
    summary = read_summary(outputs)
    assert list(summary.index) == ["cat", "dog", "notes", "old", "overall"]
    assert list(summary["status"]) == ["scored", "skipped", "skipped", "skipped", "partial"]
    assert summary.loc["dog", "reason"] == "interrupted run, no complete output"
    for name in ("notes", "old"):
        assert summary.loc[name, "reason"] == "not a complete stseg-infer output (no marked sequence.json)"
        assert name in result.stdout
    assert summary.loc["overall", "reason"] == "1 sequence(s) scored, 3 skipped"
    partial = run_eval(outputs, "--gt-dir", str(gt_dir), "--allow-partial")
    assert partial.exit_code == 0, partial.output
    assert list(read_summary(outputs).index) == ["cat", "dog", "notes", "old", "overall"]


def test_missing_ground_truth_or_a_corrupt_mask_fail_the_run(outputs: Path) -> None:
    infer(outputs, "dog", 4, seed=3)
    infer(outputs, "fish", 4, seed=5)
    gt_dir = gt_from_label(outputs, 0)
    gt_from_label(outputs, 0, sequence="fish")
    (gt_dir / "fish" / "00002.png").write_bytes(b"not a png")
    result = run_eval(outputs, "--gt-dir", str(gt_dir))
    assert result.exit_code == 1, result.output
    assert "2 of 3 sequence(s) could not be scored" in result.stderr
    summary = read_summary(outputs)
    assert list(summary["status"]) == ["scored", "skipped", "skipped", "partial"]
    assert summary.loc["dog", "reason"].startswith(f"{gt_dir / 'dog'}: no ground truth")
    assert summary.loc["fish", "reason"].startswith(f"{gt_dir / 'fish' / '00002.png'}: not a readable image")
    assert f"{gt_dir / 'fish' / '00002.png'}: not a readable image" in result.stdout
    assert eval_marker(outputs)["stseg"]["complete"] is True  # the files say what was scored
    allowed = run_eval(outputs, "--gt-dir", str(gt_dir), "--allow-partial")
    assert allowed.exit_code == 0 and allowed.stdout.strip().splitlines()[-1] == "J=1.000"
    assert "2 of 3 sequence(s) skipped" in allowed.stderr


def test_datasplit_names_sequences_not_inferred_and_missing_masks(outputs: Path) -> None:
    infer(outputs, "fish", 4, seed=5)
    gt_from_label(outputs, 0)
    gt_from_label(outputs, 0, sequence="fish")
    (outputs / "gt" / "fish" / "00002.png").unlink()
    rows = [f"flows/cat/{t:05d}.flo,{'' if t == 5 else f'gt/cat/{t:05d}.png'},cat,{t}" for t in range(6)]
    rows += [f"flows/dog/{t:05d}.flo,gt/dog/{t:05d}.png,dog,{t}" for t in range(3)]
    rows += [f"flows/fish/{t:05d}.flo,gt/fish/{t:05d}.png,fish,{t}" for t in range(4)]
    (outputs / "S_val.csv").write_text("Flow,GtMask,Sequence,Sequence_Index\n" + "\n".join(rows) + "\n")
    args = ["--data-file", str(outputs / "S"), "--base-dir", str(outputs)]
    result = run_eval(outputs, *args)
    assert result.exit_code == 1 and "2 of 3 sequence(s) could not be scored" in result.stderr
    summary = read_summary(outputs)
    assert summary.loc["cat", "frames"] == 5 and summary.loc["cat", "frames_without_gt"] == 1
    assert summary.loc["dog", "status"] == "skipped" and summary.loc["dog", "reason"].startswith("not inferred")
    assert summary.loc["fish", "reason"].startswith(f"{outputs / 'gt' / 'fish' / '00002.png'}: ground-truth mask listed")
    assert len(pd.read_csv(outputs / "out" / "scores.csv")) == 6
    assert run_eval(outputs, *args, "--allow-partial").exit_code == 0


def test_outputs_of_different_models_are_refused(tmp_path: Path) -> None:
    infer(tmp_path, "cat", sha="a" * 64)
    infer(tmp_path, "dog", 4, seed=3, sha="b" * 64)
    gt_dir = gt_from_label(tmp_path, 0)
    gt_from_label(tmp_path, 0, sequence="dog")
    result = run_eval(tmp_path, "--gt-dir", str(gt_dir))
    assert result.exit_code == 1
    assert "aaaaaaaaaaaa (cat)" in result.stderr and "bbbbbbbbbbbb (dog)" in result.stderr
    shutil.rmtree(tmp_path / "out" / "dog")
    infer(tmp_path, "dog", 4, seed=3, sha="a" * 64, model=FakeModel(n_labels=4))
    with pytest.raises(StsegInputError, match=r"n_labels.*3 \(cat\).*4 \(dog\)"):
        evaluate(tmp_path / "out", EvalOptions(gt_dir=gt_dir))


def test_ground_truth_of_another_size_is_an_error_unless_resize_gt(outputs: Path) -> None:
    labels, _ = read_sequence_output(outputs / "out" / "cat")
    label = int(np.bincount(labels.ravel()).argmax())
    gt_dir = gt_from_label(outputs, label, size=(48, 64))
    result = run_eval(outputs, "--gt-dir", str(gt_dir))
    assert result.exit_code == 1
    reason = read_summary(outputs).loc["cat", "reason"]
    assert reason.startswith(f"{gt_dir / 'cat' / '00000.png'}: ground truth is 48x64")
    assert "original size is 24x32" in reason and "--resize-gt" in reason
    resized = run_eval(outputs, "--gt-dir", str(gt_dir), "--resize-gt", "--cut-size", "2")
    assert resized.exit_code == 0, resized.output
    assert resized.stdout.strip().splitlines()[-1] == "J=1.000"
    # The DAVIS export checks sizes the same way; with --resize-gt it matches the annotations.
    export = run_eval(outputs, "--gt-dir", str(gt_dir), "--davis17", str(outputs / "d17"))
    assert export.exit_code == 1 and "ground truth is 48x64" in export.stdout  # its reason; no scores written over the complete ones
    assert not (outputs / "d17").exists()
    export = run_eval(outputs, "--gt-dir", str(gt_dir), "--resize-gt", "--davis17", str(outputs / "d17"))
    assert export.exit_code == 0, export.output
    assert read_label_png(outputs / "d17" / "cat" / "00000.png").shape == (48, 64)


def test_mismatched_ground_truth(outputs: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nothing: ground-truth folder not found"):
        evaluate(outputs / "out", EvalOptions(gt_dir=outputs / "nothing"))
    (outputs / "gt").mkdir()
    result = evaluate(outputs / "out", EvalOptions(gt_dir=outputs / "gt"))
    assert np.isnan(result.overall) and result.summary["status"].tolist() == ["skipped"]
    assert "no ground truth for sequence 'cat'" in result.skipped[0].reason
    (outputs / "gt" / "cat").mkdir(parents=True)
    write_mask_png(outputs / "gt" / "cat" / "frame_999.png", np.zeros(GT_SIZE, bool))
    assert "no ground-truth mask matches any of its 6 frames" in evaluate(outputs / "out", EvalOptions(gt_dir=outputs / "gt")).skipped[0].reason
    write_mask_png(outputs / "gt" / "cat" / "00000.png", np.zeros(GT_SIZE, bool))
    write_mask_png(outputs / "gt" / "cat" / "00001.png", np.zeros((5, 5), bool))
    reason = evaluate(outputs / "out", EvalOptions(gt_dir=outputs / "gt")).skipped[0].reason
    assert reason.startswith(f"{outputs / 'gt' / 'cat' / '00001.png'}: ground truth is 5x5")
    # Nothing scored: the run fails even with --allow-partial, and says so.
    result = run_eval(outputs, "--gt-dir", str(outputs / "gt"), "--allow-partial")
    assert result.exit_code == 1 and "no sequence could be scored" in result.stderr
    assert read_summary(outputs).loc["cat", "status"] == "skipped"
    result = CliRunner().invoke(eval_main, [str(outputs / "nowhere"), "--gt-dir", str(outputs / "gt")])
    assert result.exit_code != 0 and "nowhere: output folder not found" in result.output


# -- the files stseg-eval writes into OUT ---------------------------------------------------


def test_outputs_are_refused_as_ground_truth(outputs: Path) -> None:
    result = run_eval(outputs, "--gt-dir", str(outputs / "out"))  # scoring outputs against themselves: J=1
    assert result.exit_code == 1 and "J=" not in result.output
    assert "out/cat: an stseg-infer output, not ground truth" in result.output
    assert _ground_truth_refuses(outputs / "out", "cat")
    gt_dir = gt_from_label(outputs, 0)
    second = run_eval(outputs, "--gt-dir", str(gt_dir), "--davis17", str(outputs / "d17"))
    assert second.exit_code == 0, second.output
    result = run_eval(outputs, "--gt-dir", str(outputs / "d17"))
    assert result.exit_code == 1 and "d17: an stseg-davis17 output, not ground truth" in result.output


def test_broken_links_and_sequence_folders_given_as_out(outputs: Path) -> None:
    gt_dir = gt_from_label(outputs, 0)
    (outputs / "out" / "dog").symlink_to(outputs / "nowhere")
    result = run_eval(outputs, "--gt-dir", str(gt_dir))
    assert result.exit_code == 1 and "dog: a broken symbolic link" in read_summary(outputs).loc["dog", "reason"]
    (outputs / "out" / "dog").unlink()
    result = CliRunner().invoke(eval_main, [str(outputs / "out" / "cat"), "--gt-dir", str(gt_dir)])
    assert result.exit_code == 1 and "cat: is one sequence's stseg-infer output" in result.output
    assert not (outputs / "out" / "cat" / "eval.json").exists()


def test_an_output_a_killed_swap_moved_aside_is_restored_and_scored(outputs: Path) -> None:
    gt_dir = gt_from_label(outputs, 0)
    (outputs / "out" / "cat").rename(outputs / "out" / ".cat.stseg-old")  # killed between the renames
    result = run_eval(outputs, "--gt-dir", str(gt_dir))
    assert result.exit_code == 0, result.output
    assert read_summary(outputs).loc["cat", "status"] == "scored"
    assert sorted(p.name for p in (outputs / "out").iterdir() if not p.name.startswith(".eval")) == [
        "cat", "eval.json", "scores.csv", "summary.csv"
    ]


def _ground_truth_refuses(folder: Path, sequence: str) -> bool:
    from stseg_deploy.eval.groundtruth import GroundTruth

    for name in ("eval.json", "scores.csv", "summary.csv"):  # the refused run's all-skipped scores
        (folder / name).unlink(missing_ok=True)
    with pytest.raises(StsegInputError, match=f"{sequence}: an stseg-infer output, not ground truth"):
        GroundTruth(gt_dir=folder).masks(sequence, FRAMES)
    return True


def test_davis2016_protocol_scores_j_and_f_on_the_evaluators_frames(outputs: Path) -> None:
    labels, _ = read_sequence_output(outputs / "out" / "cat")
    label = int(np.bincount(labels.ravel()).argmax())
    gt_dir = gt_from_label(outputs, label)  # ground truth = one segment: J = F = 1
    result = run_eval(outputs, "--gt-dir", str(gt_dir), "--protocol", "davis2016", "--binary", "fair")
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert lines[-2:] == ["J&F=1.000", "J=1.000 F=1.000"]
    summary = pd.read_csv(outputs / "out" / "summary.csv")
    assert list(summary.columns) == ["sequence", "frames", "J_mean", "J_recall", "J_decay", "F_mean", "F_recall", "F_decay", "status", "reason"]
    cat = summary.set_index("sequence").loc["cat"]
    # Six output frames with ground truth; the evaluator leaves out the first: 5 scored.
    assert cat["frames"] == 5 and cat["J_mean"] == 1.0 and cat["F_recall"] == 1.0 and cat["J_decay"] == 0.0
    scores = pd.read_csv(outputs / "out" / "scores.csv")
    assert list(scores["davis"]) == [False, True, True, True, True, True]
    assert eval_marker(outputs)["davis2016"] == {"J_mean": 1.0, "F_mean": 1.0}
    # Empty ground truth on every frame and an empty selection: the evaluator's J = F = 1.
    gt_from_label(outputs, 255)
    assert run_eval(outputs, "--gt-dir", str(gt_dir), "--protocol", "davis2016", "--binary", "fair").stdout.strip().endswith("J=1.000 F=1.000")


def test_davis2016_protocol_needs_every_sequence(outputs: Path) -> None:
    gt_dir = gt_from_label(outputs, 0)
    (outputs / "out" / "dog").mkdir()
    (outputs / "out" / "dog" / "notes.txt").write_text("not an output")
    result = run_eval(outputs, "--gt-dir", str(gt_dir), "--protocol", "davis2016")
    assert result.exit_code == 1 and "the DAVIS protocol scores them all" in result.output
    assert run_eval(outputs, "--gt-dir", str(gt_dir), "--protocol", "davis2016", "--allow-partial").exit_code == 2


# -- --objects: one segment per ground-truth object ----------------------------------------


def test_objects_scores_each_object_and_writes_objects_csv(outputs: Path) -> None:
    # Objects 1 and 2 are exactly segments 1 and 2 (segment 0 is the background).
    gt_dir = object_gt(outputs, lambda frame: frame.astype(np.uint8))
    result = run_eval(outputs, "--gt-dir", str(gt_dir), "--objects")
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert lines[-1] == "J=1.000"  # the binary measure's line stays last
    assert lines[-2] == "J_objects=1.000 (2 objects; a naive best-label match would give 0 of them a segment shared with another)"
    assert "J_objects 1.000 (2 objects)" in result.stdout  # the sequence's line
    objects = pd.read_csv(outputs / "out" / "objects.csv", dtype={"segments": str})
    assert list(objects.columns) == ["sequence", "object", "frames", "present", "J", "segments", "naive_shared"]
    assert objects["object"].tolist() == [1, 2] and objects["J"].tolist() == [1.0, 1.0]
    assert objects["frames"].tolist() == [6, 6] and objects["present"].tolist() == [6, 6]
    # cut size 2 (the linking's): 6 frames in 2 chunks (0..2, 3..5), each object its segment.
    assert objects["segments"].tolist() == ["1 1", "2 2"] and not objects["naive_shared"].any()
    summary = read_summary(outputs)
    assert list(summary.columns) == ["status", "frames", "frames_without_gt", "jaccard_mean", "objects", "J_objects", "reason"]
    assert summary.loc["cat", "objects"] == 2 and summary.loc["overall", "J_objects"] == 1.0
    marker = eval_marker(outputs)
    assert marker["stseg"]["files"] == ["scores.csv", "summary.csv", "objects.csv"]
    assert marker["settings"]["objects"] is True
    assert marker["objects"] == {"J_mean": 1.0, "n_objects": 2, "naive_shared": 0}


def test_objects_sees_two_objects_merged_in_one_segment(outputs: Path) -> None:
    # Segment 1 split down the middle into two objects: the binary J cannot tell, J_objects can.
    def split(frame: np.ndarray) -> np.ndarray:
        ids = np.zeros(frame.shape, np.uint8)
        ids[:, : GT_SIZE[1] // 2][frame[:, : GT_SIZE[1] // 2] == 1] = 1
        ids[:, GT_SIZE[1] // 2 :][frame[:, GT_SIZE[1] // 2 :] == 1] = 2
        return ids

    gt_dir = object_gt(outputs, split)
    result = run_eval(outputs, "--gt-dir", str(gt_dir), "--objects", "--cut-size", "none")
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert lines[-1] == "J=1.000"
    assert lines[-2].endswith("(2 objects; a naive best-label match would give 2 of them a segment shared with another)")
    objects = pd.read_csv(outputs / "out" / "objects.csv", dtype={"segments": str})
    # One chunk: one object keeps segment 1, the other gets a segment it does not touch.
    assert sorted(objects["segments"]) != ["1", "1"] and "1" in objects["segments"].tolist()
    assert objects["J"].min() == 0.0 and 0.0 < objects["J"].max() < 1.0
    assert float(lines[-2].split()[0].removeprefix("J_objects=")) == pytest.approx(objects["J"].mean(), abs=5e-4)


def test_objects_reads_binary_masks_as_one_object(outputs: Path) -> None:
    gt_dir = gt_from_label(outputs, 2, skip=(4,))  # 0/255 greyscale, DAVIS-2016 style
    result = run_eval(outputs, "--gt-dir", str(gt_dir), "--objects")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines()[-2].startswith("J_objects=1.000 (1 objects;")
    objects = pd.read_csv(outputs / "out" / "objects.csv")
    assert objects[["object", "frames", "J"]].values.tolist() == [[1, 5, 1.0]]  # frame 4 has no mask


def test_objects_with_davis2016_keeps_its_last_lines_and_frames(outputs: Path) -> None:
    gt_dir = object_gt(outputs, lambda frame: frame.astype(np.uint8))
    result = run_eval(outputs, "--gt-dir", str(gt_dir), "--objects", "--protocol", "davis2016")
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert lines[-3].startswith("J_objects=1.000 (2 objects;")
    assert lines[-2] == "J&F=1.000" and lines[-1] == "J=1.000 F=1.000"
    assert pd.read_csv(outputs / "out" / "objects.csv")["frames"].tolist() == [5, 5]  # no first frame
    summary = pd.read_csv(outputs / "out" / "summary.csv")
    assert list(summary.columns)[-4:] == ["objects", "J_objects", "status", "reason"]


def test_objects_resize_and_bad_object_masks(outputs: Path) -> None:
    gt_dir = object_gt(outputs, lambda frame: frame.astype(np.uint8), size=(48, 64))
    result = run_eval(outputs, "--gt-dir", str(gt_dir), "--objects")
    assert result.exit_code == 1 and "ground truth is 48x64" in read_summary(outputs).loc["cat", "reason"]
    result = run_eval(outputs, "--gt-dir", str(gt_dir), "--objects", "--resize-gt")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines()[-2].startswith("J_objects=1.000 (2 objects;")
    # An RGB mask whose colours are no object ids: the sequence is skipped, the file named.
    bad = gt_dir / "cat" / "00003.png"
    colours = np.zeros((48, 64, 3), np.uint8)
    colours[:10] = (10, 20, 30)
    colours[20:] = davis_palette()[1]
    from PIL import Image

    Image.fromarray(colours).save(bad)
    result = run_eval(outputs, "--gt-dir", str(gt_dir), "--objects", "--resize-gt")
    assert result.exit_code == 1
    # The reason is printed; summary.csv keeps the earlier complete run's scores.
    assert f"skipped: {bad}: 2 colours, and (10, 20, 30) is not a DAVIS palette colour" in result.stdout
    assert read_summary(outputs).loc["cat", "status"] == "scored"
    # The binary measure alone still reads it (any non-zero is foreground).
    assert run_eval(outputs, "--gt-dir", str(gt_dir), "--resize-gt").exit_code == 0





# -- the benchmarks, end to end: each dataset's own layout -> stseg-prepare -> stseg-infer -> stseg-eval


def _benchmark(tmp_path: Path, dataset: list[str], root: Path, name: str, split: str, *eval_args: str) -> tuple[Path, Path, object]:
    """Prepare ``root`` (DIS flows), segment ``split`` with the defaults and score it."""
    from stseg_deploy.cli.infer import infer_main
    from stseg_deploy.cli.prepare import prepare_main

    prep, pred = tmp_path / "prep", tmp_path / "out"
    result = CliRunner().invoke(prepare_main, [*dataset, str(root), "--out", str(prep), "--flow-method", "dis", "--workers", "1"])
    assert result.exit_code == 0, result.output
    data = ["--data-file", str(prep / name), "--split", split, "--base-dir", str(prep)]
    result = CliRunner().invoke(infer_main, [*data, "--out", str(pred)])
    assert result.exit_code == 0, result.output
    return prep, pred, run_eval(tmp_path, *data, *eval_args)


def test_fbms_end_to_end_scores_the_annotated_frames_and_every_object(tmp_path: Path) -> None:
    from fbmstree import fbms_tree

    root = fbms_tree(tmp_path / "FBMS", train=(), test=("bear01", "tennis"))
    _, pred, result = _benchmark(tmp_path, ["fbms"], root, "FBMS", "test", "--protocol", "fbms", "--objects")
    assert result.exit_code == 0, result.output
    summary = read_summary(tmp_path)
    # Def.dat annotates bear01's frames 0 and 2 and tennis's 0 and 3; frame 3 is tennis's
    # last, which has no flow: 2 and 1 frames scored, the others counted as without ground truth.
    assert summary.loc["bear01", "frames"] == 2 and summary.loc["tennis", "frames"] == 1
    assert summary.loc["bear01", "frames_without_gt"] == 1 and summary.loc["tennis", "frames_without_gt"] == 2
    assert list(summary["objects"]) == [2, 2, 4] and list(summary["fbms_objects"]) == [2, 2, 4]
    overall = summary.loc["overall"]
    p, r = summary.loc[["bear01", "tennis"], "fbms_precision"].mean(), summary.loc[["bear01", "tennis"], "fbms_recall"].mean()
    assert overall["fbms_precision"] == pytest.approx(p) and overall["fbms_F"] == pytest.approx(2 * p * r / (p + r))
    assert overall["fbms_extracted"] == summary.loc[["bear01", "tennis"], "fbms_extracted"].sum()
    assert f"FBMS P={p:.3f}" in result.output and result.output.strip().splitlines()[-1].startswith("J=")
    assert eval_marker(tmp_path)["fbms"]["fbms_objects"] == 4


def test_fbms_processed_copy_end_to_end(tmp_path: Path) -> None:
    from fbmstree import processed_tree

    root = processed_tree(tmp_path / "FBMS_clean", names=("bear01",), n=5, annotated=(0, 2, 3))
    _, pred, result = _benchmark(tmp_path, ["fbms"], root, "FBMS", "val", "--protocol", "fbms", "--objects")
    assert result.exit_code == 0, result.output
    summary = read_summary(tmp_path)
    assert summary.loc["bear01", "frames"] == 3 and summary.loc["bear01", "objects"] == 1  # objects merged


def test_segtrackv2_end_to_end_scores_every_frame(tmp_path: Path) -> None:
    from segtracktree import write_sequence

    root = tmp_path / "SegTrackv2"
    write_sequence(root, "frog", [f"frog_{i:05d}" for i in range(5)], ".bmp", (".png",))
    write_sequence(root, "cheetah", [f"cheetah_{i:05d}" for i in range(5)], ".bmp", (".bmp", ".png"))
    prep, pred, result = _benchmark(tmp_path, ["segtrackv2"], root, "SegTrackV2", "val", "--protocol", "segtrackv2", "--objects")
    assert result.exit_code == 0, result.output
    summary = read_summary(tmp_path)
    assert list(summary["frames"]) == [4, 4, 8] and list(summary["frames_without_gt"]) == [0, 0, 0]
    assert summary.loc["cheetah", "objects"] == 2 and summary.loc["frog", "objects"] == 1
    # A frame without ground truth is a broken conversion under this protocol, not sparse annotation.
    csv = prep / "SegTrackV2_val.csv"
    table = pd.read_csv(csv, keep_default_na=False)
    table.loc[1, "GtMask"] = ""
    table.to_csv(csv, index=False)
    data = ["--data-file", str(prep / "SegTrackV2"), "--split", "val", "--base-dir", str(prep)]
    result = run_eval(tmp_path, *data, "--protocol", "segtrackv2", "--out", str(tmp_path / "again"))
    assert result.exit_code == 1 and "SegTrackV2 annotates every frame" in result.output
    assert run_eval(tmp_path, *data, "--out", str(tmp_path / "stseg")).exit_code == 0  # the stseg protocol counts it


def test_davis2017_end_to_end_matches_proposals_to_the_first_frames_objects(tmp_path: Path) -> None:
    from davistree import davis2017_tree

    root = davis2017_tree(tmp_path / "DAVIS", {"val": {"a": 5, "b": 4}})
    prep, pred, result = _benchmark(tmp_path, ["davis", "--year", "2017"], root, "DAVIS2017", "val", "--protocol", "davis2017", "--objects")
    assert result.exit_code == 0, result.output
    summary = read_summary(tmp_path)
    per_object = eval_marker(tmp_path)["davis2017"]
    assert list(summary["objects"]) == [2, 2, 4]
    overall = summary.loc["overall"]
    assert overall["J&F"] == pytest.approx((overall["J_mean"] + overall["F_mean"]) / 2)
    assert per_object["J&F"] == pytest.approx(overall["J&F"], abs=1e-6)
    assert f"DAVIS-2017 J&F={overall['J&F']:.3f}" in result.output
    # --davis17-mode numbers the proposals: "paper" makes every label one, "background" all but
    # the largest, so paper's matching has every choice background's has, and more.
    paper = run_eval(tmp_path, "--data-file", str(prep / "DAVIS2017"), "--split", "val", "--base-dir", str(prep),
                     "--protocol", "davis2017", "--davis17-mode", "paper", "--out", str(tmp_path / "paper"))
    record = json.loads((tmp_path / "paper" / "eval.json").read_text())
    assert paper.exit_code == 0 and record["settings"]["davis17_mode"] == "paper"
    assert record["davis2017"]["J&F"] >= per_object["J&F"] - 1e-9
