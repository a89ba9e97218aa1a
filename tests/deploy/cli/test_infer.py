"""The stseg-infer command line: what it writes, what it refuses, and that it never destroys a
user's data (inputs, earlier results, other writers)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from fakes import FakeModel
from fakes import write_sequence as _write_sequence
from PIL import Image

import stseg_deploy.output.folder
import stseg_deploy.runtime
from stseg_deploy.cli.infer import infer_main
from stseg_deploy.io.outdir import OutputBusyError
from stseg_deploy.output.folder import segment_to_folder
from stseg_deploy.output.layout import read_sequence_output
from stseg_deploy.pipeline import Segmenter
from stseg_deploy.sources import sequences_from_folders
from stseg_deploy.stages.carry import CarrySettings
from stseg_deploy.stages.foreground import ForegroundSettings
from stseg_deploy.stages.motionsplit import SPLIT_FORM
from stseg_deploy.stages.tta import TtaSettings

FAKES = Path(__file__).resolve().parents[1]  # tests/deploy, where fakes.py lives


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _fake_model(monkeypatch, size=(12, 16), path: Path | None = None) -> FakeModel:
    model = FakeModel(size=size)
    if path is not None:
        model.path = path
    monkeypatch.setattr(stseg_deploy.runtime, "load_model", lambda *args, **kwargs: model)
    return model


def _frames(folder: Path, n: int) -> dict[str, bytes]:
    folder.mkdir(parents=True)
    for t in range(n):
        Image.fromarray(np.full((16, 24, 3), t * 10, np.uint8)).save(folder / f"{t:05d}.png")
    return _tree(folder)


def test_out_above_the_input_folder_is_refused_and_the_frames_survive(tmp_path: Path) -> None:
    frames = _frames(tmp_path / "t" / "walk", 5)
    result = CliRunner().invoke(infer_main, ["--model", "m.onnx", str(tmp_path / "t" / "walk"), "--out", str(tmp_path / "t")])
    assert result.exit_code == 1
    assert "this output folder would hold the input" in result.output
    assert _tree(tmp_path / "t" / "walk") == frames


def test_out_on_the_ground_truth_folder_is_refused(tmp_path: Path, monkeypatch) -> None:
    _fake_model(monkeypatch)
    _write_sequence(tmp_path / "Flows" / "bear", 4)
    masks = tmp_path / "Masks" / "bear"
    masks.mkdir(parents=True)
    for t in range(4):
        Image.fromarray(np.zeros((24, 30), np.uint8)).save(masks / f"{t:05d}.png")
    gt = _tree(masks)
    (tmp_path / "S_val.csv").write_text(
        "Flow,GtMask,Sequence,Sequence_Index\n" + "".join(f"Flows/bear/{t:05d}.flo,Masks/bear/{t:05d}.png,bear,{t}\n" for t in range(4))
    )
    args = ["--model", "m.onnx", "--data-file", str(tmp_path / "S"), "--base-dir", str(tmp_path), "--out", str(tmp_path / "Masks")]
    result = CliRunner().invoke(infer_main, args)
    assert result.exit_code == 1 and "would hold the input" in result.output
    assert _tree(masks) == gt


def test_second_run_on_a_sequence_fails_at_once_and_the_first_completes(tmp_path: Path) -> None:
    _write_sequence(tmp_path / "flows" / "walk", 6)
    seq = sequences_from_folders([tmp_path / "flows" / "walk"])[0]
    started, go_on, errors = threading.Event(), threading.Event(), []

    def hold(frame) -> None:
        started.set()
        go_on.wait(10)

    def first() -> None:
        try:
            segment_to_folder(Segmenter(FakeModel()), seq, tmp_path / "out", on_frame=hold)
        except BaseException as exc:  # reported below
            errors.append(exc)

    thread = threading.Thread(target=first)
    thread.start()
    try:
        assert started.wait(10)
        with pytest.raises(OutputBusyError, match="walk: already being written"):
            segment_to_folder(Segmenter(FakeModel()), seq, tmp_path / "out")
    finally:
        go_on.set()
        thread.join(10)
    assert errors == []
    labels, record = read_sequence_output(tmp_path / "out" / "walk")
    assert labels.shape[0] == 6 and record["sequence"] == "walk"


DISK_FULL = """
import signal, sys
import stseg_deploy.runtime
from fakes import FakeModel
stseg_deploy.runtime.load_model = lambda *a, **k: FakeModel(size=(96, 128))
from stseg_deploy.cli.infer import infer_main
from stseg_deploy.stages.foreground import ForegroundSettings
infer_main(sys.argv[1:])
"""


def _infer_subprocess(args: list[str], preexec=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": f"{FAKES}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.run(
        [sys.executable, "-c", DISK_FULL, "--model", "m.onnx", *args],
        capture_output=True, text=True, env=env, preexec_fn=preexec, timeout=120,
    )


def test_full_disk_is_one_clear_line_not_sigbus(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    _write_sequence(tmp_path / "flows" / "walk", 12, size=(96, 128))
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1200k", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("this machine does not let root mount a tmpfs")
    try:
        first = _infer_subprocess([str(tmp_path / "flows" / "walk"), "--out", str(disk / "o")])
        assert first.returncode == 0, first.stderr
        before = _tree(disk / "o" / "walk")
        # Probabilities, 147 KB a frame, overflow the 1.2 MB disk.
        full = _infer_subprocess([str(tmp_path / "flows" / "walk"), "--out", str(disk / "o"), "--save-proba"])
        assert full.returncode == 1, (full.returncode, full.stderr)  # SIGBUS would be -7
        last = full.stderr.strip().splitlines()[-1]
        assert "walk: could not write" in last and "no space left on device" in last, full.stderr
        assert _tree(disk / "o" / "walk") == before
        assert sorted(p.name for p in (disk / "o").iterdir()) == ["walk"]
    finally:
        subprocess.run(["umount", str(disk)], check=False)


def test_file_size_limit_is_one_clear_line(tmp_path: Path) -> None:
    """Any write error (here EFBIG from a file-size limit, which works without root)."""
    import resource

    _write_sequence(tmp_path / "flows" / "walk", 5, size=(96, 128))

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))

    result = _infer_subprocess([str(tmp_path / "flows" / "walk"), "--out", str(tmp_path / "o"), "--save-proba"], limit)
    assert result.returncode == 1, result.stderr
    assert "walk: could not write" in result.stderr and "file too large" in result.stderr
    assert not (tmp_path / "o").exists()  # folders made for the failed run are gone


def test_record_states_settings_and_model_hash(tmp_path: Path, monkeypatch) -> None:
    model_file = tmp_path / "m.onnx"
    model_file.write_bytes(b"pretend model bytes")
    _fake_model(monkeypatch, path=model_file)
    _write_sequence(tmp_path / "flows" / "walk", 4)
    args = ["--model", str(model_file), str(tmp_path / "flows" / "walk"), "--out", str(tmp_path / "o"), "--cut-size", "3", "--link", "optimal", "--link-span", "1"]
    result = CliRunner().invoke(infer_main, args)
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "o" / "walk" / "sequence.json").read_text())
    assert record["model_file"]["sha256"] == hashlib.sha256(b"pretend model bytes").hexdigest()
    assert record["settings"] == {
        "batch_size": 8, "cut_size": 3, "link": "optimal", "link_span": 1, "link_vote": False, "link_reclaim": False, "image_size": [12, 16], "resize": "antialias",
        "save_proba": False, "save_features": False, "overlay": False,
        # Flow files without frames: nothing to guide a refinement, whatever the default.
        "tta": TtaSettings().mode, "refine": "none",
        "split": "motion",
        "motion_split": {"extra": 4, "min_area": 0.01, "min_gain": 0.1, "min_residual": 0.1, "form": SPLIT_FORM},
        **CarrySettings().record(),
        "foreground": "motion", "foreground_settings": ForegroundSettings().params(),
    }
    assert record["n_labels"] == 3 + 4  # the model's L and the motion split's spare segments
    assert record["refine"]["applied"] == "none"
    assert len(record["objects"]) == 4 and all(0 <= label < 7 for frame in record["objects"] for label in frame)
    assert record["stseg"]["complete"] is True
    frames = ["00000.png", "00001.png", "00002.png", "00003.png"]
    assert sorted(record["stseg"]["files"]) == sorted(
        [*frames, "labels.npy", *(f"foreground/{f}" for f in frames), *(f"objects/{f}" for f in frames)]
    )
    args += ["--foreground", "none"]
    assert CliRunner().invoke(infer_main, args).exit_code == 0
    record = json.loads((tmp_path / "o" / "walk" / "sequence.json").read_text())
    assert record["settings"]["foreground"] == "none" and "objects" not in record
    assert sorted(record["stseg"]["files"]) == [*frames, "labels.npy"]


def test_video_flow_follows_the_user_then_the_model(tmp_path: Path, monkeypatch) -> None:
    """A video gets the flow the model was trained on (its metadata) unless the options say
    otherwise, and the record says which flow was made."""
    from dataclasses import replace

    from stseg_deploy.flow.recipe import FlowRecipe

    model = _fake_model(monkeypatch)
    model.info = replace(model.info, flow=FlowRecipe("dis", None, 0.5))
    _frames(tmp_path / "clip", 5)  # 16x24 frames
    runs = {"model": [], "user": ["--flow-method", "farneback", "--flow-scale", "1", "--flow-step", "2"]}
    for name, options in runs.items():
        args = [str(tmp_path / "clip"), "--out", str(tmp_path / name), "--refine", "none", *options]
        result = CliRunner().invoke(infer_main, args)
        assert result.exit_code == 0, result.output
    flow_of = {name: json.loads((tmp_path / name / "clip" / "sequence.json").read_text())["settings"]["flow"] for name in runs}
    assert flow_of == {
        "model": {"method": "dis", "size": [16, 16], "step": 1},  # half of 16x24, at least 16 a side
        "user": {"method": "farneback", "size": None, "step": 2},
    }


def test_a_model_trained_on_deepflow_gets_deepflow_dis_and_is_told(tmp_path: Path, monkeypatch) -> None:
    """The one swap of the default (recipe.INFERENCE_METHOD): a DeepFlow-trained model's videos
    get deepflow-dis, with a note naming the way back; --flow-method deepflow gives DeepFlow."""
    from dataclasses import replace

    from stseg_deploy.flow.recipe import FlowRecipe

    model = _fake_model(monkeypatch)
    model.info = replace(model.info, flow=FlowRecipe("deepflow", None, "auto"))
    _frames(tmp_path / "clip", 4)
    outputs = {}
    for name, options in {"default": [], "own": ["--flow-method", "deepflow"]}.items():
        result = CliRunner().invoke(infer_main, [str(tmp_path / "clip"), "--out", str(tmp_path / name), "--refine", "none", *options])
        assert result.exit_code == 0, result.output
        outputs[name] = result.output
    flow_of = {name: json.loads((tmp_path / name / "clip" / "sequence.json").read_text())["settings"]["flow"]["method"] for name in outputs}
    assert flow_of == {"default": "deepflow-dis", "own": "deepflow"}
    assert "trained on deepflow flow; computing deepflow-dis" in outputs["default"] and "--flow-method deepflow for its own" in outputs["default"]
    assert "computing" not in outputs["own"]


def test_ctrl_c_exits_130_and_leaves_no_output(tmp_path: Path, monkeypatch) -> None:
    _fake_model(monkeypatch)
    _write_sequence(tmp_path / "flows" / "walk", 4)

    def interrupted(frame) -> None:
        raise KeyboardInterrupt

    real = segment_to_folder
    monkeypatch.setattr(stseg_deploy.output.folder, "segment_to_folder", lambda *a, **k: real(*a, **{**k, "on_frame": interrupted}))
    result = CliRunner().invoke(infer_main, ["--model", "m.onnx", str(tmp_path / "flows" / "walk"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 130
    assert "interrupted" in result.output
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("option", [["--threads", "0"], ["--threads", "-2"], ["--batch-size", "0"], ["--flow-step", "0"]])
def test_out_of_range_numbers_are_refused(tmp_path: Path, option: list[str]) -> None:
    result = CliRunner().invoke(infer_main, ["--model", "m.onnx", str(tmp_path), "--out", str(tmp_path / "o"), *option])
    assert result.exit_code == 2 and "is not in the range" in result.output


@pytest.mark.parametrize("carry", [[], ["--carry", "forward"], ["--carry", "none"]])
def test_a_typed_carry_lookahead_without_carry_both_is_refused(tmp_path: Path, carry: list[str]) -> None:
    """Even at its default value: typed, it would otherwise do nothing."""
    result = CliRunner().invoke(infer_main, ["--model", "m.onnx", str(tmp_path), "--out", str(tmp_path / "o"), *carry, "--carry-lookahead", "4"])
    assert result.exit_code == 2 and "--carry-lookahead applies to --carry both only" in result.output
    too_far = CliRunner().invoke(infer_main, ["--model", "m.onnx", str(tmp_path), "--out", str(tmp_path / "o"), "--carry", "both", "--carry-lookahead", "33"])
    assert too_far.exit_code == 2 and "is not in the range 1<=x<=32" in too_far.output


@pytest.mark.parametrize("value", ["0", "same", "ten"])
def test_a_cut_size_infer_cannot_use_is_refused(tmp_path: Path, value: str) -> None:
    """'same' means the cut size a sequence was linked with: for stseg-eval and stseg-viz only."""
    result = CliRunner().invoke(infer_main, ["--model", "m.onnx", str(tmp_path), "--out", str(tmp_path / "o"), "--cut-size", value])
    assert result.exit_code == 2 and f"an integer >= 1, 'none', got '{value}'" in result.output


def test_file_where_the_sequence_folder_goes(tmp_path: Path, monkeypatch) -> None:
    _fake_model(monkeypatch)
    _write_sequence(tmp_path / "flows" / "walk", 4)
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "walk").write_text("not a folder")
    result = CliRunner().invoke(infer_main, ["--model", "m.onnx", str(tmp_path / "flows" / "walk"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert "walk: a file is in the way where the output folder should be" in result.output
    assert "Errno" not in result.output
    assert (tmp_path / "o" / "walk").read_text() == "not a folder"


def test_bad_sequence_names_in_a_datasplit_write_nothing(tmp_path: Path, monkeypatch) -> None:
    _fake_model(monkeypatch)
    _write_sequence(tmp_path / "Flows" / "v", 4)
    for name, line in (("../victim", 2), ("DAVIS/bear", 2)):
        (tmp_path / "S_val.csv").write_text(
            "Flow,Sequence,Sequence_Index\n" + "".join(f"Flows/v/{t:05d}.flo,{name},{t}\n" for t in range(4))
        )
        args = ["--model", "m.onnx", "--data-file", str(tmp_path / "S"), "--base-dir", str(tmp_path), "--out", str(tmp_path / "run" / "o")]
        result = CliRunner().invoke(infer_main, args)
        assert result.exit_code == 1
        assert f"S_val.csv: CSV line(s) {line}, 3, 4, 5: sequence name {name!r} holds a path separator" in result.output
        assert not (tmp_path / "run").exists()


def test_absurd_image_size_is_one_line(tmp_path: Path, monkeypatch) -> None:
    _fake_model(monkeypatch)
    _write_sequence(tmp_path / "flows" / "walk", 4)
    args = ["--model", "m.onnx", str(tmp_path / "flows" / "walk"), "--out", str(tmp_path / "o"), "--image-size", "100000", "100000"]
    result = CliRunner().invoke(infer_main, args)
    assert result.exit_code == 1 and result.exception is not None and isinstance(result.exception, SystemExit)
    assert "image_size must be two sides from 1 to 4096 pixels, got (100000, 100000)" in result.output
    assert not (tmp_path / "o").exists()


def test_inputs_with_one_name_are_listed(tmp_path: Path) -> None:
    _write_sequence(tmp_path / "a" / "walk", 4)
    _write_sequence(tmp_path / "b" / "walk", 4)
    args = ["--model", "m.onnx", str(tmp_path / "a" / "walk"), str(tmp_path / "b" / "walk"), "--out", str(tmp_path / "o")]
    result = CliRunner().invoke(infer_main, args)
    assert result.exit_code == 1
    assert f"'walk': {tmp_path / 'a' / 'walk'}, {tmp_path / 'b' / 'walk'}" in result.output


def test_refine_on_the_command_line(tmp_path: Path, monkeypatch) -> None:
    from fakes import write_frames

    _fake_model(monkeypatch)
    _write_sequence(tmp_path / "flows" / "walk", 4)
    base = [str(tmp_path / "flows" / "walk"), "--out", str(tmp_path / "o")]
    refused = CliRunner().invoke(infer_main, [*base, "--refine", "guided"])
    assert refused.exit_code != 0
    assert "sequence 'walk': --refine guided needs the video's frames" in refused.output
    assert not (tmp_path / "o").exists()
    auto = CliRunner().invoke(infer_main, [*base, "--refine", "auto"])
    assert auto.exit_code == 0, auto.output
    record = json.loads((tmp_path / "o" / "walk" / "sequence.json").read_text())
    assert record["settings"]["refine"] == "none" and "no frames known" in record["refine"]["note"]
    write_frames(tmp_path / "frames" / "walk", ["00000", "00001", "00002", "00003"], (36, 48), suffix=".jpg")
    framed = CliRunner().invoke(infer_main, [*base, "--refine", "auto", "--frames", str(tmp_path / "frames"), "--tta", "flip"])
    assert framed.exit_code == 0, framed.output
    record = json.loads((tmp_path / "o" / "walk" / "sequence.json").read_text())
    assert record["settings"]["refine"] == "guided" and record["settings"]["tta"] == "flip"
    assert record["original_size"] == [36, 48]
    assert "tta flip, refine auto (guided for 1 of 1)" in framed.stderr
    missing = CliRunner().invoke(infer_main, [*base, "--frames", str(tmp_path / "nowhere")])
    assert missing.exit_code != 0 and "--frames folder not found" in missing.output


def test_a_corrupt_frame_is_named_and_nothing_is_written(tmp_path: Path, monkeypatch) -> None:
    from fakes import write_frames

    _fake_model(monkeypatch)
    _write_sequence(tmp_path / "flows" / "walk", 6)
    frames = write_frames(tmp_path / "frames" / "walk", [f"{t:05d}" for t in range(6)], (36, 48))
    frames[4].write_bytes(frames[4].read_bytes()[:40])  # truncated
    result = CliRunner().invoke(infer_main, [str(tmp_path / "flows" / "walk"), "--out", str(tmp_path / "o"), "--frames", str(tmp_path / "frames"), "--refine", "guided"])
    assert result.exit_code != 0
    assert "00004.png: not a decodable image" in result.output
    assert not (tmp_path / "o").exists()  # the folders made for the failed run are gone


def test_skip_done_knows_the_stages_and_the_frames(tmp_path: Path, monkeypatch) -> None:
    from fakes import write_frames

    model_file = tmp_path / "m.onnx"
    model_file.write_bytes(b"pretend model bytes")  # --skip-done needs the model file's hash
    _fake_model(monkeypatch, path=model_file)
    _write_sequence(tmp_path / "flows" / "walk", 4)
    frames = write_frames(tmp_path / "frames" / "walk", ["00000", "00001", "00002", "00003"], (36, 48))
    base = ["--model", str(model_file), str(tmp_path / "flows" / "walk"), "--out", str(tmp_path / "o"), "--skip-done"]
    framed = [*base, "--frames", str(tmp_path / "frames")]
    assert CliRunner().invoke(infer_main, framed).exit_code == 0
    assert "1 sequence(s) already done" in CliRunner().invoke(infer_main, framed).stderr
    assert "0 sequence(s) already done" in CliRunner().invoke(infer_main, [*framed, "--guided-eps", "0.001"]).stderr
    write_frames(tmp_path / "frames" / "walk", ["00000", "00001", "00002", "00003"], (36, 48), seed=5)  # new guides
    assert "0 sequence(s) already done" in CliRunner().invoke(infer_main, framed).stderr
    assert frames[0].is_file()
    # An output written before the stages existed is what --tta none --refine none makes now.
    plain = [*base, "--tta", "none", "--refine", "none"]
    assert CliRunner().invoke(infer_main, plain).exit_code == 0
    record_file = tmp_path / "o" / "walk" / "sequence.json"
    record = json.loads(record_file.read_text())
    for key in ("tta", "refine"):
        record["settings"].pop(key)
    record.pop("refine")
    record_file.write_text(json.dumps(record))
    assert "1 sequence(s) already done" in CliRunner().invoke(infer_main, plain).stderr
    assert "0 sequence(s) already done" in CliRunner().invoke(infer_main, base).stderr  # the defaults flip


def test_skip_done_redoes_outputs_of_an_earlier_form_of_the_split(tmp_path: Path, monkeypatch) -> None:
    """The same split settings made other labels before the split's algorithm changed: an
    output that records no form (or another) is not done."""
    model_file = tmp_path / "m.onnx"
    model_file.write_bytes(b"pretend model bytes")
    _fake_model(monkeypatch, path=model_file)
    _write_sequence(tmp_path / "flows" / "walk", 4)
    args = ["--model", str(model_file), str(tmp_path / "flows" / "walk"), "--out", str(tmp_path / "o"), "--skip-done"]
    assert CliRunner().invoke(infer_main, args).exit_code == 0
    assert "1 sequence(s) already done" in CliRunner().invoke(infer_main, args).stderr
    record_file = tmp_path / "o" / "walk" / "sequence.json"
    record = json.loads(record_file.read_text())
    record["settings"]["motion_split"].pop("form")  # as the first form wrote it
    record_file.write_text(json.dumps(record))
    assert "0 sequence(s) already done" in CliRunner().invoke(infer_main, args).stderr


def test_skip_done_redoes_outputs_linked_before_the_span_existed(tmp_path: Path, monkeypatch) -> None:
    """An output that records no link_span was linked with span 1: it is done for
    --link-span 1 and not for today's default (2), whatever the default is."""
    model_file = tmp_path / "m.onnx"
    model_file.write_bytes(b"pretend model bytes")
    _fake_model(monkeypatch, path=model_file)
    _write_sequence(tmp_path / "flows" / "walk", 4)
    args = ["--model", str(model_file), str(tmp_path / "flows" / "walk"), "--out", str(tmp_path / "o"), "--skip-done"]
    assert CliRunner().invoke(infer_main, [*args, "--link-span", "1"]).exit_code == 0
    record_file = tmp_path / "o" / "walk" / "sequence.json"
    record = json.loads(record_file.read_text())
    assert record["settings"].pop("link_span") == 1  # as outputs were written before it existed
    record_file.write_text(json.dumps(record))
    assert "1 sequence(s) already done" in CliRunner().invoke(infer_main, [*args, "--link-span", "1"]).stderr
    assert "0 sequence(s) already done" in CliRunner().invoke(infer_main, [*args, "--link-span", "2"]).stderr
    assert json.loads(record_file.read_text())["settings"]["link_span"] == 2  # made again, recorded
    # A stage that ran but whose parameters the record lost is not taken for today's defaults.
    record = json.loads(record_file.read_text())
    assert record["settings"]["split"] == "motion"
    record["settings"].pop("motion_split")
    record_file.write_text(json.dumps(record))
    assert "0 sequence(s) already done" in CliRunner().invoke(infer_main, args).stderr
    # The vote is recorded too: an output made without it is made again with it, once.
    assert "0 sequence(s) already done" in CliRunner().invoke(infer_main, [*args, "--link-vote"]).stderr
    assert json.loads(record_file.read_text())["settings"]["link_vote"] is True
    assert "1 sequence(s) already done" in CliRunner().invoke(infer_main, [*args, "--link-vote"]).stderr
    # And the reclaim (an output recorded before it existed was linked without it).
    record = json.loads(record_file.read_text())
    assert record["settings"].pop("link_reclaim") is False
    record_file.write_text(json.dumps(record))
    assert "1 sequence(s) already done" in CliRunner().invoke(infer_main, [*args, "--link-vote", "--no-link-reclaim"]).stderr
    assert "0 sequence(s) already done" in CliRunner().invoke(infer_main, [*args, "--link-vote", "--link-reclaim"]).stderr
    assert json.loads(record_file.read_text())["settings"]["link_reclaim"] is True


