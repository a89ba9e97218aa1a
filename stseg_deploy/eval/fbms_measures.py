"""FBMS-59's own measure: precision, recall, F-measure per region and objects extracted.

This is the measure of the official evaluator, MoSegEval_PR (one shot) and MoSegEvalAll_PR
(all shots) (Ochs, Malik & Brox, PAMI 2014; source as in achalddave/fbms-evaluation,
``evalcode/``), computed on dense label maps: every non-void pixel of every scored frame is
one point of weight 1, which is what converting dense masks to one-point tracks gives the
evaluator (segment-any-moving ``utils/fbms.py`` ``masks_to_tracks``).

Inputs of one shot: the segment labels ``labels`` (S, H, W), values 0..L-1 (the evaluator's
"clusters"), and the ground-truth region ids ``regions`` (S, H, W) uint8 on the same grid,
S the scored (annotated) frames only; the caller picks them (in 10/50/200 mode the evaluator
uses the annotated frames with index <= N). Region 0 is the background, a region like any
other here; 1..254 are objects; 255 is void. FBMS itself has no void: void pixels are left
out of every count, as if they carried no point.

What is computed, following the evaluator:

- ``overlap[r, c]``: pixels of cluster c on region r; ``clusterSize[c]``: pixels of cluster
  c; ``regionSize[r]``: pixels of region r (every pixel carries a point, so the evaluator's
  covered part of r and its area are the same).
- **Visible regions**: regions with at least one pixel (the evaluator's weighted area
  >= 1e-4 with weights 1). Only these are scored. Region ids here are the ids present in
  ``regions``; the evaluator's order is its Def.dat's, background first, which ascending ids
  reproduce when the converter numbers regions in that order.
- **Clusters**: 0..max label present on the non-void scored pixels. The evaluator counts
  ``max label + 1`` over the track file (``readTracks``), and a dense track file holds
  exactly the labelled pixels; so a label below that maximum but absent is an empty cluster
  (size 0, P = R = 0 with every region, matchable), and labels above it do not exist.
  ``n_labels`` only bounds the input. This matters when regions outnumber the labels used:
  a region matched to an empty cluster scores P = 0, one left unmatched P = 1.
- **Per pair**: P = overlap / clusterSize (0 for an empty cluster), R = overlap / regionSize,
  F = 2PR / (P + R), 0 when P or R is 0.
- **Assignment**: one-to-one, regions to clusters, maximising the summed F over a square
  zero-padded matrix of size max(#visible regions, #clusters) (:func:`stseg_kernels.assign_max`).
  The evaluator solves it on integers, F × 10000 truncated (``computeFmeasure``), so two
  assignments whose summed F differ by less than that rounding can tie; the weights here are
  truncated the same way, so both pick the same assignment whenever its integer optimum is
  unique (among tied optima either may be returned).
- **Per shot**: a region matched to a cluster contributes that pair's (P, R, F); a region left
  without one (more regions than clusters) contributes P = 1, R = 0, F = 0; extra clusters
  are ignored. avgP and avgR are means over the visible regions, background included, and
  the shot's F is 2·avgP·avgR / (avgP + avgR), not the mean of the per-region F. (0 here
  when avgP + avgR = 0, where the evaluator would print NaN.)
- **Extracted objects**: the number of matched regions whose F is strictly greater than the
  threshold (the output file says "geq", the code tests ``>``), minus 1, floored at 0. The
  minus 1 stands for the background but is unconditional, as in the evaluator: when the
  background itself does not pass, one object that passes is still not counted. Visible
  objects: visible regions - 1, floored at 0.
- **Over shots**: precision and recall are the means of the shots' avgP and avgR, F their
  harmonic mean; extracted and visible objects are summed.

The threshold is 0.75, as the evaluator's README says to use and published FBMS numbers do
(the binaries' built-in default is 0.9).

Deviation, by design: counts are exact integers and ratios float64; the evaluator
accumulates and divides in float32, so a value that sits exactly on a rounding boundary (an F
at the threshold, a truncated F × 10000) can come out differently there.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..io.masks import VOID
from .multiobject import NO_SEGMENT, match_objects

log = logging.getLogger(__name__)

FBMS_THRESHOLD = 0.75
"""F above which a region counts as extracted (strictly above), as FBMS results are reported."""

F_SCALE = 10000
"""The evaluator matches on F × F_SCALE truncated to an integer."""


@dataclass(frozen=True, eq=False)  # eq=False: array fields make == ambiguous
class FbmsShot:
    """FBMS measures of one shot, one entry per visible region (R regions).

    ``regions`` (R,) int64 visible region ids, ascending (0, the background, first when
    visible); ``cluster`` (R,) int64 matched label, :data:`NO_SEGMENT` (-1) when none was
    left; ``precision``, ``recall``, ``fmeasure`` (R,) float64 in [0, 1] of the matched pair
    (1, 0, 0 when unmatched). ``avg_precision``, ``avg_recall``: means over the regions;
    ``f``: their harmonic mean; ``extracted``: regions with F > threshold, minus 1, at least
    0; ``visible_objects``: R - 1, at least 0.
    """

    regions: np.ndarray
    cluster: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    fmeasure: np.ndarray
    avg_precision: float
    avg_recall: float
    f: float
    extracted: int
    visible_objects: int


@dataclass(frozen=True)
class FbmsOverall:
    """FBMS measures over several shots: mean of the shots' avgP and avgR, their harmonic
    mean, and the summed extracted and visible objects."""

    precision: float
    recall: float
    f: float
    extracted: int
    visible_objects: int


def _harmonic(p: float, r: float) -> float:
    return 0.0 if p + r == 0 else 2.0 * p * r / (p + r)


def pair_measures(overlap: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """P, R and F of every (region, cluster) pair from the overlap counts.

    overlap: (R, C) int, pixels of cluster c on region r; every region has at least one
    pixel. Returns three (R, C) float64: P = overlap / cluster size (0 for an empty cluster),
    R = overlap / region size, F = 2PR / (P + R) (0 where P + R = 0).
    """
    overlap = np.asarray(overlap, dtype=np.float64)
    cluster_size = overlap.sum(axis=0, keepdims=True)
    region_size = overlap.sum(axis=1, keepdims=True)
    precision = np.divide(overlap, cluster_size, out=np.zeros_like(overlap), where=cluster_size > 0)
    recall = overlap / region_size
    total = precision + recall
    fmeasure = np.divide(2.0 * precision * recall, total, out=np.zeros_like(overlap), where=total > 0)
    return precision, recall, fmeasure


def fbms_shot(labels: np.ndarray, regions: np.ndarray, n_labels: int, threshold: float = FBMS_THRESHOLD) -> FbmsShot:
    """FBMS measures of one shot (see the module docstring for every rule).

    Args:
        labels: (S, H, W) integer segment labels in [0, n_labels), the scored frames only.
        regions: (S, H, W) uint8 ground-truth region ids, 0 = background, 255 = void.
        n_labels: L, the number of segment labels (bounds ``labels``; the clusters scored are
            0..max label present).
        threshold: F a region must exceed (strictly) to count as extracted.

    Returns:
        :class:`FbmsShot`.

    Raises:
        ValueError: shapes or dtypes are wrong, a label lies outside [0, n_labels), or no
            pixel is left to score (all void, or no frame).
    """
    labels = np.asarray(labels)
    regions = np.asarray(regions)
    if labels.ndim != 3 or regions.shape != labels.shape:
        raise ValueError(f"labels and regions must both have shape (S, H, W), got {labels.shape} and {regions.shape}")
    if regions.dtype != np.uint8:
        raise ValueError(f"regions must be uint8 region ids, got {regions.dtype}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integers, got {labels.dtype}")
    if n_labels < 1:
        raise ValueError(f"n_labels must be >= 1, got {n_labels}")
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must lie in [0, 1], got {threshold}")
    if labels.size and (labels.min() < 0 or labels.max() >= n_labels):
        raise ValueError(f"labels must lie in [0, {n_labels}), got values {int(labels.min())}..{int(labels.max())}")
    keep = regions != VOID
    reg = regions[keep].astype(np.int64)
    lab = labels[keep].astype(np.int64)
    if reg.size == 0:
        raise ValueError("no non-void pixel to score")

    region_ids = np.flatnonzero(np.bincount(reg, minlength=VOID))  # visible: at least one pixel
    n_clusters = int(lab.max()) + 1  # the evaluator's count: max label in the track file + 1
    row = np.zeros(VOID, dtype=np.int64)
    row[region_ids] = np.arange(len(region_ids))
    n_regions = len(region_ids)
    overlap = np.bincount(row[reg] * n_clusters + lab, minlength=n_regions * n_clusters).reshape(n_regions, n_clusters)
    p_pair, r_pair, f_pair = pair_measures(overlap)

    # Match on truncated integers as the evaluator does, so near-ties resolve alike.
    cluster = match_objects(np.floor(f_pair * F_SCALE))
    matched = cluster != NO_SEGMENT
    rows = np.flatnonzero(matched)
    precision = np.ones(n_regions)  # unmatched region: P = 1, R = 0 (the evaluator's "empty cluster")
    recall = np.zeros(n_regions)
    fmeasure = np.zeros(n_regions)
    precision[rows] = p_pair[rows, cluster[rows]]
    recall[rows] = r_pair[rows, cluster[rows]]
    fmeasure[rows] = f_pair[rows, cluster[rows]]

    avg_p = float(precision.mean())
    avg_r = float(recall.mean())
    # -1 for the background whether or not the background itself passes, as the evaluator counts.
    extracted = max(0, int(np.count_nonzero(fmeasure[rows] > threshold)) - 1)
    shot = FbmsShot(
        regions=region_ids.astype(np.int64),
        cluster=cluster,
        precision=precision,
        recall=recall,
        fmeasure=fmeasure,
        avg_precision=avg_p,
        avg_recall=avg_r,
        f=_harmonic(avg_p, avg_r),
        extracted=extracted,
        visible_objects=max(0, n_regions - 1),
    )
    log.debug(
        "%d region(s), %d cluster(s): P %.4f R %.4f F %.4f, %d/%d objects",
        n_regions,
        n_clusters,
        shot.avg_precision,
        shot.avg_recall,
        shot.f,
        shot.extracted,
        shot.visible_objects,
    )
    return shot


def fbms_overall(shots: Sequence[FbmsShot]) -> FbmsOverall:
    """FBMS measures over shots (MoSegEvalAll_PR): precision and recall are the means of the
    shots' avgP and avgR (each shot weighs the same), F their harmonic mean; extracted and
    visible objects are summed. No shot: NaN precision, recall and F, 0 objects."""
    if not shots:
        nan = float("nan")
        return FbmsOverall(nan, nan, nan, 0, 0)
    precision = float(np.mean([s.avg_precision for s in shots]))
    recall = float(np.mean([s.avg_recall for s in shots]))
    return FbmsOverall(
        precision=precision,
        recall=recall,
        f=_harmonic(precision, recall),
        extracted=sum(s.extracted for s in shots),
        visible_objects=sum(s.visible_objects for s in shots),
    )
