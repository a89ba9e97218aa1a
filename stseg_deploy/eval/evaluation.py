"""Scoring segmentations against binary ground truth, as the paper evaluates, saying exactly what was scored.

Per sequence: the label maps at the prediction's original size (``original_size`` in
``sequence.json``: the refined PNGs of a refined output, else labels.npy upsampled, nearest;
:func:`stseg_deploy.output.layout.read_label_maps`) are binarised (``optimax``: per-chunk greedy selection
with :func:`stseg_kernels.select_masks`; ``fair``; ``exceptbiggest``), then Jaccard per
frame with ground truth. The overall J is the mean of the per-sequence means (the DAVIS
convention), over the sequences that could be scored. With ``options.objects`` the same frames
are also scored object by object (:mod:`stseg_deploy.eval.multiobject`: each ground-truth object
matched to a segment of its own), from object-id masks read by
:func:`stseg_deploy.eval.groundtruth.read_gt_objects`. The OUT scan is :func:`stseg_deploy.output.layout.scan_outputs`.
How to score is one :class:`~stseg_deploy.eval.options.EvalOptions`, passed whole.

What is scored is never left implicit:

- every visible subfolder of OUT is scored or named as skipped with its reason; hidden temp
  folders of interrupted stseg-infer runs are named too; other stseg tools' outputs (a
  folder holding a marker JSON of another tool, e.g. a ``--davis17`` export) are ignored;
- with a DataSplit, its sequences that have no output folder are named ("not inferred");
- frames without ground truth are counted and named (sparse annotation is normal: they
  never fail a run); a mask that is listed but missing, unreadable or of another size than
  the prediction makes its sequence skipped, named with the file;
- outputs of different models (``model_file.sha256``) or label counts in one OUT are refused.

:func:`stseg_deploy.eval.scorefiles.evaluate_and_write` writes the results to files;
:func:`stseg_deploy.eval.davis17.export_davis17` exports label PNGs for a DAVIS-2017 evaluator.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from stseg_kernels import frame_chunks, jaccard, select_masks

from ..errors import StsegInputError, error_line
from ..io.masks import VOID
from ..output.layout import SEQUENCE_FILE, Skipped, object_id_maps, read_label_maps, record_objects, recorded_settings, scan_outputs
from .binarise import binarise_exceptbiggest, binarise_fair
from .davis17_measures import Davis17Sequence, jf_mean, proposal_ids, score_davis17
from .davis_measures import boundary_f, region_similarity, statistics
from .fbms_measures import FbmsShot, fbms_overall, fbms_shot
from .groundtruth import GroundTruth, read_gt, read_gt_objects
from .multiobject import NO_SEGMENT, score_objects
from .options import SAME_CUT, EvalOptions

log = logging.getLogger(__name__)

# The per-sequence scoring's defaults: a module constant, since an EvalOptions() call in the
# signatures is what ruff's bugbear (B008) flags.
_DEFAULT_OPTIONS = EvalOptions()

OVERALL = "overall"
SCORED, SKIPPED, PARTIAL = "scored", "skipped", "partial"
SHORT_HASH = 12
REASON_LIMIT = 400  # characters of an error in summary.csv's reason column
DAVIS_COLUMNS = ["J_mean", "J_recall", "J_decay", "F_mean", "F_recall", "F_decay"]
OBJECT_COLUMNS = ["sequence", "object", "frames", "present", "J", "segments", "naive_shared"]
# fbms: FBMS-59's own measure per sequence (shot), over its annotated frames.
FBMS_COLUMNS = ["fbms_precision", "fbms_recall", "fbms_F", "fbms_objects", "fbms_extracted"]
# davis2017: per-object statistics, as the DAVIS-2017 evaluator's per-sequence table.
DAVIS17_COLUMNS = ["J&F", "J_mean", "J_recall", "J_decay", "F_mean", "F_recall", "F_decay"]


def resolve_cut_size(cut_size: int | str | None, record: dict) -> int | None:
    """``cut_size``, or the sequence's own (stored by stseg-infer) when it is ``"same"``."""
    return record.get("cut_size") if cut_size == SAME_CUT else cut_size


