"""Pseudo-labels: an stseg-infer output on the training videos as a second training target.

The network sees only flow. The inference pipeline around it adds what the flow alone does
not give: the flipped pass, the motion split and, above all, the guided refinement, which
aligns segment borders with the frame's edges. Training the network towards the pipeline's
own label maps (self-training) lets it learn from those stages; no ground truth is used.

The pipeline's labels are names, not channels: label 2 of the output need not be channel 2
of the network, and the output may hold more labels than the network has channels (the motion
split adds some). So each window's labels are matched one-to-one to the network's channels
by their soft overlap, and the cross-entropy is taken on the matched pairs only; pixels of
unmatched labels are not supervised.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from stseg_deploy.errors import StsegInputError
from stseg_deploy.output.layout import read_label_maps, scan_outputs
from stseg_deploy.preprocess import resize_labels
from stseg_kernels import assign_max

if TYPE_CHECKING:
    from .dataset import WindowRecord

log = logging.getLogger(__name__)

IGNORE = -1
"""Target value of a pixel without a pseudo-label (no output for its frame)."""


class PseudoLabels:
    """The label maps of a finished stseg-infer output folder, at the model's input size.

    ``out_dir``: the output of ``stseg-infer`` on (some of) the training DataSplit; every
    complete sequence folder in it is read once, here, and kept at ``image_size`` (h, w)
    (nearest-neighbour), so a training step reads no file. Frames are found by their flow
    file's name within the sequence, as sequence.json lists them.
    """

    def __init__(self, out_dir: str | Path, image_size: tuple[int, int]):
        out_dir = Path(out_dir)
        if not out_dir.is_dir():
            raise StsegInputError(f"{out_dir}: no such folder (--pseudo-labels takes an stseg-infer output folder)")
        scan = scan_outputs(out_dir)
        if not scan.complete:
            raise StsegInputError(f"{out_dir}: no complete stseg-infer sequence output in it (--pseudo-labels)")
        for skipped in scan.skipped:
            log.warning("pseudo-labels: skipping %s: %s", skipped.sequence, skipped.reason)
        h, w = self.size = int(image_size[0]), int(image_size[1])
        self.maps: dict[str, np.ndarray] = {}  # sequence -> (F, h, w) uint8
        self.index: dict[tuple[str, str], int] = {}  # (sequence, flow file name) -> frame
        for seq_dir, _ in scan.complete.values():
            maps, record = read_label_maps(seq_dir)
            flows = record.get("flows") or []
            if len(flows) != len(maps):
                raise StsegInputError(
                    f"{seq_dir / 'sequence.json'}: lists {len(flows)} flows for {len(maps)} label maps; "
                    "is it a complete stseg-infer output?"
                )
            sequence = str(record.get("sequence", seq_dir.name))
            self.maps[sequence] = np.stack([resize_labels(frame, (h, w)) for frame in maps])
            for number, flow in enumerate(flows):
                self.index[(sequence, Path(flow).name)] = number

    def _frame(self, sequence: str, flow: str | Path) -> int | None:
        """The output's frame number of ``flow`` in ``sequence``, or None."""
        return self.index.get((sequence, Path(flow).name))

    def window(self, sequence: str, flows: tuple[Path, ...]) -> np.ndarray:
        """Targets of one window: (T, h, w) int64 labels, :data:`IGNORE` on frames the output
        does not hold."""
        out = np.full((len(flows), *self.size), IGNORE, dtype=np.int64)
        for t, flow in enumerate(flows):
            number = self._frame(sequence, flow)
            if number is not None:
                out[t] = self.maps[sequence][number]
        return out

    def coverage(self, records: list[WindowRecord], data_file: str | Path) -> str:
        """One line on how many of the training windows ``records`` have pseudo-labels;
        raises StsegInputError when none has (the option would do nothing), and warns of the
        folder's sequences that no window uses (an output of other videos, or of the val split).
        """
        covered = sum(1 for r in records if any(self._frame(r.sequence, f) is not None for f in r.flows))
        unused = sorted(set(self.maps) - {r.sequence for r in records})
        if unused:
            log.warning("pseudo-labels: %d sequence(s) of the folder are in no training window of %s_train.csv: %s",
                        len(unused), data_file, ", ".join(unused))
        if covered == 0:
            raise StsegInputError(
                f"--pseudo-labels: none of the {len(records)} training windows of {data_file}_train.csv has a label map "
                f"in the output folder (its sequences: {', '.join(sorted(self.maps)) or 'none'}); was it made by "
                "stseg-infer on this DataSplit's training sequences?"
            )
        return f"{covered} of {len(records)} training windows ({len(self.maps)} sequences)"


def match_channels(proba: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """For each sample, the network channel each target label is matched to (one-to-one, by
    the largest total soft overlap), or -1 where a label is left without one.

    proba: (B, K, T, h, w) probabilities; target: (B, T, h, w) int64 labels, :data:`IGNORE`
    where absent. Returns (B, L) int64, L = the largest label + 1 (at least 1).
    """
    batch, channels = proba.shape[:2]
    labels = max(int(target.max()) + 1, 1)
    size = max(channels, labels)
    flat_p = proba.detach().reshape(batch, channels, -1)
    flat_t = target.to(proba.device).reshape(batch, -1)
    out = torch.full((batch, labels), -1, dtype=torch.int64)
    for b in range(batch):
        onehot = torch.nn.functional.one_hot(flat_t[b].clamp(min=0), labels).to(flat_p.dtype)
        onehot[flat_t[b] < 0] = 0
        overlap = np.zeros((size, size))
        overlap[:channels, :labels] = (flat_p[b] @ onehot).cpu().double().numpy()
        column = assign_max(overlap)  # column[k]: the label channel k takes
        for k in range(channels):
            j = int(column[k])
            if j < labels and overlap[k, j] > 0:
                out[b, j] = k
    return out


def matched_cross_entropy(proba: torch.Tensor, target: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Per-sample cross-entropy of ``proba`` against the pseudo-labels, channels matched by
    :func:`match_channels`; the mean over supervised pixels (0 for a sample with none).

    proba: (B, K, T, h, w) probabilities (a softmax over K); target: (B, T, h, w) int64.
    Returns (B,) float, differentiable in ``proba``.
    """
    target = target.to(proba.device)
    channel_of = match_channels(proba, target).to(proba.device)
    # Unmatched labels and frames without a target get -1, so that they add no loss.
    channel = torch.where(target >= 0, torch.gather(channel_of, 1, target.clamp(min=0).flatten(1)).view_as(target), -1)
    supervised = channel >= 0
    picked = torch.gather(proba, 1, channel.clamp(min=0).unsqueeze(1)).squeeze(1)
    nll = -torch.log(picked.clamp(min=eps)) * supervised
    count = supervised.flatten(1).sum(1)
    return nll.flatten(1).sum(1) / count.clamp(min=1)

