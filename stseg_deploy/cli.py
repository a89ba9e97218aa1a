"""Command lines of the deploy package: ``stseg-infer``, ``stseg-eval``, ``stseg-bench``."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import click

from .binarise import BINARISATIONS
from .datasplit import SPLITS
from .errors import StsegInputError
from .runtime import PROVIDERS

CONTEXT = {"help_option_names": ["-h", "--help"], "show_default": True}


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


def _cut_size(ctx, param, value):  # noqa: ARG001
    if value is None or str(value).lower() == "none":
        return None
    try:
        cut = int(value)
    except ValueError as exc:
        raise click.BadParameter(f"an integer >= 1 or 'none', got {value!r}") from exc
    if cut < 1:
        raise click.BadParameter(f"an integer >= 1 or 'none', got {value!r}")
    return cut


def _fail(exc: Exception) -> None:
    raise click.ClickException(str(exc)) from exc


@click.command(context_settings=CONTEXT)
@click.option("--model", "model_path", required=True, type=click.Path(dir_okay=False), help="Exported model: .onnx (onnxruntime) or .ts (TorchScript, needs torch).")
@click.argument("flow_dirs", nargs=-1, type=click.Path(file_okay=False))
@click.option("--data-file", help="DataSplit prefix instead of folders: sequences come from its Sequence column.")
@click.option("--split", type=click.Choice(SPLITS), default="val", help="DataSplit split with --data-file.")
@click.option("--base-dir", type=click.Path(file_okay=False), help="Base folder of the DataSplit paths.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Output folder: one subfolder per sequence.")
@click.option("--cut-size", default="10", callback=_cut_size, help="Windows per independently linked chunk; 'none' links the whole sequence.")
@click.option("--batch-size", type=int, default=8, help="Windows per model call.")
@click.option("--provider", type=click.Choice(PROVIDERS), default="auto", help="auto: CUDA when it really loads, else CPU.")
@click.option("--threads", type=int, default=None, help="CPU threads for the runtime (default: the runtime's choice).")
@click.option("--link", type=click.Choice(["naive", "optimal"]), default="naive", help="naive: best match per label (may merge); optimal: one-to-one.")
@click.option("--save-proba", is_flag=True, help="Also write proba/<frame>.npy (L, h, w) float32.")
@click.option("--save-features", is_flag=True, help="Also write features/<frame>.npy (C, h, w) float16, the last layer before classification.")
@click.option("--image-size", nargs=2, type=int, default=None, help="Model input size H W [default: the size stored in the model].")
@click.option("-v", "--verbose", is_flag=True)
def infer_main(model_path, flow_dirs, data_file, split, base_dir, out_dir, cut_size, batch_size, provider, threads, link, save_proba, save_features, image_size, verbose) -> None:
    """Segment flow videos: FLOW_DIR... (one sequence per folder) or a DataSplit."""
    _setup_logging(verbose)
    from tqdm import tqdm

    from .outputs import segment_to_folder
    from .pipeline import Segmenter
    from .runtime import load_model
    from .sources import sequences_from_datasplit, sequences_from_folders

    if bool(flow_dirs) == bool(data_file):
        raise click.UsageError("give either FLOW_DIR arguments or --data-file, not both and not neither")
    if batch_size < 1:
        raise click.BadParameter("must be >= 1", param_hint="--batch-size")
    try:
        sequences = sequences_from_folders(list(flow_dirs)) if flow_dirs else sequences_from_datasplit(data_file, split, base_dir)
        model = load_model(model_path, provider=provider, threads=threads)
        segmenter = Segmenter(model, batch_size=batch_size, cut_size=cut_size, link=link, image_size=image_size)
    except (OSError, ValueError, RuntimeError) as exc:
        _fail(exc)
    click.echo(
        f"model {model_path}: {model.engine} on {model.device}, L={model.info.n_labels}, "
        f"input {segmenter.image_size[0]}x{segmenter.image_size[1]}, {len(sequences)} sequence(s)",
        err=True,
    )
    total_frames, started = 0, time.perf_counter()
    for sequence in sequences:
        bar = tqdm(total=len(sequence.flows), desc=sequence.name, unit="frame", file=sys.stderr, dynamic_ncols=True)
        try:
            stats = segment_to_folder(
                segmenter, sequence, out_dir, save_proba=save_proba, save_features=save_features,
                on_frame=lambda _frame: bar.update(1),
            )
        except (OSError, ValueError, RuntimeError) as exc:
            bar.close()
            _fail(exc)
        bar.close()
        total_frames += stats.frames
    seconds = time.perf_counter() - started
    click.echo(
        f"segmented {total_frames} frames of {len(sequences)} sequence(s) in {seconds:.1f} s "
        f"({total_frames / max(seconds, 1e-9):.1f} frames/s); results in {Path(out_dir)}"
    )


@click.command(context_settings=CONTEXT)
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--data-file", help="DataSplit prefix whose GtMask column holds the ground truth.")
@click.option("--split", type=click.Choice(SPLITS), default="val")
@click.option("--base-dir", type=click.Path(file_okay=False), help="Base folder of the DataSplit paths.")
@click.option("--gt-dir", type=click.Path(file_okay=False), help="Folder with one subfolder per sequence of 0/255 PNG masks named like the frames.")
@click.option("--cut-size", default="10", callback=_cut_size, help="Frames chunk size of the optimax mask selection; 'none': whole sequence.")
@click.option("--binary", type=click.Choice(BINARISATIONS), default="optimax", help="How segments become a foreground mask.")
@click.option("--davis17", type=click.Path(file_okay=False), default=None, help="Also write multi-label PNGs here for a DAVIS-2017 evaluator.")
@click.option("-v", "--verbose", is_flag=True)
def eval_main(out_dir, data_file, split, base_dir, gt_dir, cut_size, binary, davis17, verbose) -> None:
    """Jaccard of stseg-infer outputs against ground truth; writes OUT_DIR/scores.csv and summary.csv."""
    _setup_logging(verbose)
    from .atomic import atomic_write
    from .evaluation import evaluate, export_davis17

    if (gt_dir is None) == (data_file is None):
        raise click.UsageError("give exactly one of --gt-dir or --data-file")
    try:
        scores, summary, overall = evaluate(
            out_dir, gt_dir=gt_dir, data_file=data_file, split=split, base_dir=base_dir,
            binary=binary, cut_size=cut_size,
        )
        if davis17:
            count = export_davis17(out_dir, davis17)
            click.echo(f"wrote {count} multi-label PNGs under {davis17}", err=True)
    except (OSError, ValueError, StsegInputError) as exc:
        _fail(exc)
    with atomic_write(Path(out_dir) / "scores.csv", "w") as handle:
        scores.to_csv(handle, index=False)
    overall_row = {"sequence": "overall", "frames": int(summary["frames"].sum()), "jaccard_mean": overall}
    import pandas as pd

    full = pd.concat([summary, pd.DataFrame([overall_row])], ignore_index=True)
    with atomic_write(Path(out_dir) / "summary.csv", "w") as handle:
        full.to_csv(handle, index=False)
    for row in summary.itertuples():
        click.echo(f"{row.sequence:<24} frames {row.frames:>5}  J {row.jaccard_mean:.3f}")
    click.echo(f"scores: {Path(out_dir) / 'scores.csv'}; summary: {Path(out_dir) / 'summary.csv'}")
    click.echo(f"J={overall:.3f}")
