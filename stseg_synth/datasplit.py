"""Synthetic videos written as a DataSplit: flows, binary and per-object masks, the split
CSVs and ``synth.json`` (what ``stseg-synth`` writes). The videos are
:mod:`stseg_synth.flows`'s."""

from __future__ import annotations

import json
import logging
import math
import re
from pathlib import Path

import pandas as pd

from stseg_deploy.io.atomic import atomic_write
from stseg_deploy.io.datasplit import COLUMNS, write_datasplit
from stseg_deploy.io.flowio import write_flow
from stseg_deploy.io.masks import write_label_png, write_mask_png

from .flows import (
    DEFAULT_NOISE,
    DEFAULT_OUTLIER_FRACTION,
    check_areas,
    check_frames,
    check_generation,
    check_int,
    check_pauses,
    check_size,
    is_real,
    min_area_fraction,
    min_motion_margin,
    motion_scale,
    sequence_rng,
    synth_sequence,
)

logger = logging.getLogger(__name__)


def _round_half_up(value: float) -> int:
    return int(math.floor(value + 0.5))


def _assign_splits(n_sequences: int, val_fraction: float, test_fraction: float) -> dict[str, list[int]]:
    """Sequence indices per split: train first, then val, then test (contiguous blocks).

    With one sequence, it serves as train, val and test. Otherwise train and val get at least
    one each; a test block that rounds to nothing reuses the val sequences so that all three
    CSVs are usable.
    """
    if n_sequences == 1:
        return {"train": [0], "val": [0], "test": [0]}
    n_val = min(max(1, _round_half_up(val_fraction * n_sequences)), n_sequences - 1)
    n_test = min(_round_half_up(test_fraction * n_sequences), n_sequences - 1 - n_val)
    n_train = n_sequences - n_val - n_test
    val = list(range(n_train, n_train + n_val))
    test = list(range(n_train + n_val, n_sequences)) or val
    return {"train": list(range(n_train)), "val": val, "test": test}


_FRAME_FILE = re.compile(r"^\d{5}\.(flo|png)$")


def _remove_stale_frames(folder: Path, keep: set[str]) -> None:
    # An earlier, longer run into the same folder would otherwise leave frames that folder
    # readers (stseg-infer on Flows/seqNNN) pick up; only files named like ours are touched.
    if not folder.is_dir():
        return
    for path in folder.iterdir():
        if path.is_file() and _FRAME_FILE.match(path.name) and path.name not in keep:
            path.unlink()


