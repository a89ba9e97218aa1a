"""Minimal 16-bit RGB PNG codec for KITTI flow files.

Pillow decodes 48-bit RGB PNGs to 8 bits per channel, which destroys KITTI's 1/64-pixel
flow precision, so the few PNG features KITTI uses are decoded here: colour type 2 (RGB),
bit depth 16, no interlacing, all five scanline filters.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from numba import njit

from .errors import FlowFileError

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_BYTES_PER_PIXEL = 6  # RGB, 2 bytes per channel
MAX_SIDE = 1 << 15


@njit(cache=True)
def _unfilter(raw: np.ndarray, height: int, stride: int, bpp: int) -> np.ndarray:
    """Undo PNG scanline filters. raw: (height * (stride + 1),) uint8 -> (height, stride) uint8.

    Returns an empty (0, 0) array when a row names an unknown filter type.
    """
    out = np.empty((height, stride), dtype=np.uint8)
    prev = np.zeros(stride, dtype=np.int32)
    for y in range(height):
        base = y * (stride + 1)
        ftype = raw[base]
        if ftype > 4:
            return np.empty((0, 0), dtype=np.uint8)
        for x in range(stride):
            v = np.int32(raw[base + 1 + x])
            a = np.int32(out[y, x - bpp]) if x >= bpp else np.int32(0)
            b = prev[x]
            if ftype == 1:
                v += a
            elif ftype == 2:
                v += b
            elif ftype == 3:
                v += (a + b) >> 1
            elif ftype == 4:
                c = prev[x - bpp] if x >= bpp else np.int32(0)
                p = a + b - c
                pa = abs(p - a)
                pb = abs(p - b)
                pc = abs(p - c)
                if pa <= pb and pa <= pc:
                    v += a
                elif pb <= pc:
                    v += b
                else:
                    v += c
            out[y, x] = np.uint8(v & 0xFF)
        for x in range(stride):
            prev[x] = out[y, x]
    return out


def read_png_rgb16(path: str | Path) -> np.ndarray:
    """Read a 16-bit RGB PNG. Returns (H, W, 3) uint16."""
    path = Path(path)
    data = path.read_bytes()
    if not data:
        raise FlowFileError(path, "file is empty")
    if not data.startswith(_SIGNATURE):
        raise FlowFileError(path, "not a PNG file (bad signature)")
    pos = len(_SIGNATURE)
    header = None
    idat = []
    while pos + 8 <= len(data):
        length, ctype = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        if len(body) != length or pos + 12 + length > len(data):
            raise FlowFileError(path, f"truncated PNG chunk {ctype!r}")
        if ctype == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif ctype == b"IDAT":
            idat.append(body)
        elif ctype == b"IEND":
            break
        pos += 12 + length
    else:
        raise FlowFileError(path, "truncated PNG: no IEND chunk")
    if header is None:
        raise FlowFileError(path, "PNG has no IHDR chunk")
    width, height, depth, colour, _compression, _filter, interlace = header
    if depth != 16 or colour != 2:
        raise FlowFileError(
            path, f"KITTI flow PNG must be 16-bit RGB, got bit depth {depth}, colour type {colour}"
        )
    if interlace != 0:
        raise FlowFileError(path, "interlaced PNGs are not supported")
    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
        raise FlowFileError(path, f"absurd PNG size {width}x{height}")
    stride = width * _BYTES_PER_PIXEL
    expected = height * (stride + 1)
    try:
        # max_length bounds what a hostile stream can make us allocate.
        decomp = zlib.decompressobj()
        raw = decomp.decompress(b"".join(idat), expected)
    except zlib.error as exc:
        raise FlowFileError(path, f"corrupt PNG image data ({exc})") from exc
    if len(raw) != expected:
        raise FlowFileError(path, f"truncated PNG image data ({len(raw)} of {expected} bytes)")
    rows = _unfilter(np.frombuffer(raw, dtype=np.uint8), height, stride, _BYTES_PER_PIXEL)
    if rows.size == 0:
        raise FlowFileError(path, "PNG row uses an unknown filter type")
    return rows.view(">u2").reshape(height, width, 3).astype(np.uint16)


def encode_png_rgb16(image: np.ndarray) -> bytes:
    """Encode (H, W, 3) uint16 as a PNG (filter type 0 on every row)."""
    height, width, _ = image.shape
    rows = np.ascontiguousarray(image.astype(">u2")).view(np.uint8).reshape(height, width * 6)
    raw = np.concatenate([np.zeros((height, 1), np.uint8), rows], axis=1).tobytes()

    def chunk(ctype: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(ctype + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    return (
        _SIGNATURE
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(raw, 6))
        + chunk(b"IEND", b"")
    )