def check_one_model(outputs: dict[str, tuple[Path, dict]], foreground: bool = False) -> tuple[str | None, int | None]:
    """The model hash and label count shared by all ``outputs`` (see :class:`OutputScan`).

    ``foreground``: the foreground decision's settings must agree too (``--binary
    foreground`` scores them); otherwise they are not compared, since the decision changes
    neither the labels nor the label maps.

    Raises StsegInputError naming which sequences came from which model (short SHA-256) or
    label count: scores averaged over different models mean nothing.
    """
    by_hash: dict[str | None, list[str]] = {}
    by_labels: dict[int, list[str]] = {}
    by_stages: dict[str, list[str]] = {}
    for name, (seq_dir, record) in outputs.items():
        sha = (record.get("model_file") or {}).get("sha256")
        by_hash.setdefault(sha, []).append(name)
        by_labels.setdefault(int(record["n_labels"]), []).append(name)
        by_stages.setdefault(recorded_settings(record, Path(seq_dir) / SEQUENCE_FILE).describe(foreground), []).append(name)
    folder = next(iter(outputs.values()))[0].parent if outputs else ""
    if len(by_hash) > 1:
        groups = "; ".join(
            f"{(sha or 'no model file')[:SHORT_HASH]} ({_names(names)})" for sha, names in sorted(by_hash.items(), key=lambda kv: kv[0] or "")
        )
        raise StsegInputError(
            f"{folder}: outputs of {len(by_hash)} different models (model_file.sha256 in {SEQUENCE_FILE}): {groups}; "
            "score each model's outputs in its own folder"
        )
    if len(by_labels) > 1:
        groups = "; ".join(f"{n} ({_names(names)})" for n, names in sorted(by_labels.items()))
        raise StsegInputError(f"{folder}: outputs with different n_labels in {SEQUENCE_FILE}: {groups}; score them separately")
    if len(by_stages) > 1:
        groups = "; ".join(f"{stages} ({_names(names)})" for stages, names in sorted(by_stages.items()))
        raise StsegInputError(
            f"{folder}: outputs made with different settings (tta, refine, split, carry, foreground in {SEQUENCE_FILE}): {groups}; "
            "score each setting's outputs in its own folder"
        )
    sha = next(iter(by_hash), None)
    return sha, next(iter(by_labels), None)


def _names(names: list[str], shown: int = 5) -> str:
    return ", ".join(names[:shown]) + (f" and {len(names) - shown} more" if len(names) > shown else "")


# -- scoring -------------------------------------------------------------------------------


@dataclass
class SequenceScore:
    """Per-frame scores of one sequence: ``per_frame`` has one row per output frame, columns
    sequence, frame, has_gt (bool), jaccard (float in [0, 1], NaN where has_gt is False);
    ``record``: the sequence.json read together with the labels that were scored."""

    sequence: str
    per_frame: pd.DataFrame
    record: dict = field(default_factory=dict)
    objects: pd.DataFrame | None = None  # with options.objects: OBJECT_COLUMNS, one row per object
    fbms: FbmsShot | None = None  # protocol fbms
    davis2017: Davis17Sequence | None = None  # protocol davis2017

    @property
    def n_scored(self) -> int:
        return int(self.per_frame["has_gt"].sum())

    @property
    def n_without_gt(self) -> int:
        return int((~self.per_frame["has_gt"]).sum())

    @property
    def jaccard_mean(self) -> float:
        return float(self.per_frame["jaccard"].mean())  # NaN rows (no ground truth) are left out

    def davis_statistics(self) -> dict[str, float | int]:
        """frames (scored by the DAVIS protocol) and J_/F_ mean, recall and decay."""
        rows = self.per_frame[self.per_frame["davis"]]
        j = statistics(rows["J"].to_numpy())
        f = statistics(rows["F"].to_numpy())
        return {"frames": len(rows), **dict(zip(DAVIS_COLUMNS, (*j, *f)))}