def test_image_files_are_needed_only_to_refine(tmp_path: Path, monkeypatch) -> None:
    from fakes import write_frames

    _fake_model(monkeypatch)
    _write_sequence(tmp_path / "Flows" / "a", 4)
    write_frames(tmp_path / "Frames" / "a", ["00000", "00001", "00002"], (36, 48), suffix=".jpg")  # 00003 missing
    (tmp_path / "S_val.csv").write_text(
        "Flow,GtMask,Image,Sequence,Sequence_Index\n"
        + "".join(f"Flows/a/{t:05d}.flo,,Frames/a/{t:05d}.jpg,a,{t}\n" for t in range(4))
    )
    args = ["--data-file", str(tmp_path / "S"), "--base-dir", str(tmp_path), "--out", str(tmp_path / "o")]
    plain = CliRunner().invoke(infer_main, [*args, "--refine", "none"])
    assert plain.exit_code == 0, plain.output
    refused = CliRunner().invoke(infer_main, args)
    assert refused.exit_code != 0
    assert "Frames/a/00003.jpg: frame of sequence 'a' not found (needed to refine its masks)" in refused.output


def test_auto_says_when_only_some_sequences_are_refined(tmp_path: Path, monkeypatch) -> None:
    from fakes import write_frames

    _fake_model(monkeypatch)
    for name in ("walk", "run"):
        _write_sequence(tmp_path / "flows" / name, 4)
    write_frames(tmp_path / "frames" / "walk", ["00000", "00001", "00002", "00003"], (36, 48))
    sequences = [str(tmp_path / "flows" / "walk"), str(tmp_path / "flows" / "run")]
    both = CliRunner().invoke(infer_main, [*sequences, "--out", str(tmp_path / "o"), "--frames", str(tmp_path / "frames")])
    assert both.exit_code != 0 and "run: no frames of sequence 'run'" in both.output  # --frames covers every input
    # --workers 1: the fake model lives in this process only.
    mixed = CliRunner().invoke(infer_main, [str(tmp_path / "frames" / "walk"), sequences[1], "--out", str(tmp_path / "o"), "--flow-method", "dis", "--workers", "1"])
    assert mixed.exit_code == 0, mixed.output
    assert "refine auto (guided for 1 of 2)" in mixed.stderr
    assert "warning: 1 sequence(s) have no frames, so their masks are not refined" in mixed.stderr


