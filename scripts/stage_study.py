"""Choose stseg-infer's settings on every test set at once: each variant (a set of
stseg-infer options) is run with the project's own commands on each test set and scored with
stseg-eval, and the table shows what every set gains or loses against the first variant.

    python scripts/stage_study.py --out runs/study \
        --davis dev480=dev480/DAVIS2016=dev480@val --davis train240=t240/DAVIS2016=t240@train \
        --objects proxy=mo_eval/DataSplit/Synth=mo_eval@val --clips rendered=clips \
        --variant defaults= --variant "no-refine=--refine none" \
        --variant "r32=--guided-radius 32 --guided-eps 0.01"

Test sets:

- ``--davis NAME=PREFIX=BASE_DIR[@SPLIT]``: a DataSplit with binary masks, scored with
  ``--protocol davis2016`` (J and F; the first and last frames left out);
- ``--objects NAME=PREFIX=BASE_DIR[@SPLIT]``: a DataSplit with object-id masks (stseg-synth),
  scored with ``--objects`` (binary J and J_objects);
- ``--clips NAME=DIR``: rendered videos ``DIR/*.mp4`` with per-object ground truth in
  ``DIR/objects/<clip>/`` (``scripts/render_clips.py`` makes them), scored like ``--objects``.

A variant is ``NAME=OPTIONS``: stseg-infer options as one shell-quoted string (empty: the
defaults). ``--model`` applies to every variant. Each (variant, set) output is kept under
``OUT/<variant>/<set>/`` and skipped when its eval.json is there, so a study can be extended
or resumed. ``OUT/study.csv`` holds one row per variant and set; the Markdown table on stdout
adds the pooled DAVIS mean over every sequence of the ``--davis`` sets ("davis all") and each
score's change against the first variant.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from stseg_deploy.io.atomic import atomic_write


@dataclass(frozen=True)
class TestSet:
    name: str
    kind: str  # davis | objects | clips
    where: tuple[str, ...]  # stseg-infer's input arguments
    eval_args: tuple[str, ...]


def _bin(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


def _named(text: str) -> tuple[str, str]:
    name, sep, rest = text.partition("=")
    if not sep or not name or "/" in name:
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=...")
    return name, rest


def _datasplit_set(kind: str, eval_args: tuple[str, ...]):
    def parse(text: str) -> TestSet:
        name, rest = _named(text)
        rest, _, split = rest.rpartition("@") if "@" in rest else (rest, "", "val")
        prefix, sep, base = rest.partition("=")
        if not sep:
            raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=PREFIX=BASE_DIR[@SPLIT]")
        if not Path(f"{prefix}_{split}.csv").is_file():
            raise argparse.ArgumentTypeError(f"{text!r}: {prefix}_{split}.csv is not a file")
        return TestSet(name, kind, ("--data-file", prefix, "--split", split, "--base-dir", base), eval_args)

    return parse


def _clips_set(text: str) -> TestSet:
    name, folder = _named(text)
    clips = sorted(Path(folder).glob("*.mp4"))
    if not clips:
        raise argparse.ArgumentTypeError(f"{text!r}: no .mp4 in {folder}")
    gt = Path(folder) / "objects"
    missing = [c.stem for c in clips if not (gt / c.stem).is_dir()]
    if missing:
        raise argparse.ArgumentTypeError(f"{text!r}: no ground truth {gt}/<clip>/ for {', '.join(missing)}")
    return TestSet(name, "clips", tuple(str(c) for c in clips), ("--gt-dir", str(gt), "--objects"))


def _variant(text: str) -> tuple[str, list[str]]:
    name, options = _named(text)
    return name, shlex.split(options)


def run_one(test: TestSet, options: list[str], model: list[str], out: Path) -> dict:
    """Infer and score one test set with one variant; the scores from ``out/eval.json``."""
    eval_file = out / "eval.json"
    if not eval_file.is_file():
        started = time.perf_counter()
        subprocess.run([_bin("stseg-infer"), *model, *test.where, "--out", str(out), "--skip-done", *options],
                       check=True, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        where = test.where if test.kind != "clips" else ()
        subprocess.run([_bin("stseg-eval"), str(out), *where, *test.eval_args], check=True, capture_output=True, text=True)
        with atomic_write(out / "study_seconds.json", "w") as handle:
            json.dump({"infer_s": seconds}, handle)
    scores = json.loads(eval_file.read_text())
    row: dict = {"set": test.name, "kind": test.kind}
    if test.kind == "davis":
        row.update(J=scores["davis2016"]["J_mean"], F=scores["davis2016"]["F_mean"],
                   sequences=json.dumps(_per_sequence(out / "summary.csv")))
    else:
        row.update(J=scores["overall_j"], J_objects=scores["objects"]["J_mean"])
    seconds = out / "study_seconds.json"
    row["infer_s"] = round(json.loads(seconds.read_text())["infer_s"], 1) if seconds.is_file() else None
    return row


def _per_sequence(summary: Path) -> dict[str, dict[str, float]]:
    """Each scored sequence's DAVIS J and F, from stseg-eval's summary.csv."""
    table = pd.read_csv(summary)
    table = table[(table["status"] == "scored") & (table["sequence"] != "overall")]
    return {str(r.sequence): {"J": float(r.J_mean), "F": float(r.F_mean)} for r in table.itertuples()}


def pooled(rows: pd.DataFrame) -> dict[str, float]:
    """Mean J and F over every sequence of the variant's DAVIS sets."""
    per = [s for text in rows["sequences"] for s in json.loads(text).values()]
    return {"J": sum(s["J"] for s in per) / len(per), "F": sum(s["F"] for s in per) / len(per), "n": len(per)}