def _binarise(labels: np.ndarray, gt: np.ndarray, has_gt: np.ndarray, n_labels: int, method: str, cut_size: int | None) -> np.ndarray:
    if method == "optimax":
        return select_masks(labels, gt, has_gt, n_labels, cut_size)
    out = np.zeros(labels.shape, dtype=bool)
    for f in np.flatnonzero(has_gt):
        out[f] = binarise_fair(labels[f], gt[f], n_labels) if method == "fair" else binarise_exceptbiggest(labels[f], n_labels)
    return out


def score_sequence(seq_dir: Path, masks: list[Path | None], options: EvalOptions = _DEFAULT_OPTIONS) -> SequenceScore:
    """Per-frame Jaccard of one output folder against the given mask files (one per frame,
    None where a frame has no ground truth), scored as ``options`` says (its ``binary``,
    ``cut_size``, ``resize_gt``, ``protocol`` and ``objects``; the ground-truth source and
    the writing options do not apply to one sequence).

    ``options.objects`` also scores object by object (:func:`stseg_deploy.eval.multiobject.score_objects`)
    on the same frames as the protocol's J (``davis2016``: the evaluator's frames), the masks
    read as object-id maps, matched per ``cut_size`` chunk (None: the whole sequence, the
    DAVIS-2017 protocol); ``SequenceScore.objects`` gets one row per object.

    ``options.protocol == "davis2016"`` also scores the DAVIS measures (:mod:`stseg_deploy.eval.davis_measures`)
    on the frames the official evaluator scores: those with ground truth but the sequence's
    first (the last frame of a video has no forward flow, so no prediction, and the evaluator
    leaves it out too); columns ``davis`` (bool), ``J`` and ``F``.

    Scored at the prediction's original size (``original_size``), on the output's label maps
    there (:func:`stseg_deploy.output.layout.read_label_maps`: the refined PNGs of a refined
    output, else labels.npy upsampled); a mask of another size is an error unless
    ``options.resize_gt`` (see :func:`read_gt`).
    ``options.cut_size``: frames per selection chunk; ``"same"`` (default) uses the cut size the
    sequence was linked with; None, the whole sequence. Raises StsegInputError when no frame
    has ground truth, or a mask is unreadable or of another size.
    """
    full, record = read_label_maps(seq_dir)
    return score_label_maps(full, record, masks, options, where=seq_dir)


