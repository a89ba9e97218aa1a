"""``stseg-prepare``: datasets of frames to flows and DataSplits, one subcommand per dataset."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import click

from ..cluster.raykit import INSTALL_HINT, ClusterError, ray_session
from ..datasets.prepare import default_workers
from ..errors import StsegInputError
from ..flow.recipe import AUTO_FLOW_HEIGHT, DEFAULT_METHOD
from ..flow.recipe import METHODS as FLOW_METHODS
from ..io.datasplit import SPLITS
from .kit import CONTEXT, StsegCommand, fail, flow_recipe, parse_flow_scale, setup_logging


@click.group(context_settings=CONTEXT)
def prepare_main() -> None:
    """Prepare a dataset for stseg-train, stseg-infer and stseg-eval: flows and DataSplit CSVs."""


def dataset_options(default_splits: str):
    """The options every dataset subcommand shares: where to write, how to compute flows
    (as stseg-flow and stseg-infer do), which splits."""

    def decorate(function):
        options = [
            click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Folder for <name>_<split>.csv, stseg-prepare.json and Flows/<seq>/NNNNN.flo (DAVIS: Flows/<res>/<seq>/)."),
            click.option("--flow-method", type=click.Choice(FLOW_METHODS), default=DEFAULT_METHOD, help="Optical flow engine (OpenCV; deepflow-dis, the mean of deepflow and dis-fine, is the best for segmentation; both deepflow engines need opencv-contrib-python-headless, stseg's dependency)."),
            click.option("--flow-size", nargs=2, type=click.IntRange(min=16), default=None, help="Compute flow at H W (instead of --flow-scale)."),
            click.option("--flow-scale", default=None, callback=parse_flow_scale, help=f"Compute flow at this factor of the frames' size; auto: frames taller than {AUTO_FLOW_HEIGHT} px shrunk to {AUTO_FLOW_HEIGHT} rows (half of 480p), smaller ones as they are.  [default: auto]"),
            click.option("--flows", "flows_root", type=click.Path(exists=True, file_okay=False), default=None, help="Use flows you already have: FLOWS/<seq>/<frame>.<flo|npy|png>, named after the frame's file or its position NNNNN (no flow is computed)."),
            click.option("--workers", type=click.IntRange(min=1), default=default_workers(), help="Sequences computed in parallel."),
            click.option("--split", "only_splits", multiple=True, type=click.Choice(SPLITS), help=f"Only this split (repeat for several): flows for its sequences and its CSV, nothing else.  [default: {default_splits}]"),
            click.option("--ray", "ray_address", metavar="ADDRESS", default=None, help=f"Compute flows on a Ray cluster, one sequence per CPU (instead of --workers): 'local', 'auto' or a cluster address, as for stseg-infer. OUT and ROOT must be on a filesystem every node sees. Needs {INSTALL_HINT}."),
            click.option("-v", "--verbose", is_flag=True, help="Debug logging."),
        ]
        for option in reversed(options):
            function = option(function)
        return function

    return decorate


@dataclass(frozen=True)
class FlowChoice:
    """How the flows are had: the user's (``flows_root``) or computed (recipe, workers, Ray)."""

    flows_root: str | None
    flow_method: str
    flow_size: tuple[int, int] | None
    flow_scale: float | str | None
    workers: int
    ray_address: str | None


def _flow_choice(flows_root, flow_method, flow_size, flow_scale, workers, ray_address) -> FlowChoice:
    if ray_address and click.get_current_context().get_parameter_source("workers") == click.core.ParameterSource.COMMANDLINE:
        raise click.UsageError("give --workers or --ray, not both: on Ray every CPU of the cluster works")
    if ray_address and flows_root:
        raise click.UsageError("--ray computes flows; with --flows none are computed: give one of them")
    return FlowChoice(flows_root, flow_method, flow_size, flow_scale, workers, ray_address)