def markdown(table: pd.DataFrame, variants: list[str]) -> str:
    sets = list(dict.fromkeys(table["set"]))
    davis = [s for s in sets if (table.loc[table["set"] == s, "kind"] == "davis").all()]
    columns, values = [], {}
    for variant in variants:
        mine = table[table["variant"] == variant]
        cells = []
        for name in sets:
            row = mine[mine["set"] == name].iloc[0]
            if row["kind"] == "davis":
                cells += [row["J"], row["F"]]
            else:
                cells += [row["J"], row["J_objects"]]
        if len(davis) > 1:
            both = pooled(mine[mine["set"].isin(davis)])
            cells += [both["J"], both["F"]]
        values[variant] = cells
    for name in sets:
        kind = table.loc[table["set"] == name, "kind"].iloc[0]
        columns += [f"{name} J", f"{name} F"] if kind == "davis" else [f"{name} J", f"{name} J_obj"]
    if len(davis) > 1:
        columns += ["davis all J", "davis all F"]
    base = values[variants[0]]
    lines = ["| variant | " + " | ".join(columns) + " |", "| --- |" + " --- |" * len(columns)]
    for variant in variants:
        cells = [f"{v:.3f}" if variant == variants[0] else f"{v:.3f} ({v - b:+.3f})" for v, b in zip(values[variant], base)]
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--model", default=None, help="model file or bundled name [default: the bundled default]")
    parser.add_argument("--davis", type=_datasplit_set("davis", ("--protocol", "davis2016")), action="append", default=[])
    parser.add_argument("--objects", type=_datasplit_set("objects", ("--objects",)), action="append", default=[])
    parser.add_argument("--clips", type=_clips_set, action="append", default=[])
    parser.add_argument("--variant", type=_variant, action="append", required=True, help="NAME=OPTIONS (repeat; the first is the baseline)")
    args = parser.parse_args()
    tests = [*args.davis, *args.objects, *args.clips]
    if not tests:
        parser.error("give at least one --davis, --objects or --clips")
    names = [name for name, _ in args.variant]
    if len(set(names)) != len(names) or len({t.name for t in tests}) != len(tests):
        parser.error("variant names and set names must be unique")
    model = ["--model", args.model] if args.model else []
    rows = []
    for name, options in args.variant:
        for test in tests:
            row = {"variant": name, "options": shlex.join(options), **run_one(test, options, model, args.out / name / test.name)}
            rows.append(row)
            score = f"J={row['J']:.3f} " + (f"F={row['F']:.3f}" if test.kind == "davis" else f"J_objects={row['J_objects']:.3f}")
            print(f"{name} / {test.name}: {score}", file=sys.stderr, flush=True)
        table = pd.DataFrame(rows)
        with atomic_write(args.out / "study.csv", "w") as handle:
            table.to_csv(handle, index=False)
    print(markdown(pd.DataFrame(rows), names))


if __name__ == "__main__":
    main()