def score_label_maps(
    full: np.ndarray,
    record: dict,
    masks: list[Path | None],
    options: EvalOptions = _DEFAULT_OPTIONS,
    where: Path | str = "label maps",
) -> SequenceScore:
    """:func:`score_sequence` on label maps held in memory: ``full`` (F, H, W) uint8 at the
    record's ``original_size`` and its sequence.json ``record``, e.g. to score several
    refinements of one output without writing each (``where`` names them in errors)."""
    cut_size = resolve_cut_size(options.cut_size, record)
    frames = record["frames"]
    if len(masks) != len(frames):
        raise ValueError(f"{where}: {len(masks)} mask entries for {len(frames)} frames")
    has_gt = np.array([m is not None for m in masks], dtype=bool)
    if not has_gt.any():
        raise StsegInputError(f"{where}: no ground-truth mask matches any of its {len(frames)} frames")
    if options.protocol == "segtrackv2" and not has_gt.all():
        missing = [frames[t] for t in np.flatnonzero(~has_gt)]
        raise StsegInputError(
            f"{where}: frame(s) {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''} have no ground truth; "
            "SegTrackV2 annotates every frame (prepare it with stseg-prepare segtrackv2)"
        )
    if options.protocol == "davis2017" and not has_gt[0]:
        raise StsegInputError(
            f"{where}: its first frame {frames[0]} has no ground truth; DAVIS-2017 takes the objects to score from the "
            "first frame's annotation"
        )
    size = (int(record["original_size"][0]), int(record["original_size"][1]))
    gt = np.zeros(full.shape, dtype=bool)
    for f in np.flatnonzero(has_gt):
        gt[f] = read_gt(masks[f], size, options.resize_gt)
    n_labels = int(record["n_labels"])
    ids = None
    if options.binary == "foreground":
        chosen = record_objects(record, where)
        if chosen is None:
            raise StsegInputError(
                f"{where}: sequence {record['sequence']!r} has no foreground decision (written with --foreground none, "
                "or before stseg-infer decided one); rerun stseg-infer with --foreground motion, or choose another --binary"
            )
        ids = object_id_maps(full, chosen)
        foreground = ids > 0
    else:
        foreground = _binarise(full, gt, has_gt, n_labels, options.binary, cut_size)
    scores = np.full(len(frames), np.nan)
    scores[has_gt] = jaccard(gt[has_gt], foreground[has_gt])
    table = pd.DataFrame({"sequence": record["sequence"], "frame": frames, "has_gt": has_gt, "jaccard": scores})
    if options.protocol == "davis2016":
        official = has_gt.copy()
        official[np.flatnonzero(has_gt)[0]] = False  # the evaluator leaves out the first frame
        j = np.full(len(frames), np.nan)
        f = np.full(len(frames), np.nan)
        for t in np.flatnonzero(official):
            j[t] = region_similarity(foreground[t], gt[t])
            f[t] = boundary_f(foreground[t], gt[t])
        table = table.assign(davis=official, J=j, F=f)
    # The frames the object measures score: the protocol's (davis2016: the evaluator's).
    scored = table["davis"].to_numpy() if options.protocol == "davis2016" else has_gt
    object_ids = None
    if options.objects or options.protocol in ("fbms", "davis2017"):
        # Read once for every measure that needs them (fbms and davis2017 score has_gt).
        object_ids = np.zeros(full.shape, dtype=np.uint8)
        for t in np.flatnonzero(scored):
            object_ids[t] = read_gt_objects(masks[t], size, options.resize_gt)
    shot = davis2017 = None
    if options.protocol in ("fbms", "davis2017"):
        regions = object_ids[has_gt]
        if options.protocol == "fbms":
            # The clusters are every segment, or with the output's own foreground its
            # object-id map (background 0 one cluster, each object one).
            clusters, n_clusters = (full, n_labels) if ids is None else (ids, n_labels + 1)
            shot = fbms_shot(clusters[has_gt], regions, n_clusters)
        else:
            proposals = ids if ids is not None else proposal_ids(full, n_labels, options.davis17_mode)
            davis2017 = score_davis17(proposals[has_gt], regions, first_gt=regions[0])
    per_object = None
    if options.objects:
        # With the output's own foreground, its object-id map is scored: background (id 0)
        # explains no object.
        per_object = (
            _score_objects(record["sequence"], full, object_ids, scored, n_labels, cut_size)
            if ids is None else _score_objects(record["sequence"], ids, object_ids, scored, n_labels + 1, cut_size, background=0)
        )
    return SequenceScore(record["sequence"], table, record, per_object, shot, davis2017)


