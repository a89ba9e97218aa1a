"""Choose the guided refinement's settings on every test set without re-running the model:
the linked probabilities of one ``stseg-infer --refine none --save-proba`` run per test set
(``scripts/stage_study.py --variant "proba=--refine none --save-proba"`` makes them) are
refined with each setting in memory and scored as ``stseg-eval`` scores an output folder
(:func:`stseg_deploy.eval.evaluation.score_label_maps`: the same mask selection, J and F).

    python scripts/refine_grid.py --proba study/proba \\
        --davis dev480=dev480/DAVIS2016=dev480@val --davis train240=t240/DAVIS2016=t240@train \\
        --clips rendered=clips --setting none --setting r64e1e-4=64,1e-4 --setting r32e1e-2=32,1e-2 \\
        --band 16 --out study/refine_grid.csv

A setting is ``NAME`` = ``none`` (nearest upsampling) or ``RADIUS,EPS[,SUBSAMPLE]``
(:class:`stseg_deploy.stages.refine.RefineSettings`). Its table row gives each set's J (and F on DAVIS
sets, J_objects on clips) and the pooled DAVIS mean over every sequence ("davis all");
``--band B`` (repeatable) also scores each guided setting kept to B pixels (of a 480-row
frame) from the unrefined labels' boundaries, as ``NAME+bandB``. A check: the ``none`` row
must equal ``stseg-eval`` on the proba run itself.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from stseg_deploy.eval.evaluation import score_label_maps
from stseg_deploy.eval.groundtruth import gt_from_folder
from stseg_deploy.eval.options import EvalOptions
from stseg_deploy.io.videoio import open_frame_source, read_image
from stseg_deploy.output.layout import read_label_maps
from stseg_deploy.sources import sequences_from_datasplit
from stseg_deploy.stages.refine import REFERENCE_ROWS, RefineSettings, refine_labels


def _named(text: str) -> tuple[str, str]:
    name, sep, rest = text.partition("=")
    if not name or "/" in name:
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=...")
    return name, rest if sep else ""


def _setting(text: str) -> tuple[str, RefineSettings | None]:
    name, rest = _named(text)
    if name == "none" and not rest:
        return name, None
    parts = rest.split(",")
    if not 2 <= len(parts) <= 3:
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=RADIUS,EPS[,SUBSAMPLE]")
    try:
        radius, eps = float(parts[0]), float(parts[1])
        subsample = int(parts[2]) if len(parts) > 2 else RefineSettings().subsample
        return name, RefineSettings(mode="guided", radius=radius, eps=eps, subsample=subsample)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from exc


def _banded(refined: np.ndarray, coarse: np.ndarray, band: float) -> np.ndarray:
    """``refined`` where it lies within ``band`` pixels (480-row units) of a boundary of
    ``coarse`` (both (H, W) uint8 at the frame's size), ``coarse`` elsewhere."""
    radius = max(1, int(round(band * coarse.shape[0] / REFERENCE_ROWS)))
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (2 * radius + 1, 2 * radius + 1))
    edge = cv2.dilate(coarse, kernel) != cv2.erode(coarse, kernel)
    return np.where(edge, refined, coarse)


def _frames_davis(prefix: str, split: str, base: str) -> dict[str, list[Path]]:
    return {s.name: list(s.images) for s in sequences_from_datasplit(prefix, split, base)}


def _video_frames(video: Path, n: int) -> list[np.ndarray]:
    frames = [frame for _, frame in open_frame_source(video)]
    return frames[:n]


def score_set(name: str, kind: str, proba_dir: Path, frames_of, gt_dir: Path | None,
              settings: dict[str, RefineSettings | None], bands: list[float]) -> list[dict]:
    rows: dict[str, list] = {}
    options = EvalOptions(protocol="davis2016" if kind == "davis" else "stseg", objects=kind == "clips")
    for seq_dir in sorted(p for p in proba_dir.iterdir() if (p / "sequence.json").is_file()):
        coarse_maps, record = read_label_maps(seq_dir)
        frames = record["frames"]
        if kind == "davis":
            masks = [Path(m) if m else None for m in record["masks"]]
        else:
            masks = gt_from_folder(gt_dir, record["sequence"], frames)
        proba = [np.load(seq_dir / "proba" / f"{f}.npy") for f in frames]
        images = frames_of(record["sequence"], len(frames))
        for setting, guided in settings.items():
            variants = {setting: None} if guided is None else {setting: None, **{f"{setting}+band{b:g}": b for b in bands}}
            refined = None
            for label, band in variants.items():
                if guided is None:
                    maps = coarse_maps
                else:
                    if refined is None:
                        refined = np.stack([refine_labels(p, im, guided) for p, im in zip(proba, images)])
                    maps = np.stack([_banded(r, c, band) for r, c in zip(refined, coarse_maps)]) if band else refined
                score = score_label_maps(maps, record, masks, options, where=seq_dir)
                rows.setdefault(label, []).append(score)
        print(f"  {name}/{record['sequence']}", file=sys.stderr, flush=True)
    out = []
    for label, scores in rows.items():
        row = {"setting": label, "set": name, "kind": kind}
        if kind == "davis":
            stats = [s.davis_statistics() for s in scores]
            row.update(J=float(np.mean([s["J_mean"] for s in stats])), F=float(np.mean([s["F_mean"] for s in stats])),
                       n=len(stats), sequences=";".join(f"{s.sequence}:{st['J_mean']:.4f}:{st['F_mean']:.4f}" for s, st in zip(scores, stats)))
        else:
            frames = pd.concat([s.per_frame for s in scores])
            objects = pd.concat([s.objects for s in scores])
            row.update(J=float(frames["jaccard"].mean()), J_objects=float(objects["J"].mean()), n=len(scores))
        out.append(row)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--proba", type=Path, required=True, help="folder with one stseg-infer output per test set name")
    parser.add_argument("--davis", action="append", default=[], help="NAME=PREFIX=BASE_DIR[@SPLIT] (for the frames)")
    parser.add_argument("--clips", action="append", default=[], help="NAME=DIR of clipNN.mp4 and objects/")
    parser.add_argument("--setting", action="append", type=_setting, required=True)
    parser.add_argument("--band", type=float, action="append", default=[])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    settings = dict(args.setting)
    rows = []
    for text in args.davis:
        name, rest = _named(text)
        rest, _, split = rest.rpartition("@") if "@" in rest else (rest, "", "val")
        prefix, _, base = rest.partition("=")
        images = _frames_davis(prefix, split, base)
        rows += score_set(name, "davis", args.proba / name, lambda seq, n: [read_image(p) for p in images[seq][:n]], None,
                          settings, args.band)
    for text in args.clips:
        name, folder = _named(text)
        rows += score_set(name, "clips", args.proba / name, lambda seq, n: _video_frames(Path(folder) / f"{seq}.mp4", n),
                          Path(folder) / "objects", settings, args.band)
    table = pd.DataFrame(rows)
    davis = table[table["kind"] == "davis"]
    for label, group in davis.groupby("setting", sort=False):
        per = [cell.split(":") for text in group["sequences"] for cell in text.split(";")]
        table.loc[len(table)] = {"setting": label, "set": "davis all", "kind": "davis", "n": len(per),
                                 "J": float(np.mean([float(p[1]) for p in per])), "F": float(np.mean([float(p[2]) for p in per]))}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False)
    wide = table.pivot_table(index="setting", columns="set", values=[c for c in ("J", "F", "J_objects") if c in table], sort=False)
    print(wide.round(3).to_string())


if __name__ == "__main__":
    main()
