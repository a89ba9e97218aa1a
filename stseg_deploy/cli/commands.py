"""Command lines of the deploy package: ``stseg-infer``, ``stseg-flow``, ``stseg-eval``, ``stseg-viz``."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import click

from ..eval.binarise import BINARISATIONS
from .kit import command, fail, flow_recipe, parse_flow_scale, setup_logging
from stseg_kernels import DEFAULT_CUT_SIZE, LINK_METHODS

from ..eval.evaluation import PROTOCOLS, SAME_CUT
from ..io.datasplit import SPLITS
from ..eval.davis17 import DAVIS17_MODES
from ..errors import StsegInputError
from ..io.outdir import StsegOutputError
from ..output.layout import OutputOptions
from ..flow.recipe import AUTO_FLOW_HEIGHT, DEFAULT_METHOD
from ..flow.recipe import METHODS as FLOW_METHODS
from ..stages.carry import CARRY_MODES, DEFAULT_CARRY, CarrySettings
from ..stages.foreground import DEFAULT_FOREGROUND, FOREGROUND_MODES
from ..cluster.infer import InferJob
from ..cluster.raykit import INSTALL_HINT
from ..stages.linker import DEFAULT_LINK
from ..stages.motionsplit import DEFAULT_SPLIT, SPLIT_MODES, SplitSettings
from ..stages.refine import DEFAULT_REFINE, MIN_EPS, REFINE_MODES, GuidedSettings
from ..runtime import PROVIDERS
from ..stages.tta import DEFAULT_TTA, TTA_MODES

_GUIDED = GuidedSettings()
_SPLIT = SplitSettings()
_CARRY = CarrySettings()


def _cut_size(same: bool):
    """Click callback for --cut-size: an integer >= 1, 'none' (whole sequence), and with
    ``same`` also 'same' (each sequence's own, from its record: stseg-eval, stseg-viz)."""
    accepted = "an integer >= 1, 'none'" + (" or 'same'" if same else "")

    def parse(ctx, param, value):  # noqa: ARG001
        if value is None or str(value).lower() == "none":
            return None
        if same and str(value).lower() == SAME_CUT:
            return SAME_CUT
        try:
            cut = int(value)
        except ValueError:
            raise click.BadParameter(f"{accepted}, got {value!r}") from None
        if cut < 1:
            raise click.BadParameter(f"{accepted}, got {value!r}")
        return cut

    return parse


def _list_models(ctx, param, value) -> None:  # noqa: ARG001
    if not value or ctx.resilient_parsing:
        return
    from ..api import list_models

    for name, line in list_models().items():
        click.echo(f"{name}: {line}")
    ctx.exit()


@command()
@click.option("--list-models", is_flag=True, is_eager=True, expose_value=False, callback=_list_models, help="List the bundled models, a line of each one's card, and exit.")
@click.option("--model", "model_path", default=None, help="Exported model: a bundled name (see --list-models) or a file, .onnx (onnxruntime) or .ts (TorchScript, needs torch) [default: the bundled mix-small].")
@click.argument("inputs", nargs=-1, type=click.Path())
@click.option("--data-file", help="DataSplit prefix instead of INPUTS: sequences come from its Sequence column.")
@click.option("--split", type=click.Choice(SPLITS), default="val", help="DataSplit split with --data-file.")
@click.option("--base-dir", type=click.Path(file_okay=False), help="Base folder of the DataSplit paths.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Output folder: one subfolder per sequence.")
@click.option("--cut-size", default=str(DEFAULT_CUT_SIZE), callback=_cut_size(same=False), help="Windows per independently linked chunk; 'none' links the whole sequence.")
@click.option("--batch-size", type=click.IntRange(min=1), default=8, help="Windows per model call.")
@click.option("--provider", type=click.Choice(PROVIDERS), default="auto", help="auto: CUDA when it really loads, else CPU.")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="CPU threads for the runtime [default: the runtime's choice].")
@click.option("--link", type=click.Choice(LINK_METHODS), default=DEFAULT_LINK, help="How labels are renamed from window to window. naive: each label takes its best match (two may merge); optimal: one-to-one.")
@click.option("--save-proba", is_flag=True, help="Also write proba/<frame>.npy (L, h, w) float32.")
@click.option("--save-features", is_flag=True, help="Also write features/<frame>.npy (C, h, w) float16, the last layer before classification.")
@click.option("--image-size", nargs=2, type=int, default=None, help="Model input size H W [default: the size stored in the model].")
@click.option("--overlay", is_flag=True, help="Also write overlay/<frame>.png and overlay.mp4 (segments over the frames, or over the flow colours for flow input) and flow/<frame>.png (colour wheel).")
@click.option("--flow-method", type=click.Choice(FLOW_METHODS), default=None, help=f"Optical flow for video inputs (OpenCV).  [default: the flow the model was trained on, as its metadata records; else {DEFAULT_METHOD}]")
@click.option("--flow-size", nargs=2, type=click.IntRange(min=16), default=None, help="Compute video flow at H W (instead of --flow-scale); masks are still written at the video's size.")
@click.option("--flow-scale", default=None, callback=parse_flow_scale, help=f"Compute video flow at this factor of its size; auto: frames taller than {AUTO_FLOW_HEIGHT} px shrunk to {AUTO_FLOW_HEIGHT} rows.  [default: the model's training flow; else auto]")
@click.option("--flow-step", type=click.IntRange(min=1), default=1, help="Video flow from frame t to t + step.")
@click.option("--tta", type=click.Choice(TTA_MODES), default=DEFAULT_TTA, help="Test-time augmentation. flip: each window also runs mirrored left-right in the same model call, and the two predictions are averaged, segments aligned per window (about twice the model's time).")
@click.option("--refine", type=click.Choice(REFINE_MODES), default=DEFAULT_REFINE, help="How labels reach the frames' size. guided: a guided filter of the linked probabilities with the frame as guide, so boundaries follow image edges (needs the frames: a video, a frame folder, a DataSplit Image column or --frames); none: nearest upsampling; auto: guided where the frames are known, else none (sequence.json says which).")
@click.option("--guided-radius", type=click.FloatRange(min=0, min_open=True), default=_GUIDED.radius, help="Guided refinement: box radius in pixels of a 480-row frame, scaled with the frame's height.")
@click.option("--guided-eps", type=click.FloatRange(min=MIN_EPS), default=_GUIDED.eps, help="Guided refinement: regularisation (colours in [0, 1]); larger is smoother, smaller follows weaker edges.")
@click.option("--guided-subsample", type=click.IntRange(min=1), default=_GUIDED.subsample, help="Guided refinement: its coefficients are computed on a grid this many times coarser (1: the exact filter, several times slower).")
@click.option("--motion-split", type=click.Choice(SPLIT_MODES), default=DEFAULT_SPLIT, help="motion: a segment whose flow two parametric motions explain much better than one is split, per window and starting from the previous window's split, into spare segments (outputs then have more labels than the model); none: the model's segments.")
@click.option("--motion-split-gain", type=click.FloatRange(min=0, min_open=True), default=_SPLIT.min_gain, help="Motion split: the L1 residual, as a share of the window's mean flow magnitude, above which one motion does not explain a region (its mean: it is cut) and below which one group's motion explains another (its median: they are joined); never below 0.1 px at model size.")
@click.option("--motion-split-extra", type=click.IntRange(min=0, max=32), default=_SPLIT.extra, help="Motion split: spare segments a window may add.")
@click.option("--carry", type=click.Choice(CARRY_MODES), default=DEFAULT_CARRY, help="Temporal carry. forward: each linked frame's probabilities are carried to the next frame along the flow and blended with its own, so a segment holds while its object stops or moves like the background; none: each frame as linking left it.")
@click.option("--carry-weight", type=click.FloatRange(min=0, max=1, max_open=True), default=_CARRY.weight, help="Temporal carry: the carried probabilities' share of each frame's blend; a segment the network drops for k frames holds while weight^k > 1/2 (0.8: 3 frames, 0.9: 6).")
@click.option("--foreground", type=click.Choice(FOREGROUND_MODES), default=DEFAULT_FOREGROUND, help="Which segments are the moving objects, decided without ground truth. motion: per linking chunk, a segment whose flow the frame's dominant motion leaves unexplained and that stays off the frame's border is an object; writes foreground/ (0/255 masks) and objects/ (object ids) and draws the background black in the label PNGs; none: labels only.")
@click.option("--frames", "frames_dir", type=click.Path(file_okay=False), default=None, help="Frames of flow-file inputs, for --refine: FRAMES/<sequence>/<name>.jpg|png for flow <name>.flo (or FRAMES/<name>.* with one input). Frame t is the one flow t starts from. Masks are then written at the frames' size, as for a DataSplit with an Image column.")
@click.option("--skip-done", is_flag=True, help="Skip sequences whose output is complete and was made from the same inputs with the same settings and model file.")
@click.option("--ray", "ray_address", metavar="ADDRESS", default=None, help=f"Spread the sequences over a Ray cluster, one model per worker (per GPU, or per --threads CPUs): 'local' starts Ray on this machine, 'auto' joins the cluster this machine belongs to, or a cluster address (host:6379, ray://host:10001). OUT must be on a filesystem every node sees. Needs {INSTALL_HINT}.")
@click.option("-v", "--verbose", is_flag=True)
def infer_main(model_path, inputs, data_file, split, base_dir, out_dir, cut_size, batch_size, provider, threads, link, save_proba, save_features, image_size, overlay, flow_method, flow_size, flow_scale, flow_step, tta, refine, guided_radius, guided_eps, guided_subsample, motion_split, motion_split_gain, motion_split_extra, carry, carry_weight, foreground, frames_dir, skip_done, ray_address, verbose) -> None:
    """Segment videos. Each INPUT is a folder of flow files (.flo, .npy, KITTI .png), a
    video file (mp4, avi, mov, webm, ...) or a folder of frames; flow is computed on the fly
    for the last two (F frames give F - step segmented frames). Or give --data-file for the
    sequences of a DataSplit.

    Each sequence goes to OUT/SEQ, written under a temporary name and swapped in only when
    complete: a rerun replaces an earlier stseg output only once it has succeeded; a folder
    holding files stseg did not write, or holding an input, is refused; two runs on one
    sequence at once: the second fails at once.

    With --ray, a sequence whose worker dies is given to another worker; one that fails on
    its input is named at the end while the others go on; the exit status is 1 if any failed."""
    setup_logging(verbose)
    outputs = OutputOptions(save_proba, save_features, overlay)
    from tqdm import tqdm

    from ..output.folder import check_outputs_spare_inputs, is_done, model_file_sha256, output_settings, segment_to_folder
    from ..pipeline import Segmenter
    from ..runtime import load_model
    from ..sources import Sequence, sequences_from_datasplit, sequences_from_inputs, with_frames
    from ..zoo import resolve_model

    if bool(inputs) == bool(data_file):
        raise click.UsageError("give either INPUT arguments or --data-file, not both and not neither")
    try:
        # The model is read first, for the flow it was trained on (video inputs get that flow
        # unless told otherwise), but its error waits: a bad input is named even when the
        # model is wrong too.
        model = model_error = None
        try:
            model_file, bundled = resolve_model(model_path)
            # On a cluster the driver reads the model's metadata only: the workers run it.
            model = load_model(model_file, provider="cpu", threads=1) if ray_address else load_model(model_file, provider=provider, threads=threads)
        except (OSError, ValueError, RuntimeError) as exc:
            model_error = exc
        if inputs:
            recipe = flow_recipe(flow_method, flow_size, flow_scale, flow_step, trained=model.info.flow if model else None)
            sequences = sequences_from_inputs(inputs, recipe)
        else:
            sequences = sequences_from_datasplit(data_file, split, base_dir)
        if frames_dir is not None:
            targets = [s for s in sequences if isinstance(s, Sequence) and not s.has_frames]
            if not targets:
                raise click.UsageError("--frames applies to flow-file inputs without frames; every input here has its frames")
            sequences = [with_frames(s, frames_dir, len(sequences) == 1) if s in targets else s for s in sequences]
        check_outputs_spare_inputs(sequences, out_dir)
        if model_error is not None:
            raise model_error
        guided = GuidedSettings(guided_radius, guided_eps, guided_subsample)
        split_settings = SplitSettings(extra=motion_split_extra, min_gain=motion_split_gain)
        carry_settings = CarrySettings(weight=carry_weight)
        segmenter = Segmenter(
            model, batch_size=batch_size, cut_size=cut_size, link=link, image_size=image_size, tta=tta, refine=refine, guided=guided,
            split=motion_split, split_settings=split_settings, carry=carry, carry_settings=carry_settings,
            foreground=foreground,
        )
        for sequence in sequences:
            # --refine guided without frames, or a listed frame missing: named before anything runs.
            if segmenter.refinement(sequence) == "guided":
                sequence.check_frames()
        model_sha256 = model_file_sha256(segmenter)
    except (OSError, ValueError, RuntimeError) as exc:
        fail(exc)
    where = "on the Ray workers" if ray_address else f"{model.engine} on {model.device}"
    refined = sum(segmenter.refinement(s) == "guided" for s in sequences)
    click.echo(
        f"model {f'bundled {bundled!r} ({model_file})' if bundled else model_file}: {where}, L={model.info.n_labels}, "
        f"input {segmenter.image_size[0]}x{segmenter.image_size[1]}, {len(sequences)} sequence(s); tta {tta}, "
        f"refine {refine}" + (f" (guided for {refined} of {len(sequences)})" if refine == "auto" else ""),
        err=True,
    )
    if refine == "auto" and 0 < refined < len(sequences):
        click.echo(
            f"warning: {len(sequences) - refined} sequence(s) have no frames, so their masks are not refined; "
            "stseg-eval refuses to score refined and unrefined outputs together in one OUT (give their frames with --frames, or --refine none)",
            err=True,
        )
    if skip_done:
        todo = [s for s in sequences if not is_done(out_dir, s, output_settings(segmenter, s, outputs), model_sha256)]
        click.echo(f"--skip-done: {len(sequences) - len(todo)} sequence(s) already done with these inputs, settings and model; skipped", err=True)
        sequences = todo
    if ray_address:
        job = InferJob(
            str(Path(out_dir).absolute()), str(Path(model_file).absolute()), provider, threads or 1, batch_size, cut_size,
            link, None if image_size is None else tuple(image_size), outputs, model_sha256,
            tta=tta, refine=refine, guided=guided, split=motion_split, split_settings=split_settings,
            carry=carry, carry_settings=carry_settings, foreground=foreground, cwd=os.getcwd(),  # the workers start there, so relative input paths mean the same
        )
        _infer_on_ray(ray_address, sequences, job)
        return
    total_frames, started = 0, time.perf_counter()
    for sequence in sequences:
        bar = tqdm(total=sequence.n_frames, desc=sequence.name, unit="frame", file=sys.stderr, dynamic_ncols=True)
        try:
            stats = segment_to_folder(
                segmenter, sequence, out_dir, outputs, on_frame=lambda _frame: bar.update(1), model_sha256=model_sha256,
            )
        except MemoryError:
            bar.close()
            fail(MemoryError(
                f"{sequence.name}: out of memory at model input {segmenter.image_size[0]}x{segmenter.image_size[1]} "
                f"with batch size {batch_size}; try a smaller --image-size or --batch-size"
            ))
        except (OSError, ValueError, RuntimeError) as exc:
            bar.close()
            fail(exc)
        bar.close()
        total_frames += stats.n_frames
    seconds = time.perf_counter() - started
    click.echo(
        f"segmented {total_frames} frames of {len(sequences)} sequence(s) in {seconds:.1f} s "
        f"({total_frames / max(seconds, 1e-9):.1f} frames/s); results in {Path(out_dir)}"
    )


