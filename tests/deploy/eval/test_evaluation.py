"""Scoring outputs (stseg_deploy.eval.evaluation.evaluate), without the command line
(test_cli_eval.py): a ground truth equal to a segment scores one, an output replaced while
scoring is caught, refined outputs are scored on their refined maps, stages are not pooled;
and EvalOptions, the one object that carries the options: its defaults (stseg-eval's), its
checks, and the command line building it from its flags."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from evalkit import FRAMES, gt_from_label, infer, infer_refined, object_gt, run_eval
from fakes import FakeModel

from stseg_deploy.errors import StsegInputError
from stseg_deploy.eval.evaluation import evaluate
from stseg_deploy.eval.options import SAME_CUT, EvalOptions
from stseg_deploy.io.masks import read_label_png, write_label_png, write_mask_png
from stseg_deploy.output.folder import segment_to_folder
from stseg_deploy.output.layout import read_sequence_output
from stseg_deploy.pipeline import Segmenter
from stseg_deploy.preprocess import resize_labels
from stseg_deploy.sources import sequences_from_folders

# -- EvalOptions ---------------------------------------------------------------------------


def test_eval_options_defaults_are_stseg_evals() -> None:
    options = EvalOptions()
    assert dataclasses.asdict(options) == {
        "gt_dir": None, "data_file": None, "split": "val", "base_dir": None,
        "binary": "optimax", "cut_size": SAME_CUT, "resize_gt": False, "protocol": "stseg", "objects": False,
        "scores_dir": None, "davis17": None, "davis17_mode": "background", "allow_partial": False,
    }
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.binary = "fair"  # passed whole to every step: none may change it on the way


@pytest.mark.parametrize(("option", "value", "message"), [
    ("binary", "best", r"^binary: unknown binarisation 'best'; expected one of \('optimax', "),
    ("protocol", "fbms59", r"^protocol: unknown protocol 'fbms59'; expected one of \('stseg', 'davis2016', 'davis2017', 'fbms', 'segtrackv2'\)"),
    ("davis17_mode", "all", r"^davis17_mode: unknown DAVIS-2017 export mode 'all'"),
    ("split", "dev", r"^split: unknown split 'dev'"),
    ("cut_size", 0, r"^cut_size: expected an integer >= 1, None \(the whole sequence\) or 'same', got 0"),
    ("cut_size", True, r"^cut_size: .* got True"),
    ("cut_size", "5", r"^cut_size: .* got '5'"),
    ("cut_size", 2.0, r"^cut_size: .* got 2.0"),
])
def test_eval_options_refuse_a_bad_value_naming_the_option(option: str, value, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EvalOptions(**{option: value})
    with pytest.raises(ValueError, match=message):  # replace() checks too
        dataclasses.replace(EvalOptions(), **{option: value})


@pytest.mark.parametrize("cut_size", [None, SAME_CUT, 1, 10, np.int64(3)])
def test_eval_options_take_every_cut_size_the_selection_does(cut_size) -> None:
    assert EvalOptions(cut_size=cut_size).cut_size == cut_size


def test_the_clis_click_defaults_are_the_dataclass_defaults() -> None:
    import click

    from stseg_deploy.cli.eval import eval_main

    defaults = EvalOptions()
    fields = {f.name for f in dataclasses.fields(EvalOptions)}
    options = {p.name: p for p in eval_main.params if isinstance(p, click.Option) and p.name != "verbose"}
    assert set(options) == fields  # one flag per option, named alike
    for name, param in options.items():
        if name == "davis17_mode":
            # None on the command line tells "not given" (refused without --davis17); the
            # default it stands for is the dataclass's, and the help says which.
            assert param.default is None and f"(default {defaults.davis17_mode})" in param.help
        else:
            assert param.default == getattr(defaults, name), name


def test_the_cli_builds_the_options_once_from_its_flags(outputs: Path, monkeypatch) -> None:
    import stseg_deploy.eval.scorefiles as scorefiles

    seen: list[tuple[str, EvalOptions]] = []

    def capture(out_dir, options):
        seen.append((out_dir, options))
        raise ValueError("captured")

    monkeypatch.setattr(scorefiles, "evaluate_and_write", capture)
    gt = str(outputs / "gt")
    assert run_eval(outputs, "--gt-dir", gt).exit_code == 1
    assert seen[-1] == (str(outputs / "out"), EvalOptions(gt_dir=gt))  # no flag: the dataclass's defaults
    flags = ["--binary", "fair", "--cut-size", "none", "--resize-gt", "--objects", "--davis17", "d17", "--davis17-mode", "paper",
             "--out", "scores", "--allow-partial", "--data-file", "S", "--split", "train", "--base-dir", "base"]
    assert run_eval(outputs, *flags).exit_code == 1
    assert seen[-1][1] == EvalOptions(
        data_file="S", split="train", base_dir="base", binary="fair", cut_size=None, resize_gt=True, objects=True,
        scores_dir="scores", davis17="d17", davis17_mode="paper", allow_partial=True,
    )
    assert run_eval(outputs, "--gt-dir", gt, "--protocol", "davis2016", "--cut-size", "3").exit_code == 1
    assert seen[-1][1] == EvalOptions(gt_dir=gt, protocol="davis2016", cut_size=3)


# -- scoring -------------------------------------------------------------------------------


def test_gt_equal_to_a_segment_scores_one(outputs: Path) -> None:
    labels, _ = read_sequence_output(outputs / "out" / "cat")
    label = int(np.bincount(labels.ravel()).argmax())
    gt_dir = gt_from_label(outputs, label, skip=(4,))
    result = evaluate(outputs / "out", EvalOptions(gt_dir=gt_dir, cut_size=2))
    assert list(result.scores["frame"]) == FRAMES
    assert list(result.scores["has_gt"]) == [True, True, True, True, False, True]
    scored = result.scores[result.scores["has_gt"]]
    np.testing.assert_allclose(scored["jaccard"], 1.0)
    assert np.isnan(result.scores.loc[4, "jaccard"])
    assert result.overall == 1.0 and result.summary.loc[0, "frames"] == 5
    assert result.summary.loc[0, "frames_without_gt"] == 1 and result.skipped == []
    assert evaluate(outputs / "out", EvalOptions(gt_dir=gt_dir, binary="fair")).overall == 1.0


def test_an_output_replaced_by_another_model_while_scoring_is_caught(outputs: Path, monkeypatch) -> None:
    import stseg_deploy.eval.evaluation as evaluation

    infer(outputs, "dog", 4, seed=3)
    gt_dir = gt_from_label(outputs, 0)
    gt_from_label(outputs, 0, sequence="dog")
    real = evaluation.score_sequence

    def rerun_dog_first(folder, *args, **kwargs):  # a concurrent stseg-infer with another model
        if folder.name == "dog":
            seq = sequences_from_folders([outputs / "flows" / "dog"])[0]
            segment_to_folder(Segmenter(FakeModel()), seq, outputs / "out", model_sha256="c" * 64)
        return real(folder, *args, **kwargs)

    monkeypatch.setattr(evaluation, "score_sequence", rerun_dog_first)
    with pytest.raises(StsegInputError, match=r"2 different models.*cccccccccccc \(dog\)"):
        evaluate(outputs / "out", EvalOptions(gt_dir=gt_dir))


def test_a_refined_output_is_scored_on_its_refined_maps(tmp_path: Path) -> None:
    folder = infer_refined(tmp_path)
    labels, record = read_sequence_output(folder)
    assert record["settings"]["refine"] == "guided" and record["original_size"] == [48, 64]
    refined = np.stack([read_label_png(folder / f"{f}.png") for f in record["frames"]])
    upsampled = np.stack([resize_labels(frame, (48, 64)) for frame in labels])
    for t, name in enumerate(record["frames"]):
        write_mask_png(tmp_path / "gt" / "cat" / f"{name}.png", refined[t] == 1)
    gt = refined == 1
    assert np.mean(upsampled[gt] == 1) < 0.99 or np.mean(upsampled[~gt] != 1) > 0.01  # the maps differ where it matters
    result = evaluate(tmp_path / "out", EvalOptions(gt_dir=tmp_path / "gt", binary="fair"))
    assert result.overall == pytest.approx(1.0)
    unrefined = np.mean([((u == 1) & g).sum() / max(((u == 1) | g).sum(), 1) for u, g in zip(upsampled, gt)])
    assert unrefined < 0.99  # what scoring labels.npy upsampled would have given


def test_outputs_made_with_other_stages_are_not_pooled(tmp_path: Path) -> None:
    infer_refined(tmp_path, "cat", tta="none", refine="guided")
    infer_refined(tmp_path, "dog", tta="flip", refine="guided")
    (tmp_path / "gt").mkdir()
    with pytest.raises(StsegInputError, match=r"different settings \(tta, refine, split, carry, foreground in sequence.json\): "
                       r"tta=flip refine=guided\(radius=60.0, eps=0.01, subsample=2\) split=none carry=none \(dog\); "
                       r"tta=none refine=guided\(radius=60.0, eps=0.01, subsample=2\) split=none carry=none \(cat\)"):
        evaluate(tmp_path / "out", EvalOptions(gt_dir=tmp_path / "gt"))
    infer_refined(tmp_path, "dog", tta="none", refine="guided", carry="forward")
    with pytest.raises(StsegInputError, match=r"split=none carry=forward\(weight=0.9\) \(dog\); .* carry=none \(cat\)"):
        evaluate(tmp_path / "out", EvalOptions(gt_dir=tmp_path / "gt"))


def test_the_foreground_setting_splits_outputs_only_when_it_is_scored(tmp_path: Path) -> None:
    # The decision changes neither labels nor label maps: optimax pools outputs made with and
    # without it; --binary foreground does not.
    infer(tmp_path, "cat")
    dog = infer(tmp_path, "dog", seed=1)
    record = json.loads((dog / "sequence.json").read_text())
    record["settings"]["foreground_settings"]["share"] = 0.5
    (dog / "sequence.json").write_text(json.dumps(record))
    gt_from_label(tmp_path, 1)
    gt_from_label(tmp_path, 1, sequence="dog")
    assert evaluate(tmp_path / "out", EvalOptions(gt_dir=tmp_path / "gt")).scored == ["cat", "dog"]
    with pytest.raises(StsegInputError, match=r"foreground=motion\(min_contrast=1.0, share=0.5, max_border=0.1\) \(dog\)"):
        evaluate(tmp_path / "out", EvalOptions(gt_dir=tmp_path / "gt", binary="foreground"))


def test_outputs_written_before_the_stages_score_as_before(tmp_path: Path) -> None:
    old = infer(tmp_path, "cat", sha="m")
    infer(tmp_path, "dog", seed=1, sha="m")
    gt_from_label(tmp_path, 1)
    gt_from_label(tmp_path, 2, sequence="dog")
    before = evaluate(tmp_path / "out", EvalOptions(gt_dir=tmp_path / "gt"))
    record = json.loads((old / "sequence.json").read_text())
    for key in ("tta", "refine", "guided"):
        record["settings"].pop(key, None)
    record.pop("refine")
    (old / "sequence.json").write_text(json.dumps(record))  # as an earlier stseg wrote it
    after = evaluate(tmp_path / "out", EvalOptions(gt_dir=tmp_path / "gt"))  # pooled with a new 'none' output
    pd.testing.assert_frame_equal(before.scores, after.scores)
    assert before.overall == after.overall


def _decide(seq_dir: Path, objects_per_frame) -> None:
    """Rewrite an output's recorded foreground decision (which labels are objects, per frame)."""
    record = json.loads((seq_dir / "sequence.json").read_text())
    record["objects"] = objects_per_frame
    (seq_dir / "sequence.json").write_text(json.dumps(record))


