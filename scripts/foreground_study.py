"""Compare foreground rules (which segments are the moving objects, no ground truth used) on
finished stseg-infer outputs, scored as ``stseg-eval --binary foreground`` scores them.

Each output keeps what a rule needs: labels.npy (the linked labels at model size), the
flows it read (``flows`` in sequence.json, resized as the model saw them) and its label maps
at the frames' size. For each rule, each frame's object labels are decided and written into
a copy of the record in memory, then scored by
:func:`stseg_deploy.eval.evaluation.score_label_maps` with ``binary="foreground"``: the
DAVIS-2016 protocol's J and F for ``--davis`` sets, binary J and the object-id map's
J_objects for ``--objects`` sets.

    python scripts/foreground_study.py --davis dev480=study/defaults/dev480 \\
        --davis train240=study/defaults/train240 --objects proxy=study/defaults/proxy

The ``optimax`` row is the paper's selection with the ground truth, for reference.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from stseg_deploy.eval.evaluation import score_label_maps
from stseg_deploy.eval.options import EvalOptions
from stseg_deploy.io.flowio import read_flow
from stseg_deploy.output.layout import read_label_maps, read_sequence_output
from stseg_deploy.preprocess import resize_flow
from stseg_deploy.stages.foreground import ForegroundSettings, choose_objects, decide_block, decision_blocks, segment_evidence

Rule = Callable[[np.ndarray, np.ndarray, np.ndarray, int | None], np.ndarray]


def chunk_rule(settings: ForegroundSettings) -> Rule:
    """The stage's rule: evidence averaged over each decision block (the linking chunks,
    :func:`stseg_deploy.stages.foreground.decision_blocks`), one decision per block."""

    def decide(labels, contrast, border, cut_size):
        out = np.zeros(contrast.shape, dtype=bool)
        blocks = decision_blocks(len(labels), cut_size)
        for b in np.unique(blocks):
            rows = blocks == b
            out[rows] = decide_block(contrast[rows], border[rows], settings)
        return out

    return decide


def frame_rule(settings: ForegroundSettings) -> Rule:
    """The same rule frame by frame, without the chunk's average."""

    def decide(labels, contrast, border, cut_size):  # noqa: ARG001
        return np.stack([choose_objects(c, b, settings) for c, b in zip(contrast, border)])

    return decide


def all_but_largest(labels, contrast, border, cut_size):  # noqa: ARG001
    """Every segment present but the frame's largest (``--binary exceptbiggest``)."""
    n = contrast.shape[1]
    out = np.zeros(contrast.shape, dtype=bool)
    for t, frame in enumerate(labels):
        counts = np.bincount(frame.ravel(), minlength=n)[:n]
        out[t] = counts > 0
        out[t, counts.argmax()] = False
    return out


RULES: dict[str, Rule] = {
    "all but largest": all_but_largest,
    "motion, per frame": frame_rule(ForegroundSettings()),
    "motion (the default)": chunk_rule(ForegroundSettings()),
    "motion, share 0.2": chunk_rule(ForegroundSettings(share=0.2)),
    "motion, share 0.5": chunk_rule(ForegroundSettings(share=0.5)),
    "motion, contrast 1.5": chunk_rule(ForegroundSettings(min_contrast=1.5)),
    "motion, border 0.2": chunk_rule(ForegroundSettings(max_border=0.2)),
    "motion, no border test": chunk_rule(ForegroundSettings(max_border=1.0)),
}


def _evidence(seq_dir: Path) -> tuple[np.ndarray, dict, np.ndarray, np.ndarray]:
    labels, record = read_sequence_output(seq_dir)
    n = int(record["n_labels"])
    size = tuple(record["model_size"])
    resize = (record.get("settings") or {}).get("resize", "antialias")
    contrast = np.full((len(labels), n), np.nan)
    border = np.full((len(labels), n), np.nan)
    for t, path in enumerate(record["flows"]):
        contrast[t], border[t] = segment_evidence(labels[t], resize_flow(read_flow(path), size, resize), n)
    return labels, record, contrast, border


def score_set(name: str, kind: str, out_dir: Path) -> list[dict]:
    rows: dict[str, list] = {}
    protocol, objects = ("davis2016", False) if kind == "davis" else ("stseg", True)
    optimax = EvalOptions(binary="optimax", protocol=protocol, objects=objects)
    foreground = replace(optimax, binary="foreground")
    for seq_dir in sorted(p for p in out_dir.iterdir() if (p / "sequence.json").is_file()):
        labels, record, contrast, border = _evidence(seq_dir)
        maps, _ = read_label_maps(seq_dir)
        masks = [None if m is None else Path(m) for m in record["masks"]]
        rows.setdefault("optimax (ground truth)", []).append(score_label_maps(maps, record, masks, optimax, where=seq_dir))
        for rule, decide in RULES.items():
            chosen = decide(labels, contrast, border, record.get("cut_size"))
            decided = {**record, "settings": {**record["settings"], "foreground": "motion"},
                       "objects": [[int(x) for x in np.flatnonzero(c)] for c in chosen]}
            rows.setdefault(rule, []).append(score_label_maps(maps, decided, masks, foreground, where=seq_dir))
        print(f"  {name}/{seq_dir.name}", file=sys.stderr, flush=True)
    out = []
    for rule, scores in rows.items():
        row = {"rule": rule, "set": name}
        if kind == "davis":
            stats = [s.davis_statistics() for s in scores]
            row.update(J=np.mean([s["J_mean"] for s in stats]), F=np.mean([s["F_mean"] for s in stats]), n=len(stats))
        else:
            row.update(J=pd.concat([s.per_frame for s in scores])["jaccard"].mean(),
                       J_objects=pd.concat([s.objects for s in scores])["J"].mean(), n=len(scores))
        out.append(row)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--davis", action="append", default=[], help="NAME=OUT_DIR of outputs with binary masks")
    parser.add_argument("--objects", action="append", default=[], help="NAME=OUT_DIR of outputs with object-id masks")
    parser.add_argument("--csv", type=Path, default=None)
    args = parser.parse_args()
    rows = []
    for kind, items in (("davis", args.davis), ("objects", args.objects)):
        for text in items:
            name, _, folder = text.partition("=")
            rows += score_set(name, kind, Path(folder))
    table = pd.DataFrame(rows)
    if args.csv is not None:
        table.to_csv(args.csv, index=False)
    values = [c for c in ("J", "F", "J_objects") if c in table]
    print(table.pivot_table(index="rule", columns="set", values=values, sort=False).round(3).to_string())


if __name__ == "__main__":
    main()
