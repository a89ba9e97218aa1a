"""Helpers of the stseg-eval tests (evaluation, scorefiles, davis17): a sequence segmented
by a fake model at a known size, ground truth made from its own labels, and the CLI."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pandas as pd
from click.testing import CliRunner
from fakes import FakeModel, write_frames, write_sequence

from stseg_deploy.cli.eval import eval_main
from stseg_deploy.io.masks import write_label_png, write_mask_png
from stseg_deploy.output.folder import segment_to_folder
from stseg_deploy.output.layout import read_sequence_output
from stseg_deploy.pipeline import Segmenter
from stseg_deploy.preprocess import resize_labels
from stseg_deploy.settings import InferenceSettings
from stseg_deploy.sources import sequences_from_folders

GT_SIZE = (24, 32)  # a multiple of the model size, so nearest resizing is exact
FRAMES = ["00000", "00001", "00002", "00003", "00004", "00005"]


def infer(root: Path, name: str, n_frames: int = 6, seed: int = 0, model: FakeModel | None = None, sha: str | None = None) -> Path:
    """Segment a written sequence ``root/flows/name`` into ``root/out/name``."""
    write_sequence(root / "flows" / name, n_frames, size=GT_SIZE, seed=seed)
    seq = sequences_from_folders([root / "flows" / name])[0]
    segment_to_folder(Segmenter(model or FakeModel(), InferenceSettings.from_options(cut_size=2, tta="none", refine="none", motion_split="none")), seq, root / "out", model_sha256=sha)
    return root / "out" / name


def infer_refined(root: Path, name: str = "cat", tta: str = "none", refine: str = "guided", carry: str = "none") -> Path:
    """A sequence with frames (48x64, twice the flows' 24x32) segmented with the given stages."""
    write_sequence(root / "flows" / name, 6, size=GT_SIZE)
    (seq,) = sequences_from_folders([root / "flows" / name])
    images = write_frames(root / "frames" / name, seq.frame_names, (48, 64))
    seq = replace(seq, images=tuple(images), frame_size=(48, 64))
    settings = InferenceSettings.from_options(
        cut_size=2, tta=tta, refine=refine, guided_radius=60, guided_eps=0.01, guided_subsample=2, motion_split="none", carry=carry
    )
    segmenter = Segmenter(FakeModel(), settings)
    segment_to_folder(segmenter, seq, root / "out", model_sha256="m")
    return root / "out" / name


def gt_from_label(root: Path, label: int, skip: tuple[int, ...] = (), sequence: str = "cat", size=GT_SIZE) -> Path:
    """Ground truth equal to one segment of the output, at ``size``; frames in ``skip`` get none."""
    labels, record = read_sequence_output(root / "out" / sequence)
    for t, name in enumerate(record["frames"]):
        if t not in skip:
            write_mask_png(root / "gt" / sequence / f"{name}.png", resize_labels(labels[t], size) == label)
    return root / "gt"


def object_gt(root: Path, make_ids, sequence: str = "cat", size=GT_SIZE) -> Path:
    """Indexed object-id PNGs (DAVIS-2017 style) from each frame's labels at ``size``."""
    labels, record = read_sequence_output(root / "out" / sequence)
    for t, name in enumerate(record["frames"]):
        write_label_png(root / "objects" / sequence / f"{name}.png", make_ids(resize_labels(labels[t], size)))
    return root / "objects"


def run_eval(root: Path, *args: str):
    return CliRunner().invoke(eval_main, [str(root / "out"), *args])


def read_summary(root: Path) -> pd.DataFrame:
    table = pd.read_csv(root / "out" / "summary.csv")
    return table.fillna({"reason": ""}).set_index("sequence")


def eval_marker(root: Path) -> dict:
    return json.loads((root / "out" / "eval.json").read_text())