def test_binary_foreground_scores_the_outputs_own_decision(tmp_path: Path) -> None:
    seq_dir = infer(tmp_path, "cat")
    labels, record = read_sequence_output(seq_dir)
    assert record["settings"]["foreground"] == "motion" and len(record["objects"]) == len(FRAMES)
    gt_from_label(tmp_path, 1)
    _decide(seq_dir, [[1]] * len(FRAMES))  # the decision is the ground truth: J = 1
    assert evaluate(tmp_path / "out", EvalOptions(gt_dir=tmp_path / "gt", binary="foreground")).overall == 1.0
    _decide(seq_dir, [[1, 2]] * len(FRAMES))  # one segment too many: J = |1| / |1 or 2|
    expected = np.mean([(labels[t] == 1).sum() / np.isin(labels[t], [1, 2]).sum() for t in range(len(FRAMES))])
    assert evaluate(tmp_path / "out", EvalOptions(gt_dir=tmp_path / "gt", binary="foreground")).overall == pytest.approx(expected)
    # optimax ignores the decision and picks label 1 from the ground truth.
    assert evaluate(tmp_path / "out", EvalOptions(gt_dir=tmp_path / "gt")).overall == 1.0


def test_binary_foreground_with_objects_scores_the_object_id_map(tmp_path: Path) -> None:
    seq_dir = infer(tmp_path, "cat")
    object_gt(tmp_path, lambda frame: np.where(frame == 1, 1, np.where(frame == 2, 2, 0)).astype(np.uint8))
    _decide(seq_dir, [[1, 2]] * len(FRAMES))
    both = evaluate(tmp_path / "out", EvalOptions(gt_dir=tmp_path / "objects", binary="foreground", objects=True))
    assert both.overall_objects == 1.0
    _decide(seq_dir, [[1]] * len(FRAMES))  # object 2 left in the background: J 0, not its label's
    one = evaluate(tmp_path / "out", EvalOptions(gt_dir=tmp_path / "objects", binary="foreground", objects=True))
    assert one.objects.set_index("object")["J"].to_dict() == {1: 1.0, 2: 0.0}
    # objects.csv names the labels matched: label 1 for object 1, none for object 2.
    assert set(one.objects.set_index("object")["segments"][1].split()) == {"1"}
    assert set(one.objects.set_index("object")["segments"][2].split()) == {"-"}


