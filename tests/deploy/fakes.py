"""Small fakes shared by the deploy tests: a numpy model and flow sequences on disk."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from stseg_deploy.io.flowio import write_flow
from stseg_deploy.metadata import ModelInfo


class FakeModel:
    """Softmax over L of fixed random projections of the flow: deterministic, label-rich."""

    engine = "fake"
    device = "cpu"

    def __init__(self, n_labels: int = 3, size=(12, 16), resize: str = "antialias") -> None:
        self.info = ModelInfo(n_labels, 3, size, "QuadraticFullPT", "none", 2, "test", 0, resize=resize)
        self.weights = np.random.default_rng(0).normal(size=(n_labels, 2)).astype(np.float32)
        self.calls: list[int] = []
        self.inputs: list[np.ndarray] = []  # what each run() was given

    def run(self, flow: np.ndarray, features: bool = False):
        self.calls.append(flow.shape[0])
        self.inputs.append(flow.copy())
        logits = np.einsum("lc,bcthw->blthw", self.weights, flow)
        proba = np.exp(logits - logits.max(axis=1, keepdims=True))
        proba /= proba.sum(axis=1, keepdims=True)
        return (proba, flow.copy()) if features else proba

    def labels(self, flow: np.ndarray) -> np.ndarray:
        return self.run(flow).argmax(axis=1).astype(np.uint8)


def write_sequence(folder: Path, n_frames: int, size=(24, 30), seed=0) -> list[Path]:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for t in range(n_frames):
        flow = rng.normal(scale=3, size=(2, *size)).astype(np.float32)
        paths.append(folder / f"{t:05d}.flo")
        write_flow(paths[-1], flow)
    return paths


def write_frames(folder: Path, names: list[str], size=(48, 60), seed=0, suffix: str = ".png") -> list[Path]:
    """One RGB frame per name (a bright square moving over a dark textured ground), as
    ``folder/<name><suffix>``."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    h, w = size
    paths = []
    for t, name in enumerate(names):
        frame = rng.integers(0, 60, size=(h, w, 3), dtype=np.uint8)
        top, left = h // 4, (w // 4 + 2 * t) % (w // 2)
        frame[top : top + h // 2, left : left + w // 3] = (230, 200, 40)
        paths.append(folder / f"{name}{suffix}")
        Image.fromarray(frame).save(paths[-1])
    return paths
