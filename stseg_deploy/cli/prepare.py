"""``stseg-prepare``: datasets of frames to flows and DataSplits, one subcommand per dataset."""

from __future__ import annotations

import sys
import time
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


@prepare_main.command("davis", cls=StsegCommand)
@click.argument("root", type=click.Path(exists=True, file_okay=False))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Folder for DAVIS2016_<split>.csv and Flows/<res>/<seq>/NNNNN.flo.")
@click.option("--resolution", default="480p", help="Which ROOT/ImageSets/<res>, JPEGImages/<res>, Annotations/<res> to use.")
@click.option("--year", type=click.Choice(["2016", "2017"]), default="2016", help="DAVIS edition. 2016: ImageSets/<res>/<split>.txt list frames, masks 0/255; 2017: ImageSets/2017/<split>.txt list sequences, masks are object ids (stseg-eval --objects).")
@click.option("--flow-method", type=click.Choice(FLOW_METHODS), default=DEFAULT_METHOD, help="Optical flow engine (OpenCV; deepflow needs opencv-contrib-python-headless, stseg's dependency).")
@click.option("--flow-size", nargs=2, type=click.IntRange(min=16), default=None, help="Compute flow at H W (instead of --flow-scale).")
@click.option("--flow-scale", default=None, callback=parse_flow_scale, help=f"Compute flow at this factor of the frames' size; auto: frames taller than {AUTO_FLOW_HEIGHT} px shrunk to {AUTO_FLOW_HEIGHT} rows (half of 480p), smaller ones as they are.  [default: auto]")
@click.option("--flows", "flows_root", type=click.Path(exists=True, file_okay=False), default=None, help="Use flows you already have: FLOWS/<seq>/NNNNN.<flo|npy|png>, named after the frames (no flow is computed).")
@click.option("--workers", type=click.IntRange(min=1), default=default_workers(), help="Sequences computed in parallel.")
@click.option("--name", default=None, help="DataSplit name: OUT/<name>_<split>.csv.  [default: DAVIS<year>]")
@click.option("--split", "only_splits", multiple=True, type=click.Choice(SPLITS), help="Only this split (repeat for several): flows for its sequences and its CSV, nothing else.  [default: every split ROOT/ImageSets/<res> lists]")
@click.option("--ray", "ray_address", metavar="ADDRESS", default=None, help=f"Compute flows on a Ray cluster, one sequence per CPU (instead of --workers): 'local', 'auto' or a cluster address, as for stseg-infer. OUT and ROOT must be on a filesystem every node sees. Needs {INSTALL_HINT}.")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def davis_main(root, out_dir, resolution, year, flow_method, flow_size, flow_scale, flows_root, workers, name, only_splits, ray_address, verbose) -> None:
    """Flows and DataSplits for a DAVIS dataset (2016 or 2017) in its own layout under ROOT.

    Writes OUT/<name>_<split>.csv for each of train.txt, val.txt, test.txt in
    ROOT/ImageSets/<res> (2017: ROOT/ImageSets/2017) (Flow relative to OUT; Image and GtMask
    absolute, into ROOT) and the
    forward flows under OUT/Flows/<res>/<seq>/. Flows that are complete and were made with the
    same settings are kept. If any sequence fails, the failures are named, no CSV is written
    and the exit status is 1."""
    from tqdm import tqdm

    from ..datasets.davis import read_davis
    from ..datasets.prepare import check_settings_agree, compute_flows, datasplit_rows, user_flows, write_datasplits
    from ..io.outdir import StsegOutputError
    from ..io.videoio import frame_name

    setup_logging(verbose)
    if ray_address and click.get_current_context().get_parameter_source("workers") == click.core.ParameterSource.COMMANDLINE:
        raise click.UsageError("give --workers or --ray, not both: on Ray every CPU of the cluster works")
    if ray_address and flows_root:
        raise click.UsageError("--ray computes flows; with --flows none are computed: give one of them")
    if ray_address:  # the workers see the same paths only when they are absolute
        root, out_dir = str(Path(root).absolute()), str(Path(out_dir).absolute())
    recipe = flow_recipe(flow_method, flow_size, flow_scale)
    out = Path(out_dir)
    started = time.perf_counter()
    try:
        year = int(year)
        name = name or f"DAVIS{year}"
        splits = read_davis(root, resolution, year)
        missing = [split for split in only_splits if split not in splits]
        if missing:
            listed = "ImageSets/2017" if year == 2017 else f"ImageSets/{resolution}"
            raise StsegInputError(f"{root}: {listed} lists no {', '.join(missing)} split (it has {', '.join(splits) or 'none'})")
    except (OSError, ValueError) as exc:
        fail(exc)
    if only_splits:
        splits = {split: listed for split, listed in splits.items() if split in only_splits}
    settings = {
        "dataset": "davis", "root": str(Path(root).resolve()), "resolution": resolution,
        **({"year": year} if year != 2016 else {}),  # folders prepared before --year existed are 2016's
        "flows": str(Path(flows_root).resolve()) if flows_root else None,
        "flow_method": None if flows_root else recipe.method,
        "flow_size": None if flows_root or recipe.size is None else list(recipe.size),
        "flow_scale": None if flows_root or recipe.size is not None else recipe.scale,
    }
    try:  # before any flow is computed: flows of the CSVs kept must not be replaced
        check_settings_agree(out, name, list(splits), settings)
    except StsegOutputError as exc:
        fail(exc)
    sequences = {s.name: s for listed in splits.values() for s in listed}
    click.echo(
        f"{root}: {', '.join(f'{split} {len(listed)} sequence(s)' for split, listed in splits.items())}", err=True
    )
    failed: dict[str, str] = {}
    flows: dict[str, list[Path]] = {}
    if flows_root is not None:
        for seq in sequences.values():
            try:
                flows[seq.name] = user_flows(seq, Path(flows_root) / seq.name)
            except (OSError, ValueError) as exc:
                failed[seq.name] = str(exc)
    else:
        flow_root = out / "Flows" / resolution
        bar = tqdm(total=len(sequences), unit="seq", desc="flows", file=sys.stderr, dynamic_ncols=True)

        def done(seq_name: str, error: str | None) -> None:
            bar.update(1)
            bar.set_postfix_str(seq_name)

        try:
            if ray_address:
                with ray_session(ray_address) as ray:
                    results = compute_flows(list(sequences.values()), flow_root, recipe, on_done=done, ray=ray)
            else:
                results = compute_flows(list(sequences.values()), flow_root, recipe, workers, done)
        except (ClusterError, OSError) as exc:
            fail(exc)
        finally:
            bar.close()
        kept = sum(r == "kept" for r in results.values())
        click.echo(f"flows: {len(results) - kept} sequence(s) computed, {kept} kept", err=True)
        for seq_name, result in results.items():
            if result in ("kept", "computed"):
                n = len(sequences[seq_name].frames) - 1
                flows[seq_name] = [flow_root / seq_name / f"{frame_name(t)}.flo" for t in range(n)]
            else:
                failed[seq_name] = result
    if failed:
        for seq_name, error in sorted(failed.items()):
            click.echo(f"failed: {seq_name}: {error}", err=True)
        raise click.ClickException(f"{len(failed)} of {len(sequences)} sequence(s) failed (named above); no DataSplit written")
    tables = {split: datasplit_rows(listed, flows, out) for split, listed in splits.items()}
    try:
        written = write_datasplits(out, name, tables, settings)
    except (OSError, ValueError) as exc:
        fail(exc)
    for path in written:
        click.echo(f"{path}: {len(tables[path.stem.rsplit('_', 1)[1]])} rows")
    click.echo(f"prepared in {time.perf_counter() - started:.1f} s; use --data-file {out / name} --base-dir {out}")
