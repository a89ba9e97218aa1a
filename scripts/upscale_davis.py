"""A 480p stand-in of a 240p DAVIS copy: every listed frame upscaled x2 (bicubic, JPEG quality
95) to 854x480 and its mask x2 (nearest), in DAVIS's own layout under OUT/.../480p.

    python scripts/upscale_davis.py ../shared/data/davis2016-train-240p OUT [--split train --split val]

The project has only the 240p copy; real DAVIS is 480p. Running the default pipeline on this
stand-in (flow at ``--flow-scale auto``, i.e. these frames shrunk back to 240 rows) is how the
bundled models were trained and how the README's 480p timings were taken.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2

SIZE = (854, 480)  # W, H of DAVIS 480p


def upscale(src: Path, dst: Path, split: str) -> int:
    listing = src / "ImageSets" / "240p" / f"{split}.txt"
    if not listing.is_file():
        sys.exit(f"{listing}: no such listing")
    lines = [line for line in listing.read_text().splitlines() if line.strip()]
    for line in lines:
        for rel, interpolation in zip(line.split(), (cv2.INTER_CUBIC, cv2.INTER_NEAREST)):
            image = cv2.imread(str(src / rel.lstrip("/")), cv2.IMREAD_UNCHANGED)
            if image is None:
                sys.exit(f"{src / rel.lstrip('/')}: not a readable image")
            target = dst / rel.lstrip("/").replace("/240p/", "/480p/")
            target.parent.mkdir(parents=True, exist_ok=True)
            params = [cv2.IMWRITE_JPEG_QUALITY, 95] if target.suffix.lower() == ".jpg" else []
            if not cv2.imwrite(str(target), cv2.resize(image, SIZE, interpolation=interpolation), params):
                sys.exit(f"{target}: could not write")
    (dst / "ImageSets" / "480p").mkdir(parents=True, exist_ok=True)
    (dst / "ImageSets" / "480p" / f"{split}.txt").write_text("\n".join(line.replace("/240p/", "/480p/") for line in lines) + "\n")
    return len(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("src", type=Path, help="a DAVIS root with a 240p copy")
    parser.add_argument("dst", type=Path)
    parser.add_argument("--split", action="append", help="listing(s) to upscale [default: train and val]")
    args = parser.parse_args()
    for split in args.split or ["train", "val"]:
        print(f"{split}: {upscale(args.src, args.dst, split)} frames")


if __name__ == "__main__":
    main()
