"""DAVIS-2017 *unsupervised* evaluation on arrays in memory: per-object J and F, with the
official evaluator's matching of proposals to ground-truth objects.

What is computed, as the official evaluator (davisvideochallenge/davis2017-evaluation,
``davis2017/evaluation.py``, ``metrics.py``, ``davis.py``, ``results.py``, ``utils.py``) does it
in its later version, the one that leaves void pixels out:

- **Frames**: every frame given. The unsupervised task scores all annotated frames,
  the first and last included; only the semi-supervised task drops them. The caller passes
  the frames to score.
- **Objects**: ids 1..max of the first frame's annotation (void 255 left out), whether or
  not each one appears there. An id above that maximum that first appears later is not an
  object: its pixels count as background, not void.
- **Proposals**: ids 1..N with N the largest id over the frames given (an id below N that
  never appears is an empty proposal). N > :data:`MAX_PROPOSALS` is refused. With fewer
  proposals than objects, empty proposals are added so that each object gets one.
- **Per-frame J** of proposal P and object G: |P ∩ G| / |P ∪ G| over non-void pixels, 1 when
  the union is empty. An empty proposal thus scores 1 on the frames where its object is
  absent and 0 where it is present.
- **Per-frame F**: the boundary F of :mod:`.davis_measures`, after zeroing void pixels in
  both masks. An empty proposal scores F = 1 where the object's boundary is empty too, else 0.
- **Matching**: score(P, G) = (mean over frames of J + mean over frames of F) / 2, and a
  one-to-one assignment (Hungarian) maximising the summed score; one proposal per object,
  extra proposals are dropped. Several proposals covering one object are never merged.
- **Statistics** per object: Mean, Recall (share of frames > 0.5) and Decay, as
  :func:`.davis_measures.statistics`; over a data set, every object of every sequence pooled:
  J&F-Mean = (mean over objects of J-Mean + mean over objects of F-Mean) / 2.

Differences from the official code: rows are in object order (the official evaluator lists
the matched pairs in proposal order, so its per-object names ``<seq>_<i>`` need not match
object i when there are more proposals than objects; pooled means are the same); among
equally good assignments the one chosen may differ (the per-object split can then differ,
the summed score not).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import pandas as pd

from stseg_kernels import assign_max

from ..io.masks import VOID
from .davis_measures import BOUND_TH, boundary_f_counts, boundary_map, boundary_radius, disk, statistics
from .options import DAVIS17_MODES

MAX_PROPOSALS = 20
"""Most proposal ids a sequence may use (the official evaluator's ``max_n_proposals``)."""

STATISTICS_COLUMNS = ["object", "J_mean", "J_recall", "J_decay", "F_mean", "F_recall", "F_decay"]


def proposal_lut(labels: np.ndarray, n_labels: int, mode: str) -> np.ndarray:
    """How a sequence's segment labels become DAVIS-2017 proposal ids: (256,) uint8, label ->
    id, as the ``--davis17`` export numbers them (one of ``DAVIS17_MODES``).

    ``"background"``: the label covering most pixels of ``labels`` ((T, H, W), the whole
    sequence) becomes 0, which DAVIS reads as background (not a proposal), by swapping it with
    label 0; ``"paper"``: every label + 1, so all are proposals.
    """
    if mode not in DAVIS17_MODES:
        raise ValueError(f"mode: expected one of {DAVIS17_MODES}, got {mode!r}")
    lut = np.arange(256, dtype=np.uint8)
    if mode == "paper":
        lut[:255] += 1
    else:
        biggest = int(np.argmax(np.bincount(np.asarray(labels).reshape(-1), minlength=n_labels)))
        lut[0], lut[biggest] = biggest, 0
    return lut


def proposal_ids(labels: np.ndarray, n_labels: int, mode: str) -> np.ndarray:
    """(T, H, W) uint8 proposal ids of the labels, numbered as :func:`proposal_lut` says."""
    return proposal_lut(labels, n_labels, mode)[labels]
JF_KEYS = ["J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay"]


@dataclass(frozen=True, eq=False)  # eq=False: array fields make == ambiguous
class Davis17Sequence:
    """One sequence's unsupervised DAVIS-2017 scores, K objects over T frames.

    ``objects`` (K,) int64 ground-truth ids scored, ascending; ``proposal`` (K,) int64 the
    proposal id matched to each (0: an empty proposal added because there were fewer
    proposals than objects); ``j``, ``f`` (K, T) float64 per-frame J and boundary F of each
    object with its proposal.
    """

    objects: np.ndarray
    proposal: np.ndarray
    j: np.ndarray
    f: np.ndarray

    def statistics(self) -> pd.DataFrame:
        """One row per object: ``object``, ``J_mean``, ``J_recall``, ``J_decay``, ``F_mean``,
        ``F_recall``, ``F_decay``."""
        rows = [(int(k), *statistics(jk), *statistics(fk)) for k, jk, fk in zip(self.objects, self.j, self.f)]
        table = pd.DataFrame(rows, columns=STATISTICS_COLUMNS)
        return table.astype({"object": np.int64})


def _boundaries(masks: list[np.ndarray], kernel: np.ndarray, near: np.ndarray) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
    """Boundary pixels of each (H, W) bool mask, and their dilation by ``kernel`` written into
    ``near[i]`` ((M, H, W) bool, zeroed here).

    Returns ((M,) int64 boundary pixel counts, per mask the (rows, cols) of its boundary pixels).
    Each mask is processed on its bounding box grown by the kernel radius + 1, which holds its
    whole boundary (the boundary sits at most one pixel above/left of the mask) and its whole
    dilation; where the box stops short of the image edge its last row and column are empty,
    so :func:`boundary_map`'s edge rule gives the same pixels as on the full image.
    """
    near[:] = False
    radius = kernel.shape[0] // 2
    height, width = near.shape[1:]
    counts = np.zeros(len(masks), dtype=np.int64)
    coords: list[tuple[np.ndarray, np.ndarray]] = []
    empty = (np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.intp))
    for i, mask in enumerate(masks):
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        if len(rows) == 0:
            coords.append(empty)
            continue
        y0, y1 = max(rows[0] - radius - 1, 0), min(rows[-1] + radius + 2, height)
        x0, x1 = max(cols[0] - radius - 1, 0), min(cols[-1] + radius + 2, width)
        bmap = boundary_map(mask[y0:y1, x0:x1])
        ys, xs = np.nonzero(bmap)
        counts[i] = len(ys)
        coords.append((ys + y0, xs + x0))
        near[i, y0:y1, x0:x1] = cv2.dilate(bmap.astype(np.uint8), kernel).astype(bool)
    return counts, coords


