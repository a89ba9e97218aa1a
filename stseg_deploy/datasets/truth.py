"""A dataset's own ground truth (FBMS-59's Def.dat regions, SegTrackV2's per-object folders)
converted to what stseg-eval reads: indexed PNGs of object ids (0 background, 1.. objects,
255 void) at the frames' size, one per annotated frame, named after the frame's index
(``00000.png`` for the first frame), so that they line up with the flows stseg-prepare
computes."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np

from ..errors import StsegInputError
from ..io.masks import write_object_png
from ..io.outdir import OutputUnit
from ..io.videoio import frame_name
from .listing import ListedSequence, image_size

log = logging.getLogger(__name__)

TRUTH_TOOL = "stseg-prepare"
TRUTH_MARKER = "groundtruth.json"


def write_truth(sequence: ListedSequence, folder: Path) -> ListedSequence:
    """Convert ``sequence.truth`` into ``folder/<NNNNN>.png`` and return the sequence with
    those PNGs as its frames' masks (a sequence without ``truth`` is returned as it is).

    ``folder`` is one output unit (marker ``groundtruth.json`` naming the source files of
    every PNG): written whole, then swapped in, so an error leaves the earlier conversion
    as it was. Raises StsegInputError naming the file for a mask that cannot be read as
    the dataset defines it, or whose decoded size differs from the frames'.
    """
    truth = sequence.truth
    if truth is None:
        return sequence
    size = image_size(sequence.frames[0].image)
    masks: dict[int, Path] = {}
    sources: dict[str, list[str]] = {}
    with OutputUnit(folder, TRUTH_TOOL, TRUTH_MARKER) as unit:
        for index in sorted(truth.annotated):
            ids = truth.read(index)
            if ids.shape != size or ids.dtype != np.uint8:
                file = truth.annotated[index][0]
                raise StsegInputError(
                    f"{file}: decoded to {ids.shape[1]}x{ids.shape[0]} {ids.dtype}, the frames of {sequence.name!r} "
                    f"are {size[1]}x{size[0]} (width x height)"
                )
            name = f"{frame_name(index)}.png"
            write_object_png(unit.tmp / name, ids)
            masks[index] = Path(folder) / name
            sources[name] = [str(f) for f in truth.annotated[index]]
        unit.commit({"sequence": sequence.name, "sources": sources})
    log.info("%s: %d annotated frame(s) converted to object ids in %s", sequence.name, len(masks), folder)
    frames = tuple(dataclasses.replace(f, mask=masks.get(i)) for i, f in enumerate(sequence.frames))
    return dataclasses.replace(sequence, frames=frames, truth=None)