def _score_objects(
    sequence: str, labels: np.ndarray, ids: np.ndarray, scored: np.ndarray,
    n_labels: int, cut_size: int | None, background: int | None = None,
) -> pd.DataFrame:
    """One row per ground-truth object (OBJECT_COLUMNS) of a sequence; ``labels`` and ``ids``
    (the object ids read on the ``scored`` frames) of one shape."""
    # The chunks of the mask selection, which are those the sequence was linked in: labels
    # are named consistently only inside one.
    scores = score_objects(labels, ids, scored, n_labels, frame_chunks(len(labels), cut_size), background=background)
    if scores.n_objects == 0:
        # An indexed 0/255 binary mask reads as all void (DAVIS-2017's 255); say so, since
        # the binary measure still sees a foreground there.
        void = " (its masks hold only background and void, 255: a binary mask should be greyscale 0/255)" if (ids == VOID).any() else ""
        log.warning("%s: no object in its ground truth on the scored frames%s", sequence, void)
    return pd.DataFrame({
        "sequence": sequence,
        "object": scores.ids,
        "frames": scores.frames,
        "present": scores.present,
        "J": scores.j,
        # The labels matched (an object-id map's ids are label + 1: its segment is id - 1).
        "segments": [" ".join("-" if s == NO_SEGMENT else str(s - (background is not None)) for s in scores.segments[:, k])
                     for k in range(scores.n_objects)],
        "naive_shared": scores.naive_shared,
    }, columns=OBJECT_COLUMNS)


SUMMARY_COLUMNS = ["sequence", "status", "frames", "frames_without_gt", "jaccard_mean", "reason"]


