"""Tiny FBMS-59 trees for the tests, in the dataset's own layout with its quirks (per-sequence
frame numbering, .bmf lists naming .ppm files, Def.dat, grey .pgm masks with a black
background, colour _gt.ppm masks with a white background beside _gt.pgm probability maps and
PROB files), and in the processed copy's layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

SIZE = (32, 48)  # H, W
RED, BLUE, WHITE = (255, 0, 0), (0, 0, 255), (255, 255, 255)


def key(colour: tuple[int, int, int]) -> int:
    return colour[0] * 65536 + colour[1] * 256 + colour[2]


def squares(t: int) -> tuple[tuple[slice, slice], tuple[slice, slice]]:
    """Where the two objects are in frame t: one moving right 2 px a frame, one moving left."""
    return (slice(4, 12), slice(5 + 2 * t, 13 + 2 * t)), (slice(20, 28), slice(30 - 2 * t, 38 - 2 * t))


def frame_image(t: int) -> np.ndarray:
    frame = np.full((*SIZE, 3), 40, np.uint8)
    frame += (np.arange(SIZE[1], dtype=np.uint8) % 7)[None, :, None]  # texture, for the flow
    first, second = squares(t)
    frame[first] = 220
    frame[second] = 130
    return frame


def definition(keys: list[int], n_frames: int, labelled: list[tuple[int, str, str]]) -> str:
    """A Def.dat in the format the FBMS evaluator reads (regions in ``keys``' order)."""
    lines = ["Ground truth definition file; do not change!", "", "Total number of regions:", str(len(keys))]
    for region, value in enumerate(keys):
        lines += [f"Scale of region {region}:", str(value)]
    lines += ["", "Confusion penality matrix:"]
    lines += [" ".join("0" if i == j else "1" for j in range(len(keys))) for i in range(len(keys))]
    lines += ["", "Total number of frames in this shot:", str(n_frames), "Total number of labeled frames for this shot:", str(len(labelled))]
    for index, mask, image in labelled:
        lines += ["Frame number:", str(index), "File name:", mask, "Input file name:", image]
    return "\n".join(lines) + "\n"


def fbms_sequence(
    folder: Path,
    n: int = 4,
    start: int = 1,
    digits: int = 4,
    separator: str = "_",
    family: str = "ppm",
    annotated: tuple[int, ...] = (0, 2),
    bmf: bool = True,
) -> Path:
    """One sequence folder: frames ``<name><separator><start + t>.jpg``, a .bmf, Def.dat and
    the masks of the ``annotated`` frames (0-based), ``family`` "ppm" (colour, white
    background, object 1 red and object 2 blue; Def.dat lists the background last) or "pgm"
    (grey, black background, objects 255 and 128)."""
    name = folder.name
    gt = folder / "GroundTruth"
    gt.mkdir(parents=True)
    stems = [f"{name}{separator}{start + t:0{digits}d}" for t in range(n)]
    for t, stem in enumerate(stems):
        Image.fromarray(frame_image(t)).save(folder / f"{stem}.jpg", quality=95)
    if bmf:
        (folder / f"{name}.bmf").write_text(f"{n} 1\n" + "".join(f"{stem}.ppm\n" for stem in stems))
    labelled = []
    for t in annotated:
        first, second = squares(t)
        if family == "ppm":
            rgb = np.full((*SIZE, 3), 255, np.uint8)
            rgb[first], rgb[second] = RED, BLUE
            mask = f"{stems[t]}_gt.ppm"
            Image.fromarray(rgb).save(gt / mask)
            # The probability map beside it and a PROB file: never masks.
            Image.fromarray(np.full(SIZE, 200, np.uint8)).save(gt / f"{stems[t]}_gt.pgm")
            Image.fromarray(np.full((*SIZE, 3), 7, np.uint8)).save(gt / f"{stems[t]}PROB_gt.ppm")
        else:
            grey = np.zeros(SIZE, np.uint8)
            grey[first], grey[second] = 255, 128
            mask = f"{stems[t]}.pgm"
            Image.fromarray(grey).save(gt / mask)
        labelled.append((t, mask, f"{stems[t]}.ppm"))
    keys = [key(RED), key(BLUE), key(WHITE)] if family == "ppm" else [0, 255, 128]
    (gt / f"{name}Def.dat").write_text(definition(keys, n, labelled))
    return folder


def fbms_tree(root: Path, train: tuple[str, ...] = ("cars1",), test: tuple[str, ...] = ("bear01", "tennis")) -> Path:
    """An FBMS-59 root: a grey-mask sequence numbered ``cars1_01`` in Trainingset; in Testset a
    colour one numbered ``bear01_0001`` and one named like tennis (``tennis454.jpg``: no
    separator, starting at 454)."""
    for name in train:
        fbms_sequence(root / "Trainingset" / name, digits=2, family="pgm")
    for name in test:
        if name == "tennis":
            fbms_sequence(root / "Testset" / name, start=454, digits=3, separator="", annotated=(0, 3))
        else:
            fbms_sequence(root / "Testset" / name)
    return root


def processed_tree(root: Path, names: tuple[str, ...] = ("bear01", "cars1"), n: int = 4, annotated: tuple[int, ...] = (0, 2)) -> Path:
    """The processed copy: ``JPEGImages/<seq>/00001.jpg``..., ``Annotations/<seq>/00001.png`` for
    the annotated frames only, binary 0/255 (the first sequence's as RGB), objects merged."""
    for s, name in enumerate(names):
        (root / "JPEGImages" / name).mkdir(parents=True)
        (root / "Annotations" / name).mkdir(parents=True)
        for t in range(n):
            Image.fromarray(frame_image(t)).save(root / "JPEGImages" / name / f"{t + 1:05d}.jpg", quality=95)
        for t in annotated:
            mask = np.zeros(SIZE, np.uint8)
            for where in squares(t):
                mask[where] = 255
            image = Image.fromarray(np.stack([mask] * 3, axis=-1)) if s == 0 else Image.fromarray(mask)
            image.save(root / "Annotations" / name / f"{t + 1:05d}.png")
    return root