def _hits(coords: list[tuple[np.ndarray, np.ndarray]], near: np.ndarray) -> np.ndarray:
    """(len(coords), M) int64: how many boundary pixels of each mask lie within each ``near`` map."""
    out = np.zeros((len(coords), near.shape[0]), dtype=np.int64)
    for i, (ys, xs) in enumerate(coords):
        if len(ys):
            out[i] = near[:, ys, xs].sum(axis=1)
    return out


def _pair_scores(proposals: np.ndarray, gt: np.ndarray, n_objects: int, n_rows: int, bound_th: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame J and F of every (object, proposal) pair: two (K, n_rows, T) float64 arrays,
    proposal id p in column p - 1 (ids above the largest present are empty proposals)."""
    n_frames, height, width = gt.shape
    j = np.empty((n_objects, n_rows, n_frames))
    f = np.empty((n_objects, n_rows, n_frames))
    kernel = disk(boundary_radius((height, width), bound_th))
    near_obj = np.zeros((n_objects, height, width), dtype=bool)
    near_prop = np.zeros((n_rows, height, width), dtype=bool)
    for t in range(n_frames):
        keep = gt[t] != VOID
        obj_t = np.where(gt[t] <= n_objects, gt[t], 0).astype(np.int64)  # later ids: background; void: 0 then dropped
        prop_t = np.where(keep, proposals[t], 0).astype(np.int64)
        inter = np.bincount(obj_t[keep] * (n_rows + 1) + prop_t[keep], minlength=(n_objects + 1) * (n_rows + 1))
        inter = inter.reshape(n_objects + 1, n_rows + 1)
        union = inter.sum(axis=1)[1:, None] + inter.sum(axis=0)[None, 1:] - inter[1:, 1:]
        with np.errstate(invalid="ignore", divide="ignore"):
            j[:, :, t] = np.where(union == 0, 1.0, inter[1:, 1:] / union)
        n_obj, obj_coords = _boundaries([obj_t == k for k in range(1, n_objects + 1)], kernel, near_obj)
        n_prop, prop_coords = _boundaries([prop_t == p for p in range(1, n_rows + 1)], kernel, near_prop)
        prop_hits = _hits(prop_coords, near_obj)  # (rows, K): proposal boundary near the object's
        obj_hits = _hits(obj_coords, near_prop)  # (K, rows): object boundary near the proposal's
        f[:, :, t] = boundary_f_counts(n_prop[None, :], n_obj[:, None], prop_hits.T, obj_hits)
    return j, f


def score_davis17(proposals: np.ndarray, gt: np.ndarray, first_gt: np.ndarray | None = None, bound_th: float = BOUND_TH) -> Davis17Sequence:
    """Score one sequence's proposals as the DAVIS-2017 unsupervised evaluator does (see the
    module docstring for every rule).

    Args:
        proposals: (T, H, W) integer proposal ids, 0 = no proposal (background), 1..N
            proposals, N <= :data:`MAX_PROPOSALS`.
        gt: (T, H, W) uint8 object ids, 0 background, 255 void, on the T frames to score.
        first_gt: (H, W) the annotation of the sequence's first frame, which fixes the
            objects (ids 1..its max); None: ``gt[0]``.
        bound_th: boundary tolerance of F, as :func:`.davis_measures.boundary_f`.

    Returns:
        :class:`Davis17Sequence`; no object (K = 0) when the first frame has none.

    Raises:
        ValueError: shapes disagree, there is no frame, an id is negative, or N > MAX_PROPOSALS.
    """
    proposals, gt = np.asarray(proposals), np.asarray(gt)
    if gt.ndim != 3 or proposals.shape != gt.shape:
        raise ValueError(f"proposals and gt must both have shape (T, H, W), got {proposals.shape} and {gt.shape}")
    if gt.shape[0] == 0:
        raise ValueError("no frame to score")
    first_gt = gt[0] if first_gt is None else np.asarray(first_gt)
    if first_gt.shape != gt.shape[1:]:
        raise ValueError(f"first_gt must have shape {gt.shape[1:]}, got {first_gt.shape}")
    for name, array in (("proposals", proposals), ("gt", gt), ("first_gt", first_gt)):
        if not np.issubdtype(array.dtype, np.integer) or array.min() < 0:
            raise ValueError(f"{name} must hold non-negative integer ids, got dtype {array.dtype}")
    n_proposals = int(proposals.max())
    if n_proposals > MAX_PROPOSALS:
        raise ValueError(
            f"{n_proposals} proposals (largest proposal id {n_proposals}); "
            f"the DAVIS-2017 unsupervised evaluator accepts at most {MAX_PROPOSALS}"
        )
    first_ids = first_gt[first_gt != VOID]
    n_objects = int(first_ids.max()) if first_ids.size else 0
    objects = np.arange(1, n_objects + 1, dtype=np.int64)
    n_frames = gt.shape[0]
    if n_objects == 0:
        return Davis17Sequence(objects, np.zeros(0, dtype=np.int64), np.zeros((0, n_frames)), np.zeros((0, n_frames)))
    n_rows = max(n_proposals, n_objects)  # padded with empty proposals up to one per object
    j, f = _pair_scores(proposals, gt, n_objects, n_rows, bound_th)
    score = (j.mean(axis=2) + f.mean(axis=2)) / 2  # (K, rows)
    square = np.zeros((n_rows, n_rows))
    square[:n_objects] = score
    column = assign_max(square)[:n_objects]
    rows = np.arange(n_objects)
    proposal = np.where(column < n_proposals, column + 1, 0).astype(np.int64)
    return Davis17Sequence(objects, proposal, j[rows, column], f[rows, column])


def jf_mean(sequences: Sequence[Davis17Sequence]) -> dict[str, float]:
    """The DAVIS-2017 global measures, every object of every sequence pooled: each of
    J-Mean, J-Recall, J-Decay, F-Mean, F-Recall, F-Decay is the mean over objects of the
    per-object statistic; J&F-Mean = (J-Mean + F-Mean) / 2. NaN when there is no object."""
    tables = [s.statistics() for s in sequences]
    pooled = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=STATISTICS_COLUMNS)
    if pooled.empty:
        return dict.fromkeys(JF_KEYS, float("nan"))
    out = {
        "J-Mean": float(pooled["J_mean"].mean()),
        "J-Recall": float(pooled["J_recall"].mean()),
        "J-Decay": float(pooled["J_decay"].mean()),
        "F-Mean": float(pooled["F_mean"].mean()),
        "F-Recall": float(pooled["F_recall"].mean()),
        "F-Decay": float(pooled["F_decay"].mean()),
    }
    out["J&F-Mean"] = (out["J-Mean"] + out["F-Mean"]) / 2
    return {key: out[key] for key in JF_KEYS}
