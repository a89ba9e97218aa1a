"""Rendered test clips: textured objects over a panning textured background, with
per-object ground truth, for choosing inference settings on video whose every pixel's
motion is known (``scripts/stage_study.py --clips NAME=OUT``).

    python scripts/render_clips.py clips --clips 6 --frames 48 --size 240 320

Writes ``OUT/clipNN.mp4`` and ``OUT/objects/clipNN/NNNNN.png`` (indexed PNGs, palette index =
object id) for seeds ``--seed``, ``--seed + 1``, …; each seed draws its own textures,
shapes, motions and number of objects (1 or 2).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from stseg_synth.video import render_video


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--clips", type=int, default=6)
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--size", type=int, nargs=2, default=(240, 320), metavar=("H", "W"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for k in range(args.clips):
        name = f"clip{k:02d}"
        clip = render_video(args.out / f"{name}.mp4", n_frames=args.frames, size=tuple(args.size), seed=args.seed + k,
                            labels_dir=args.out / "objects" / name)
        print(f"{clip.path}: {int(clip.labels.max())} object(s)")


if __name__ == "__main__":
    main()
