"""scripts/gpu_pack.py: the DAVIS frames packed small for a GPU training call."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "gpu_pack.py"


def _davis(root: Path) -> None:
    rng = np.random.default_rng(0)
    lines = []
    for seq in ("a", "b"):
        for k in range(2):
            frame = root / "JPEGImages" / "240p" / seq / f"{k:05d}.jpg"
            frame.parent.mkdir(parents=True, exist_ok=True)
            image = cv2.resize(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8), (64, 48), interpolation=cv2.INTER_CUBIC)
            cv2.imwrite(str(frame), image, [cv2.IMWRITE_JPEG_QUALITY, 95])
            lines.append(f"/JPEGImages/240p/{seq}/{k:05d}.jpg /Annotations/240p/{seq}/{k:05d}.png\n")
    (root / "ImageSets" / "240p").mkdir(parents=True)
    (root / "ImageSets" / "240p" / "train.txt").write_text("".join(lines))


def _pack(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=cwd, capture_output=True, text=True)


def test_frames_are_reencoded_in_the_davis_layout_without_masks(tmp_path: Path) -> None:
    _davis(tmp_path / "davis")
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    done = _pack(str(tmp_path / "davis"), "--out", ".gpu_data/d", "--quality", "40", cwd=tmp_path / "repo")
    assert done.returncode == 0, done.stderr
    out = tmp_path / "repo" / ".gpu_data" / "d"
    assert (out / "ImageSets" / "240p" / "train.txt").read_text().split() == [
        f"/JPEGImages/240p/{s}/{k:05d}.jpg" for s in ("a", "b") for k in range(2)
    ]
    for seq in ("a", "b"):
        for k in range(2):
            packed = out / "JPEGImages" / "240p" / seq / f"{k:05d}.jpg"
            original = tmp_path / "davis" / "JPEGImages" / "240p" / seq / f"{k:05d}.jpg"
            assert packed.stat().st_size < original.stat().st_size
            difference = np.abs(cv2.imread(str(packed)).astype(int) - cv2.imread(str(original)).astype(int)).mean()
            assert difference < 8  # the same picture, re-encoded
    assert "/.gpu_data/" in (tmp_path / "repo" / ".git" / "info" / "exclude").read_text().split()
    again = _pack(str(tmp_path / "davis"), "--out", ".gpu_data/d", cwd=tmp_path / "repo")
    assert again.returncode == 0 and (tmp_path / "repo" / ".git" / "info" / "exclude").read_text().count("/.gpu_data/") == 1


def test_missing_frames_and_too_much_are_refused_by_name(tmp_path: Path) -> None:
    _davis(tmp_path / "davis")
    (tmp_path / "davis" / "JPEGImages" / "240p" / "b" / "00001.jpg").unlink()
    missing = _pack(str(tmp_path / "davis"), "--out", "o", cwd=tmp_path)
    assert missing.returncode == 1 and "b/00001.jpg: missing or not an image" in missing.stderr
    nothing = _pack(str(tmp_path / "nowhere"), "--out", "o", cwd=tmp_path)
    assert nothing.returncode == 1 and "ImageSets/240p/train.txt: no such file" in nothing.stderr
    _davis(tmp_path / "davis2")
    big = _pack(str(tmp_path / "davis2"), "--out", "o", "--max-mb", "0.000001", cwd=tmp_path)
    assert big.returncode == 1 and "over 1e-06 MB; lower --quality" in big.stderr
