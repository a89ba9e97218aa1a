"""``stseg-infer``: segment videos, frame folders, flow folders or a DataSplit's sequences."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import click

from ..cluster.infer import InferJob
from ..cluster.local import available_cores, default_workers
from ..cluster.raykit import INSTALL_HINT
from ..flow.recipe import AUTO_FLOW_HEIGHT, DEFAULT_METHOD, swapped_engine
from ..flow.recipe import METHODS as FLOW_METHODS
from ..io.datasplit import SPLITS
from ..output.layout import OutputOptions
from ..runtime import PROVIDERS
from ..settings import InferenceSettings
from ..stages.carry import MAX_LOOKAHEAD, CarrySettings
from ..stages.foreground import ForegroundSettings
from ..stages.linker import LINK_SPANS, LinkSettings
from ..stages.motionsplit import SplitSettings
from ..stages.refine import MIN_EPS, RefineSettings
from ..stages.tta import TtaSettings
from .kit import command, cut_size_option, fail, flow_recipe, parse_flow_scale, setup_logging

# One source of the defaults: the stages' settings classes.
_DEFAULTS = InferenceSettings.option_defaults()
NO_INPUT = (
    "stseg-infer: no input given: give videos (mp4, avi, mov, ...), folders of frames or folders of flow files "
    "(.flo, .npy, KITTI .png) as INPUT arguments, or --data-file PREFIX for the sequences of a DataSplit"
)
# --help in sections, the options most runs need first.
SECTIONS = [
    ("Inputs and output", ["out_dir", "data_file", "datasplit_split", "base_dir", "frames_dir", "overlay", "save_proba", "save_features", "skip_done"]),
    ("Model", ["model_path", "list_models", "image_size"]),
    ("Stages (docs/inference-stages.md)", [
        "tta", "motion_split", "motion_split_gain", "motion_split_extra", "link", "link_span", "link_vote", "link_reclaim", "cut_size", "carry", "carry_weight", "carry_lookahead",
        "refine", "guided_radius", "guided_eps", "guided_subsample", "foreground",
    ]),
    ("Flow of video and frame inputs", ["flow_method", "flow_size", "flow_scale", "flow_step"]),
    ("Performance", ["batch_size", "provider", "threads", "workers", "ray_address"]),
]


def _list_models(ctx, param, value) -> None:  # noqa: ARG001
    if not value or ctx.resilient_parsing:
        return
    from ..api import list_models

    for name, line in list_models().items():
        click.echo(f"{name}: {line}")
    ctx.exit()



@command(sections=SECTIONS)
@click.option("--list-models", is_flag=True, is_eager=True, expose_value=False, callback=_list_models, help="List the bundled models, a line of each one's card, and exit.")
@click.option("--model", "model_path", default=None, help="Exported model: a bundled name (see --list-models) or a file, .onnx (onnxruntime) or .ts (TorchScript, needs torch) [default: the bundled mix-small].")
@click.argument("inputs", nargs=-1, type=click.Path())
@click.option("--data-file", help="DataSplit prefix instead of INPUTS: sequences come from its Sequence column.")
@click.option("--split", "datasplit_split", type=click.Choice(SPLITS), default="val", help="DataSplit split with --data-file.")
@click.option("--base-dir", type=click.Path(file_okay=False), help="Base folder of the DataSplit paths.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="Output folder: one subfolder per sequence.  [required]")
@click.option("--cut-size", default=str(_DEFAULTS["cut_size"]), callback=cut_size_option(), help="Windows per independently linked chunk; 'none' links the whole sequence.")
@click.option("--batch-size", type=click.IntRange(min=1), default=8, help="Windows per model call.")
@click.option("--provider", type=click.Choice(PROVIDERS), default="auto", help="auto: CUDA when it really loads, else CPU.")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="CPU threads for the runtime, in each --workers process [default: one process: the runtime's choice; several: the cores shared among them].")
@click.option("--link", type=click.Choice(LinkSettings.MODES), default=_DEFAULTS["link"], help="How labels are renamed from window to window. naive: each label takes its best match (two may merge); optimal: one-to-one.")
@click.option("--link-span", type=click.IntRange(min(LINK_SPANS), max(LINK_SPANS)), default=_DEFAULTS["link_span"], help="Earlier windows each window's labels are matched against: 1, the previous window (its two shared frames; the original's linking); 2, also the window before it, which shares its first frame.")
@click.option("--link-vote/--no-link-vote", default=_DEFAULTS["link_vote"], help="Each frame's pixels take the label the two other windows of its chunk that hold the frame agree on, where they outvote the window whose middle frame it is (frames come out one window later).")
@click.option("--link-reclaim/--no-link-reclaim", default=_DEFAULTS["link_reclaim"], help="A segment that appears from almost nothing where another vanished, within the last 8 windows of its linking chunk, takes that one's label: an object that paused keeps its id once it moves again (its paused frames themselves need the temporal carry, 'both').")
@click.option("--save-proba", is_flag=True, help="Also write proba/<frame>.npy (L, h, w) float32.")
@click.option("--save-features", is_flag=True, help="Also write features/<frame>.npy (C, h, w) float16, the last layer before classification.")
@click.option("--image-size", nargs=2, type=int, default=None, help="Model input size H W [default: the size stored in the model].")
@click.option("--overlay", is_flag=True, help="Also write overlay/<frame>.png and overlay.mp4 (segments over the frames, or over the flow colours for flow input) and flow/<frame>.png (colour wheel).")
@click.option("--flow-method", type=click.Choice(FLOW_METHODS), default=None, help=f"Optical flow for video inputs (OpenCV).  [default: the flow the model was trained on, as its metadata records (deepflow-dis for a model trained on deepflow); else {DEFAULT_METHOD}]")
@click.option("--flow-size", nargs=2, type=click.IntRange(min=16), default=None, help="Compute video flow at H W (instead of --flow-scale); masks are still written at the video's size.")
@click.option("--flow-scale", default=None, callback=parse_flow_scale, help=f"Compute video flow at this factor of its size; auto: frames taller than {AUTO_FLOW_HEIGHT} px shrunk to {AUTO_FLOW_HEIGHT} rows.  [default: the model's training flow; else auto]")
@click.option("--flow-step", type=click.IntRange(min=1), default=1, help="Video flow from frame t to t + step.")
@click.option("--tta", type=click.Choice(TtaSettings.MODES), default=_DEFAULTS["tta"], help="Test-time augmentation. flip: each window also runs mirrored left-right in the same model call, and the two predictions are averaged, segments aligned per window (about twice the model's time).")
@click.option("--refine", type=click.Choice(RefineSettings.MODES), default=_DEFAULTS["refine"], help="How labels reach the frames' size. guided: a guided filter of the linked probabilities with the frame as guide, so boundaries follow image edges (needs the frames: a video, a frame folder, a DataSplit Image column or --frames); none: nearest upsampling; auto: guided where the frames are known, else none (sequence.json says which).")
@click.option("--guided-radius", type=click.FloatRange(min=0, min_open=True), default=_DEFAULTS["guided_radius"], help="Guided refinement: box radius in pixels of a 480-row frame, scaled with the frame's height.")
@click.option("--guided-eps", type=click.FloatRange(min=MIN_EPS), default=_DEFAULTS["guided_eps"], help="Guided refinement: regularisation (colours in [0, 1]); larger is smoother, smaller follows weaker edges.")
@click.option("--guided-subsample", type=click.IntRange(min=1), default=_DEFAULTS["guided_subsample"], help="Guided refinement: its coefficients are computed on a grid this many times coarser (1: the exact filter, several times slower).")
@click.option("--motion-split", type=click.Choice(SplitSettings.MODES), default=_DEFAULTS["motion_split"], help="motion: a segment whose flow two parametric motions explain much better than one is split, per window and starting from the previous window's split, into spare segments (outputs then have more labels than the model); none: the model's segments.")
@click.option("--motion-split-gain", type=click.FloatRange(min=0, min_open=True), default=_DEFAULTS["motion_split_gain"], help="Motion split: the L1 residual, as a share of the window's mean flow magnitude, above which one motion does not explain a region (its mean: it is cut) and below which one group's motion explains another (its median: they are joined); never below 0.1 px at model size.")
@click.option("--motion-split-extra", type=click.IntRange(min=0, max=32), default=_DEFAULTS["motion_split_extra"], help="Motion split: spare segments a window may add.")
@click.option("--carry", type=click.Choice(CarrySettings.MODES), default=_DEFAULTS["carry"], help="Temporal carry. forward: each linked frame's probabilities are carried to the next frame along the flow and blended with its own, so a segment holds while its object stops or moves like the background; both: then also carried back from the next few frames (how many: the lookahead below), which holds an object from where it moves next, frames coming out that many frames later; none: each frame as linking left it.")
@click.option("--carry-weight", type=click.FloatRange(min=0, max=1, max_open=True), default=_DEFAULTS["carry_weight"], help="Temporal carry: the carried probabilities' share of each frame's blend; a segment the network drops for k frames holds while weight^k > 1/2 (0.8: 3 frames, 0.9: 6).")
@click.option("--carry-lookahead", type=click.IntRange(min=1, max=MAX_LOOKAHEAD), default=_DEFAULTS["carry_lookahead"], help="Temporal carry 'both': how many frames ahead the backward pass reads (each waits in memory at model size); refused with other carry modes.")
@click.option("--foreground", type=click.Choice(ForegroundSettings.MODES), default=_DEFAULTS["foreground"], help="Which segments are the moving objects, decided without ground truth. motion: per linking chunk, a segment whose flow the frame's dominant motion leaves unexplained and that stays off the frame's border is an object; writes foreground/ (0/255 masks) and objects/ (object ids) and draws the background black in the label PNGs; none: labels only.")
@click.option("--frames", "frames_dir", type=click.Path(file_okay=False), default=None, help="Frames of flow-file inputs, for --refine: FRAMES/<sequence>/<name>.jpg|png for flow <name>.flo (or FRAMES/<name>.* with one input). Frame t is the one flow t starts from. Masks are then written at the frames' size, as for a DataSplit with an Image column.")
@click.option("--skip-done", is_flag=True, help="Skip sequences whose output is complete and was made from the same inputs with the same settings and model file.")
@click.option("--workers", type=click.IntRange(min=1), default=None, help="Sequences segmented at once on this machine, each in a process of its own with the model loaded once; each runs --threads runtime threads (default: the cores shared among the workers).  [default: one per CPU core, at most one per sequence; 1 on a GPU]")
@click.option("--ray", "ray_address", metavar="ADDRESS", default=None, help=f"Spread the sequences over a Ray cluster, one model per worker (per GPU, or per --threads CPUs): 'local' starts Ray on this machine, 'auto' joins the cluster this machine belongs to, or a cluster address (host:6379, ray://host:10001). OUT must be on a filesystem every node sees. Needs {INSTALL_HINT}.")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def infer_main(model_path, inputs, data_file, datasplit_split, base_dir, out_dir, batch_size, provider, threads, save_proba, save_features, image_size, overlay, flow_method, flow_size, flow_scale, flow_step, frames_dir, skip_done, workers, ray_address, verbose, **stage_options) -> None:
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
    from ..sources import Sequence, VideoSequence, sequences_from_datasplit, sequences_from_inputs, with_frames
    from ..zoo import resolve_model

    if not inputs and not data_file:
        click.echo(f"{NO_INPUT}; see stseg-infer --help", err=True)
        click.get_current_context().exit(2)
    if inputs and data_file:
        raise click.UsageError("give either INPUT arguments or --data-file, not both")
    if workers is not None and ray_address:
        raise click.UsageError("give --workers or --ray, not both: on Ray the cluster's CPUs or GPUs set the workers")
    if out_dir is None:
        raise click.UsageError("Missing option '--out': the folder the masks go to (one subfolder per sequence)")
    typed = click.get_current_context().get_parameter_source("carry_lookahead")
    if typed == click.core.ParameterSource.COMMANDLINE and stage_options["carry"] != "both":
        # Its default equals what a typed value would be checked against: refuse it here.
        raise click.UsageError(f"--carry-lookahead applies to --carry both only (--carry is {stage_options['carry']})")
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
            sequences = sequences_from_datasplit(data_file, datasplit_split, base_dir)
        if frames_dir is not None:
            targets = [s for s in sequences if isinstance(s, Sequence) and not s.has_frames]
            if not targets:
                raise click.UsageError("--frames applies to flow-file inputs without frames; every input here has its frames")
            sequences = [with_frames(s, frames_dir, len(sequences) == 1) if s in targets else s for s in sequences]
        check_outputs_spare_inputs(sequences, out_dir)
        if model_error is not None:
            raise model_error
        settings = InferenceSettings.from_options(**stage_options)
        segmenter = Segmenter(model, settings, batch_size=batch_size, image_size=image_size)
        for sequence in sequences:
            # --refine guided without frames, or a listed frame missing: named before anything runs.
            if segmenter.refinement(sequence) == "guided":
                sequence.check_frames()
        model_sha256 = model_file_sha256(segmenter)
    except (OSError, ValueError, RuntimeError) as exc:
        fail(exc)
    where = "on the Ray workers" if ray_address else f"{model.engine} on {model.device}"
    refined = sum(segmenter.refinement(s) == "guided" for s in sequences)
    tta, refine = settings.tta.mode, settings.refine.mode
    click.echo(
        f"model {f'bundled {bundled!r} ({model_file})' if bundled else model_file}: {where}, L={model.info.n_labels}, "
        f"input {segmenter.image_size[0]}x{segmenter.image_size[1]}, {len(sequences)} sequence(s); tta {tta}, "
        f"refine {refine}" + (f" (guided for {refined} of {len(sequences)})" if refine == "auto" else ""),
        err=True,
    )
    videos = [s for s in sequences if isinstance(s, VideoSequence)]  # one recipe for them all
    trained = swapped_engine(model.info.flow, flow_method, videos[0].recipe) if videos and model is not None else None
    if trained is not None:
        click.echo(
            f"note: the model was trained on {trained} flow; computing {videos[0].recipe.method}, "
            f"which segments better with such models (--flow-method {trained} for its own)",
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
            str(Path(out_dir).absolute()), str(Path(model_file).absolute()), settings=settings, provider=provider, threads=threads or 1,
            batch_size=batch_size, image_size=None if image_size is None else tuple(image_size), outputs=outputs,
            model_sha256=model_sha256, cwd=os.getcwd(),  # the workers start there, so relative input paths mean the same
        )
        _infer_on_ray(ray_address, sequences, job)
        return
    if workers is None:
        workers = 1 if model.device == "cuda" else default_workers(len(sequences))
    workers = min(workers, max(1, len(sequences)))
    if workers > 1:
        job = InferJob(
            str(out_dir), str(model_file), settings=settings, provider=provider,
            threads=threads or max(1, available_cores() // workers), batch_size=batch_size,
            image_size=None if image_size is None else tuple(image_size), outputs=outputs, model_sha256=model_sha256,
        )
        _infer_in_processes(sequences, job, workers, verbose)
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


def _infer_in_processes(sequences: list, job: InferJob, workers: int, verbose: bool) -> None:
    """stseg-infer --workers N: the sequences over N processes of this machine, a progress bar
    over their frames (advanced as each sequence is written), failures named at the end
    (exit status 1 when any failed)."""
    from tqdm import tqdm

    from ..cluster.local import segment_in_processes

    started = time.perf_counter()
    bar = tqdm(total=sum(s.n_frames for s in sequences), unit="frame", desc=f"{workers} workers", file=sys.stderr, dynamic_ncols=True)

    def done(outcome) -> None:
        bar.update(outcome.frames)
        bar.set_postfix_str(outcome.name, refresh=True)

    try:
        outcomes = segment_in_processes(sequences, job, workers, on_done=done, verbose=verbose)
    finally:
        bar.close()
    frames = sum(o.frames for o in outcomes if o.status == "done")
    failed = [o for o in outcomes if o.status == "failed"]
    for outcome in failed:
        click.echo(f"failed: {outcome.name}: {outcome.error}", err=True)
    seconds = time.perf_counter() - started
    click.echo(
        f"segmented {frames} frames of {len(outcomes) - len(failed)} sequence(s) in {seconds:.1f} s "
        f"({frames / max(seconds, 1e-9):.1f} frames/s, {workers} worker processes of {job.threads} thread(s)); "
        f"results in {Path(job.out_dir)}"
    )
    if failed:
        raise click.ClickException(f"{len(failed)} of {len(outcomes)} sequence(s) failed (named above); the others are written")


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