def _infer_on_ray(address: str, sequences: list, job: InferJob) -> None:
    """stseg-infer --ray: the sequences over the cluster's workers, a progress bar over their
    frames, failures named at the end (exit status 1 when any failed)."""
    from collections import Counter

    from tqdm import tqdm

    from ..cluster.infer import segment_on_ray
    from ..cluster.raykit import ClusterError, ray_session

    if not sequences:
        click.echo(f"nothing to segment; results in {Path(job.out_dir)}")
        return
    started = time.perf_counter()
    bar = tqdm(total=sum(s.n_frames for s in sequences), unit="frame", desc="cluster", file=sys.stderr, dynamic_ncols=True)
    n_workers, ready = 0, started

    def on_start(hellos: list[dict]) -> None:
        nonlocal n_workers, ready
        n_workers, ready = len(hellos), time.perf_counter()
        nodes = Counter(h["host"] for h in hellos)
        devices = ", ".join(sorted({h["device"] for h in hellos}))
        bar.write(f"{n_workers} worker(s) on {len(nodes)} node(s): {devices}", file=sys.stderr)

    def on_progress(progress) -> None:
        bar.n = min(progress.frames, bar.total)
        bar.set_postfix_str(f"{progress.finished}/{len(sequences)} sequences", refresh=False)
        bar.refresh()

    try:
        with ray_session(address) as ray:
            outcomes = segment_on_ray(ray, sequences, job, on_progress=on_progress, on_start=on_start)
    except (ClusterError, OSError) as exc:
        bar.close()
        fail(exc)
    bar.close()
    finished = time.perf_counter()
    done = [o for o in outcomes if o.status == "done"]
    failed = [o for o in outcomes if o.status == "failed"]
    frames = sum(o.frames for o in done)
    retried = [f"{o.name} ({o.attempts} attempts)" for o in outcomes if o.attempts > 1]
    if retried:
        click.echo(f"given to another worker after a worker died: {', '.join(retried)}", err=True)
    for outcome in failed:
        click.echo(f"failed: {outcome.name}: {outcome.error}", err=True)
    # Frames per second from the moment the workers were ready: starting Ray and loading the
    # models is paid once per job, whatever its length.
    click.echo(
        f"segmented {frames} frames of {len(done)} sequence(s) on {n_workers} worker(s) in {finished - started:.1f} s "
        f"(starting took {ready - started:.1f} s; then {frames / max(finished - ready, 1e-9):.1f} frames/s over the cluster); "
        f"results in {Path(job.out_dir)}"
    )
    if failed:
        raise click.ClickException(f"{len(failed)} of {len(outcomes)} sequence(s) failed (named above)")