def run_prepare(
    read: Callable[[], dict[str, list]],
    dataset: str,
    root: str,
    out_dir: str,
    name: str,
    only_splits: tuple[str, ...],
    flows: FlowChoice,
    flow_folder: str = "Flows",
    extra: dict | None = None,
    listing: str = "",
) -> None:
    """Read a dataset's splits (``read``), convert its ground truth where it needs it, compute
    or gather its flows and write ``OUT/<name>_<split>.csv`` with the marker; every error is
    one line, and no CSV is written unless every sequence succeeded. ``listing``: where the
    dataset lists its splits, for the message when ``--split`` asks for one it lacks."""
    from tqdm import tqdm

    from ..datasets.prepare import check_settings_agree, compute_flows, datasplit_rows, user_flows, write_datasplits
    from ..datasets.truth import write_truth
    from ..io.outdir import StsegOutputError
    from ..io.videoio import frame_name

    recipe = flow_recipe(flows.flow_method, flows.flow_size, flows.flow_scale)
    out = Path(out_dir)
    started = time.perf_counter()
    try:
        splits = read()
        missing = [split for split in only_splits if split not in splits]
        if missing:
            where = f"{listing} lists" if listing else "has"
            raise StsegInputError(f"{root}: {where} no {', '.join(missing)} split (it has {', '.join(splits) or 'none'})")
        if only_splits:
            splits = {split: listed for split, listed in splits.items() if split in only_splits}
        sequences = {}
        for listed in splits.values():
            for sequence in listed:
                if sequences.setdefault(sequence.name, sequence).frames != sequence.frames:
                    raise StsegInputError(
                        f"{root}: two splits list sequence {sequence.name!r} with other frames ({sequences[sequence.name].folder}, "
                        f"{sequence.folder}); its flows would pair the wrong frames"
                    )
    except (OSError, ValueError) as exc:
        fail(exc)
    settings = {
        "dataset": dataset, "root": str(Path(root).resolve()), **(extra or {}),
        "flows": str(Path(flows.flows_root).resolve()) if flows.flows_root else None,
        "flow_method": None if flows.flows_root else recipe.method,
        "flow_size": None if flows.flows_root or recipe.size is None else list(recipe.size),
        "flow_scale": None if flows.flows_root or recipe.size is not None else recipe.scale,
    }
    try:  # before any flow is computed: flows of the CSVs kept must not be replaced
        check_settings_agree(out, name, list(splits), settings)
    except StsegOutputError as exc:
        fail(exc)
    click.echo(f"{root}: {', '.join(f'{split} {len(listed)} sequence(s)' for split, listed in splits.items())}", err=True)
    converting = [s for s in sequences.values() if s.truth is not None]
    last = [s.name for s in converting if len(s.frames) - 1 in s.truth.annotated]
    if last:
        click.echo(
            f"note: {len(last)} sequence(s) annotate their last frame ({', '.join(last[:3])}{', ...' if len(last) > 3 else ''}), "
            "which has no forward flow, hence no prediction: it is converted but not scored",
            err=True,
        )
    if converting:
        # Before the flows: a mask that cannot be read stops the run in seconds, not hours.
        try:
            for sequence in tqdm(converting, unit="seq", desc="ground truth", file=sys.stderr, dynamic_ncols=True):
                sequences[sequence.name] = write_truth(sequence, out / "GroundTruth" / sequence.name)
        except (OSError, ValueError) as exc:
            fail(exc)
        splits = {split: [sequences[s.name] for s in listed] for split, listed in splits.items()}
    failed: dict[str, str] = {}
    paths: dict[str, list[Path]] = {}
    if flows.flows_root is not None:
        for seq in sequences.values():
            try:
                paths[seq.name] = user_flows(seq, Path(flows.flows_root) / seq.name)
            except (OSError, ValueError) as exc:
                failed[seq.name] = str(exc)
    else:
        flow_root = out / flow_folder
        bar = tqdm(total=len(sequences), unit="seq", desc="flows", file=sys.stderr, dynamic_ncols=True)

        def done(seq_name: str, error: str | None) -> None:
            bar.update(1)
            bar.set_postfix_str(seq_name)

        try:
            if flows.ray_address:
                with ray_session(flows.ray_address) as ray:
                    results = compute_flows(list(sequences.values()), flow_root, recipe, on_done=done, ray=ray)
            else:
                results = compute_flows(list(sequences.values()), flow_root, recipe, flows.workers, done)
        except (ClusterError, OSError) as exc:
            fail(exc)
        finally:
            bar.close()
        kept = sum(r == "kept" for r in results.values())
        click.echo(f"flows: {len(results) - kept} sequence(s) computed, {kept} kept", err=True)
        for seq_name, result in results.items():
            if result in ("kept", "computed"):
                n = len(sequences[seq_name].frames) - 1
                paths[seq_name] = [flow_root / seq_name / f"{frame_name(t)}.flo" for t in range(n)]
            else:
                failed[seq_name] = result
    if failed:
        for seq_name, error in sorted(failed.items()):
            click.echo(f"failed: {seq_name}: {error}", err=True)
        raise click.ClickException(f"{len(failed)} of {len(sequences)} sequence(s) failed (named above); no DataSplit written")
    tables = {split: datasplit_rows(listed, paths, out) for split, listed in splits.items()}
    try:
        written = write_datasplits(out, name, tables, settings)
    except (OSError, ValueError) as exc:
        fail(exc)
    for path in written:
        click.echo(f"{path}: {len(tables[path.stem.rsplit('_', 1)[1]])} rows")
    click.echo(f"prepared in {time.perf_counter() - started:.1f} s; use --data-file {out / name} --base-dir {out}")


def _absolute_for_ray(flows: FlowChoice, root: str, out_dir: str) -> tuple[str, str]:
    """Ray's workers see the same paths only when they are absolute."""
    return (str(Path(root).absolute()), str(Path(out_dir).absolute())) if flows.ray_address else (root, out_dir)


