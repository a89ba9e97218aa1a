"""onnxruntime's session options on the CPU, timed in one process against the options stseg uses.

    python scripts/ort_options.py stseg_deploy/models/mix-small.onnx --size 64 112 --batches 1 8
    python scripts/ort_options.py new.onnx --compare old=old.onnx --stseg-only --size 128 224

``--compare NAME=FILE`` adds other exports of a network (an earlier export form, say), each
run with stseg's options, as rows of the same table; ``--stseg-only`` leaves out the other
option sets, so the table compares the files alone.

Each configuration gets its own session on the same model and the same input; the rows are
interleaved over ``--rounds`` rounds, each round timing every configuration once (median of
``--repeats`` calls after two warm-ups), so a slow spell of the machine hits them all alike.
Prints ms per window and the ratio against ``stseg`` (the options of
:class:`stseg_deploy.runtime.OnnxModel`: all graph optimisations, the runtime's threads).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import onnxruntime as ort

from stseg_deploy.preprocess import WINDOW


def _configs(cores: int) -> dict[str, dict]:
    return {
        "stseg": {},
        f"intra-op threads {cores}, sequential": {"intra_op_num_threads": cores},
        "no spinning": {"config": {"session.intra_op.allow_spinning": "0"}},
        "no memory pattern": {"enable_mem_pattern": False},
        "no CPU arena": {"enable_cpu_mem_arena": False},
        "basic graph optimisations only": {"graph_optimization_level": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC},
    }


def _session(path: str, options: dict) -> ort.InferenceSession:
    settings = ort.SessionOptions()
    settings.log_severity_level = 3
    settings.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    for key, value in options.items():
        if key == "config":
            for entry, text in value.items():
                settings.add_session_config_entry(entry, text)
        else:
            setattr(settings, key, value)
    return ort.InferenceSession(path, settings, providers=["CPUExecutionProvider"])


def _time(session: ort.InferenceSession, flow: np.ndarray, repeats: int) -> float:
    for _ in range(2):
        session.run(["labels"], {"flow": flow})
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        session.run(["labels"], {"flow": flow})
        times.append(time.perf_counter() - start)
    return statistics.median(times) / len(flow) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="an exported .onnx")
    parser.add_argument("--size", nargs=2, type=int, default=[64, 112], metavar=("H", "W"))
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 8])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--compare", action="append", default=[], metavar="NAME=FILE",
                        help="another .onnx of the same signature, timed with stseg's options")
    parser.add_argument("--stseg-only", action="store_true", help="time no option set but stseg's")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    configs = _configs(cores)
    if args.stseg_only:
        configs = {"stseg": configs["stseg"]}
    sessions = {name: _session(args.model, options) for name, options in configs.items()}
    for entry in args.compare:
        name, sep, path = entry.partition("=")
        if not sep or not name or not path:
            parser.error(f"--compare takes NAME=FILE, got {entry!r}")
        if name in sessions:
            parser.error(f"--compare name {name!r} is already a row")
        if not os.path.isfile(path):
            parser.error(f"--compare {name}: no such file {path}")
        sessions[name] = _session(path, {})
    rng = np.random.default_rng(0)
    print(f"{args.model} at {args.size[0]}x{args.size[1]}, {cores} cores, ms per window (median of {args.rounds} rounds)")
    for batch in args.batches:
        flow = rng.normal(scale=3.0, size=(batch, 2, WINDOW, *args.size)).astype(np.float32)
        results: dict[str, list[float]] = {name: [] for name in sessions}
        for _ in range(args.rounds):
            for name, session in sessions.items():
                results[name].append(_time(session, flow, args.repeats))
        base = statistics.median(results["stseg"])
        for name, values in results.items():
            ms = statistics.median(values)
            print(f"batch {batch:>2}  {name:<36} {ms:8.2f} ms  {base / ms:5.2f}x")


if __name__ == "__main__":
    main()
