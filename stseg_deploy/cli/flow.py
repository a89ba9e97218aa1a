"""``stseg-flow``: optical flow of a video or a frame folder, as .flo files."""

from __future__ import annotations

import sys
import time

import click

from ..flow.recipe import AUTO_FLOW_HEIGHT, DEFAULT_METHOD
from ..flow.recipe import METHODS as FLOW_METHODS
from .kit import command, fail, flow_recipe, parse_flow_scale, setup_logging


@command()
@click.argument("source", type=click.Path())
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Folder for the .flo files (00000.flo = flow from frame 0 to frame step); written whole, replacing only an earlier stseg-flow output.")
@click.option("--method", type=click.Choice(FLOW_METHODS), default=DEFAULT_METHOD, help="OpenCV engine: deepflow-dis (the mean of deepflow and dis-fine; the best for segmentation), deepflow, dis-fine, dis (fastest), farneback.")
@click.option("--size", nargs=2, type=click.IntRange(min=16), default=None, help="Compute flow at H W (instead of --scale).")
@click.option("--scale", "flow_scale", default=None, callback=parse_flow_scale, help=f"Compute flow at this factor of the video's size; auto: frames taller than {AUTO_FLOW_HEIGHT} px shrunk to {AUTO_FLOW_HEIGHT} rows.  [default: auto]")
@click.option("--step", type=click.IntRange(min=1), default=1, help="Flow from frame t to frame t + step.")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
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
