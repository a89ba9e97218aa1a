"""``stseg-synth``: write a synthetic DataSplit (numpy only, no torch needed)."""

from __future__ import annotations

import click

from stseg_deploy.cli.kit import command, setup_logging

from .datasplit import write_synth_split


@command()
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--sequences", type=int, default=10, help="Number of videos.")
@click.option("--frames", type=int, default=20, help="Flow frames per video.")
@click.option("--size", nargs=2, type=int, default=(64, 112), help="Frame size H W.")
@click.option("--seed", type=int, default=0)
@click.option("--val-fraction", type=float, default=0.2, help="Share of videos in the val split.")
@click.option("--name", default="Synth", help="DataSplit name: OUT/DataSplit/NAME_{train,val,test}.csv.")
@click.option("--objects", "n_objects", nargs=2, type=int, default=(1, 3), show_default=True, help="Moving objects per video: MIN MAX, each video drawing its count uniformly (1 3 is the generator's own draw).")
@click.option("--pauses", nargs=2, type=int, default=None, help="Each object holds still once for MIN to MAX frames, moving with the background (its flow is the camera's there): a test of segments that must hold while the flow cannot show the object. [default: no pauses]")
@click.option("--areas", nargs=2, type=float, default=None, help="Each object's area, MIN MAX fractions of the frame, drawn uniformly (e.g. 0.005 0.03 for the small movers of real video); every object then covers at least the smaller of MIN/2 and 0.02 of the frame on every frame. [default: 0.04 0.10, at least 0.02]")
def synth_main(out_dir: str, sequences: int, frames: int, size: tuple[int, int], seed: int, val_fraction: float, name: str, n_objects: tuple[int, int], pauses: tuple[int, int] | None, areas: tuple[float, float] | None) -> None:
    """Write a synthetic DataSplit of layered parametric-motion flow videos with masks.

    Videos are split in order into train and val (--val-fraction); the test split repeats
    the val videos, so every split file is usable. GtMask holds object ids (OUT/Labels,
    indexed PNGs; any id is foreground), so stseg-eval --objects scores each object; the
    0/255 masks are in OUT/Annotations."""
    setup_logging(False)

    try:
        prefix = write_synth_split(
            out_dir, n_sequences=sequences, n_frames=frames, size=tuple(size), seed=seed,
            val_fraction=val_fraction, name=name, n_objects=None if tuple(n_objects) == (1, 3) else tuple(n_objects),
            pauses=None if pauses is None else tuple(pauses), areas=None if areas is None else tuple(areas),
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    except RuntimeError as exc:  # an object that cannot be placed: the sizes asked for do not fit
        raise click.ClickException(str(exc)) from exc
    click.echo(f"DataSplit prefix: {prefix}  (use --data-file {prefix} --base-dir {out_dir})")
