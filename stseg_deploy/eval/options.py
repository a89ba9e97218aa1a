"""The options of one evaluation, in one place: :class:`EvalOptions`, their defaults and
their checks, and the registries of the choices they take (:data:`SAME_CUT`,
:data:`PROTOCOLS`, :data:`DAVIS17_MODES`; the binarisations are
:data:`stseg_deploy.eval.binarise.BINARISATIONS`).

One frozen object is passed whole, from stseg-eval's flags to
:func:`~stseg_deploy.eval.scorefiles.evaluate_and_write`,
:func:`~stseg_deploy.eval.evaluation.evaluate`, the per-sequence scoring
(:func:`~stseg_deploy.eval.evaluation.score_sequence`,
:func:`~stseg_deploy.eval.evaluation.score_label_maps`) and
:func:`~stseg_deploy.eval.davis17.export_davis17`, so the option list and its defaults are
written once (stseg-eval's click defaults read them from here).

This module imports no other evaluation module: they all import it (davis17 imports
evaluation, so the registries cannot live in either without a cycle).
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral
from pathlib import Path

from ..io.datasplit import SPLITS
from .binarise import BINARISATIONS

# cut_size value meaning "the cut size the sequence was linked with" (from sequence.json),
# so selection chunks match linking chunks unless the user asks otherwise.
SAME_CUT = "same"
# stseg: J over every frame with ground truth; davis2016: also the DAVIS measures on the
# evaluator's frames; davis2017: per-object J&F, proposals matched to objects as the
# unsupervised evaluator does; fbms: J over the annotated frames and FBMS's own P/R/F and
# objects extracted; segtrackv2: J over every frame, each of which must have ground truth.
PROTOCOLS = ("stseg", "davis2016", "davis2017", "fbms", "segtrackv2")
# "background": the label covering most pixels becomes 0, which DAVIS reads as background.
# "paper": the original's export, every label + 1 (all L segments are proposals, none is
# background) and the last frame's map repeated for the video's last frame, which has no flow.
DAVIS17_MODES = ("background", "paper")


@dataclass(frozen=True)
class EvalOptions:
    """How to evaluate stseg-infer outputs: stseg-eval's options, with its defaults.

    Paths are kept as given (str or Path): eval.json records them and messages name them
    as the user wrote them.

    Where the ground truth is (one of ``gt_dir`` or ``data_file`` for
    :func:`~stseg_deploy.eval.evaluation.evaluate`; the export may go without; the per-sequence
    scoring takes mask paths and ignores these four):

    - ``gt_dir``: a folder of one subfolder per sequence, named like the sequence folders of
      the outputs, of masks named like the frames (``GT_DIR/SEQ/<frame>.png``).
    - ``data_file``: a DataSplit prefix whose GtMask column holds the masks; the split's
      sequences without an output folder are named as not inferred.
    - ``split``: the DataSplit split read with ``data_file`` (one of ``SPLITS``).
    - ``base_dir``: the folder the DataSplit's paths are relative to.

    How each sequence is scored:

    - ``binary``: how segments become a foreground mask (one of ``BINARISATIONS``):
      ``optimax`` (the segments that best match the ground truth per ``cut_size`` chunk: the
      paper's protocol), ``foreground`` (the objects stseg-infer chose without ground truth),
      ``fair`` (segments more than half inside the ground truth), ``exceptbiggest`` (all
      but the largest).
    - ``cut_size``: frames per chunk of the optimax selection and of the ``objects``
      matching: an integer >= 1, ``SAME_CUT`` (``"same"``: the cut size each sequence was
      linked with, from its sequence.json) or None (the whole sequence).
    - ``resize_gt``: resize masks of another size than the prediction's original size to it
      (nearest neighbour) instead of refusing them; the ``davis17`` export is then at the
      masks' size.
    - ``protocol`` (one of ``PROTOCOLS``): ``"stseg"`` (J over every frame with ground
      truth), ``"davis2016"`` (also the DAVIS benchmark's J and F statistics, on the frames
      its evaluator scores), ``"davis2017"`` (also per-object J and F, each ground-truth
      object matched to a proposal as the DAVIS-2017 unsupervised evaluator does; the
      proposals are numbered as the ``davis17_mode`` export numbers them, or the chosen
      objects with ``binary="foreground"``), ``"fbms"`` (J over the annotated frames, and
      FBMS-59's own precision, recall, F-measure and objects extracted) or ``"segtrackv2"``
      (J over every frame; a frame without ground truth makes its sequence skipped).
    - ``objects``: also score object by object, DAVIS-2017 style, the masks read as
      object-id maps (:mod:`stseg_deploy.eval.multiobject`).

    What is written (by :func:`~stseg_deploy.eval.scorefiles.evaluate_and_write`):

    - ``scores_dir``: the folder of scores.csv, summary.csv, objects.csv and eval.json
      (None: the outputs' folder).
    - ``davis17``: also export multi-label PNGs here for a DAVIS-2017 evaluator (None: no
      export).
    - ``davis17_mode``: how that export, and the ``davis2017`` protocol's proposals, number
      the labels (one of ``DAVIS17_MODES``).
    - ``allow_partial``: a result with skipped sequences is acceptable; only recorded in
      eval.json (stseg-eval's exit status acts on it).

    Raises ValueError naming the option for a choice outside its registry or a bad
    ``cut_size``. Whether exactly one ground-truth source is given is checked where the
    ground truth is read (:class:`~stseg_deploy.eval.groundtruth.GroundTruth`), since the
    per-sequence scoring takes the same object without one.
    """

    gt_dir: str | Path | None = None
    data_file: str | Path | None = None
    split: str = "val"
    base_dir: str | Path | None = None
    binary: str = "optimax"
    cut_size: int | str | None = SAME_CUT
    resize_gt: bool = False
    protocol: str = "stseg"
    objects: bool = False
    scores_dir: str | Path | None = None
    davis17: str | Path | None = None
    davis17_mode: str = "background"
    allow_partial: bool = False

    def __post_init__(self) -> None:
        _check_choice("split", self.split, SPLITS, "split")
        _check_choice("binary", self.binary, BINARISATIONS, "binarisation")
        _check_choice("protocol", self.protocol, PROTOCOLS, "protocol")
        _check_choice("davis17_mode", self.davis17_mode, DAVIS17_MODES, "DAVIS-2017 export mode")
        cut = self.cut_size
        # bool is an Integral too, and True would read as a cut size of 1.
        if not (cut is None or cut == SAME_CUT or (isinstance(cut, Integral) and not isinstance(cut, bool) and cut >= 1)):
            raise ValueError(f"cut_size: expected an integer >= 1, None (the whole sequence) or {SAME_CUT!r}, got {cut!r}")


def _check_choice(option: str, value: object, choices: tuple[str, ...], what: str) -> None:
    if value not in choices:
        raise ValueError(f"{option}: unknown {what} {value!r}; expected one of {choices}")
