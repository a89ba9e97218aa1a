"""Tests for stseg_deploy.sources: where sequences come from."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fakes import write_sequence as _write_sequence
from PIL import Image

from stseg_deploy.errors import StsegInputError
from stseg_deploy.sources import sequences_from_datasplit


def test_a_video_sequence_takes_its_flow_from_the_recipe(tmp_path: Path) -> None:
    from stseg_deploy.flow.recipe import FlowRecipe
    from stseg_deploy.sources import open_video_sequence, sequences_from_inputs

    (tmp_path / "clip").mkdir()
    for t in range(4):
        Image.fromarray(np.full((300, 400, 3), 40 * t, np.uint8)).save(tmp_path / "clip" / f"{t:05d}.png")
    seq = open_video_sequence(tmp_path / "clip")
    assert (seq.recipe.method, seq.size, seq.frame_size, seq.n_frames) == ("deepflow-dis", (240, 320), (300, 400), 3)
    (other,) = sequences_from_inputs([tmp_path / "clip"], FlowRecipe("dis", scale=0.5, step=2))
    assert (other.recipe.method, other.size, other.n_frames, other.name) == ("dis", (150, 200), 2, "clip")
    assert open_video_sequence(tmp_path / "clip", FlowRecipe("farneback", scale=1)).size is None
    with pytest.raises(StsegInputError, match="only 4 frame"):
        open_video_sequence(tmp_path / "clip", FlowRecipe(step=4))


def test_datasplit_source_names_missing_flow(tmp_path: Path) -> None:
    _write_sequence(tmp_path / "Flows" / "a", 3)
    (tmp_path / "S_val.csv").write_text(
        "Flow,GtMask,Sequence,Sequence_Index\n"
        + "".join(f"Flows/a/{t:05d}.flo,,a,{t}\n" for t in range(4))
    )
    with pytest.raises(FileNotFoundError, match="00003.flo: flow file of sequence 'a' not found"):
        sequences_from_datasplit(tmp_path / "S", "val", tmp_path)


def test_parent_of_sequence_folders_gets_a_hint(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from stseg_deploy.cli.infer import infer_main

    for name in ("bear", "cat"):
        _write_sequence(tmp_path / "flows" / name, 3)
    result = CliRunner().invoke(infer_main, ["--model", "m.onnx", str(tmp_path / "flows"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert "holds no flow files or frames, but 2 folder(s) (bear, cat)" in result.output


def test_datasplit_image_column_gives_the_frames(tmp_path: Path) -> None:
    from fakes import write_frames

    _write_sequence(tmp_path / "Flows" / "a", 3)
    images = write_frames(tmp_path / "Frames" / "a", ["00000", "00001", "00002"], (20, 26), suffix=".jpg")
    (tmp_path / "S_val.csv").write_text(
        "Flow,GtMask,Image,Sequence,Sequence_Index\n"
        + "".join(f"Flows/a/{t:05d}.flo,,Frames/a/{t:05d}.jpg,a,{t}\n" for t in range(3))
    )
    (seq,) = sequences_from_datasplit(tmp_path / "S", "val", tmp_path)
    assert seq.has_frames and seq.images == tuple(images) and seq.frame_size == (20, 26)
    read = list(seq.read_flows(with_images=True))
    expected = np.asarray(Image.open(images[1]).convert("RGB"))
    np.testing.assert_array_equal(read[1][2], expected)
    assert all(image is None for _, _, image in seq.read_flows())  # frame files are read only when asked
    (tmp_path / "S_val.csv").write_text(  # one row without an Image: the frames are unknown
        "Flow,GtMask,Image,Sequence,Sequence_Index\n"
        + "".join(f"Flows/a/{t:05d}.flo,,{'' if t == 1 else f'Frames/a/{t:05d}.jpg'},a,{t}\n" for t in range(3))
    )
    assert not sequences_from_datasplit(tmp_path / "S", "val", tmp_path)[0].has_frames


def test_frames_are_matched_to_flow_names(tmp_path: Path) -> None:
    from fakes import write_frames

    from stseg_deploy.sources import sequences_from_folders, with_frames

    _write_sequence(tmp_path / "flows" / "walk", 4)
    (seq,) = sequences_from_folders([tmp_path / "flows" / "walk"])
    assert not seq.has_frames
    per_sequence = write_frames(tmp_path / "frames" / "walk", [*seq.frame_names, "00004"], (30, 40))  # one frame more: fine
    found = with_frames(seq, tmp_path / "frames", single=False)
    assert found.images == tuple(per_sequence[:4]) and found.frame_size == (30, 40) and found.has_frames
    flat = write_frames(tmp_path / "flat", seq.frame_names, (30, 40), suffix=".jpg")
    assert with_frames(seq, tmp_path / "flat", single=True).images == tuple(flat)
    with pytest.raises(FileNotFoundError, match=r"flat/walk: no frames of sequence 'walk'"):
        with_frames(seq, tmp_path / "flat", single=False)
    flat[2].unlink()
    with pytest.raises(FileNotFoundError, match=r"flat/00002\.\*: no frame for flow '00002' of sequence 'walk'"):
        with_frames(seq, tmp_path / "flat", single=True)
    with pytest.raises(FileNotFoundError, match="--frames folder not found"):
        with_frames(seq, tmp_path / "nowhere", single=True)
