"""Optical flow from RGB frames with OpenCV: DeepFlow, DIS (two settings), Farnebäck, or the
mean of DeepFlow's and DIS's (``deepflow-dis``), and whole videos to ``.flo``.

DeepFlow lives in OpenCV's contrib modules (``cv2.optflow``), which is why stseg depends on
``opencv-contrib-python-headless``, not ``opencv-python-headless``: the two wheels install the
same ``cv2`` package, so only one of them may be installed (:func:`opencv_distributions`).

Flow is forward, from ``prev`` to ``next``: a pixel at (x, y) in ``prev`` is found at
(x + u, y + v) in ``next``. Returned as ``(2, H, W)`` float32 in pixels, channel 0 = u
(horizontal, + right), 1 = v (vertical, + down), the ``.flo`` order used everywhere in stseg.

Both methods work on greyscale; colour is converted once per frame (:meth:`FlowEstimator.prepare`)
so that a video costs one conversion and one resize per frame, not two.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..errors import StsegInputError
from ..io.flowfiles import FLOW_MARKER, FLOW_TOOL
from ..io.flowio import write_flow
from ..io.outdir import OutputUnit, check_inputs_outside
from ..io.videoio import FrameSource, ImageListSource, frame_name, open_frame_source
from .recipe import DEFAULT_METHOD, check_flow_size, check_method

__all__ = [
    "DIS_PRESETS",
    "FARNEBACK_DEFAULTS",
    "check_opencv",
    "opencv_distributions",
    "FlowEstimator",
    "compute_flow",
    "flow_from_video",
    "iter_flows",
]

log = logging.getLogger(__name__)

#: pip distributions that each install ``cv2``; more than one means one overwrote the other.
OPENCV_DISTRIBUTIONS = ("opencv-python", "opencv-python-headless", "opencv-contrib-python", "opencv-contrib-python-headless")
CONTRIB_FIX = (
    "pip uninstall -y opencv-python opencv-python-headless opencv-contrib-python opencv-contrib-python-headless "
    "&& pip install opencv-contrib-python-headless"
)
#: DIS patches searched down to the full-resolution level (OpenCV's presets stop one level
#: above it, at half resolution). On the real Middlebury motorcycle pair this lowers the mean
#: end-point error from 2.63 to 2.24 px at 480p for 4.5x the time (scripts/flow_study.py).
DIS_FINE_FINEST_SCALE = 0
DIS_PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}
FARNEBACK_DEFAULTS: dict[str, Any] = {
    # Halving pyramid with 5 levels: displacements up to ~2^5 x the window's reach, enough
    # for the tens of pixels per frame of hand-held video at 480p.
    "pyr_scale": 0.5,
    "levels": 5,
    # 15 px window: OpenCV's own sample value; smaller is noisier, larger blurs motion edges.
    "winsize": 15,
    "iterations": 3,
    # poly_n 5 with poly_sigma 1.1 is the pairing OpenCV's documentation recommends.
    "poly_n": 5,
    "poly_sigma": 1.1,
    # Gaussian window rather than box: slower but noticeably more accurate.
    "flags": cv2.OPTFLOW_FARNEBACK_GAUSSIAN,
}


def opencv_distributions() -> list[str]:
    """The installed pip distributions that provide ``cv2`` (see :data:`OPENCV_DISTRIBUTIONS`)."""
    from importlib import metadata

    found = []
    for name in OPENCV_DISTRIBUTIONS:
        try:
            metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        found.append(name)
    return found


def check_opencv(distributions: list[str] | None = None, has_contrib: bool | None = None) -> None:
    """Raise StsegInputError when ``cv2`` lacks the contrib modules DeepFlow needs, or when
    several OpenCV wheels are installed over each other; the message says how to fix it.

    Args:
        distributions: installed OpenCV distributions (default: :func:`opencv_distributions`).
        has_contrib: whether ``cv2.optflow`` exists (default: looked up).
    """
    distributions = opencv_distributions() if distributions is None else distributions
    has_contrib = hasattr(cv2, "optflow") if has_contrib is None else has_contrib
    if len(distributions) > 1:
        raise StsegInputError(
            f"several OpenCV wheels are installed ({', '.join(distributions)}); they install the same cv2 "
            f"package over each other, so which one you get is an accident. Keep one: {CONTRIB_FIX}"
        )
    if not has_contrib:
        which = distributions[0] if distributions else "an OpenCV build"
        raise StsegInputError(
            f"DeepFlow needs OpenCV's contrib modules (cv2.optflow), which {which} lacks; "
            f"install opencv-contrib-python-headless instead: {CONTRIB_FIX}; "
            f"or choose another engine (--flow-method dis-fine needs no contrib)"
        )












def _dis_fine() -> cv2.DISOpticalFlow:
    solver = cv2.DISOpticalFlow_create(DIS_PRESETS["medium"])
    solver.setFinestScale(DIS_FINE_FINEST_SCALE)
    return solver


class FlowEstimator:
    """Forward optical flow between RGB frames, with the OpenCV solver created once.

    Args:
        method: ``"deepflow"`` (Weinzaepfel et al. 2013, OpenCV contrib), ``"dis"`` (Dense Inverse Search,
            Kroeger et al. 2016, OpenCV's medium preset), ``"dis-fine"``
            (DIS's medium preset with patches matched at full resolution, finest scale 0,
            instead of half), ``"farneback"``, or ``"deepflow-dis"`` (the mean of
            ``deepflow``'s and ``dis-fine``'s flows between the same frames: the two engines
            err in different places, DeepFlow smoothing across motion boundaries, DIS on
            weak texture, and their mean segments better than either; stseg's default, run at
            ``scale="auto"`` by the commands; docs/inference.md).
        size: ``(H, W)`` to resize frames to before computing flow, or None to keep their
            size. With a size, flow is in pixels of the resized grid (not rescaled back).
        **opts: for DIS, ``preset`` = ``"ultrafast" | "fast" | "medium"`` (default
            ``"medium"``); for Farnebäck, any key of :data:`FARNEBACK_DEFAULTS`.

    Calling an instance, ``estimator(prev, next)``, returns ``(2, H, W)`` float32 pixels.
    Not thread-safe (the OpenCV solver keeps state); use one instance per thread.
    """

    def __init__(self, method: str = DEFAULT_METHOD, size: tuple[int, int] | None = None, **opts: Any) -> None:
        self.method = check_method(method)
        self.size = check_flow_size(size)
        self._second = None
        if self.method in ("deepflow", "deepflow-dis"):
            if opts:
                raise ValueError(f"unknown {self.method} options {sorted(opts)}; {self.method} takes none")
            check_opencv()
            self.options = {}
            self._solver = cv2.optflow.createOptFlow_DeepFlow()
            if self.method == "deepflow-dis":
                self.options = {"dis_preset": "medium", "dis_finest_scale": DIS_FINE_FINEST_SCALE}
                self._second = _dis_fine()
        elif self.method == "dis-fine":
            if opts:
                raise ValueError(f"unknown dis-fine options {sorted(opts)}; dis-fine takes none")
            self.options = {"preset": "medium", "finest_scale": DIS_FINE_FINEST_SCALE}
            self._solver = _dis_fine()
        elif self.method == "dis":
            unknown = set(opts) - {"preset"}
            if unknown:
                raise ValueError(f"unknown DIS options {sorted(unknown)}; DIS accepts only 'preset'")
            preset = str(opts.get("preset", "medium")).lower()
            if preset not in DIS_PRESETS:
                raise ValueError(f"unknown DIS preset {opts['preset']!r}; expected one of {tuple(DIS_PRESETS)}")
            self.options: dict[str, Any] = {"preset": preset}
            self._solver = cv2.DISOpticalFlow_create(DIS_PRESETS[preset])
        else:
            unknown = set(opts) - set(FARNEBACK_DEFAULTS)
            if unknown:
                raise ValueError(
                    f"unknown Farneback options {sorted(unknown)}; expected keys of {sorted(FARNEBACK_DEFAULTS)}"
                )
            self.options = {**FARNEBACK_DEFAULTS, **opts}

    def __repr__(self) -> str:
        return f"FlowEstimator(method={self.method!r}, size={self.size}, options={self.options})"

    def prepare(self, frame: np.ndarray) -> np.ndarray:
        """Frame ``(H, W, 3) uint8 RGB`` (or ``(H, W)`` uint8 grey) → ``(h, w)`` uint8 grey at ``size``."""
        frame = np.asarray(frame)
        if frame.dtype != np.uint8 or not (frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] == 3)):
            raise ValueError(f"frames must be (H, W, 3) uint8 RGB or (H, W) uint8, got {frame.shape} {frame.dtype}")
        grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) if frame.ndim == 3 else np.ascontiguousarray(frame)
        if self.size is not None and grey.shape != self.size:
            height, width = self.size
            # Area averaging when shrinking avoids aliasing that DIS would track as motion.
            shrink = height * width < grey.shape[0] * grey.shape[1]
            grey = cv2.resize(grey, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        return grey

    def flow_prepared(self, prev: np.ndarray, next: np.ndarray) -> np.ndarray:
        """Flow between two :meth:`prepare` d frames. Returns (2, h, w) float32 pixels."""
        if prev.shape != next.shape:
            raise ValueError(f"frames differ in size: {prev.shape} and {next.shape}")
        if self._second is not None:
            flow = 0.5 * (self._solver.calc(prev, next, None) + self._second.calc(prev, next, None))
        elif self.method in ("deepflow", "dis", "dis-fine"):
            flow = self._solver.calc(prev, next, None)
        else:
            flow = cv2.calcOpticalFlowFarneback(prev, next, None, **self.options)
        return np.ascontiguousarray(flow.transpose(2, 0, 1), dtype=np.float32)

    def __call__(self, prev: np.ndarray, next: np.ndarray) -> np.ndarray:
        """Forward flow ``prev`` → ``next``, frames ``(H, W, 3) uint8 RGB``. Returns (2, h, w) float32 px."""
        return self.flow_prepared(self.prepare(prev), self.prepare(next))


def compute_flow(
    prev: np.ndarray, next: np.ndarray, method: str = DEFAULT_METHOD, size: tuple[int, int] | None = None, **opts: Any
) -> np.ndarray:
    """Forward optical flow between two frames, one-off (see :class:`FlowEstimator` for the options).

    Args:
        prev, next: ``(H, W, 3) uint8 RGB`` frames of one size.

    Returns:
        flow: ``(2, H, W)`` float32 pixels (``(2, *size)`` when ``size`` is given), u then v.

    Builds a new solver per call; for a sequence, keep a :class:`FlowEstimator`.
    """
    return FlowEstimator(method, size, **opts)(prev, next)


def _check_step(step: int) -> int:
    if isinstance(step, bool) or int(step) != step or step < 1:
        raise ValueError(f"step must be a positive integer, got {step!r}")
    return int(step)


def iter_flows(
    source: str | Path | FrameSource,
    method: str = DEFAULT_METHOD,
    size: tuple[int, int] | None = None,
    step: int = 1,
    on_frame: Callable[[int], None] | None = None,
    with_images: bool = False,
    **opts: Any,
) -> Iterator[tuple[int, np.ndarray]] | Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Stream forward flows of a video: yield ``(t, flow)`` for frame t → frame t + ``step``.

    Only frames with a partner ``step`` later get a flow, so an F-frame video yields F − step
    flows, t = 0 … F − step − 1. At most ``step + 1`` (greyscale, resized) frames are held.

    Args:
        source: a video file, a folder of images (see :func:`open_frame_source`), or an open source.
        method, size, **opts: as for :class:`FlowEstimator`.
        step: frame distance, >= 1.
        on_frame: called with each decoded frame's index (for a progress bar of ``len(source)``).
        with_images: also yield frame t as decoded, (H, W, 3) uint8 RGB.

    Yields:
        ``(t, flow)``, flow ``(2, H, W)`` float32 pixels (``(2, *size)`` with a size); with
        ``with_images``, ``(t, flow, frame)``.

    Raises:
        StsegInputError: the source has no more than ``step`` frames (no flow to compute),
            or any error of :func:`open_frame_source`.
    """
    step = _check_step(step)
    estimator = FlowEstimator(method, size, **opts)
    frames = source if isinstance(source, FrameSource) else open_frame_source(source)
    window: deque[np.ndarray] = deque(maxlen=step + 1)
    originals: deque[np.ndarray] = deque(maxlen=step + 1)
    count = 0
    for index, frame in frames:
        window.append(estimator.prepare(frame))
        if with_images:
            originals.append(frame)
        count = index + 1
        if len(window) == step + 1:
            flow = estimator.flow_prepared(window[0], window[-1])
            yield (index - step, flow, originals[0]) if with_images else (index - step, flow)
        if on_frame is not None:
            on_frame(index)
    if count <= step:
        raise StsegInputError(
            f"{frames.path}: only {count} frame(s); flow with step {step} needs at least {step + 1}"
        )


def flow_from_video(
    source: str | Path | FrameSource,
    out_dir: str | Path,
    method: str = DEFAULT_METHOD,
    size: tuple[int, int] | None = None,
    step: int = 1,
    on_frame: Callable[[int], None] | None = None,
    **opts: Any,
) -> list[Path]:
    """Compute a video's forward flows and write them as ``out_dir/<frame name>.flo``.

    The flow for frame t (frame t → t + ``step``) is written to ``frame_name(t) + ".flo"``
    (``00000.flo``, ``00001.flo``, …), so an F-frame video gives F − step files. Frames are
    streamed (see :func:`iter_flows`).

    ``out_dir`` is one output unit (:mod:`stseg_deploy.io.outdir`): written whole beside any
    earlier stseg-flow output and swapped in when complete, with ``stseg-flow.json`` (the
    source, method, size, step and file list) as its marker; a folder holding other files,
    or the source itself, is refused, so two videos' flows never mix.

    Returns:
        the written paths, in frame order.
    """
    out_dir = Path(out_dir)
    frames = source if isinstance(source, FrameSource) else open_frame_source(source)
    check_inputs_outside([out_dir], [frames.path])
    names: list[str] = []
    with OutputUnit(out_dir, FLOW_TOOL, FLOW_MARKER) as unit:
        for t, flow in iter_flows(frames, method, size, step, on_frame, **opts):
            names.append(f"{frame_name(t)}.flo")
            write_flow(unit.tmp / names[-1], flow)
        record = {"source": str(frames.path), "method": method, "size": None if size is None else list(size),
                  "step": step, "flows": names, "options": opts}
        if isinstance(frames, ImageListSource):  # which files, in which order: a listing may differ from the folder
            record["frames"] = [f.name for f in frames.files]
        unit.commit(record)
    log.info("wrote %d flow files (%s, step %d) to %s", len(names), method, step, out_dir)
    return [out_dir / name for name in names]
