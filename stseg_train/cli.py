"""Command lines of the training package: ``stseg-train`` and ``stseg-export`` (``stseg-bench``
is :mod:`stseg_train.bench.cli`)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import click

from stseg_deploy.cli.kit import SIGINT_EXIT, command, fail
from stseg_deploy.io.datasplit import SPLITS
from stseg_deploy.preprocess import RESIZE_MODES

from .clikit import require_torch, setup_train_logging
from .config import DEFAULT_OPSET, NOISE_MODES, NORMS, POTTS_MASKS, PRESETS, TrainConfig, default, preset_values

# Options that may differ on --resume: they say how long or where to run, not what to learn.
RESUMABLE_OVERRIDES = {"epochs", "max_steps", "time_budget", "device", "workers"}

# The registries the choices come from. Importing them pulls in torch, which a deploy-only
# install lacks; there the choices fall back to these copies (stseg-train then says torch is
# missing), and tests/train/test_cli.py checks the copies against the registries.
_CHOICES_WITHOUT_TORCH = {
    "param_model": ["Affine", "AffinePT", "QuadraticFull", "QuadraticFullPT", "QuadraticPlanar", "QuadraticPlanarPT"],
    "distance": ["charb", "l1", "l2", "l2_normed", "l2_normed_alt", "squared", "squared_normed_alt"],
    "solver": ["irls", "lbfgs", "lbfgs-paper", "lstsq"],
}


def _choices() -> dict[str, list[str]]:
    try:
        from .coherence import DISTANCES
        from .motion import MOTION_MODELS
        from .solvers import SOLVERS
    except ImportError:
        return _CHOICES_WITHOUT_TORCH
    return {
        "param_model": sorted(MOTION_MODELS),
        "distance": sorted(DISTANCES),
        "solver": sorted(SOLVERS),
    }


CHOICES = _choices()


def _typed(ctx: click.Context, options: dict) -> set[str]:
    """The options the user gave on the command line (not left at their defaults)."""
    return {name for name in options if ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE}


def _apply_preset(ctx: click.Context, options: dict) -> None:
    """Give every option the user did not type the value of the chosen preset, in place."""
    typed = _typed(ctx, options)
    for name, value in preset_values(options["preset"]).items():
        if name not in typed and name in options:
            options[name] = value


def _resumed_config(ctx: click.Context, options: dict) -> TrainConfig:
    """The saved run's config, with the options that may change on resume applied.

    Other options given on the command line must agree with the saved run; paths are
    compared resolved, and the save dir is where the run was found, so it is not compared.
    """
    from .checkpoint import load_checkpoint

    last = Path(options["save_dir"]) / "checkpoints" / "last.pt"
    saved = load_checkpoint(last)["config"]
    explicit = _typed(ctx, options) - {"save_dir"}
    given = TrainConfig(**options).to_dict()

    def same(name: str) -> bool:
        if name in ("data_file", "base_dir", "pseudo_labels") and given[name] is not None and saved[name] is not None:
            return Path(given[name]).resolve() == Path(saved[name]).resolve()
        return given[name] == saved[name]

    conflicts = sorted(name for name in explicit - RESUMABLE_OVERRIDES if name in saved and not same(name))
    if conflicts:
        raise click.UsageError(
            f"--resume: {', '.join(conflicts)} differ from the run saved in {last}; "
            f"only {sorted(RESUMABLE_OVERRIDES)} may change on resume"
        )
    merged = dict(saved)
    merged.update({k: given[k] for k in explicit & RESUMABLE_OVERRIDES})
    merged["save_dir"] = options["save_dir"]
    return TrainConfig.from_dict(merged)


def _out_of_memory(exc: BaseException, cfg: TrainConfig) -> str | None:
    """A one-line message for an allocation failure (CPU allocator, CUDA, MemoryError), saying
    what size was asked and what to change; None for any other error."""
    import torch

    text = str(exc)
    if not (isinstance(exc, (MemoryError, torch.OutOfMemoryError)) or "can't allocate memory" in text):
        return None
    asked = ""
    found = re.search(r"tried to allocate (\d+) bytes", text, re.IGNORECASE)  # torch's CPU allocator
    if found:
        asked = f": one tensor needed {int(found.group(1)) / 2**30:.1f} GiB"
    else:
        found = re.search(r"tried to allocate ([\d.]+ [KMGT]iB)", text, re.IGNORECASE)  # CUDA
        asked = f": one tensor needed {found.group(1)}" if found else ""
    h, w = cfg.image_size
    return (
        f"out of memory at image size {h}x{w}, batch size {cfg.batch_size}, "
        f"{cfg.features_start} features{asked}; try a smaller --image-size or --batch-size"
    )


def _parse_regularisation(ctx, param, value: str) -> dict[str, float]:  # noqa: ARG001
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not valid JSON ({exc}); example: '{{\"EulerPottsl1R3\": 1}}'") from exc
    if not isinstance(parsed, dict) or not all(isinstance(v, (int, float)) for v in parsed.values()):
        raise click.BadParameter("must be a JSON object of name: weight, e.g. '{\"EulerPottsl1R3\": 1}'")
    return {str(k): float(v) for k, v in parsed.items()}


@command()
@click.option("--data-file", required=True, help="DataSplit prefix: PREFIX_train.csv and PREFIX_val.csv must exist.")
@click.option("--base-dir", required=True, type=click.Path(exists=True, file_okay=False), help="Base folder of the paths in the CSVs.")
@click.option("--save-dir", required=True, type=click.Path(file_okay=False), help="Where checkpoints, config and metrics go.")
@click.option("--preset", type=click.Choice(sorted(PRESETS)), default=default("preset"), help="A complete set of defaults: default (this package's, full size), small (64x112, 16 features, lr 1e-3: the quick CPU recipe), paper (the original research code's, item by item). Options you give override it; the defaults shown below are the default preset's.")
@click.option("--image-size", nargs=2, type=int, default=default("image_size"), help="Model input size H W.")
@click.option("-L", "--n-labels", "n_labels", type=int, default=default("n_labels"), help="Number of segments.")
@click.option("--param-model", type=click.Choice(CHOICES["param_model"]), default=default("param_model"), help="Parametric motion model of the loss.")
@click.option("--flow-augmentation", multiple=True, default=default("flow_augmentation"), help="globalmotion.<Model>.<light|medium|strong>; repeat for several; 'none' for no augmentation.")
@click.option("--input-noise/--no-input-noise", default=default("input_noise"), help="Replace one input time slice by noise with probability 0.2.")
@click.option("--input-noise-mode", type=click.Choice(NOISE_MODES), default=default("input_noise_mode"), help="sample: each sample drawn alone, noise with the slice's standard deviation, training only; batch: the original's (one draw and one time index per batch, noise scaled by the variance, validation batches too).")
@click.option("--norm", type=click.Choice(NORMS), default=default("norm"), help="Network normalisation: frame (per frame over H, W, with affine) or instance3d (the original's InstanceNorm3d over T, H, W, no affine).")
@click.option("--resize", type=click.Choice(RESIZE_MODES), default=default("resize"), help="Flow resizing to the model size: antialias (antialiased bilinear, vectors rescaled to the new grid) or plain (the original's: bilinear without antialiasing, vectors not rescaled). Recorded in the model; inference repeats it.")
@click.option("--potts-mask", type=click.Choice(POTTS_MASKS), default=default("potts_mask"), help="Temporal regulariser: counted (pixels whose flow change is <= the 0.99 quantile, mean over them) or all (the original's: strictly below it, divided by all pixels).")
@click.option("--regularisation", default=json.dumps(default("regularisation")), callback=_parse_regularisation, help="JSON {name: weight} of regularisers: EulerPottsl1R3 (temporal consistency, the original's), LabelCost (segments in use: one motion cut in several segments costs; docs/model-merging.md).")
@click.option("--distance", type=click.Choice(CHOICES["distance"]), default=default("distance"), help="Distance in the coherence loss (the original's VectorDistance names).")
@click.option("--loss-scale/--no-loss-scale", default=default("loss_scale"), help="pieceFitScale (divide by the mean flow norm) or pieceFit.")
@click.option("--mover-weight", type=float, default=default("mover_weight"), help="Weigh each pixel's coherence by 1 + this x its residual under the window's dominant motion (relative to the frame's mean, capped at 10; weights normalised per frame), in the theta fit and the loss, so small movers count more; 0: all pixels alike, the original's.")
@click.option("--pseudo-labels", type=click.Path(exists=True, file_okay=False), default=default("pseudo_labels"), help="Self-training: an stseg-infer output folder made on this DataSplit's training sequences. Each window is also trained towards its label maps (cross-entropy, each label matched to the channel it overlaps most), so the network learns what the inference stages add; windows without an output train on the unsupervised loss alone. No ground truth is used. Validation stays unsupervised.")
@click.option("--pseudo-weight", type=float, default=default("pseudo_weight"), help="Weight of the pseudo-labels' cross-entropy in the loss (needs --pseudo-labels).")
@click.option("--solver", type=click.Choice(CHOICES["solver"]), default=default("solver"), help="Theta solver of the loss: lbfgs-paper, the original's (least squares, then one L-BFGS step with torch's defaults on the scaled loss, the batch jointly), measured best at equal steps; irls (10 reweighted least-squares steps: the exact L1 fit, about half the time); lbfgs (L-BFGS to convergence); lstsq.")
@click.option("--batch-size", type=int, default=default("batch_size"))
@click.option("--lr", type=float, default=default("lr"), help="Adam learning rate.")
@click.option("--weight-decay", type=float, default=default("weight_decay"), help="Adam's weight decay (L2 term).")
@click.option("--epochs", type=int, default=default("epochs"))
@click.option("--max-steps", type=int, default=default("max_steps"), help="Stop after this many optimisation steps.")
@click.option("--time-budget", type=float, default=default("time_budget"), help="Stop after this many minutes of training.")
@click.option("--features-start", type=int, default=default("features_start"), help="U-Net features at the top level.")
@click.option("--num-layers", type=int, default=default("num_layers"), help="U-Net levels.")
@click.option("--device", default=default("device"), help="auto (CUDA when present), cpu, cuda, cuda:1, ...")
@click.option("--seed", type=int, default=default("seed"))
@click.option("--workers", type=int, default=default("workers"), help="DataLoader worker processes.")
@click.option("--train-results/--no-train-results", default=default("train_results"), help="Also write results.csv rows for every training window (the original's), not only validation ones.")
@click.option("--init", default=default("init"), help="Start from the weights of a checkpoint: a bundled name (e.g. mix-small) or a .pt file; the network options must match it, except that -L may be larger (the added segments start empty) and so may --features-start (the network is widened to compute what the checkpoint did). Unsupervised fine-tuning on your own flows.")
@click.option("--resume", is_flag=True, help="Continue SAVE_DIR/checkpoints/last.pt exactly where it stopped.")
@click.option("--overwrite", is_flag=True, help="Start afresh in a SAVE_DIR that holds a run, deleting its checkpoints and CSVs.")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
@click.pass_context
def train_main(ctx: click.Context, resume: bool, overwrite: bool, verbose: bool, **options) -> None:
    """Train the ST-MS segmentation network on a DataSplit, without labels.

    The default preset trains at the published size (128x224, 32 features, batch 10), about
    12 s a step on a 2-core CPU, with this package's choices where they differ from the
    original (the README's table); --preset paper trains exactly as the original did, and
    --preset small is the quick CPU recipe, e.g. with --time-budget 5.

    Data-parallel on several GPUs or nodes: torchrun --nproc-per-node N --no-python
    stseg-train ... (--batch-size is the global batch, split over the N processes)."""
    require_torch("stseg-train")
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    from . import distributed
    from .trainer import Trainer

    try:
        dist = distributed.from_env()
    except ValueError as exc:
        fail(exc)
    setup_train_logging(verbose, dist.is_main)

    _apply_preset(ctx, options)
    # On resume the saved run's pseudo-labels count; _resumed_config refuses a changed weight.
    if not resume and options["pseudo_labels"] is None and ctx.get_parameter_source("pseudo_weight") is not click.core.ParameterSource.DEFAULT:
        raise click.UsageError("--pseudo-weight needs --pseudo-labels (without them it would do nothing)")
    if options["flow_augmentation"] == ("none",):
        options["flow_augmentation"] = ()
    if resume and overwrite:
        raise click.UsageError("--resume and --overwrite exclude each other")
    try:
        cfg = _resumed_config(ctx, options) if resume else TrainConfig(**options)
    except (OSError, ValueError) as exc:
        fail(exc)
    try:
        trainer = Trainer(cfg, resume=resume, overwrite=overwrite, dist=dist)
    except FileExistsError as exc:
        raise click.UsageError(str(exc)) from exc
    except (OSError, ValueError) as exc:
        fail(exc)
    except (MemoryError, RuntimeError) as exc:  # the model and motion basis are allocated here
        message = _out_of_memory(exc, cfg)
        if message is None:
            raise
        raise click.ClickException(message) from exc
    try:
        _train(ctx, trainer, tqdm, logging_redirect_tqdm)
    except (click.exceptions.Exit, SystemExit) as stop:  # an interrupted run ends the same on every process
        distributed.shutdown(dist)
        if dist.active:
            distributed.exit_now(getattr(stop, "exit_code", getattr(stop, "code", 1)) or 0)
        raise
    except BaseException:
        distributed.shutdown(dist, wait=False)
        raise
    distributed.shutdown(dist)
    if dist.active:
        distributed.exit_now(0)


def _train(ctx: click.Context, trainer, tqdm, logging_redirect_tqdm) -> None:
    """Run ``trainer`` with a progress bar and the closing lines (rank 0 only under torchrun)."""
    cfg, main = trainer.cfg, trainer.dist.is_main
    echo = click.echo if main else (lambda *_args, **_kwargs: None)
    processes = f" x {trainer.dist.world_size} processes" if trainer.dist.active else ""
    echo(
        f"training on {trainer.device}{processes}: {len(trainer.train_set)} train / {len(trainer.val_set)} val windows, "
        f"image size {cfg.image_size[0]}x{cfg.image_size[1]}, L={cfg.n_labels}",
        err=True,
    )
    bar = _progress_bar(tqdm, trainer)
    by_time = cfg.time_budget is not None

    def on_step(info) -> None:
        if by_time:
            # The bar runs over the budget's seconds; its estimate is then the real time left.
            bar.update(max(0, min(int(trainer.seconds), bar.total) - bar.n))
        else:
            bar.update(1)
        bar.set_description(f"epoch {info.epoch} {info.batch}/{info.batches}")
        bar.set_postfix(step=info.step, loss=f"{info.loss:.4f}")

    try:
        with logging_redirect_tqdm():
            summary = trainer.fit(on_step)
    except (OSError, ValueError, RuntimeError, MemoryError) as exc:
        # A DataLoader worker's error arrives as a RuntimeError holding the original
        # traceback; its last line is the message that names the file.
        lines = [line for line in str(exc).splitlines() if line.strip()]
        message = _out_of_memory(exc, cfg) or (lines[-1] if lines else type(exc).__name__)
        saved = " (progress saved in last.pt: fix the cause, then --resume)" if trainer.global_step else ""
        raise click.ClickException(f"{message}{saved}") from exc
    finally:
        bar.close()
    for row in trainer.metrics[-3:]:
        echo(
            f"epoch {row['epoch']}: train_loss {row['train_loss']:.4f} val_loss {row['val_loss']:.4f} "
            f"val_jaccard {row['val_jaccard']:.3f}",
            err=True,
        )
    if summary["stopped_by"] == "interrupted":
        # The first Ctrl-C is caught by fit, which saves last.pt and returns; the command still
        # ends as interrupted (130) so that shells and schedulers do not take it for done.
        best = f"; best checkpoint: {summary['best']}" if Path(summary["best"]).exists() else ""
        echo(
            f"interrupted after {summary['steps']} steps; progress saved in {summary['last']} "
            f"(continue with --resume){best}",
            err=True,
        )
        ctx.exit(SIGINT_EXIT)
    echo(f"stopped by {summary['stopped_by']} after {summary['steps']} steps; best checkpoint: {summary['best']}")


def _progress_bar(tqdm, trainer):
    """Over the time budget's seconds when there is one, else over the planned steps.

    With a budget of minutes and a generous --epochs, a bar over steps would show tens of
    thousands of planned steps and an estimate of many hours; over the budget, its estimate
    is the real time left (less if the steps run out first).
    """
    cfg = trainer.cfg
    if cfg.time_budget is not None:
        return tqdm(
            total=round(cfg.time_budget * 60), initial=min(round(trainer.seconds), round(cfg.time_budget * 60)),
            unit="s", dynamic_ncols=True, file=sys.stderr, disable=not trainer.dist.is_main,
            bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} s of the time budget [{elapsed}<{remaining}{postfix}]",
        )
    return tqdm(total=trainer.planned_steps(), unit="step", dynamic_ncols=True, file=sys.stderr, disable=not trainer.dist.is_main)


@command()
@click.argument("checkpoint", type=click.Path(exists=True, dir_okay=False))
@click.option("--onnx", "onnx_path", type=click.Path(dir_okay=False), help="Write an ONNX model here (one file, metadata inside).")
@click.option("--torchscript", "ts_path", type=click.Path(dir_okay=False), help="Write a TorchScript model here.")
@click.option("--opset", type=int, default=DEFAULT_OPSET, help="ONNX opset.")
def export_main(checkpoint: str, onnx_path: str | None, ts_path: str | None, opset: int) -> None:
    """Export CHECKPOINT to ONNX and/or TorchScript, then check both against torch on two shapes."""
    setup_train_logging(False)
    require_torch("stseg-export")
    from .export import ExportCheckError, export_checkpoint

    if onnx_path is None and ts_path is None:
        raise click.UsageError("give --onnx and/or --torchscript")
    try:
        reports = export_checkpoint(checkpoint, onnx_path, ts_path, opset)
    except ExportCheckError as exc:
        raise click.ClickException(f"export check failed, nothing kept: {exc}") from exc
    except (OSError, ValueError) as exc:
        fail(exc)
    for r in reports:
        click.echo(
            f"{r.engine:<12} input {'x'.join(map(str, r.shape)):<16} max|dproba| {r.max_abs_proba:.2e}  "
            f"max|dfeatures| {r.max_abs_features:.2e}",
            err=True,
        )
    for path in (onnx_path, ts_path):
        if path:
            click.echo(f"wrote {path}")


@command()
@click.argument("model")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False), help="The int8 model to write (.onnx).")
@click.option("--data-file", required=True, help="DataSplit prefix whose flows calibrate the activation ranges (not the flows you will measure on).")
@click.option("--split", default="train", type=click.Choice(SPLITS), help="DataSplit split to calibrate on.")
@click.option("--base-dir", type=click.Path(file_okay=False), default=None, help="Base folder of the DataSplit paths.")
@click.option("--windows", type=click.IntRange(min=1), default=64, help="Flow windows to calibrate on, spread over the sequences.")
def quantize_main(model: str, out_path: str, data_file: str, split: str, base_dir: str | None, windows: int) -> None:
    """Quantise MODEL (an exported .onnx, or a bundled name) to int8 for onnxruntime on the CPU:
    its convolutions in int8, calibrated on flows of a DataSplit. Offered, not the default:
    docs/benchmarks.md says what it gains and what it costs in J and F."""
    setup_train_logging(False)
    from stseg_deploy.zoo import resolve_model

    from .quantize import quantize_model

    try:
        model_file, _ = resolve_model(model)
        used = quantize_model(model_file, out_path, data_file, split, base_dir, windows)
    except Exception as exc:  # onnxruntime's quantiser raises its own types (Fail, ...), not only OSError/ValueError
        fail(exc)
    click.echo(f"wrote {out_path} (int8 convolutions, calibrated on {used} windows)")