@dataclass
class Evaluation:
    """What :func:`evaluate` scored and what it did not.

    - ``scores``: one row per frame of every scored sequence: sequence, frame, has_gt
      (bool), jaccard (NaN where has_gt is False).
    - ``summary``: one row per asked sequence, sorted: sequence, status (``scored`` /
      ``skipped``), frames (scored frames), frames_without_gt (<NA> when skipped),
      jaccard_mean (NaN when skipped), reason (empty when scored).
    - ``overall``: mean of the scored sequences' means (NaN when none was scored).
    - ``skipped``: the skipped sequences and why; ``notes``: leftovers of interrupted runs
      beside outputs that were scored; ``model_sha256`` / ``n_labels``: shared by all outputs.
    - ``exported``: PNGs written by the ``--davis17`` export, if one ran.
    - ``objects``: with ``options.objects``, one row per ground-truth object of every scored
      sequence (sequence, object, frames, present, J, segments, naive_shared; see
      :mod:`stseg_deploy.eval.multiobject`); None otherwise.
    """

    scores: pd.DataFrame
    summary: pd.DataFrame
    overall: float
    skipped: list[Skipped]
    notes: list[str]
    model_sha256: str | None
    n_labels: int | None
    exported: int | None = None
    # Why the scores were not written (stseg_deploy.eval.scorefiles): a partial result
    # beside an earlier complete one; None when they were.
    not_written: str | None = None
    protocol: str = "stseg"
    davis: pd.DataFrame | None = None  # davis2016: sequence, frames, J_mean ... F_decay
    objects: pd.DataFrame | None = None
    # fbms: sequence, fbms_frames and FBMS_COLUMNS per scored sequence; fbms_total: MoSegEvalAll's
    # aggregate (precision, recall, F, objects, extracted).
    fbms: pd.DataFrame | None = None
    fbms_total: dict | None = None
    # davis2017: one row per ground-truth object (sequence, object, proposal, DAVIS17_COLUMNS);
    # davis2017_total: the evaluator's global J&F, J and F statistics, objects pooled.
    davis2017: pd.DataFrame | None = None
    davis2017_total: dict | None = None

    @property
    def overall_objects(self) -> float:
        """Mean J over all objects of all scored sequences (DAVIS-2017 style); NaN without."""
        return float(self.objects["J"].mean()) if self.objects is not None and len(self.objects) else math.nan

    @property
    def n_objects(self) -> int:
        return 0 if self.objects is None else len(self.objects)

    @property
    def naive_shared(self) -> int:
        """Objects a naive per-object best-label match would give a segment shared with another."""
        return 0 if self.objects is None else int(self.objects["naive_shared"].sum())

    @property
    def overall_f(self) -> float:
        """davis2016: mean over sequences of F_mean (NaN otherwise)."""
        return float(self.davis["F_mean"].mean()) if self.davis is not None and len(self.davis) else math.nan

    @property
    def scored(self) -> list[str]:
        return self.summary.loc[self.summary["status"] == SCORED, "sequence"].tolist()

    @property
    def partial(self) -> bool:
        """True when any asked sequence was skipped (frames without ground truth do not count)."""
        return bool(self.skipped)

    def summary_table(self) -> pd.DataFrame:
        """``summary`` plus the ``overall`` row, as written to summary.csv.

        The overall row: status ``scored`` (all scored), ``partial`` (some skipped) or
        ``skipped`` (none scored); frames and frames_without_gt summed over scored sequences;
        jaccard_mean = ``overall``; reason = "N sequence(s) scored, M skipped".
        """
        scored = self.summary[self.summary["status"] == SCORED]
        n_scored, n_skipped = len(scored), len(self.skipped)
        status = SKIPPED if n_scored == 0 else PARTIAL if n_skipped else SCORED
        row = {
            "sequence": OVERALL,
            "status": status,
            "frames": int(scored["frames"].sum()),
            "frames_without_gt": int(scored["frames_without_gt"].sum()),
            "jaccard_mean": self.overall,
            "reason": f"{n_scored} sequence(s) scored, {n_skipped} skipped",
        }
        table = pd.concat([self.summary, pd.DataFrame([row])], ignore_index=True)
        table = table.astype({"frames_without_gt": "Int64"})
        table = self._with_objects(table)
        table = self._with_protocol(table)
        if self.davis is None:
            return table
        # The DAVIS protocol's columns first; what was scored or skipped, and why, after.
        davis = pd.concat([self.davis, pd.DataFrame([{"sequence": OVERALL, **self.davis[DAVIS_COLUMNS].mean().to_dict(),
                                                       "frames": int(self.davis["frames"].sum())}])], ignore_index=True)
        extra = [] if self.objects is None else ["objects", "J_objects"]
        merged = davis.merge(table[["sequence", *extra, "status", "reason"]], on="sequence", how="right")
        return merged[["sequence", "frames", *DAVIS_COLUMNS, *extra, "status", "reason"]]

    def _with_protocol(self, table: pd.DataFrame) -> pd.DataFrame:
        """fbms: FBMS_COLUMNS per sequence, the overall row MoSegEvalAll's aggregate;
        davis2017: DAVIS17_COLUMNS per sequence (means over its objects), the overall row the
        evaluator's global figures (objects pooled over sequences); before reason."""
        if self.fbms is not None:
            extra, total = self.fbms.set_index("sequence")[FBMS_COLUMNS], self.fbms_total
        elif self.davis2017 is not None:
            by_sequence = self.davis2017.groupby("sequence")[DAVIS17_COLUMNS[1:]].mean()
            extra = by_sequence.assign(**{"J&F": (by_sequence["J_mean"] + by_sequence["F_mean"]) / 2})[DAVIS17_COLUMNS]
            total = self.davis2017_total
        else:
            return table
        columns = list(extra.columns)
        table = table.join(extra, on="sequence")
        overall = table["sequence"] == OVERALL
        for column in columns:
            table.loc[overall, column] = total[column]
        counts = [c for c in ("fbms_objects", "fbms_extracted") if c in columns]
        table = table.astype(dict.fromkeys(counts, "Int64"))
        rest = [c for c in table.columns if c not in (*columns, "reason")]
        return table[[*rest, *columns, "reason"]]

    def _with_objects(self, table: pd.DataFrame) -> pd.DataFrame:
        """With ``objects``: columns objects (count) and J_objects (mean over the sequence's
        objects; on the overall row, over all objects) before reason."""
        if self.objects is None:
            return table
        groups = self.objects.groupby("sequence")["J"]
        counts, means = groups.size(), groups.mean()
        scored = table["status"] == SCORED
        n = table["sequence"].map(counts).where(scored, pd.NA)
        n = n.mask(scored & n.isna(), 0)  # scored, but no object in its ground truth
        table = table.assign(objects=n.astype("Int64"), J_objects=table["sequence"].map(means).astype("float64"))
        overall = table["sequence"] == OVERALL
        table.loc[overall, "objects"] = self.n_objects
        table.loc[overall, "J_objects"] = self.overall_objects
        columns = [c for c in table.columns if c not in ("objects", "J_objects", "reason")]
        return table[[*columns, "objects", "J_objects", "reason"]]