def test_no_input_is_one_line_naming_what_is_accepted() -> None:
    result = CliRunner().invoke(infer_main, [])
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0
    assert "no input given" in result.output and "--data-file" in result.output and "videos" in result.output
    missing_out = CliRunner().invoke(infer_main, ["clip.mp4"])
    assert missing_out.exit_code == 2 and "Missing option '--out'" in missing_out.output


def test_help_is_in_sections_with_the_common_options_first() -> None:
    text = CliRunner().invoke(infer_main, ["--help"]).output
    titles = ["Inputs and output:", "Model:", "Stages (docs/inference-stages.md):", "Flow of video and frame inputs:", "Performance:", "Other options:"]
    where = [text.index(title) for title in titles]
    assert where == sorted(where)
    inputs = text[where[0]:where[1]]
    assert inputs.lstrip().split("\n")[1].strip().startswith("--out")
    assert "--model" in text[where[1]:where[2]] and "--guided-radius" in text[where[2]:where[3]]
    assert "--verbose" in text[where[5]:] and "--help" in text[where[5]:]
    assert "[INPUTS]" not in text.split("Other options:")[-1]
    for param in infer_main.params:  # every option shown exactly once
        for flag in getattr(param, "opts", []):
            if flag.startswith("--"):
                assert len(re.findall(rf"^ +(?:-\w, )?{flag}(?![\w-])", text, flags=re.M)) == 1, flag


