"""``stseg-bench``: time inference engines across input sizes, mask counts and batch sizes,
the kernels and the whole pipeline, and print ratios against a baseline run in the same
process."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from stseg_deploy.cli.kit import SIGINT_EXIT

from ..clikit import missing_torch, setup_train_logging


def _parse_size(text: str) -> tuple[int, int]:
    import argparse

    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"sizes look like 128x224 (H x W), got {text!r}") from exc
    if h < 1 or w < 1:
        raise argparse.ArgumentTypeError(f"sizes must be positive, got {text!r}")
    return h, w


def _positive_int(text: str) -> int:
    import argparse

    try:
        value = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}") from exc
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {value}")
    return value


def _bench_parser():
    # argparse rather than click: the documented form takes several values per option
    # (--sizes 128x224 256x448), which click options cannot.
    import argparse

    from .engines import ENGINES

    class Formatter(argparse.ArgumentDefaultsHelpFormatter):
        # Defaults only where they say something: not for flags, required or unset options.
        def _get_help_string(self, action):
            if action.required or action.default in (None, True, False) or "(default" in (action.help or ""):
                return action.help
            return super()._get_help_string(action)

    parser = argparse.ArgumentParser(
        prog="stseg-bench",
        description="Time inference engines across input sizes, mask counts and batch sizes; "
        "also the linking/selection kernels and the whole pipeline.",
        formatter_class=Formatter,
    )
    parser.add_argument("--sizes", nargs="+", type=_parse_size, default=[(128, 224), (256, 448)], metavar="HxW", help="input sizes")
    parser.add_argument("--masks", nargs="+", type=int, default=None, help="numbers of segments L (default: 2 4, or the checkpoint's L)")
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 8], help="windows per model call")
    parser.add_argument("--engines", default="torch,torchscript,onnxruntime", help=f"comma-separated, from {','.join(ENGINES)}")
    parser.add_argument("--precision", nargs="+", choices=["fp32", "fp16"], default=["fp32"], help="fp16 is timed on CUDA only")
    parser.add_argument("--provider", choices=["auto", "cpu", "cuda"], default="auto", help="auto: CUDA when torch sees a GPU")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per configuration (median kept), after 2 warm-ups")
    parser.add_argument("--threads", type=_positive_int, default=None, help="CPU threads for torch and onnxruntime (default: all cores)")
    parser.add_argument("--model", default=None, help="time this model instead of random weights: an stseg checkpoint (.pt, all engines) or an exported .onnx (onnxruntime engines only)")
    parser.add_argument("--no-kernels", dest="kernels", action="store_false", help="skip the link_windows / select_masks rows")
    parser.add_argument("--no-pipeline", dest="pipeline", action="store_false", help="skip the whole-pipeline rows")
    parser.add_argument("--model-free", action="store_true", help="only time the pipeline without a model (read, resize, windows, argmax of given probabilities, link, upsample, PNG, labels.npy) against a plain single-threaded read/resize/upsample/PNG loop over the same files, at the first --sizes, --masks and largest --batch-sizes")
    parser.add_argument("--frames", nargs="+", type=_positive_int, default=[100, 2000], help="video lengths for --model-free (peak memory should not grow with them)")
    parser.add_argument("--original-size", type=_parse_size, default=(480, 854), metavar="HxW", help="flow file size for --model-free, and frame size of the end-to-end rows (with --model MODEL.onnx)")
    parser.add_argument("--out", required=True, help="CSV to write")
    parser.add_argument("--plot", default=None, help="also write a PNG plot (needs matplotlib: stseg[plot])")
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser


def bench_main(argv: list[str] | None = None) -> None:
    """Entry point of ``stseg-bench``: Ctrl-C ends it with one line and exit status 130, as it
    does the click commands (argparse has no such hook, hence the wrapper)."""
    try:
        _bench(argv)
    except KeyboardInterrupt:
        print("stseg-bench: interrupted", file=sys.stderr)
        sys.exit(SIGINT_EXIT)


def _bench(argv: list[str] | None) -> None:
    import importlib.util
    import tempfile

    message = missing_torch("stseg-bench")
    if message:
        sys.exit(message)
    parser = _bench_parser()
    args = parser.parse_args(argv)
    if args.plot and importlib.util.find_spec("matplotlib") is None:
        parser.error("--plot needs matplotlib: pip install 'stseg[plot]'")
    setup_train_logging(args.verbose)
    if not args.verbose:
        logging.getLogger().setLevel(logging.WARNING)
    from stseg_deploy.io.atomic import atomic_write

    from .measure import plot, rows_to_frame

    engines, device, threads = _bench_settings(parser, args)
    if args.model_free:
        from .pipeline import bench_model_free

        print(f"timing the model-free pipeline on {threads} CPU threads ...", file=sys.stderr, flush=True)
        rows = bench_model_free(args.frames, args.original_size, args.sizes[0], (args.masks or [4])[0], max(args.batch_sizes), args.repeats)
        notes = []
    else:
        with tempfile.TemporaryDirectory() as tmp:
            rows, notes = _bench_rows(parser, args, engines, device, threads, Path(tmp))
    table = rows_to_frame(rows)
    with atomic_write(args.out, "w") as handle:
        table.to_csv(handle, index=False)
    print(table.to_string(index=False))
    for note in notes:
        print(note, file=sys.stderr)
    _print_ratios(table)
    if args.plot:
        try:
            plot(table, Path(args.plot))
        except RuntimeError as exc:
            parser.exit(1, f"stseg-bench: {exc}\n")
        print(f"plot: {args.plot}")
    print(f"table: {args.out}")


def _bench_settings(parser, args) -> tuple[list[str], str, int]:
    """Checked engines, the device and the CPU thread count (torch's is set here)."""
    import os

    import torch

    from .engines import ENGINES

    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = [e for e in engines if e not in ENGINES]
    if unknown:
        parser.error(f"--engines: unknown {unknown}; choose from {list(ENGINES)}")
    if args.repeats < 1 or min(args.batch_sizes) < 1 or (args.masks and min(args.masks) < 2):
        parser.error("--repeats and --batch-sizes must be >= 1, --masks >= 2")
    if args.provider == "cuda" and not torch.cuda.is_available():
        parser.error("--provider cuda: torch sees no GPU here")
    device = "cuda" if args.provider == "cuda" or (args.provider == "auto" and torch.cuda.is_available()) else "cpu"
    threads = args.threads or os.cpu_count()
    torch.set_num_threads(threads)
    return engines, device, threads


def _bench_models(parser, args) -> list:
    """What to time: the --model file (a checkpoint's network, or an ONNX file's path), or a
    random-weight network per --masks value."""
    import torch

    from ..checkpoint import model_from_checkpoint
    from ..model import UNet3D

    if args.model and Path(args.model).suffix.lower() == ".onnx":
        return [Path(args.model)]
    if args.model:
        try:
            return [model_from_checkpoint(args.model)[0]]
        except (OSError, ValueError) as exc:
            parser.error(str(exc))
    models = []
    for n_labels in args.masks or [2, 4]:
        torch.manual_seed(0)
        models.append(UNet3D(n_labels=n_labels))
    return models


def _bench_rows(parser, args, engines: list[str], device: str, threads: int, tmp: Path) -> tuple[list, list[str]]:
    """Every row of the table (engines per model, the pipeline, the kernels) and the notes of
    what was skipped."""
    from ..torchthreads import torch_threads_kept
    from .engines import EngineFactory, bench_model
    from .kernels import bench_kernels

    rows, notes, label_counts = [], [], []
    for model in _bench_models(parser, args):
        try:
            if isinstance(model, Path):
                factory = EngineFactory(None, tmp, device, threads, onnx=model)
            else:
                factory = EngineFactory(model, tmp, device, threads)
        except (OSError, ValueError) as exc:
            parser.error(str(exc))
        if args.model and args.masks and args.masks != [factory.n_labels]:
            parser.error(f"--masks {args.masks} conflicts with the model's L={factory.n_labels}")
        label_counts.append(factory.n_labels)
        print(f"timing L={factory.n_labels} on {device} ({threads} CPU threads) ...", file=sys.stderr, flush=True)
        got, skipped = bench_model(factory, engines, args.precision, args.sizes, args.batch_sizes, args.repeats)
        rows += got
        notes += [f"L={factory.n_labels} {n}" for n in skipped]
        if args.pipeline:
            # The pipeline's numba kernels would raise torch's thread count for the next model's
            # torch rows (stseg_train.torchthreads).
            with torch_threads_kept():
                rows += _pipeline_rows(factory, model, args, device, threads, notes)
    if args.kernels:
        rows += bench_kernels(args.sizes, label_counts)
    return rows, notes


def _pipeline_rows(factory, model, args, device: str, threads: int, notes: list[str]) -> list:
    """The pipeline rows of one model (and the end-to-end rows of a real one); what was
    skipped goes to ``notes``."""
    from .pipeline import bench_end_to_end, bench_labels_output, bench_pipeline

    rows = []
    onnx_path = factory.onnx_path("fp32")
    rows += list(bench_pipeline(onnx_path, args.sizes[0], max(args.batch_sizes), device, threads))
    try:
        rows += bench_labels_output(onnx_path, args.sizes[0], max(args.batch_sizes), device, threads)
    except ValueError as exc:
        notes.append(str(exc))
    if isinstance(model, Path):  # a real model: its flow recipe and its defaults
        try:
            rows += bench_end_to_end(onnx_path, device, threads, max(args.batch_sizes), original_size=args.original_size, repeats=args.repeats)
        except (OSError, ValueError) as exc:
            notes.append(f"end to end: {exc}")
    return rows


def _print_ratios(table) -> None:
    """onnxruntime against torch eager, and the pipeline against the model alone."""
    keys = ["provider", "precision", "height", "width", "masks", "batch"]
    eager = table[table["engine"] == "torch"].set_index(keys)["ms_per_frame"]
    for name in ("onnxruntime", "torchscript", "tensorrt"):
        other = table[table["engine"] == name].set_index(keys)["ms_per_frame"]
        both = eager.index.intersection(other.index)
        for key in both:
            provider, precision, h, w, masks, batch = key
            ratio = eager[key] / other[key]
            verdict = f"{ratio:.2f}x faster" if ratio >= 1 else f"{1 / ratio:.2f}x slower"
            print(f"{name} vs torch eager, {provider} {precision} {h}x{w} L={masks} batch {batch}: {verdict}")
    from .pipeline import BASELINE, MODEL_FREE

    for _, row in table[table["engine"].str.startswith(MODEL_FREE)].iterrows():
        length = row["engine"].removeprefix(MODEL_FREE)
        base = table[table["engine"] == BASELINE + length].iloc[0]
        print(f"model-free pipeline / plain loop{length}: {row['windows_per_s'] / base['windows_per_s']:.2f}x "
              f"({row['windows_per_s']:.0f} against {base['windows_per_s']:.0f} frames/s; peak memory {row['peak_mem_mb']:.0f} MiB)")
    fetched = table[table["engine"] == "onnxruntime proba + numpy argmax"]
    for _, row in fetched.iterrows():
        inside = table[(table["engine"] == "onnxruntime labels output") & (table["batch"] == row["batch"]) & (table["height"] == row["height"])]
        for _, other in inside.iterrows():
            ratio = row["ms_per_frame"] / other["ms_per_frame"]
            verdict = f"{ratio:.2f}x faster" if ratio >= 1 else f"{1 / ratio:.2f}x slower"
            print(f"labels output / proba + numpy argmax, {row['height']}x{row['width']} L={row['masks']} batch {row['batch']}: "
                  f"{verdict} ({other['ms_per_frame']:.2f} against {row['ms_per_frame']:.2f} ms per window)")
    pipe = table[table["engine"] == "pipeline"]
    alone = table[table["engine"] == "onnxruntime(model only)"]
    for (_, p), (_, a) in zip(pipe.iterrows(), alone.iterrows()):
        print(f"pipeline / model alone, {p['height']}x{p['width']} L={p['masks']} batch {p['batch']}: {p['ms_per_frame'] / a['ms_per_frame']:.2f}x")
    from .pipeline import END_TO_END, FLOW_ALONE, STAGES

    for (_, e), (_, f) in zip(table[table["engine"] == END_TO_END].iterrows(), table[table["engine"] == FLOW_ALONE].iterrows()):
        print(f"end to end / flow alone, frames of {f['height']}x{f['width']} model input: {e['ms_per_frame'] / f['ms_per_frame']:.2f}x "
              f"({e['ms_per_frame']:.1f} against {f['ms_per_frame']:.1f} ms per frame; {1e3 / e['ms_per_frame']:.1f} frames/s)")

    for stage in list(STAGES)[1:]:
        for (_, s), (_, p) in zip(table[table["engine"] == stage].iterrows(), pipe.iterrows()):
            print(f"{stage} / pipeline, {s['height']}x{s['width']} L={s['masks']} batch {s['batch']}: {s['ms_per_frame'] / p['ms_per_frame']:.2f}x "
                  f"(+{s['ms_per_frame'] - p['ms_per_frame']:.1f} ms per frame)")
