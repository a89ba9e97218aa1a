"""``stseg-viz``: a contact sheet of a segmented sequence."""

from __future__ import annotations

import click

from ..eval.options import SAME_CUT
from .kit import command, cut_size_option, fail


@command()
@click.argument("seq_dir", type=click.Path(file_okay=False))
@click.option("--gt", "gt_dir", type=click.Path(file_okay=False), default=None, help="Folder of this sequence's 0/255 masks named like the frames [default: the DataSplit masks it was inferred with, if any].")
@click.option("--frames", "n_columns", type=click.IntRange(min=1), default=6, help="Frames (columns) shown, spread over the sequence.")
@click.option("--cut-size", default=SAME_CUT, callback=cut_size_option(same=SAME_CUT), help="Chunk size of the mask selection; 'same': the cut size the sequence was linked with.")
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