def test_workers_segment_sequences_in_processes_as_one_process_does(tmp_path: Path) -> None:
    """--workers 2 (the bundled model, real processes): the same labels as one process, a
    failing sequence named while the others are written, and --ray refused beside it."""
    for name, seed in (("a", 1), ("b", 2), ("c", 3)):
        _write_sequence(tmp_path / "flows" / name, 5, seed=seed)
    inputs = [str(tmp_path / "flows" / n) for n in ("a", "b", "c")]
    stages = ["--refine", "none", "--flow-method", "dis"]
    one = CliRunner().invoke(infer_main, [*inputs, "--out", str(tmp_path / "one"), "--workers", "1", *stages])
    two = CliRunner().invoke(infer_main, [*inputs, "--out", str(tmp_path / "two"), "--workers", "2", "--threads", "1", *stages])
    assert one.exit_code == 0 and two.exit_code == 0, two.output
    assert "3 sequence(s)" in two.output and "2 worker processes of 1 thread(s)" in two.output
    for name in ("a", "b", "c"):
        assert np.array_equal(read_sequence_output(tmp_path / "one" / name)[0], read_sequence_output(tmp_path / "two" / name)[0])
    (tmp_path / "flows" / "b" / "00003.flo").write_bytes(b"PIEH\x00")  # truncated
    broken = CliRunner().invoke(infer_main, [*inputs, "--out", str(tmp_path / "three"), "--workers", "2", *stages])
    assert broken.exit_code == 1 and "failed: b: " in broken.output and "00003.flo" in broken.output
    assert (tmp_path / "three" / "a" / "labels.npy").is_file() and not (tmp_path / "three" / "b").exists()
    both = CliRunner().invoke(infer_main, [*inputs, "--out", str(tmp_path / "x"), "--workers", "2", "--ray", "local"])
    assert both.exit_code == 2 and "give --workers or --ray, not both" in both.output