@command()
@click.argument("source", type=click.Path())
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Folder for the .flo files (00000.flo = flow from frame 0 to frame step); written whole, replacing only an earlier stseg-flow output.")
@click.option("--method", type=click.Choice(FLOW_METHODS), default=DEFAULT_METHOD, help="OpenCV engine: deepflow (most accurate for segmentation), dis-fine, dis (fastest), farneback.")
@click.option("--size", nargs=2, type=click.IntRange(min=16), default=None, help="Compute flow at H W (instead of --scale).")
@click.option("--scale", "flow_scale", default=None, callback=parse_flow_scale, help=f"Compute flow at this factor of the video's size; auto: frames taller than {AUTO_FLOW_HEIGHT} px shrunk to {AUTO_FLOW_HEIGHT} rows.  [default: auto]")
@click.option("--step", type=click.IntRange(min=1), default=1, help="Flow from frame t to frame t + step.")
@click.option("-v", "--verbose", is_flag=True)
def flow_main(source, out_dir, method, size, flow_scale, step, verbose) -> None:
    """Compute forward optical flow of a video file or a folder of frames, as .flo files.

    OUT is written under a temporary name and swapped in when complete, with a marker
    (stseg-flow.json): a rerun replaces an earlier stseg-flow output, never a folder
    holding other files."""
    setup_logging(verbose)
    from tqdm import tqdm

    from ..flow.opticalflow import flow_from_video
    from ..io.videoio import open_frame_source

    recipe = flow_recipe(method, size, flow_scale, step, options=("--size", "--scale"))
    try:
        video = open_frame_source(source)
        size = recipe.size_for(video.size)
        bar = tqdm(total=len(video), desc=video.name, unit="frame", file=sys.stderr, dynamic_ncols=True)
        started = time.perf_counter()
        try:
            written = flow_from_video(video, out_dir, recipe.method, size, recipe.step, on_frame=lambda _i: bar.update(1))
        finally:
            bar.close()
    except (OSError, ValueError) as exc:
        fail(exc)
    seconds = time.perf_counter() - started
    click.echo(f"wrote {len(written)} flow files to {out_dir} in {seconds:.1f} s ({len(written) / max(seconds, 1e-9):.1f} flows/s)")


