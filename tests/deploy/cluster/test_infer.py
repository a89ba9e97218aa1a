"""stseg_deploy.cluster.infer on a local Ray of 2 CPUs: the same labels as one process, a killed
worker costing only a retry, --skip-done, bad input named while the others finish, and
stseg-prepare's flows on Ray."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import numpy as np
import pytest
import ray
from click.testing import CliRunner
from davistree import davis_tree
from fakes import write_sequence

from stseg_deploy.cli.infer import infer_main
from stseg_deploy.cli.prepare import prepare_main
from stseg_deploy.cluster.infer import InferJob, SegmentWorker, segment_on_ray, worker_plan
from stseg_deploy.cluster.raykit import ClusterError, check_probe
from stseg_deploy.io.flowio import read_flow
from stseg_deploy.output.layout import read_sequence_output
from stseg_deploy.sources import Sequence, sequences_from_folders
from stseg_deploy.zoo import resolve_model

SEQUENCES = {"cat": 8, "dog": 10, "owl": 6}


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray for the module (2 CPUs, a small object store); the CLI reuses it."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=80 * 1024 * 1024)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def flows(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("flows")
    for seed, (name, n) in enumerate(SEQUENCES.items()):
        write_sequence(root / name, n, size=(24, 30), seed=seed)
    return root


@pytest.fixture(scope="module")
def single(flows: Path, tmp_path_factory) -> Path:
    """The reference: one process, one thread."""
    out = tmp_path_factory.mktemp("single") / "out"
    result = CliRunner().invoke(infer_main, [*(str(flows / n) for n in SEQUENCES), "--out", str(out), "--threads", "1"])
    assert result.exit_code == 0, result.output
    return out


def _infer(flows: Path, out: Path, *args: str, names=SEQUENCES):
    return CliRunner().invoke(infer_main, [*(str(flows / n) for n in names), "--out", str(out), "--threads", "1", "--ray", "local", *args])


def _assert_same_outputs(a: Path, b: Path, names) -> None:
    for name in names:
        labels_a, record_a = read_sequence_output(a / name)
        labels_b, record_b = read_sequence_output(b / name)
        np.testing.assert_array_equal(labels_a, labels_b)
        assert record_a["settings"] == record_b["settings"] and record_a["model_file"]["sha256"] == record_b["model_file"]["sha256"]
        pngs = sorted(p.name for p in (a / name).glob("*.png"))
        assert pngs and pngs == sorted(p.name for p in (b / name).glob("*.png"))
        for png in pngs:
            assert (a / name / png).read_bytes() == (b / name / png).read_bytes(), f"{name}/{png}"


def test_labels_equal_a_single_process(local_ray, flows: Path, single: Path, tmp_path: Path) -> None:
    result = _infer(flows, tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "2 worker(s) on 1 node(s): onnxruntime on cpu" in result.stderr
    assert result.stdout.startswith("segmented 24 frames of 3 sequence(s) on 2 worker(s)")
    assert "frames/s over the cluster" in result.stdout
    _assert_same_outputs(single, tmp_path / "out", SEQUENCES)
    assert not [p.name for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]  # no probe, no temp


def test_skip_done_skips_only_what_matches(local_ray, flows: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert _infer(flows, out).exit_code == 0
    before = {n: (out / n / "sequence.json").stat().st_ino for n in SEQUENCES}
    again = _infer(flows, out, "--skip-done")
    assert again.exit_code == 0, again.output
    assert "3 sequence(s) already done with these inputs, settings and model; skipped" in again.stderr
    assert again.stdout.startswith("nothing to segment")
    assert {n: (out / n / "sequence.json").stat().st_ino for n in SEQUENCES} == before
    # Another setting: done again, for every sequence; the single process skips the same way.
    changed = _infer(flows, out, "--skip-done", "--cut-size", "2")
    assert "0 sequence(s) already done" in changed.stderr and "of 3 sequence(s)" in changed.stdout
    assert all(json.loads((out / n / "sequence.json").read_text())["cut_size"] == 2 for n in SEQUENCES)
    alone = CliRunner().invoke(infer_main, [str(flows / "cat"), "--out", str(out), "--cut-size", "2", "--skip-done"])
    assert alone.exit_code == 0 and "1 sequence(s) already done" in alone.stderr


def test_skip_done_sees_inputs_made_again(tmp_path: Path) -> None:
    write_sequence(tmp_path / "flows" / "cat", 6, size=(24, 30))
    args = [str(tmp_path / "flows" / "cat"), "--out", str(tmp_path / "out"), "--skip-done"]
    assert CliRunner().invoke(infer_main, args).exit_code == 0
    assert "1 sequence(s) already done" in CliRunner().invoke(infer_main, args).stderr
    write_sequence(tmp_path / "flows" / "cat", 6, size=(24, 30), seed=9)  # the same names, new flows
    again = CliRunner().invoke(infer_main, args)
    assert again.exit_code == 0 and "0 sequence(s) already done" in again.stderr


@pytest.mark.parametrize("stages", [("none", "none"), ("flip", "guided")])
def test_videos_and_overlays_on_ray_equal_a_single_process(local_ray, tmp_path: Path, stages) -> None:
    """A video's flow is computed on the worker, as stseg-infer does it alone; the test-time
    flip and the guided refinement run there too."""
    from stseg_synth.video import render_video

    videos = [render_video(tmp_path / f"clip{k}.mp4", n_frames=6, size=(40, 64), seed=k).path for k in range(2)]
    args = [*(str(v) for v in videos), "--threads", "1", "--flow-method", "dis", "--overlay", "--tta", stages[0], "--refine", stages[1]]
    alone = CliRunner().invoke(infer_main, [*args, "--out", str(tmp_path / "alone")])
    spread = CliRunner().invoke(infer_main, [*args, "--out", str(tmp_path / "ray"), "--ray", "local"])
    assert alone.exit_code == 0 and spread.exit_code == 0, alone.output + spread.output
    _assert_same_outputs(tmp_path / "alone", tmp_path / "ray", ["clip0", "clip1"])
    assert (tmp_path / "ray" / "clip1" / "overlay.mp4").is_file()
    record = json.loads((tmp_path / "ray" / "clip0" / "sequence.json").read_text())
    assert (record["settings"]["tta"], record["settings"]["refine"]) == stages


def test_relative_paths_mean_the_driver_s_folder_on_the_workers(local_ray, flows: Path, tmp_path: Path, monkeypatch) -> None:
    """Ray started in another folder (the module's fixture): workers still read and write
    where the paths point from the driver's working folder."""
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(infer_main, [str(flows / "cat"), "--out", "rel", "--threads", "1", "--ray", "local"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "rel" / "cat" / "sequence.json").is_file()


class _Broken(Sequence):
    """A sequence whose reading fails in a way segment() does not expect (a bug, say)."""

    def read_flows(self, with_images: bool = False):
        raise KeyError("planted")


def test_an_unexpected_error_fails_its_sequence_only(local_ray, flows: Path, tmp_path: Path) -> None:
    import stseg_deploy.cluster.infer as cluster

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import this module
    (good,) = sequences_from_folders([flows / "cat"])
    broken = _Broken("broken", good.flows, good.masks)
    job = InferJob(str(tmp_path / "out"), str(resolve_model(None)[0]), provider="cpu", threads=1, batch_size=2)
    outcomes = cluster.segment_on_ray(local_ray, [broken, good], job)
    assert [(o.name, o.status) for o in outcomes] == [("broken", "failed"), ("cat", "done")]
    assert "planted" in outcomes[0].error and sorted(p.name for p in (tmp_path / "out").iterdir()) == ["cat"]


def test_bad_input_is_named_and_the_others_finish(local_ray, flows: Path, tmp_path: Path) -> None:
    bad = tmp_path / "flows" / "bad"
    write_sequence(bad, 6, size=(24, 30))
    (bad / "00003.flo").write_bytes((bad / "00003.flo").read_bytes()[:40])
    result = CliRunner().invoke(
        infer_main, [str(flows / "cat"), str(bad), str(flows / "dog"), "--out", str(tmp_path / "out"), "--threads", "1", "--ray", "local"]
    )
    assert result.exit_code == 1
    assert f"failed: bad: {bad / '00003.flo'}: " in result.stderr
    assert "1 of 3 sequence(s) failed (named above)" in result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["cat", "dog"]  # bad left no trace


def test_a_killed_worker_costs_a_retry_and_changes_nothing(local_ray, tmp_path: Path) -> None:
    write_sequence(tmp_path / "flows" / "long", 120, size=(24, 30), seed=5)
    write_sequence(tmp_path / "flows" / "short", 5, size=(24, 30), seed=6)
    sequences = sequences_from_folders([tmp_path / "flows" / "long", tmp_path / "flows" / "short"])
    model_file = str(resolve_model(None)[0])
    reference = tmp_path / "reference"
    SegmentWorker(InferJob(str(reference), model_file, provider="cpu", threads=1, batch_size=1)).segment(sequences[0])
    killed: list[int] = []

    def kill_mid_sequence(progress) -> None:
        for _host, pid, name, frames in progress.workers:
            if name == "long" and frames >= 2 and not killed:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)

    job = InferJob(str(tmp_path / "out"), model_file, provider="cpu", threads=1, batch_size=1)
    outcomes = segment_on_ray(local_ray, sequences, job, on_progress=kill_mid_sequence, poll=0.02)
    assert killed, "the test did not catch the worker mid-sequence"
    assert [(o.name, o.status) for o in outcomes] == [("long", "done"), ("short", "done")]
    assert outcomes[0].attempts == 2 and outcomes[1].attempts == 1
    _assert_same_outputs(reference, tmp_path / "out", ["long"])
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["long", "short"]  # the dead writer's temp is gone


def test_stseg_prepare_computes_the_same_flows_on_ray(local_ray, tmp_path: Path) -> None:
    root = davis_tree(tmp_path / "DAVIS", {"train": {"a": 3, "b": 4}})
    runs = {
        "local": ["--workers", "1"],
        "ray": ["--ray", "local"],
    }
    for name, args in runs.items():
        result = CliRunner().invoke(prepare_main, ["davis", str(root), "--out", str(tmp_path / name), "--flow-method", "dis", *args])
        assert result.exit_code == 0, result.output
    for flow in sorted((tmp_path / "local" / "Flows" / "480p").glob("*/*.flo")):
        twin = tmp_path / "ray" / flow.relative_to(tmp_path / "local")
        np.testing.assert_array_equal(read_flow(flow), read_flow(twin))
    both = CliRunner().invoke(prepare_main, ["davis", str(root), "--out", str(tmp_path / "x"), "--ray", "local", "--workers", "2"])
    assert both.exit_code == 2 and "give --workers or --ray, not both" in both.output
    mine = CliRunner().invoke(prepare_main, ["davis", str(root), "--out", str(tmp_path / "x"), "--ray", "local", "--flows", str(tmp_path)])
    assert mine.exit_code == 2 and "with --flows none are computed" in mine.output


def test_without_ray_the_message_says_how_to_install(flows: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    result = CliRunner().invoke(infer_main, [str(flows / "cat"), "--out", str(tmp_path / "out"), "--ray", "local"])
    assert result.exit_code == 1
    assert 'Error: --ray needs Ray, an optional dependency: pip install "stseg[cluster]"' in result.stderr


def test_worker_plan() -> None:
    assert worker_plan({"CPU": 16.0}, "auto", None, 100) == (16, {"num_cpus": 1})
    assert worker_plan({"CPU": 16.0}, "cpu", 4, 100) == (4, {"num_cpus": 4})
    assert worker_plan({"CPU": 16.0}, "cpu", 1, 3) == (3, {"num_cpus": 1})  # no idle workers
    assert worker_plan({"CPU": 32.0, "GPU": 4.0}, "auto", None, 100) == (4, {"num_gpus": 1, "num_cpus": 1})
    assert worker_plan({"CPU": 32.0, "GPU": 4.0}, "cpu", 2, 100) == (16, {"num_cpus": 2})
    with pytest.raises(ClusterError, match="--provider cuda: the Ray cluster has no GPU"):
        worker_plan({"CPU": 8.0}, "cuda", None, 10)
    with pytest.raises(ClusterError, match="--threads 8: the Ray cluster has only 2 CPU"):
        worker_plan({"CPU": 2.0}, "cpu", 8, 10)


def test_a_worker_that_cannot_see_out_says_so(tmp_path: Path) -> None:
    probe = tmp_path / "out" / ".stseg-ray-probe.x"
    with pytest.raises(OSError, match=r"out: not visible from node .*every node sees"):
        check_probe(probe)
    worker = SegmentWorker(InferJob(str(tmp_path / "out"), str(resolve_model(None)[0])), str(probe))
    hello = worker.hello()
    assert hello["pid"] == os.getpid() and "not visible from node" in hello["error"]
    assert "not visible" in worker.segment(None)["error"]  # refuses before touching any sequence