def test_binary_foreground_refuses_outputs_without_a_decision(tmp_path: Path) -> None:
    seq_dir = infer(tmp_path, "cat")
    gt_from_label(tmp_path, 1)
    record = json.loads((seq_dir / "sequence.json").read_text())
    record["settings"].pop("foreground")  # as written before the decision existed
    record["settings"].pop("foreground_settings")
    record.pop("objects")
    (seq_dir / "sequence.json").write_text(json.dumps(record))
    result = evaluate(tmp_path / "out", EvalOptions(gt_dir=tmp_path / "gt", binary="foreground"))
    assert result.scored == [] and "sequence 'cat' has no foreground decision" in result.skipped[0].reason
    assert evaluate(tmp_path / "out", EvalOptions(gt_dir=tmp_path / "gt")).overall == 1.0  # read as before otherwise


def test_fbms_protocol_is_fbms_measure_of_the_label_maps(outputs: Path) -> None:
    """The fbms figures are :func:`fbms_shot` of every segment against the object ids, on the
    frames with ground truth; with ground truth equal to the labels, every region is found."""
    from stseg_deploy.eval.fbms_measures import fbms_shot
    from stseg_deploy.output.layout import read_label_maps

    gt = object_gt(outputs, lambda labels: labels.astype(np.uint8))  # label l is region l (0 the background)
    full, record = read_label_maps(outputs / "out" / "cat")
    regions = full.astype(np.uint8)
    # Frame 2 is not annotated; frame 3's annotation is wrong (one region over the whole frame),
    # so the figures are below 1 and change if any other frame were scored in its place.
    (gt / "cat" / "00002.png").unlink()
    regions[3] = 1
    write_label_png(gt / "cat" / f"{record['frames'][3]}.png", regions[3])
    result = evaluate(outputs / "out", EvalOptions(gt_dir=gt, protocol="fbms"))
    row = result.fbms.set_index("sequence").loc["cat"]
    frames = [t for t in range(len(record["frames"])) if t != 2]
    shot = fbms_shot(full[frames], regions[frames], int(record["n_labels"]))
    assert (row["fbms_precision"], row["fbms_recall"], row["fbms_F"]) == pytest.approx((shot.avg_precision, shot.avg_recall, shot.f))
    assert shot.f < 1 and row["fbms_objects"] == shot.visible_objects and row["fbms_extracted"] == shot.extracted
    assert result.summary.set_index("sequence").loc["cat", "frames"] == len(frames)


def test_davis2017_protocol_needs_the_first_frames_annotation(outputs: Path) -> None:
    gt = object_gt(outputs, lambda labels: (labels == 1).astype(np.uint8))
    result = evaluate(outputs / "out", EvalOptions(gt_dir=gt, protocol="davis2017"))
    assert result.davis2017_total["J&F"] == pytest.approx(1.0)  # object 1 is segment 1: a proposal of its own
    (gt / "cat" / "00000.png").unlink()
    result = evaluate(outputs / "out", EvalOptions(gt_dir=gt, protocol="davis2017"))
    assert "its first frame 00000 has no ground truth; DAVIS-2017 takes the objects" in result.skipped[0].reason