@command()
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--data-file", help="DataSplit prefix whose GtMask column holds the ground truth; sequences of the split without an output folder are listed as not inferred.")
@click.option("--split", type=click.Choice(SPLITS), default="val")
@click.option("--base-dir", type=click.Path(file_okay=False), help="Base folder of the DataSplit paths.")
@click.option("--gt-dir", type=click.Path(file_okay=False), help="Folder with one subfolder per sequence, named like the sequence folders in OUT_DIR, of 0/255 PNG masks named like the frames.")
@click.option("--cut-size", default=SAME_CUT, callback=_cut_size(same=True), help="Frames chunk size of the optimax mask selection and of the --objects matching; 'same': the cut size each sequence was linked with; 'none': whole sequence.")
@click.option("--binary", type=click.Choice(BINARISATIONS), default="optimax", help="How segments become a foreground mask. optimax: the segments that best match the ground truth, per --cut-size chunk (the paper's protocol, to compare with papers); foreground: the moving objects stseg-infer chose without ground truth (what a user gets); fair: segments more than half inside the ground truth; exceptbiggest: all but the largest.")
@click.option("--out", "scores_dir", type=click.Path(file_okay=False), default=None, help="Write scores.csv, summary.csv, objects.csv and eval.json here instead of OUT_DIR (created if missing), e.g. to keep one folder's scores under several --binary.")
@click.option("--resize-gt", is_flag=True, help="Resize ground truth whose size differs from a prediction's original size (original_size in sequence.json) to that size, nearest neighbour, and score there; without it such a mask is an error. --davis17 PNGs are then written at the ground truth's size.")
@click.option("--allow-partial", is_flag=True, help="Exit 0 even when some sequences could not be scored; they are still listed as skipped, with their reason. Frames without ground truth never fail a run (sparse annotation is normal).")
@click.option("--protocol", type=click.Choice(PROTOCOLS), default=PROTOCOLS[0], help="stseg: J over every frame with ground truth. davis2016: the DAVIS benchmark's J and F (Mean, Recall, Decay) on its frames (ground truth but the first frame); every asked sequence must be scored.")
@click.option("--objects", is_flag=True, help="Also score object by object, DAVIS-2017 style: the masks are read as object-id maps (indexed PNGs, palette index = object id; a 0/255 mask is one object), each object is matched one-to-one to a segment label (Hungarian, per --cut-size chunk) and scored by its mean per-frame J; writes OUT_DIR/objects.csv and prints J_objects=... (mean over all objects).")
@click.option("--davis17", type=click.Path(file_okay=False), default=None, help="Also write multi-label PNGs here (DIRECTORY/SEQ/<frame>.png) for a DAVIS-2017 evaluator; the folder is replaced whole, never if it holds files stseg did not write.")
@click.option("--davis17-mode", type=click.Choice(DAVIS17_MODES), default=None, help="With --davis17 (default background): background: the label covering most pixels becomes 0 (DAVIS's background); paper: the original's, every label + 1 (all segments are proposals) and the last map repeated for the video's last frame, which has no flow.")
@click.option("-v", "--verbose", is_flag=True)
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
    J_objects=... (mean over all objects of all sequences) comes before those."""
    setup_logging(verbose)
    from ..eval.evaluation import SCORED
    from ..eval.scorefiles import evaluate_and_write

    if (gt_dir is None) == (data_file is None):
        raise click.UsageError("give exactly one of --gt-dir or --data-file")
    if davis17_mode is not None and davis17 is None:
        raise click.UsageError("--davis17-mode applies to the --davis17 export; give --davis17 DIRECTORY too")
    davis17_mode = davis17_mode or DAVIS17_MODES[0]
    if protocol == "davis2016" and allow_partial:
        raise click.UsageError("--protocol davis2016 scores every asked sequence; --allow-partial does not apply")
    try:
        result = evaluate_and_write(
            out_dir, gt_dir=gt_dir, data_file=data_file, split=split, base_dir=base_dir, binary=binary,
            cut_size=cut_size, resize_gt=resize_gt, davis17=davis17, davis17_mode=davis17_mode, allow_partial=allow_partial,
            protocol=protocol, objects=objects, scores_dir=scores_dir,
        )
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


@command()
@click.argument("seq_dir", type=click.Path(file_okay=False))
@click.option("--gt", "gt_dir", type=click.Path(file_okay=False), default=None, help="Folder of this sequence's 0/255 masks named like the frames [default: the DataSplit masks it was inferred with, if any].")
@click.option("--frames", "n_columns", type=click.IntRange(min=1), default=6, help="Frames (columns) shown, spread over the sequence.")
@click.option("--cut-size", default=SAME_CUT, callback=_cut_size(same=True), help="Chunk size of the mask selection; 'same': the cut size the sequence was linked with.")
@click.option("--out", "out_path", type=click.Path(dir_okay=False), default=None, help="PNG to write [default: SEQ_DIR/contact_sheet.png, which a rerun of stseg-infer replaces with the rest of the folder].")
def viz_main(seq_dir, gt_dir, n_columns, cut_size, out_path) -> None:
    """Contact sheet of a segmented sequence (an stseg-infer OUT/SEQ folder): flow,
    segments, the foreground stseg-infer chose (no ground truth used), the mask selected with
    the ground truth and the ground truth, over a few frames. The flow row needs the flow
    files, or a video's flow kept by stseg-infer --overlay; without them it is left out."""
    from ..viz.contact_sheet import sequence_contact_sheet

    try:
        path = sequence_contact_sheet(seq_dir, gt_dir, n_columns, cut_size, out_path)
    except (OSError, ValueError) as exc:
        fail(exc)
    click.echo(f"contact sheet: {path}")