def evaluate(out_dir: str | Path, options: EvalOptions) -> Evaluation:
    """Score every sequence of an stseg-infer output, naming each one that could not be.

    ``options`` (:class:`~stseg_deploy.eval.options.EvalOptions`): the ground truth
    (exactly one of ``gt_dir`` or ``data_file``, with ``split`` and ``base_dir``) and how
    each sequence is scored (``binary``, ``cut_size``, ``resize_gt``: see
    :func:`score_sequence`); its writing options (``scores_dir``, ``davis17``,
    ``davis17_mode``, ``allow_partial``) are :func:`evaluate_and_write`'s and do nothing here.

    ``options.objects``: also score object by object (:mod:`stseg_deploy.eval.multiobject`), the masks
    read as object-id maps (a binary mask is one object), into ``Evaluation.objects``.

    ``options.protocol``: ``"stseg"`` (per-frame J over every frame with ground truth),
    ``"davis2016"``, which adds the DAVIS benchmark's J and F statistics (see
    :func:`score_sequence`) in ``Evaluation.davis``, ``"davis2017"`` (per-object J and F,
    :mod:`stseg_deploy.eval.davis17_measures`, in ``Evaluation.davis2017``), ``"fbms"``
    (FBMS-59's own measure, :mod:`stseg_deploy.eval.fbms_measures`, in ``Evaluation.fbms``)
    or ``"segtrackv2"`` (J over every frame, each of which must have ground truth).

    Asked sequences: every visible subfolder of ``out_dir`` (other stseg tools' outputs
    aside), sequences that only an interrupted run left, and with ``data_file`` every
    sequence of the split. Those without a complete output, without ground truth, with a
    listed mask missing, unreadable or of another size than the prediction (unless
    ``options.resize_gt``) are skipped with their reason; the others are scored. This function
    writes nothing: :func:`evaluate_and_write` does.

    Raises:
        FileNotFoundError: ``out_dir`` or the ground-truth source does not exist.
        ValueError: not exactly one ground-truth source.
        StsegInputError: outputs of different models or label counts, or nothing to score.
    """
    truth = GroundTruth(options.gt_dir, options.data_file, options.split, options.base_dir)
    foreground = options.binary == "foreground"
    scan = scan_outputs(out_dir)
    split_sequences = truth.sequences()
    if not scan.complete and not scan.skipped and not split_sequences:
        raise StsegInputError(f"{out_dir}: no sequence folders with {SEQUENCE_FILE}; run stseg-infer first")
    model_sha256, n_labels = check_one_model(scan.complete, foreground=foreground)
    parts: list[SequenceScore] = []
    skipped = list(scan.skipped)
    for name, (folder, record) in scan.complete.items():
        try:
            parts.append(score_sequence(folder, truth.masks(name, record["frames"]), options))
        except (OSError, ValueError) as exc:
            # One sequence's bad ground truth should not hide the others' scores; it is named.
            skipped.append(Skipped(name, error_line(exc, limit=REASON_LIMIT)))
    if split_sequences is not None:
        known = set(scan.complete) | {s.sequence for s in skipped}
        skipped += [
            Skipped(name, f"not inferred (in {truth.csv}, no folder in {out_dir})") for name in split_sequences if name not in known
        ]
    # The records actually scored, read with their labels in one snapshot: a sequence that
    # stseg-infer replaced since the scan (perhaps with another model) is caught here.
    if parts:
        model_sha256, n_labels = check_one_model(
            {p.sequence: (Path(out_dir) / p.sequence, p.record) for p in parts}, foreground=foreground
        )
    for note in scan.notes:
        log.info("%s", note)
    result = _evaluation(parts, skipped, scan.notes, model_sha256, n_labels)
    result.protocol = options.protocol
    ordered = sorted(parts, key=lambda p: p.sequence)
    if options.protocol == "davis2016":
        result.davis = pd.DataFrame(
            [{"sequence": p.sequence, **p.davis_statistics()} for p in ordered],
            columns=["sequence", "frames", *DAVIS_COLUMNS],
        )
    if options.protocol == "fbms":
        result.fbms = pd.DataFrame(
            [{"sequence": p.sequence, "fbms_precision": p.fbms.avg_precision, "fbms_recall": p.fbms.avg_recall,
              "fbms_F": p.fbms.f, "fbms_objects": p.fbms.visible_objects, "fbms_extracted": p.fbms.extracted} for p in ordered],
            columns=["sequence", *FBMS_COLUMNS],
        )
        total = fbms_overall([p.fbms for p in ordered])
        result.fbms_total = {"fbms_precision": total.precision, "fbms_recall": total.recall, "fbms_F": total.f,
                             "fbms_objects": total.visible_objects, "fbms_extracted": total.extracted}
    if options.protocol == "davis2017":
        tables = [p.davis2017.statistics().assign(sequence=p.sequence, proposal=p.davis2017.proposal) for p in ordered]
        columns = ["sequence", "object", "proposal", *DAVIS17_COLUMNS]
        result.davis2017 = (
            pd.concat(tables, ignore_index=True).assign(**{"J&F": lambda t: (t["J_mean"] + t["F_mean"]) / 2})[columns]
            if tables else pd.DataFrame({c: [] for c in columns}, columns=columns)
        )
        pooled = jf_mean([p.davis2017 for p in ordered])
        result.davis2017_total = {
            "J&F": pooled["J&F-Mean"], "J_mean": pooled["J-Mean"], "J_recall": pooled["J-Recall"], "J_decay": pooled["J-Decay"],
            "F_mean": pooled["F-Mean"], "F_recall": pooled["F-Recall"], "F_decay": pooled["F-Decay"],
        }
    if options.objects:
        tables = [p.objects for p in ordered if p.objects is not None and len(p.objects)]
        result.objects = (
            pd.concat(tables, ignore_index=True) if tables else pd.DataFrame({c: [] for c in OBJECT_COLUMNS}, columns=OBJECT_COLUMNS)
        )
    return result


