"""``stseg-eval``: scores of stseg-infer outputs against ground truth."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import StsegInputError
from ..eval.binarise import BINARISATIONS
from ..eval.options import DAVIS17_MODES, PROTOCOLS, SAME_CUT, EvalOptions
from ..io.datasplit import SPLITS
from ..io.outdir import StsegOutputError
from .kit import command, cut_size_option, fail, setup_logging

# The options' defaults, read from EvalOptions: its dataclass is their one source, so the
# help (show_default) and the API cannot drift apart.
_DEFAULTS = EvalOptions()


@command()
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--data-file", default=_DEFAULTS.data_file, help="DataSplit prefix whose GtMask column holds the ground truth; sequences of the split without an output folder are listed as not inferred.")
@click.option("--split", type=click.Choice(SPLITS), default=_DEFAULTS.split)
@click.option("--base-dir", type=click.Path(file_okay=False), default=_DEFAULTS.base_dir, help="Base folder of the DataSplit paths.")
@click.option("--gt-dir", type=click.Path(file_okay=False), default=_DEFAULTS.gt_dir, help="Folder with one subfolder per sequence, named like the sequence folders in OUT_DIR, of 0/255 PNG masks named like the frames.")
@click.option("--cut-size", default=_DEFAULTS.cut_size, callback=cut_size_option(same=SAME_CUT), help="Frames chunk size of the optimax mask selection and of the --objects matching; 'same': the cut size each sequence was linked with; 'none': whole sequence.")
@click.option("--binary", type=click.Choice(BINARISATIONS), default=_DEFAULTS.binary, help="How segments become a foreground mask. optimax: the segments that best match the ground truth, per --cut-size chunk (the paper's protocol, to compare with papers); foreground: the moving objects stseg-infer chose without ground truth (what a user gets); fair: segments more than half inside the ground truth; exceptbiggest: all but the largest.")
@click.option("--out", "scores_dir", type=click.Path(file_okay=False), default=_DEFAULTS.scores_dir, help="Write scores.csv, summary.csv, objects.csv and eval.json here instead of OUT_DIR (created if missing), e.g. to keep one folder's scores under several --binary.")
@click.option("--resize-gt", is_flag=True, default=_DEFAULTS.resize_gt, help="Resize ground truth whose size differs from a prediction's original size (original_size in sequence.json) to that size, nearest neighbour, and score there; without it such a mask is an error. --davis17 PNGs are then written at the ground truth's size.")
@click.option("--allow-partial", is_flag=True, default=_DEFAULTS.allow_partial, help="Exit 0 even when some sequences could not be scored; they are still listed as skipped, with their reason. Frames without ground truth never fail a run (sparse annotation is normal).")
@click.option("--protocol", type=click.Choice(PROTOCOLS), default=_DEFAULTS.protocol, help="stseg: J over every frame with ground truth. davis2016: the DAVIS benchmark's J and F (Mean, Recall, Decay) on its frames (ground truth but the first frame); every asked sequence must be scored. davis2017: also per-object J and F, each object of the first frame's annotation matched to one proposal (the labels numbered as --davis17-mode numbers them, or the chosen objects with --binary foreground) as DAVIS-2017's unsupervised evaluator does. fbms: J over the annotated frames, and FBMS-59's own precision, recall, F-measure and objects extracted (F > 0.75), over every segment. segtrackv2: J over every frame; a frame without ground truth makes its sequence skipped.")
@click.option("--objects", is_flag=True, default=_DEFAULTS.objects, help="Also score object by object, DAVIS-2017 style: the masks are read as object-id maps (indexed PNGs, palette index = object id; a 0/255 mask is one object), each object is matched one-to-one to a segment label (Hungarian, per --cut-size chunk) and scored by its mean per-frame J; writes OUT_DIR/objects.csv and prints J_objects=... (mean over all objects).")
@click.option("--davis17", type=click.Path(file_okay=False), default=_DEFAULTS.davis17, help="Also write multi-label PNGs here (DIRECTORY/SEQ/<frame>.png) for a DAVIS-2017 evaluator; the folder is replaced whole, never if it holds files stseg did not write.")
# Default None, not the dataclass's: it tells a --davis17-mode given without --davis17 (refused)
# from one not given; the help names the dataclass's default.
@click.option("--davis17-mode", type=click.Choice(DAVIS17_MODES), default=None, help=f"With --davis17 or --protocol davis2017 (default {_DEFAULTS.davis17_mode}): background: the label covering most pixels becomes 0 (DAVIS's background); paper: the original's, every label + 1 (all segments are proposals) and the last map repeated for the video's last frame, which has no flow.")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def eval_main(out_dir, data_file, split, base_dir, gt_dir, cut_size, binary, scores_dir, resize_gt, allow_partial, protocol, objects, davis17, davis17_mode, verbose) -> None:
    """Jaccard of stseg-infer outputs against ground truth; writes OUT_DIR/scores.csv,
    summary.csv and eval.json (what was scored, and how), or into --out DIR. Earlier scores
    stay until a new complete set replaces them: a failed run touches nothing, and a partial
    one does not overwrite scores that covered every sequence.

    Every sequence folder of OUT_DIR (and with --data-file every sequence of the split) is
    scored or listed as skipped with its reason. Exit status 1 when any was skipped, unless
    --allow-partial; 1 whenever none could be scored. The last line printed is J=... (mean
    over the scored sequences of their per-frame means); with --protocol davis2016,
    J=... F=... (means over sequences of J_mean and F_mean), after J&F=.... With --objects,
    J_objects=... (mean over all objects of all sequences) comes before those, and so do
    the FBMS P=... R=... F=... line of --protocol fbms and the DAVIS-2017 J&F=... line of --protocol
    davis2017 (objects pooled over sequences, as its evaluator reports)."""
    setup_logging(verbose)
    from ..eval.evaluation import SCORED
    from ..eval.scorefiles import evaluate_and_write

    if (gt_dir is None) == (data_file is None):
        raise click.UsageError("give exactly one of --gt-dir or --data-file")
    if davis17_mode is not None and davis17 is None and protocol != "davis2017":
        raise click.UsageError("--davis17-mode applies to the --davis17 export and --protocol davis2017; give one of them too")
    if protocol == "davis2016" and allow_partial:
        raise click.UsageError("--protocol davis2016 scores every asked sequence; --allow-partial does not apply")
    try:
        options = EvalOptions(
            gt_dir=gt_dir, data_file=data_file, split=split, base_dir=base_dir, binary=binary, cut_size=cut_size,
            resize_gt=resize_gt, protocol=protocol, objects=objects, scores_dir=scores_dir, davis17=davis17,
            davis17_mode=davis17_mode or _DEFAULTS.davis17_mode, allow_partial=allow_partial,
        )
        result = evaluate_and_write(out_dir, options)
    except (OSError, ValueError) as exc:
        fail(exc)
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    if result.exported is not None:
        click.echo(f"wrote {result.exported} multi-label PNGs under {davis17}", err=True)
    davis = {} if result.davis is None else {row.sequence: row for row in result.davis.itertuples()}
    per_object = _objects_by_sequence(result.objects)
    none = "" if result.objects is None else "  J_objects - (no object in its ground truth)"
    for row in result.summary.itertuples():
        if row.status == SCORED and row.sequence in davis:
            d = davis[row.sequence]
            click.echo(
                f"{row.sequence:<24} frames {d.frames:>5}  J {d.J_mean:.3f} (recall {d.J_recall:.3f}, decay {d.J_decay:.3f})"
                f"  F {d.F_mean:.3f} (recall {d.F_recall:.3f}, decay {d.F_decay:.3f}){per_object.get(row.sequence, none)}"
            )
        elif row.status == SCORED:
            sparse = f"  ({row.frames_without_gt} frame(s) without ground truth)" if row.frames_without_gt else ""
            click.echo(f"{row.sequence:<24} frames {row.frames:>5}  J {row.jaccard_mean:.3f}{per_object.get(row.sequence, none)}{sparse}")
        else:
            click.echo(f"{row.sequence:<24} skipped: {row.reason}")
    out = Path(scores_dir or out_dir)
    n_skipped, n_asked = len(result.skipped), len(result.summary)
    if result.not_written is not None:
        fail(StsegOutputError(f"{n_skipped} of {n_asked} sequence(s) could not be scored (reasons above); {result.not_written}"))
    objects_file = f"; objects: {out / 'objects.csv'}" if result.objects is not None else ""
    click.echo(f"scores: {out / 'scores.csv'}; summary: {out / 'summary.csv'}{objects_file}; record: {out / 'eval.json'}")
    if not result.scored:
        fail(StsegInputError(f"{out}: no sequence could be scored; the {n_skipped} skipped are listed above and in summary.csv"))
    if result.objects is not None:
        # Before the protocol's own lines: scripts read the last line (J=... or J=... F=...).
        click.echo(
            f"J_objects={result.overall_objects:.3f} ({result.n_objects} objects; a naive best-label match "
            f"would give {result.naive_shared} of them a segment shared with another)"
        )
    if result.fbms_total is not None:
        total = result.fbms_total
        click.echo(
            f"FBMS P={total['fbms_precision']:.3f} R={total['fbms_recall']:.3f} F={total['fbms_F']:.3f}, "
            f"{total['fbms_extracted']} of {total['fbms_objects']} objects extracted (F > 0.75)"
        )
    if result.davis2017_total is not None:
        total = result.davis2017_total
        click.echo(f"DAVIS-2017 J&F={total['J&F']:.3f} J={total['J_mean']:.3f} F={total['F_mean']:.3f} ({len(result.davis2017)} objects)")
    if result.davis is not None:
        if n_skipped:
            names = ", ".join(s.sequence for s in result.skipped[:5]) + (", ..." if n_skipped > 5 else "")
            fail(StsegInputError(f"{n_skipped} of {n_asked} sequence(s) could not be scored ({names}); the DAVIS protocol scores them all"))
        j, f = float(result.davis["J_mean"].mean()), result.overall_f
        click.echo(f"J&F={(j + f) / 2:.3f}")
        click.echo(f"J={j:.3f} F={f:.3f}")  # last on stdout, for scripts
        return
    # scripts/demo.py and users' scripts read this line; it stays last on stdout.
    click.echo(f"J={result.overall:.3f}")
    if n_skipped:
        names = ", ".join(s.sequence for s in result.skipped[:5]) + (", ..." if n_skipped > 5 else "")
        if allow_partial:
            click.echo(f"warning: {n_skipped} of {n_asked} sequence(s) skipped ({names}); J is over the other {n_asked - n_skipped}", err=True)
        else:
            fail(StsegInputError(
                f"{n_skipped} of {n_asked} sequence(s) could not be scored ({names}); J is over the other "
                f"{n_asked - n_skipped}; see summary.csv. --allow-partial accepts a partial score"
            ))


def _objects_by_sequence(objects) -> dict[str, str]:
    """``"  J_objects 0.xxx (K objects)"`` per sequence, for the per-sequence lines."""
    if objects is None:
        return {}
    out = {}
    for sequence, group in objects.groupby("sequence"):
        out[sequence] = f"  J_objects {group['J'].mean():.3f} ({len(group)} object{'s' if len(group) != 1 else ''})"
    return out