def write_synth_split(
    out_dir: str | Path,
    n_sequences: int,
    n_frames: int,
    size: tuple[int, int],
    seed: int,
    val_fraction: float = 0.2,
    test_fraction: float = 0.0,
    name: str = "Synth",
    *,
    n_objects: int | tuple[int, int] | None = None,
    noise: float = DEFAULT_NOISE,
    outlier_fraction: float = DEFAULT_OUTLIER_FRACTION,
    pauses: tuple[int, int] | None = None,
    areas: tuple[float, float] | None = None,
) -> Path:
    """Generate ``n_sequences`` synthetic videos and write them as a DataSplit.

    Layout under ``out_dir`` (frames ``00000``, ``00001``, ...; sequences ``seq000``, ...)::

        Flows/<seq>/00000.flo        flow (2, H, W) px, Middlebury .flo
        Annotations/<seq>/00000.png  foreground, 0 / 255
        Labels/<seq>/00000.png       object ids (0 = background, k = object k, visible part),
                                     indexed PNG with the DAVIS palette (DAVIS-2017 style)
        DataSplit/<name>_train.csv   columns Flow, GtMask, Image (empty), Sequence,
        DataSplit/<name>_val.csv       Sequence_Index; paths relative to out_dir
        DataSplit/<name>_test.csv      (use --base-dir out_dir)
        synth.json                   generation parameters and per-sequence summary

    GtMask points at ``Labels/``: the foreground is any non-zero id, so every binary reader
    (training, ``stseg-eval``) sees the same mask as ``Annotations/``, and ``stseg-eval
    --objects`` can score each object separately. ``Annotations/`` stays for tools that
    want a plain 0/255 mask (``stseg-eval --gt-dir OUT/Annotations``).

    Splits are contiguous blocks in sequence order: train, then val, then test. Train and val
    each get at least one sequence when ``n_sequences >= 2`` (val even when ``val_fraction``
    is 0). When the test block rounds to zero sequences, ``<name>_test.csv`` repeats the val
    rows, so every split file is usable; with a single sequence, all three splits hold it.

    Sequence k is drawn from :func:`sequence_rng` ``(seed, k)``: the same seed gives
    byte-identical files, and sequence k does not depend on ``n_sequences``. Rewriting into
    the same folder replaces the files; frame files beyond ``n_frames`` left in a written
    sequence's folders by an earlier run are removed.

    Args:
        out_dir: output root, created if needed.
        n_sequences: >= 1.
        n_frames: flows per sequence, >= 3.
        size: (H, W) >= (8, 8).
        seed: non-negative integer.
        val_fraction, test_fraction: in [0, 1) with a sum below 1; rounded half up.
        name: DataSplit name, a plain file name.
        n_objects, noise, outlier_fraction, pauses, areas: passed to :func:`synth_sequence`.

    Returns:
        The DataSplit prefix ``out_dir/DataSplit/<name>`` for ``read_datasplit``.

    Raises:
        ValueError: bad argument.
    """
    n_sequences = check_int("n_sequences", n_sequences, 1)
    n_frames = check_frames(n_frames)
    size = check_size(size)
    seed = check_int("seed", seed, 0)
    _check_split_args(val_fraction, test_fraction, name)
    check_generation(n_objects, noise, outlier_fraction)
    check_pauses(pauses, n_frames)
    check_areas(areas, size)

    out_dir = Path(out_dir)
    splits = _assign_splits(n_sequences, val_fraction, test_fraction)
    width_digits = max(3, len(str(n_sequences - 1)))
    seq_names = [f"seq{k:0{width_digits}d}" for k in range(n_sequences)]
    rows: list[list[list[str]]] = []
    summaries: dict[str, dict] = {}
    for k, seq in enumerate(seq_names):
        sequence = synth_sequence(
            sequence_rng(seed, k), n_frames, size,
            n_objects=n_objects, noise=noise, outlier_fraction=outlier_fraction, pauses=pauses, areas=areas,
        )
        rows.append(_write_sequence_files(out_dir, seq, sequence))
        summaries[seq] = _sequence_summary(sequence)
        logger.debug("wrote %s: %d frames, %d objects", seq, n_frames, sequence.n_objects)

    split_dir = out_dir / "DataSplit"
    for split, indices in splits.items():
        table = pd.DataFrame([row for k in indices for row in rows[k]], columns=list(COLUMNS))
        write_datasplit(split_dir / f"{name}_{split}.csv", table)
    params = {
        "generator": "stseg_synth.flows",
        "format_version": 2,  # 2: GtMask points at Labels/ (object ids), was Annotations/
        "name": name,
        "seed": seed,
        "n_sequences": n_sequences,
        "n_frames": n_frames,
        "size": list(size),
        "val_fraction": val_fraction,
        "test_fraction": test_fraction,
        "n_objects": n_objects,
        "noise": noise,
        "outlier_fraction": outlier_fraction,
        "pauses": None if pauses is None else list(pauses),
        "areas": None if areas is None else list(areas),
        "min_area_fraction": min_area_fraction(areas),
        "motion_scale": motion_scale(size),
        "min_motion_margin_px": min_motion_margin(size),
        "splits": {split: [seq_names[k] for k in indices] for split, indices in splits.items()},
        "test_reuses_val": n_sequences > 1 and splits["test"] == splits["val"],
        "sequences": summaries,
    }
    with atomic_write(out_dir / "synth.json") as handle:
        handle.write((json.dumps(params, indent=2, sort_keys=True) + "\n").encode("utf-8"))
    logger.info(
        "synthetic DataSplit %s: %d sequences x %d frames at %dx%d (train %d, val %d, test %d)",
        split_dir / name, n_sequences, n_frames, size[0], size[1],
        len(splits["train"]), len(splits["val"]), len(splits["test"]),
    )
    return split_dir / name


def _check_split_args(val_fraction: float, test_fraction: float, name: str) -> None:
    for label, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not (is_real(value) and 0.0 <= value < 1.0):
            raise ValueError(f"{label} must lie in [0, 1), got {value!r}")
    if val_fraction + test_fraction >= 1.0:
        raise ValueError(
            f"val_fraction + test_fraction must be below 1 to leave training data, "
            f"got {val_fraction} + {test_fraction}"
        )
    if not name or Path(name).name != name or name in (".", ".."):
        raise ValueError(f"name must be a plain file name (no folders), got {name!r}")


def _write_sequence_files(out_dir: Path, seq: str, sequence) -> list[list[str]]:
    """Flows, 0/255 masks and object-id maps of one sequence; its DataSplit rows.

    Frame files an earlier, longer run left in the sequence's folders are removed first.
    """
    frame_names = [f"{t:05d}" for t in range(len(sequence.flows))]
    _remove_stale_frames(out_dir / "Flows" / seq, {f + ".flo" for f in frame_names})
    for folder in ("Annotations", "Labels"):
        _remove_stale_frames(out_dir / folder / seq, {f + ".png" for f in frame_names})
    rows = []
    for t, frame in enumerate(frame_names):
        flow_rel = f"Flows/{seq}/{frame}.flo"
        labels_rel = f"Labels/{seq}/{frame}.png"
        write_flow(out_dir / flow_rel, sequence.flows[t])
        write_mask_png(out_dir / "Annotations" / seq / f"{frame}.png", sequence.foreground[t])
        write_label_png(out_dir / labels_rel, sequence.layers[t])
        # GtMask: the object ids, whose non-zero pixels are the foreground (see above).
        rows.append([flow_rel, labels_rel, "", seq, str(t)])
    return rows


def _sequence_summary(sequence) -> dict:
    """What synth.json says about one sequence."""
    summary = {
        "background_model": sequence.background_model,
        "n_objects": sequence.n_objects,
        "shapes": [obj.shape for obj in sequence.objects],
        "depth_order": list(sequence.depth_order),
        "foreground_fraction": round(float(sequence.foreground.mean()), 6),
    }
    if any(obj.paused is not None and obj.paused.any() for obj in sequence.objects):
        summary["paused_frames"] = [[int(t) for t in obj.paused.nonzero()[0]] for obj in sequence.objects]
    return summary
