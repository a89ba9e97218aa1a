"""Pack the DAVIS-2016 training frames for a GPU training run (scripts/gpu_train.sh).

The device machine gets the checkout and at most 64 MiB in all; the 21 training sequences'
240p JPEGs are 54 MB and the checkout 37 MB. So the frames are re-encoded (JPEG quality
``--quality``, 50 by default: 21 MB; 75 gives 31 MB, too much), in DAVIS's own layout, with the
ImageSets of the training split only, under ``.gpu_data/`` (ignored by git through
.git/info/exclude, which this script extends), to be named in the device call's ``carry``.

    python scripts/gpu_pack.py ../shared/data/davis2016-train-240p --out .gpu_data/davis-train-240p

The masks are not needed to train (the method is unsupervised) and are left behind;
stseg-prepare then writes the DataSplit without GtMask.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import cv2


def pack(root: Path, out: Path, quality: int, resolution: str = "240p", split: str = "train") -> int:
    """Write the ``split`` sequences of ``root`` (a DAVIS tree) re-encoded into ``out``;
    returns the bytes written. Raises FileNotFoundError / ValueError naming what is wrong."""
    listing = root / "ImageSets" / resolution / f"{split}.txt"
    if not listing.is_file():
        raise FileNotFoundError(f"{listing}: no such file (is {root} a DAVIS tree with ImageSets/{resolution}?)")
    lines = [line.split() for line in listing.read_text().splitlines() if line.strip()]
    if not lines:
        raise ValueError(f"{listing}: lists no frames")
    if out.exists():
        shutil.rmtree(out)
    total = 0
    for fields in lines:
        source = root / fields[0].lstrip("/")
        image = cv2.imread(str(source), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f"{source}: missing or not an image")
        target = out / fields[0].lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(target), image, [cv2.IMWRITE_JPEG_QUALITY, quality]):
            raise OSError(f"{target}: could not write")
        total += target.stat().st_size
    (out / "ImageSets" / resolution).mkdir(parents=True)
    # Frames only: the masks stay behind (column 1 dropped).
    (out / "ImageSets" / resolution / f"{split}.txt").write_text("".join(f"{fields[0]}\n" for fields in lines))
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", type=Path, help="a DAVIS-2016 tree (JPEGImages, ImageSets)")
    parser.add_argument("--out", type=Path, default=Path(".gpu_data/davis-train-240p"))
    parser.add_argument("--quality", type=int, default=50, help="JPEG quality of the re-encoded frames")
    parser.add_argument("--max-mb", type=float, default=24.0, help="refuse to pack more than this (the carry's room)")
    args = parser.parse_args(argv)
    try:
        total = pack(args.root, args.out, args.quality)
    except (OSError, ValueError) as exc:
        print(f"gpu_pack: {exc}", file=sys.stderr)
        return 1
    exclude = Path(".git/info/exclude")
    if exclude.parent.parent.is_dir():
        entry = f"/{args.out.parts[0]}/"
        exclude.parent.mkdir(exist_ok=True)
        if not exclude.exists() or entry not in exclude.read_text().split():
            with exclude.open("a") as handle:
                handle.write(f"{entry}\n")
    print(f"{args.out}: {total / 1e6:.1f} MB of frames")
    if total > args.max_mb * 1e6:
        print(f"gpu_pack: over {args.max_mb} MB; lower --quality", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
