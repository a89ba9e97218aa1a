"""Writing a sequence's output folder (stseg_deploy.output.folder.segment_to_folder): the files,
their sizes, reruns and interruptions, without the command line (test_cli_infer.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from fakes import FakeModel
from fakes import write_sequence as _write_sequence
from PIL import Image

from stseg_deploy.errors import FlowFileError
from stseg_deploy.io.masks import read_label_png
from stseg_deploy.output.folder import segment_to_folder
from stseg_deploy.output.layout import OutputOptions, read_sequence_output
from stseg_deploy.pipeline import Segmenter
from stseg_deploy.preprocess import resize_labels
from stseg_deploy.settings import InferenceSettings
from stseg_deploy.sources import sequences_from_datasplit, sequences_from_folders
from stseg_deploy.stages.refine import RefineSettings

FAKES = Path(__file__).resolve().parents[1]  # tests/deploy, where fakes.py lives

def _frames(folder: Path, n: int) -> dict[str, bytes]:
    folder.mkdir(parents=True)
    for t in range(n):
        Image.fromarray(np.full((16, 24, 3), t * 10, np.uint8)).save(folder / f"{t:05d}.png")
    return _tree(folder)


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}

def test_rerun_killed_mid_write_keeps_the_earlier_output(tmp_path: Path) -> None:
    _write_sequence(tmp_path / "flows" / "walk", 8)
    seq = sequences_from_folders([tmp_path / "flows" / "walk"])[0]
    segment_to_folder(Segmenter(FakeModel()), seq, tmp_path / "out")
    before = _tree(tmp_path / "out" / "walk")
    script = textwrap.dedent(f"""
        import time
        from fakes import FakeModel
        from stseg_deploy.output.folder import segment_to_folder
        from stseg_deploy.output.layout import OutputOptions
        from stseg_deploy.pipeline import Segmenter
        from stseg_deploy.sources import sequences_from_folders

        def slow(frame):
            print("frame", flush=True)
            time.sleep(30)

        seq = sequences_from_folders([{str(tmp_path / "flows" / "walk")!r}])[0]
        segment_to_folder(Segmenter(FakeModel(), batch_size=1), seq, {str(tmp_path / "out")!r}, OutputOptions(save_proba=True), on_frame=slow)
    """)
    env = {**os.environ, "PYTHONPATH": f"{FAKES}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    writer = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert writer.stdout.readline().strip() == "frame"
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=10)
    finally:
        writer.kill()
    assert _tree(tmp_path / "out" / "walk") == before
    read_sequence_output(tmp_path / "out" / "walk")  # still a complete output
    # The next run clears the dead writer's temp folder and replaces the output.
    segment_to_folder(Segmenter(FakeModel()), seq, tmp_path / "out", OutputOptions(save_proba=True))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["walk"]
    assert (tmp_path / "out" / "walk" / "proba").is_dir()


def test_flows_replaced_while_being_read_give_no_output(tmp_path: Path) -> None:
    from stseg_deploy.errors import StsegInputError
    from stseg_deploy.flow.opticalflow import flow_from_video

    _frames(tmp_path / "frames" / "a", 8)
    (tmp_path / "frames" / "b").mkdir()
    for t in range(8):
        Image.fromarray(np.full((16, 24, 3), 200 - t * 10, np.uint8)).save(tmp_path / "frames" / "b" / f"{t:05d}.png")
    flow_from_video(tmp_path / "frames" / "a", tmp_path / "flows" / "walk", method="farneback")
    seq = sequences_from_folders([tmp_path / "flows" / "walk"])[0]
    rerun = []

    def rerun_flow(frame) -> None:  # another user re-computes the flows meanwhile
        if not rerun:
            rerun.append(flow_from_video(tmp_path / "frames" / "b", tmp_path / "flows" / "walk"))

    with pytest.raises(StsegInputError, match="walk: its flow folder was replaced by another stseg-flow run"):
        segment_to_folder(Segmenter(FakeModel()), seq, tmp_path / "out", on_frame=rerun_flow)
    assert rerun and not (tmp_path / "out").exists()


def test_sequences_are_named_after_the_path_given_not_a_links_target(tmp_path: Path) -> None:
    _write_sequence(tmp_path / "flows_raft_sintel", 4)
    (tmp_path / "blackswan").symlink_to(tmp_path / "flows_raft_sintel")
    assert sequences_from_folders([tmp_path / "blackswan"])[0].name == "blackswan"
    assert sequences_from_folders([tmp_path / "blackswan" / "." ])[0].name == "blackswan"


def test_segment_to_folder_writes_outputs(tmp_path: Path) -> None:
    _write_sequence(tmp_path / "flows" / "walk", 5, size=(25, 33))
    seq = sequences_from_folders([tmp_path / "flows" / "walk"])[0]
    segmenter = Segmenter(FakeModel(), InferenceSettings.from_options(cut_size=None), batch_size=2)
    stats = segment_to_folder(segmenter, seq, tmp_path / "out", OutputOptions(save_proba=True, save_features=True))
    out = tmp_path / "out" / "walk"
    labels, record = read_sequence_output(out)
    assert labels.shape == (5, 12, 16) and labels.dtype == np.uint8
    assert record["frames"] == ["00000", "00001", "00002", "00003", "00004"]
    assert record["original_size"] == [25, 33] and stats.n_frames == 5
    with Image.open(out / "00003.png") as image:
        assert image.mode == "P" and image.size == (33, 25)
        np.testing.assert_array_equal(np.asarray(image), resize_labels(labels[3], (25, 33)))
    proba = np.load(out / "proba" / "00003.npy")
    assert proba.shape == (3 + 4, 12, 16)  # with the motion split's spare segments
    np.testing.assert_array_equal(proba.argmax(axis=0), labels[3])
    assert np.load(out / "features" / "00000.npy").dtype == np.float16
    assert not list(out.glob(".*"))  # no temporary files left


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


def test_rerun_replaces_the_previous_output(tmp_path: Path) -> None:
    _write_sequence(tmp_path / "flows" / "walk", 6)
    seq = sequences_from_folders([tmp_path / "flows" / "walk"])[0]
    segment_to_folder(Segmenter(FakeModel()), seq, tmp_path / "out", OutputOptions(save_proba=True))
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
    with pytest.raises(FlowFileError, match="00003.flo"):
        segment_to_folder(Segmenter(FakeModel()), sequences_from_folders([tmp_path / "flows" / "walk"])[0], tmp_path / "out")
    # The failed rerun leaves the earlier good output exactly as it was, and no temp folder.
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["walk"]


def test_a_refined_output_keeps_linked_labels_and_writes_refined_pngs(tmp_path: Path) -> None:
    from dataclasses import replace

    from fakes import write_frames

    from stseg_deploy.output.layout import read_label_maps
    from stseg_deploy.output.sinks import MemorySink

    _write_sequence(tmp_path / "flows" / "walk", 6)
    (seq,) = sequences_from_folders([tmp_path / "flows" / "walk"])
    seq = replace(seq, images=tuple(write_frames(tmp_path / "frames", seq.frame_names, (40, 50))), frame_size=(40, 50))
    refined = Segmenter(FakeModel(), InferenceSettings.from_options(cut_size=3, tta="none", refine="guided"))
    plain = Segmenter(FakeModel(), InferenceSettings.from_options(cut_size=3, tta="none", refine="none"))
    segment_to_folder(refined, seq, tmp_path / "refined", model_sha256="m")
    segment_to_folder(plain, seq, tmp_path / "plain", model_sha256="m")
    memory = MemorySink()
    refined.run(seq, memory)
    labels, record = read_sequence_output(tmp_path / "refined" / "walk")
    np.testing.assert_array_equal(labels, read_sequence_output(tmp_path / "plain" / "walk")[0])
    pngs = np.stack([read_label_png(tmp_path / "refined" / "walk" / f"{n}.png") for n in seq.frame_names])
    np.testing.assert_array_equal(pngs, memory.refined)
    maps, _ = read_label_maps(tmp_path / "refined" / "walk")
    np.testing.assert_array_equal(maps, pngs)
    plain_maps, _ = read_label_maps(tmp_path / "plain" / "walk")
    np.testing.assert_array_equal(plain_maps, np.stack([resize_labels(frame, (40, 50)) for frame in labels]))
    assert (maps != plain_maps).any()
    assert record["settings"]["refine"] == "guided" and record["settings"]["guided"] == RefineSettings().params()
    assert record["refine"] == {"asked": "guided", "applied": "guided"}
    assert record["seconds"]["refine"] > 0
    (tmp_path / "refined" / "walk" / "00002.png").unlink()
    with pytest.raises(ValueError, match=r"00002.png: missing; the output is refined"):
        read_label_maps(tmp_path / "refined" / "walk")



def test_the_foreground_is_written_beside_the_labels(tmp_path: Path) -> None:
    from stseg_deploy.io.masks import label_palette, read_mask_png, read_object_png
    from stseg_deploy.output.layout import FOREGROUND_DIR, OBJECTS_DIR, object_id_maps, read_label_maps, record_objects

    _write_sequence(tmp_path / "flows" / "walk", 7, size=(24, 32))
    (seq,) = sequences_from_folders([tmp_path / "flows" / "walk"])
    segment_to_folder(Segmenter(FakeModel(), InferenceSettings.from_options(cut_size=2)), seq, tmp_path / "out")
    out = tmp_path / "out" / "walk"
    maps, record = read_label_maps(out)
    chosen = record_objects(record)
    assert record["settings"]["foreground"] == "motion" and chosen.shape == (7, record["n_labels"])
    # One decision per linking chunk (cut size 2: frames 0-2, 3-4, 5-6).
    assert (chosen[0] == chosen[1]).all() and (chosen[1] == chosen[2]).all() and (chosen[5] == chosen[6]).all()
    ids = object_id_maps(maps, chosen)
    for t in range(7):
        np.testing.assert_array_equal(read_object_png(out / OBJECTS_DIR / f"{t:05d}.png"), ids[t])
        np.testing.assert_array_equal(read_mask_png(out / FOREGROUND_DIR / f"{t:05d}.png"), ids[t] > 0)
        with Image.open(out / f"{t:05d}.png") as image:
            palette = np.array(image.getpalette()[: 3 * 256]).reshape(-1, 3)
        np.testing.assert_array_equal(palette[: record["n_labels"]], label_palette(chosen[t])[: record["n_labels"]])
    segment_to_folder(Segmenter(FakeModel(), InferenceSettings.from_options(cut_size=2, foreground="none")), seq, tmp_path / "out")
    maps, record = read_label_maps(out)
    assert record_objects(record) is None and "objects" not in record
    assert not (out / FOREGROUND_DIR).exists() and not (out / OBJECTS_DIR).exists()
