"""A tiny DAVIS tree for the prepare tests, in the dataset's own layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

SIZE = (32, 48)  # H, W


def davis_tree(root: Path, splits: dict[str, dict[str, int]], res: str = "480p") -> Path:
    """A tiny DAVIS tree: a square moving right by 2 px a frame in every sequence."""
    for split, sequences in splits.items():
        lines = []
        for name, n in sequences.items():
            (root / "JPEGImages" / res / name).mkdir(parents=True, exist_ok=True)
            (root / "Annotations" / res / name).mkdir(parents=True, exist_ok=True)
            for t in range(n):
                frame = np.full((*SIZE, 3), 40, np.uint8)
                frame[10:20, 5 + 2 * t : 15 + 2 * t] = 220
                Image.fromarray(frame).save(root / "JPEGImages" / res / name / f"{t:05d}.jpg", quality=95)
                mask = np.zeros(SIZE, np.uint8)
                mask[10:20, 5 + 2 * t : 15 + 2 * t] = 255
                Image.fromarray(mask).save(root / "Annotations" / res / name / f"{t:05d}.png")
                lines.append(f"/JPEGImages/{res}/{name}/{t:05d}.jpg /Annotations/{res}/{name}/{t:05d}.png")
        (root / "ImageSets" / res).mkdir(parents=True, exist_ok=True)
        (root / "ImageSets" / res / f"{split}.txt").write_text("\n".join(lines) + "\n")
    return root


def davis2017_tree(root: Path, splits: dict[str, dict[str, int]], res: str = "480p", annotated: int | None = None) -> Path:
    """A tiny DAVIS-2017 tree: two squares per sequence, objects 1 and 2 in indexed PNGs
    (palette index = object id), listed by sequence name; ``annotated``: only the first so many
    frames have a mask (as test-dev has only the first)."""
    palette = [0, 0, 0, 128, 0, 0, 0, 128, 0] + [0] * (256 * 3 - 9)
    for split, sequences in splits.items():
        for name, n in sequences.items():
            (root / "JPEGImages" / res / name).mkdir(parents=True, exist_ok=True)
            (root / "Annotations" / res / name).mkdir(parents=True, exist_ok=True)
            for t in range(n):
                frame = np.full((*SIZE, 3), 40, np.uint8)
                frame[4:12, 5 + 2 * t : 13 + 2 * t] = 220
                frame[20:28, 30 - t : 38 - t] = 120
                Image.fromarray(frame).save(root / "JPEGImages" / res / name / f"{t:05d}.jpg", quality=95)
                if annotated is not None and t >= annotated:
                    continue
                ids = np.zeros(SIZE, np.uint8)
                ids[4:12, 5 + 2 * t : 13 + 2 * t] = 1
                ids[20:28, 30 - t : 38 - t] = 2
                mask = Image.fromarray(ids, mode="P")
                mask.putpalette(palette)
                mask.save(root / "Annotations" / res / name / f"{t:05d}.png")
        (root / "ImageSets" / "2017").mkdir(parents=True, exist_ok=True)
        (root / "ImageSets" / "2017" / f"{split}.txt").write_text("".join(f"{name}\n" for name in sequences))
    return root