def _evaluation(parts: list[SequenceScore], skipped: list[Skipped], notes: list[str], sha: str | None, n_labels: int | None) -> Evaluation:
    skipped = sorted(skipped, key=lambda s: s.sequence)
    rows = [
        {"sequence": p.sequence, "status": SCORED, "frames": p.n_scored, "frames_without_gt": p.n_without_gt,
         "jaccard_mean": p.jaccard_mean, "reason": ""}
        for p in parts
    ]
    rows += [
        {"sequence": s.sequence, "status": SKIPPED, "frames": 0, "frames_without_gt": pd.NA, "jaccard_mean": np.nan, "reason": s.reason}
        for s in skipped
    ]
    summary = pd.DataFrame(rows, columns=SUMMARY_COLUMNS).sort_values("sequence", kind="stable").reset_index(drop=True)
    summary = summary.astype({"frames": "int64", "frames_without_gt": "Int64", "jaccard_mean": "float64"})
    if parts:
        scores = pd.concat([p.per_frame for p in parts], ignore_index=True)
    else:
        scores = pd.DataFrame({"sequence": [], "frame": [], "has_gt": pd.Series([], dtype=bool), "jaccard": pd.Series([], dtype=float)})
    means = [p.jaccard_mean for p in parts]
    overall = float(np.mean(means)) if means else math.nan
    return Evaluation(scores, summary, overall, skipped, notes, sha, n_labels)
