"""Optical-flow file I/O: Middlebury ``.flo``, ``.npy`` and KITTI 16-bit ``.png``.

Every reader returns ``(2, H, W)`` float32 in pixels, channel 0 = horizontal u, 1 = vertical v,
and rejects bad files with a :class:`FlowFileError` naming the file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import FlowFileError
from .atomic import atomic_write, write_npy

FLO_MAGIC = 202021.25  # the float32 whose bytes spell "PIEH"
_FLO_MAGIC_BYTES = b"PIEH"
_FLO_HEADER = 12
# Sides beyond this are not optical flow from any camera; refuse before allocating.
MAX_SIDE = 1 << 15
FLOW_SUFFIXES = (".flo", ".npy", ".png")
_KITTI_SCALE = 64.0
_KITTI_OFFSET = 2**15
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_END = b"\x00\x00\x00\x00IEND"  # the empty IEND chunk's length and type, before its CRC


def _read_png_rgb16(path: Path) -> np.ndarray:
    """A 16-bit RGB PNG as (H, W, 3) uint16, RGB order. OpenCV decodes it (Pillow would cut it
    to 8 bits, losing KITTI's 1/64-pixel precision); the signature and the end are checked
    first, so a foreign or truncated file gets a message that says which."""
    import cv2

    data = np.fromfile(path, dtype=np.uint8)
    if data[: len(_PNG_SIGNATURE)].tobytes() != _PNG_SIGNATURE:
        raise FlowFileError(path, "not a PNG file (bad signature)")
    if data[-12:-4].tobytes() != _PNG_END:
        raise FlowFileError(path, f"truncated PNG ({data.size} bytes, no IEND chunk at the end)")
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise FlowFileError(path, "corrupt PNG (OpenCV cannot decode it)")
    if image.dtype != np.uint16 or image.ndim != 3 or image.shape[2] != 3:
        channels = 1 if image.ndim == 2 else image.shape[2]
        raise FlowFileError(
            path, f"a KITTI flow PNG is 16-bit RGB; this one is {image.dtype} with {channels} channel(s)"
        )
    _check_size(path, image.shape[0], image.shape[1])
    return np.ascontiguousarray(image[..., ::-1])  # OpenCV's BGR to RGB


def _encode_png_rgb16(image: np.ndarray) -> bytes:
    """(H, W, 3) uint16 RGB → PNG bytes."""
    import cv2

    ok, encoded = cv2.imencode(".png", np.ascontiguousarray(image[..., ::-1]))
    if not ok:
        raise ValueError(f"OpenCV could not encode a {image.shape} PNG")
    return encoded.tobytes()


def _check_size(path: Path, height: int, width: int) -> None:
    if height <= 0 or width <= 0:
        raise FlowFileError(path, f"non-positive size {width}x{height} (width x height)")
    if height > MAX_SIDE or width > MAX_SIDE:
        raise FlowFileError(path, f"absurd size {width}x{height} (width x height), max side {MAX_SIDE}")


def _check_finite(path: Path, flow: np.ndarray) -> None:
    if not np.isfinite(flow).all():
        bad = int(np.count_nonzero(~np.isfinite(flow)))
        raise FlowFileError(path, f"contains {bad} NaN or Inf values")


def check_flo_header(path: str | Path) -> tuple[int, int]:
    """Validate a ``.flo`` file's header against its size without reading the data.

    Returns (H, W); raises FlowFileError for an empty, truncated, oversized or foreign file.
    Lets a dataset skip broken files up front, at the cost of 12 bytes read per file.
    """
    path = Path(path)
    size = path.stat().st_size
    if size == 0:
        raise FlowFileError(path, "file is empty")
    with open(path, "rb") as handle:
        header = handle.read(_FLO_HEADER)
    if len(header) < _FLO_HEADER:
        raise FlowFileError(path, f"truncated header ({len(header)} of {_FLO_HEADER} bytes)")
    if header[:4] != _FLO_MAGIC_BYTES:
        raise FlowFileError(path, f"bad magic {header[:4]!r}, expected b'PIEH' (.flo)")
    width, height = (int(v) for v in np.frombuffer(header, dtype="<i4", offset=4, count=2))
    _check_size(path, height, width)
    expected = _FLO_HEADER + 8 * width * height
    if size != expected:
        kind = "truncated data" if size < expected else "oversized payload"
        raise FlowFileError(path, f"{kind}: {size} bytes, expected {expected} for {width}x{height}")
    return height, width


def read_flo(path: str | Path) -> np.ndarray:
    """Read a Middlebury ``.flo`` file. Returns flow: (2, H, W) float32, pixels."""
    path = Path(path)
    height, width = check_flo_header(path)
    # One read of the whole payload, sized from a header already checked against the file.
    data = np.fromfile(path, dtype="<f4", count=2 * width * height, offset=_FLO_HEADER)
    flow = np.ascontiguousarray(data.reshape(height, width, 2).transpose(2, 0, 1), dtype=np.float32)
    _check_finite(path, flow)
    return flow


def read_npy_flow(path: str | Path) -> np.ndarray:
    """Read a ``.npy`` flow stored as (H, W, 2) or (2, H, W). Returns (2, H, W) float32.

    A (2, H, 2) array is ambiguous; it is read as (2, H, W).
    """
    path = Path(path)
    if path.stat().st_size == 0:
        raise FlowFileError(path, "file is empty")
    try:
        arr = np.load(path, allow_pickle=False, mmap_mode="r")
    except (ValueError, OSError, EOFError) as exc:
        raise FlowFileError(path, f"not a readable .npy array ({exc})") from exc
    if arr.ndim != 3:
        raise FlowFileError(path, f"expected shape (H, W, 2) or (2, H, W), got {arr.shape}")
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise FlowFileError(path, f"expected a numeric array, got dtype {arr.dtype}")
    if arr.shape[0] == 2:
        chw = arr
    elif arr.shape[2] == 2:
        chw = arr.transpose(2, 0, 1)
    else:
        raise FlowFileError(path, f"expected shape (H, W, 2) or (2, H, W), got {arr.shape}")
    _check_size(path, chw.shape[1], chw.shape[2])
    flow = np.ascontiguousarray(chw, dtype=np.float32)
    _check_finite(path, flow)
    return flow


def read_kitti_png(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a KITTI 16-bit flow PNG.

    Returns ``(flow, valid)``: flow (2, H, W) float32 pixels, zero where invalid;
    valid (H, W) bool from the third channel.
    """
    path = Path(path)
    image = _read_png_rgb16(path)
    valid = image[..., 2] > 0
    flow = (image[..., :2].astype(np.float32) - _KITTI_OFFSET) / _KITTI_SCALE
    flow[~valid] = 0.0
    return np.ascontiguousarray(flow.transpose(2, 0, 1)), valid


def read_flow(path: str | Path) -> np.ndarray:
    """Read an optical-flow file, choosing the reader by suffix.

    Args:
        path: a ``.flo``, ``.npy`` or KITTI 16-bit ``.png`` file.

    Returns:
        flow: (2, H, W) float32, pixels; channel 0 = u (horizontal), 1 = v (vertical).
        KITTI pixels marked invalid are 0.

    Raises:
        FileNotFoundError: the file does not exist.
        FlowFileError: unknown suffix, empty, truncated, bad header, NaN/Inf values.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FLOW_SUFFIXES:
        raise FlowFileError(path, f"unknown flow suffix {suffix!r}; expected one of {FLOW_SUFFIXES}")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: flow file not found")
    if suffix == ".flo":
        return read_flo(path)
    if suffix == ".npy":
        return read_npy_flow(path)
    return read_kitti_png(path)[0]


def _validated_for_write(path: Path, flow: np.ndarray) -> np.ndarray:
    flow = np.asarray(flow)
    if flow.ndim != 3 or flow.shape[0] != 2:
        raise ValueError(f"{path}: flow to write must have shape (2, H, W), got {flow.shape}")
    _check_size(path, flow.shape[1], flow.shape[2])
    flow = flow.astype(np.float32, copy=False)
    if not np.isfinite(flow).all():
        raise ValueError(f"{path}: refusing to write a flow with NaN or Inf values")
    return flow


def write_flow(path: str | Path, flow: np.ndarray) -> None:
    """Write flow: (2, H, W) float32, pixels, choosing the format by suffix.

    ``.flo`` (Middlebury), ``.npy`` (stored as (2, H, W) float32) or ``.png`` (KITTI 16-bit,
    all pixels valid, values clipped to +-512 px at 1/64 px precision). The file appears
    only once completely written.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FLOW_SUFFIXES:
        raise ValueError(f"{path}: unknown flow suffix {suffix!r}; expected one of {FLOW_SUFFIXES}")
    flow = _validated_for_write(path, flow)
    if suffix == ".flo":
        _, height, width = flow.shape
        header = _FLO_MAGIC_BYTES + np.array([width, height], dtype="<i4").tobytes()
        payload = np.ascontiguousarray(flow.transpose(1, 2, 0), dtype="<f4").tobytes()
        with atomic_write(path) as handle:
            handle.write(header)
            handle.write(payload)
    elif suffix == ".npy":
        write_npy(path, np.ascontiguousarray(flow))
    else:
        encoded = np.clip(np.rint(flow * _KITTI_SCALE) + _KITTI_OFFSET, 0, 2**16 - 1)
        image = np.empty(flow.shape[1:] + (3,), dtype=np.uint16)
        image[..., 0] = encoded[0]
        image[..., 1] = encoded[1]
        image[..., 2] = 1
        with atomic_write(path) as handle:
            handle.write(_encode_png_rgb16(image))
