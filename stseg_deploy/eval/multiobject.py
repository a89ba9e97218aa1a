"""Multi-object scoring: how well the segments separate the objects, the way DAVIS-2017 scores them.

The binary measure (foreground vs background after choosing segments) cannot see two objects
that move differently but share one segment: the union still covers both. Here every
ground-truth object must be explained by a segment of its own.

Inputs of one sequence: the linked segment labels ``labels`` (T, H, W), values 0..L-1, and an
object-id map per frame ``objects`` (T, H, W) uint8 (0 = background, 1..254 = objects,
255 = void, see :func:`stseg_deploy.io.masks.read_object_png`), on the same pixel grid.

What is computed, precisely:

- **Frames**: only the frames marked ``scored`` (the caller's protocol decides: every frame
  with ground truth, or the DAVIS evaluator's frames). Void pixels are left out of every
  count, as the DAVIS-2017 evaluator does.
- **Objects**: every id other than 0 and 255 that appears on a scored frame. (The DAVIS-2017
  evaluator takes ids 1..max of the first frame; on its annotations this is the same set.)
  An object absent from a scored frame is still scored there, as in DAVIS-2017: J = 1 when
  its segment is also absent from that frame, else 0.
- **Per-frame J** of object k and segment l: |O_k ∩ S_l| / |O_k ∪ S_l|, 1 when both are empty.
- **Matching**, per chunk of frames (``chunks``: the mask-selection chunks, because segments
  are linked, hence named consistently, only inside a chunk; one chunk = the whole sequence,
  which is the DAVIS-2017 protocol): a one-to-one assignment of objects to segment labels
  (Hungarian, :func:`stseg_kernels.assign_max`) maximising the sum over objects of their
  per-frame J summed over the chunk's scored frames. Every label is a candidate (none is
  fixed as background); one label serves at most one object; when there are more objects
  than labels, the objects left without a label get J = 0 on that chunk's frames. This is
  the DAVIS-2017 unsupervised evaluator's criterion (mean over frames of per-frame J, per
  (object, proposal) pair, then ``linear_sum_assignment``), with J alone: the official one
  matches on (J + F) / 2 when it also scores F. It is not an IoU of counts pooled over the
  sequence: matching on the per-frame mean makes the assignment maximise exactly the J
  reported.
- **J of an object**: the mean over the scored frames of its per-frame J with its matched
  segment (per chunk), as DAVIS-2017 averages per-frame J per object. A sequence's score is
  the mean over its objects; an overall score is the mean over all objects of all sequences
  (DAVIS-2017 style), not over sequence means.
- **naive_shared**: whether, on some chunk, the object's best label by itself (the label of
  highest summed J, first on ties) is also another object's best label: what a naive
  per-object match would merge.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from stseg_kernels import assign_max

from ..io.masks import VOID

log = logging.getLogger(__name__)

NO_SEGMENT = -1
"""Segment of an object left without one (more objects than labels)."""


@dataclass(frozen=True, eq=False)  # eq=False: array fields make == ambiguous
class ObjectScores:
    """Multi-object scores of one sequence, one entry per object (K objects, C chunks).

    ``ids`` (K,) int64 object ids, ascending; ``j`` (K,) float64 in [0, 1], mean over scored
    frames of per-frame J with the matched segment; ``frames`` (K,) int64 scored frames (the
    same for every object); ``present`` (K,) int64 scored frames where the object has at
    least one pixel; ``segments`` (C, K) int64 matched label per chunk (:data:`NO_SEGMENT`
    where none was left, or the chunk has no scored frame); ``naive_shared`` (K,) bool.
    """

    ids: np.ndarray
    j: np.ndarray
    frames: np.ndarray
    present: np.ndarray
    segments: np.ndarray
    naive_shared: np.ndarray

    @property
    def n_objects(self) -> int:
        return len(self.ids)

    @property
    def mean(self) -> float:
        """Mean J over the objects (NaN when there is none)."""
        return float(self.j.mean()) if len(self.j) else float("nan")


def frame_object_j(labels: np.ndarray, objects: np.ndarray, ids: np.ndarray, n_labels: int) -> np.ndarray:
    """Per-frame J of every (object, segment label) pair.

    labels: (T, H, W) integers in [0, n_labels); objects: (T, H, W) uint8 ids (255 = void,
    left out); ids: (K,) the object ids to score. Returns (T, K, L) float64: J of object
    ``ids[k]`` and label l on frame t, 1 where both are empty.
    """
    lookup = np.zeros(256, dtype=np.int64)  # object id -> row: 0 background/other, k+1 object k
    lookup[np.asarray(ids, dtype=np.int64)] = np.arange(1, len(ids) + 1)
    rows = len(ids) + 1
    out = np.empty((labels.shape[0], len(ids), n_labels))
    for t in range(labels.shape[0]):
        keep = objects[t] != VOID
        obj = lookup[objects[t][keep]]
        lab = labels[t][keep].astype(np.int64)
        inter = np.bincount(obj * n_labels + lab, minlength=rows * n_labels).reshape(rows, n_labels)
        union = inter.sum(axis=1, keepdims=True) + inter.sum(axis=0, keepdims=True) - inter
        with np.errstate(invalid="ignore", divide="ignore"):
            out[t] = np.where(union[1:] == 0, 1.0, inter[1:] / union[1:])
    return out


def match_objects(weights: np.ndarray) -> np.ndarray:
    """One-to-one assignment of K objects to L labels maximising the summed weights.

    weights: (K, L) float, e.g. per-frame J summed over frames. Returns (K,) int64 labels,
    distinct, :data:`NO_SEGMENT` for objects left without one (only when K > L). The matrix
    is padded square with zeros, as unmatched pairs score 0.
    """
    n_objects, n_labels = weights.shape
    size = max(n_objects, n_labels)
    if size == 0:
        return np.zeros(0, dtype=np.int64)
    square = np.zeros((size, size))
    square[:n_objects, :n_labels] = weights
    col = assign_max(square)[:n_objects]
    return np.where(col < n_labels, col, NO_SEGMENT).astype(np.int64)


def score_objects(
    labels: np.ndarray,
    objects: np.ndarray,
    scored: np.ndarray,
    n_labels: int,
    chunks: np.ndarray | None = None,
    background: int | None = None,
) -> ObjectScores:
    """Multi-object J of one sequence (see the module docstring for every rule).

    Args:
        labels: (T, H, W) integer segment labels in [0, n_labels).
        objects: (T, H, W) uint8 object ids, 0 = background, 255 = void; only the frames
            marked in ``scored`` are read.
        scored: (T,) bool, the frames to score.
        n_labels: L, the number of segment labels.
        chunks: (T,) int64 chunk index per frame, non-decreasing from 0 (see
            :func:`stseg_kernels.frame_chunks`); None: one chunk, the whole sequence.
        background: a label that stands for "no object" (an object-id map's 0): an object
            matched to it scores 0, as one left without a segment. None: every label is a
            candidate segment.

    Returns:
        :class:`ObjectScores`; no object (K = 0) when no scored frame has one.

    Raises:
        ValueError: shapes disagree, a label lies outside [0, n_labels), or nothing is scored.
    """
    labels = np.asarray(labels)
    objects = np.asarray(objects)
    scored = np.asarray(scored, dtype=bool)
    if labels.ndim != 3 or objects.shape != labels.shape:
        raise ValueError(f"labels and objects must both have shape (T, H, W), got {labels.shape} and {objects.shape}")
    if scored.shape != (labels.shape[0],):
        raise ValueError(f"scored must have shape ({labels.shape[0]},), got {scored.shape}")
    if objects.dtype != np.uint8:
        raise ValueError(f"objects must be uint8 object ids, got {objects.dtype}")
    if n_labels < 1:
        raise ValueError(f"n_labels must be >= 1, got {n_labels}")
    chunks = np.zeros(labels.shape[0], dtype=np.int64) if chunks is None else np.asarray(chunks, dtype=np.int64)
    if chunks.shape != scored.shape:
        raise ValueError(f"chunks must have shape ({labels.shape[0]},), got {chunks.shape}")
    if not scored.any():
        raise ValueError("no frame is marked to be scored")
    frames = np.flatnonzero(scored)
    lab, obj = labels[frames], objects[frames]
    if lab.size and (lab.min() < 0 or lab.max() >= n_labels):
        raise ValueError(f"labels must lie in [0, {n_labels}), got values {int(lab.min())}..{int(lab.max())}")
    present_ids = np.unique(obj)
    ids = present_ids[(present_ids != 0) & (present_ids != VOID)].astype(np.int64)
    n_chunks = int(chunks.max()) + 1 if len(chunks) else 0
    per_frame = frame_object_j(lab, obj, ids, n_labels)  # (S, K, L), S = scored frames
    if background is not None:
        per_frame[:, :, background] = 0.0
    frame_chunk = chunks[frames]
    segments = np.full((n_chunks, len(ids)), NO_SEGMENT, dtype=np.int64)
    totals = np.zeros(len(ids))
    shared = np.zeros(len(ids), dtype=bool)
    for c in np.unique(frame_chunk):
        in_chunk = per_frame[frame_chunk == c]
        weights = in_chunk.sum(axis=0)  # (K, L): maximising sums = maximising the mean J
        match = match_objects(weights)
        if background is not None:
            match = np.where(match == background, NO_SEGMENT, match)  # "no object" is no segment
        segments[c] = match
        has = match != NO_SEGMENT
        totals[has] += in_chunk[:, np.flatnonzero(has), match[has]].sum(axis=0)
        best = weights.argmax(axis=1)
        counts = np.bincount(best, minlength=n_labels)
        shared |= counts[best] > 1
    present = np.array([(obj == k).any(axis=(1, 2)).sum() for k in ids], dtype=np.int64)
    j = totals / len(frames)
    log.debug("%d object(s) over %d scored frame(s), %d chunk(s): J %s", len(ids), len(frames), n_chunks, np.round(j, 3))
    return ObjectScores(ids, j, np.full(len(ids), len(frames), dtype=np.int64), present, segments, shared)
