"""The motion split alone, on the inputs it gets in a real run, timed across source trees.

    python scripts/split_replay.py capture --out split-dev.pkl -- \
        --data-file prep/DAVIS2016 --split val --base-dir prep --out pred
    python scripts/split_replay.py time split-dev.pkl --tree . --tree ../stseg-before --rounds 3

``capture`` runs stseg-infer (the arguments after ``--``, one worker process) and keeps what
every sequence's :class:`~stseg_deploy.stages.motionsplit.MotionSplitter` was given (its
settings, first prior, and each batch's probabilities and flows) and what it returned. Several
hundred MB for the 6 development sequences at 480p.

``time`` replays the captures with the split of each ``--tree`` (a source checkout: its
``stseg_deploy`` and ``kernels/stseg_kernels`` are imported in a child process), one child per
tree and round, rounds interleaved so that a slow spell of the machine hits every tree alike.
Each child warms up on one sequence (compiles its kernels), then times the whole replay. Prints
the fastest round's seconds per capture, the ratio against the first tree, and the batches whose
output differs from the captured one (0: the labels are those of the capturing tree).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path


def _capture(out: Path, infer_args: list[str]) -> None:
    from stseg_deploy.cli.infer import infer_main
    from stseg_deploy.stages import motionsplit

    sequences: list[dict] = []
    init, call = motionsplit.MotionSplitter.__init__, motionsplit.MotionSplitter.__call__

    def recording_init(self, settings, move_prior=True, prior=None):
        init(self, settings, move_prior, prior)
        self._record = {"settings": settings, "move_prior": move_prior, "prior": prior, "calls": []}
        sequences.append(self._record)

    def recording_call(self, proba, flows):
        result = call(self, proba, flows)
        self._record["calls"].append((proba.copy(), flows.copy(), result.copy()))
        return result

    motionsplit.MotionSplitter.__init__ = recording_init
    motionsplit.MotionSplitter.__call__ = recording_call
    # One process, so the splitters are this one's.
    sys.argv = ["stseg-infer", *infer_args, "--workers", "1"]
    try:
        infer_main()
    except SystemExit as stop:
        if stop.code:
            raise
    if not sequences:
        raise SystemExit("no motion split ran: is --motion-split none among the arguments?")
    partial = out.with_name(out.name + ".partial")
    with partial.open("wb") as f:
        pickle.dump(sequences, f, protocol=pickle.HIGHEST_PROTOCOL)
    partial.replace(out)
    batches = sum(len(s["calls"]) for s in sequences)
    print(f"{out}: {len(sequences)} sequences, {batches} batches")


def _replay(paths: list[str]) -> None:
    """In the child: replay each capture with this interpreter's split; one JSON line out."""
    import numpy as np

    from stseg_deploy.stages import motionsplit

    def run(sequences: list[dict]) -> tuple[float, int]:
        start, differ = time.perf_counter(), 0
        for seq in sequences:
            splitter = motionsplit.MotionSplitter(seq["settings"], move_prior=seq["move_prior"], prior=seq["prior"])
            for proba, flows, expected in seq["calls"]:
                if not np.array_equal(splitter(proba, flows), expected):
                    differ += 1
        return time.perf_counter() - start, differ

    captures = {}
    for path in paths:
        with open(path, "rb") as f:
            captures[path] = pickle.load(f)
    run(captures[paths[0]][:1])
    print(json.dumps({path: run(sequences) for path, sequences in captures.items()}))


def _time(paths: list[str], trees: list[Path], rounds: int) -> None:
    best: dict[tuple[Path, str], float] = {}
    differ: dict[tuple[Path, str], int] = {}
    for _ in range(rounds):
        for tree in trees:
            env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tree), str(tree / "kernels")])}
            done = subprocess.run([sys.executable, __file__, "_replay", *paths], env=env, capture_output=True, text=True)
            if done.returncode:
                raise SystemExit(f"the replay with {tree} failed:\n{done.stderr}")
            for path, (seconds, count) in json.loads(done.stdout.strip().splitlines()[-1]).items():
                best[tree, path] = min(seconds, best.get((tree, path), float("inf")))
                differ[tree, path] = count
    print("| capture | tree | seconds | × first tree | batches that differ |")
    print("| --- | --- | --- | --- | --- |")
    for path in paths:
        for tree in trees:
            ratio = best[tree, path] / best[trees[0], path]
            print(f"| {path} | {tree} | {best[tree, path]:.2f} | {ratio:.2f} | {differ[tree, path]} |")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    capture = commands.add_parser("capture", help="run stseg-infer and keep the split's inputs and outputs")
    capture.add_argument("--out", type=Path, required=True, help="the capture file to write")
    capture.add_argument("infer_args", nargs=argparse.REMAINDER, help="stseg-infer's arguments, after --")
    timing = commands.add_parser("time", help="replay captures with the split of each source tree")
    timing.add_argument("captures", nargs="+")
    timing.add_argument("--tree", type=Path, action="append", required=True, help="a source checkout (repeat)")
    timing.add_argument("--rounds", type=int, default=3, help="replays per tree, interleaved")
    replay = commands.add_parser("_replay")
    replay.add_argument("captures", nargs="+")
    args = parser.parse_args(argv)
    if args.command == "capture":
        _capture(args.out, [a for a in args.infer_args if a != "--"])
    elif args.command == "time":
        missing = [str(t) for t in args.tree if not (t / "stseg_deploy" / "stages" / "motionsplit.py").is_file()]
        if missing:
            parser.error(f"not a source tree with stseg_deploy/stages/motionsplit.py: {', '.join(missing)}")
        _time(args.captures, [t.resolve() for t in args.tree], args.rounds)
    else:
        _replay(args.captures)


if __name__ == "__main__":
    main()
