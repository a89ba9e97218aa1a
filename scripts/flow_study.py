"""Optical-flow engines side by side: accuracy on real ground truth, speed at 480p, and flows
for measuring what each does to segmentation (J) through the project's own commands.

Engines: the package's own (``stseg_deploy.flow.recipe.METHODS``: DeepFlow and DIS averaged, DIS, dis-fine, Farnebäck) and,
when OpenCV's contrib modules are installed (``opencv-contrib-python-headless`` *instead of*
``opencv-python-headless``; never both), DeepFlow, dense RLOF, PCAFlow and Dual TV-L1.

    python scripts/flow_study.py epe                     # needs scikit-image
    python scripts/flow_study.py timing FRAMES_DIR       # a folder of 480p frames
    python scripts/flow_study.py flows DAVIS_ROOT --resolution 480p --split val \\
        --engine deepflow --scale 0.5 --out FLOWROOT      # then stseg-prepare davis --flows FLOWROOT

End-point error: scikit-image's real Middlebury-2014 stereo pair (``stereo_motorcycle``,
500x741), whose ground-truth disparity d gives the left→right flow (−d, 0) where d is finite.
An engine run at ``scale`` < 1 sees both images shrunk by area averaging; its flow is
resized back bilinearly and its vectors divided by the scale, so every row is scored on the
same full-resolution grid.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from stseg_deploy.flow.opticalflow import FlowEstimator
from stseg_deploy.flow.recipe import METHODS, flow_size_for
from stseg_deploy.io.flowio import write_flow
from stseg_deploy.io.videoio import open_frame_source

Flow = Callable[[np.ndarray, np.ndarray], np.ndarray]  # RGB uint8 frames -> (H, W, 2) float32 px

SCALES = (1.0, 0.5)


def _grey(frame: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)


def _package_engine(method: str) -> Callable[[], Flow]:
    def make() -> Flow:
        estimator = FlowEstimator(method)
        return lambda a, b: estimator(a, b).transpose(1, 2, 0)

    return make


def _contrib_engine(factory: str, colour: bool = False) -> Callable[[], Flow]:
    def make() -> Flow:
        solver = getattr(cv2.optflow, factory)()
        if colour:  # dense RLOF works on BGR frames
            return lambda a, b: solver.calc(cv2.cvtColor(a, cv2.COLOR_RGB2BGR), cv2.cvtColor(b, cv2.COLOR_RGB2BGR), None)
        return lambda a, b: solver.calc(_grey(a), _grey(b), None)

    return make


def _dis_refined(preset: int, finest_scale: int, iterations: int) -> Callable[[], Flow]:
    """DIS with more of its variational refinement (DeepFlow's energy) than its presets run."""

    def make() -> Flow:
        solver = cv2.DISOpticalFlow_create(preset)
        solver.setFinestScale(finest_scale)
        solver.setVariationalRefinementIterations(iterations)
        return lambda a, b: solver.calc(_grey(a), _grey(b), None)

    return make


def engines() -> dict[str, Callable[[], Flow]]:
    """Every engine this OpenCV build offers, name → factory of a flow function."""
    found = {name: _package_engine(name) for name in METHODS}
    # Issue 29's cheaper recipes: DIS's fast preset, refined for 20 iterations at the finest
    # scale (vr20) or the one above it (vr20-coarse).
    found["dis-vr20"] = _dis_refined(cv2.DISOPTICAL_FLOW_PRESET_FAST, 0, 20)
    found["dis-vr20-coarse"] = _dis_refined(cv2.DISOPTICAL_FLOW_PRESET_FAST, 1, 20)
    if hasattr(cv2, "optflow"):
        found.update({
            "deepflow": _contrib_engine("createOptFlow_DeepFlow"),
            "rlof": _contrib_engine("createOptFlow_DenseRLOF", colour=True),
            "pcaflow": _contrib_engine("createOptFlow_PCAFlow"),
            "tvl1": _contrib_engine("DualTVL1OpticalFlow_create"),
        })
    return found


def at_scale(flow: Flow, scale: float) -> Flow:
    """``flow`` run on frames shrunk by ``scale``; returns flow on the shrunk grid, in its pixels."""
    if scale == 1.0:
        return flow

    def scaled(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        # The package's own rule for the flow grid, so each row is what --flow-scale computes.
        height, width = flow_size_for(a.shape[:2], scale=scale)
        shrink = [cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA) for f in (a, b)]
        return flow(*shrink)

    return scaled


def to_full_grid(flow: np.ndarray, height: int, width: int) -> np.ndarray:
    """(h, w, 2) flow in its own pixels → (height, width, 2) in full-grid pixels."""
    h, w = flow.shape[:2]
    if (h, w) == (height, width):
        return flow
    up = cv2.resize(flow, (width, height), interpolation=cv2.INTER_LINEAR)
    return up * np.array([width / w, height / h], dtype=np.float32)


def _chosen(names: list[str] | None) -> dict[str, Callable[[], Flow]]:
    available = engines()
    if not names:
        return available
    missing = [n for n in names if n not in available]
    if missing:
        hint = "" if hasattr(cv2, "optflow") else " (contrib engines need opencv-contrib-python-headless instead of opencv-python-headless)"
        sys.exit(f"unknown or unavailable engine(s) {missing}; this OpenCV offers {sorted(available)}{hint}")
    return {n: available[n] for n in names}


def cmd_epe(args: argparse.Namespace) -> None:
    from skimage.data import stereo_motorcycle

    left, right, disparity = stereo_motorcycle()
    valid = np.isfinite(disparity)
    height, width = disparity.shape
    print(f"Middlebury-2014 motorcycle, {width}x{height}, {valid.mean() * 100:.1f}% pixels with ground truth")
    print("engine      scale  EPE px  >3 px %")
    for name, make in _chosen(args.engine).items():
        for scale in args.scales:
            flow = to_full_grid(at_scale(make(), scale)(left, right), height, width)
            error = np.hypot(flow[..., 0] + disparity, flow[..., 1])[valid]
            print(f"{name:10s}  {scale:5.2f}  {error.mean():6.2f}  {(error > 3).mean() * 100:7.1f}", flush=True)


def cmd_timing(args: argparse.Namespace) -> None:
    frames = [frame for _, frame in zip(range(args.frames + 1), (f for _, f in open_frame_source(args.frames_dir)))]
    height, width = frames[0].shape[:2]
    cv2.setNumThreads(args.threads)
    print(f"{len(frames) - 1} flows of {args.frames_dir} at {width}x{height}, OpenCV threads {args.threads}")
    print("engine      scale  ms/frame")
    for name, make in _chosen(args.engine).items():
        for scale in args.scales:
            flow = at_scale(make(), scale)
            flow(frames[0], frames[1])  # first call allocates pyramids
            start = time.perf_counter()
            count = 0
            for a, b in zip(frames[:-1], frames[1:]):
                flow(a, b)
                count += 1
                if time.perf_counter() - start > args.max_seconds:
                    break
            print(f"{name:10s}  {scale:5.2f}  {(time.perf_counter() - start) / count * 1000:8.1f}", flush=True)


def cmd_flows(args: argparse.Namespace) -> None:
    from stseg_deploy.datasets.davis import read_davis

    (name,) = args.engine
    make = _chosen([name])[name]
    cv2.setNumThreads(args.threads)
    splits = read_davis(Path(args.root), args.resolution)
    if args.split not in splits:
        sys.exit(f"{args.root}: no ImageSets/{args.resolution}/{args.split}.txt (found {sorted(splits)})")
    for sequence in splits[args.split]:
        flow = at_scale(make(), args.scale)
        folder = Path(args.out) / sequence.name
        folder.mkdir(parents=True, exist_ok=True)
        frames = [frame for _, frame in open_frame_source(sequence.folder)]
        for t, (a, b) in enumerate(zip(frames[:-1], frames[1:])):
            write_flow(folder / f"{t:05d}.flo", np.ascontiguousarray(flow(a, b).transpose(2, 0, 1), dtype=np.float32))
        print(f"{sequence.name}: {len(frames) - 1} flows", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for command in ("epe", "timing", "flows"):
        p = sub.add_parser(command)
        p.add_argument("--engine", action="append", help="engine name (repeatable); default: all available")
        if command != "flows":
            p.add_argument("--scales", type=float, nargs="+", default=list(SCALES))
    timing = sub.choices["timing"]
    timing.add_argument("frames_dir")
    timing.add_argument("--frames", type=int, default=20, help="flows timed per engine at most")
    timing.add_argument("--max-seconds", type=float, default=20.0, help="stop timing an engine after this long")
    timing.add_argument("--threads", type=int, default=2)
    flows = sub.choices["flows"]
    flows.add_argument("root", help="a DAVIS root in its own layout")
    flows.add_argument("--resolution", default="480p")
    flows.add_argument("--split", default="val")
    flows.add_argument("--scale", type=float, default=1.0)
    flows.add_argument("--out", required=True)
    flows.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if args.command == "flows" and (not args.engine or len(args.engine) != 1):
        parser.error("flows takes exactly one --engine")
    {"epe": cmd_epe, "timing": cmd_timing, "flows": cmd_flows}[args.command](args)


if __name__ == "__main__":
    main()