@prepare_main.command("davis", cls=StsegCommand)
@click.argument("root", type=click.Path(exists=True, file_okay=False))
@click.option("--resolution", default="480p", help="Which ROOT/ImageSets/<res>, JPEGImages/<res>, Annotations/<res> to use.")
@click.option("--year", type=click.Choice(["2016", "2017"]), default="2016", help="DAVIS edition. 2016: ImageSets/<res>/<split>.txt list frames, masks 0/255; 2017: ImageSets/2017/<split>.txt list sequences, masks are object ids (stseg-eval --objects).")
@click.option("--name", default=None, help="DataSplit name: OUT/<name>_<split>.csv.  [default: DAVIS<year>]")
@dataset_options("every split ROOT/ImageSets/<res> lists")
def davis_main(root, resolution, year, name, out_dir, flow_method, flow_size, flow_scale, flows_root, workers, only_splits, ray_address, verbose) -> None:
    """Flows and DataSplits for a DAVIS dataset (2016 or 2017) in its own layout under ROOT.

    Writes OUT/<name>_<split>.csv for each of train.txt, val.txt, test.txt in
    ROOT/ImageSets/<res> (2017: ROOT/ImageSets/2017) (Flow relative to OUT; Image and GtMask
    absolute, into ROOT) and the forward flows under OUT/Flows/<res>/<seq>/. Flows that are
    complete and were made with the same settings are kept. If any sequence fails, the
    failures are named, no CSV is written and the exit status is 1."""
    from ..datasets.davis import read_davis

    setup_logging(verbose)
    flows = _flow_choice(flows_root, flow_method, flow_size, flow_scale, workers, ray_address)
    root, out_dir = _absolute_for_ray(flows, root, out_dir)
    year = int(year)
    run_prepare(
        lambda: read_davis(root, resolution, year), "davis", root, out_dir, name or f"DAVIS{year}", only_splits, flows,
        flow_folder=f"Flows/{resolution}", listing="ImageSets/2017" if year == 2017 else f"ImageSets/{resolution}",
        # folders prepared before --year existed are 2016's
        extra={"resolution": resolution, **({"year": year} if year != 2016 else {})},
    )


@prepare_main.command("fbms", cls=StsegCommand)
@click.argument("root", type=click.Path(exists=True, file_okay=False))
@click.option("--name", default="FBMS", help="DataSplit name: OUT/<name>_<split>.csv.")
@dataset_options("every split ROOT has")
def fbms_main(root, name, out_dir, flow_method, flow_size, flow_scale, flows_root, workers, only_splits, ray_address, verbose) -> None:
    """Flows, object-id masks and DataSplits for FBMS-59 under ROOT, as distributed
    (Trainingset/ -> train, Testset/ -> val and test) or as the processed copy
    (JPEGImages/ and Annotations/, every sequence in val and test).

    Def.dat names the annotated frames and the meaning of each mask value; those frames'
    masks become OUT/GroundTruth/<seq>/NNNNN.png (object ids, 0 background, named after the
    frame's position), listed in the CSVs' GtMask column; stseg-eval --protocol fbms scores
    them. If any sequence fails, no CSV is written and the exit status is 1."""
    from ..datasets.fbms import read_fbms

    setup_logging(verbose)
    flows = _flow_choice(flows_root, flow_method, flow_size, flow_scale, workers, ray_address)
    root, out_dir = _absolute_for_ray(flows, root, out_dir)
    run_prepare(lambda: read_fbms(root), "fbms", root, out_dir, name, only_splits, flows)


@prepare_main.command("segtrackv2", cls=StsegCommand)
@click.argument("root", type=click.Path(exists=True, file_okay=False))
@click.option("--name", default="SegTrackV2", help="DataSplit name: OUT/<name>_<split>.csv.")
@dataset_options("val and test")
def segtrackv2_main(root, name, out_dir, flow_method, flow_size, flow_scale, flows_root, workers, only_splits, ray_address, verbose) -> None:
    """Flows, object-id masks and DataSplits for SegTrackV2 under ROOT in its own layout
    (JPEGImages/, GroundTruth/, ImageSets/); every sequence goes to val and test.

    Every frame is annotated; each frame's masks (one per object folder 1/, 2/, ... for
    several objects) become OUT/GroundTruth/<seq>/NNNNN.png (object ids, 0 background, named
    after the frame's position), listed in the CSVs' GtMask column; stseg-eval --protocol
    segtrackv2 scores them. If any sequence fails, no CSV is written and the exit status is 1."""
    from ..datasets.segtrackv2 import read_segtrackv2

    setup_logging(verbose)
    flows = _flow_choice(flows_root, flow_method, flow_size, flow_scale, workers, ray_address)
    root, out_dir = _absolute_for_ray(flows, root, out_dir)
    run_prepare(lambda: read_segtrackv2(root), "segtrackv2", root, out_dir, name, only_splits, flows)
