from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from stseg_deploy import FlowFileError, read_flow, read_kitti_png, write_flow


def _random_flow(rng: np.random.Generator, h: int = 7, w: int = 11) -> np.ndarray:
    return rng.normal(scale=5.0, size=(2, h, w)).astype(np.float32)


@pytest.mark.parametrize("suffix", [".flo", ".npy"])
def test_roundtrip_exact(tmp_path: Path, suffix: str) -> None:
    flow = _random_flow(np.random.default_rng(0))
    path = tmp_path / f"f{suffix}"
    write_flow(path, flow)
    back = read_flow(path)
    assert back.dtype == np.float32 and back.shape == (2, 7, 11)
    np.testing.assert_array_equal(back, flow)


def test_flo_layout_is_middlebury(tmp_path: Path) -> None:
    # Hand-built file: interleaved (u, v) per pixel, row-major, after PIEH, width, height.
    h, w = 2, 3
    u = np.arange(h * w, dtype=np.float32).reshape(h, w)
    v = -u
    payload = np.stack([u, v], axis=-1).astype("<f4").tobytes()
    path = tmp_path / "hand.flo"
    path.write_bytes(b"PIEH" + struct.pack("<ii", w, h) + payload)
    flow = read_flow(path)
    np.testing.assert_array_equal(flow[0], u)
    np.testing.assert_array_equal(flow[1], v)
    assert struct.unpack("<f", b"PIEH")[0] == 202021.25


def test_npy_hwc_and_chw(tmp_path: Path) -> None:
    flow = _random_flow(np.random.default_rng(1))
    np.save(tmp_path / "hwc.npy", flow.transpose(1, 2, 0).astype(np.float64))
    np.save(tmp_path / "chw.npy", flow)
    np.testing.assert_array_equal(read_flow(tmp_path / "hwc.npy"), flow)
    np.testing.assert_array_equal(read_flow(tmp_path / "chw.npy"), flow)


def test_kitti_png_roundtrip_and_quantisation(tmp_path: Path) -> None:
    flow = _random_flow(np.random.default_rng(2), 5, 9)
    path = tmp_path / "k.png"
    write_flow(path, flow)
    back, valid = read_kitti_png(path)
    assert valid.all()
    assert np.abs(back - flow).max() <= 0.5 / 64 + 1e-6


def _png_with_filters(image: np.ndarray, filters: list[int]) -> bytes:
    """Encode (H, W, 3) uint16 with the given PNG filter per row (the forward filters)."""
    h, w, _ = image.shape
    rows = np.ascontiguousarray(image.astype(">u2")).view(np.uint8).reshape(h, w * 6).astype(np.int64)
    bpp = 6
    out = bytearray()
    prev = np.zeros(w * 6, dtype=np.int64)
    for y in range(h):
        cur = rows[y]
        left = np.concatenate([np.zeros(bpp, np.int64), cur[:-bpp]])
        upleft = np.concatenate([np.zeros(bpp, np.int64), prev[:-bpp]])
        f = filters[y]
        if f == 0:
            enc = cur
        elif f == 1:
            enc = cur - left
        elif f == 2:
            enc = cur - prev
        elif f == 3:
            enc = cur - (left + prev) // 2
        else:
            p = left + prev - upleft
            pa, pb, pc = abs(p - left), abs(p - prev), abs(p - upleft)
            pred = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, prev, upleft))
            enc = cur - pred
        out.append(f)
        out.extend((enc % 256).astype(np.uint8).tobytes())
        prev = cur

    def chunk(t: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + t + body + struct.pack(">I", zlib.crc32(t + body) & 0xFFFFFFFF)

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(bytes(out)))
        + chunk(b"IEND", b"")
    )


def test_kitti_png_all_filter_types(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    image = rng.integers(0, 2**16, size=(10, 13, 3), dtype=np.uint16)
    image[..., 2] = rng.integers(0, 2, size=(10, 13))
    path = tmp_path / "filters.png"
    path.write_bytes(_png_with_filters(image, [0, 1, 2, 3, 4, 4, 3, 2, 1, 0]))
    flow, valid = read_kitti_png(path)
    np.testing.assert_array_equal(valid, image[..., 2] > 0)
    expected = (image[..., :2].astype(np.float32) - 2**15) / 64
    expected[~valid] = 0
    np.testing.assert_array_equal(flow, expected.transpose(2, 0, 1))


def test_reads_real_blackswan(shared_data: Path) -> None:
    for name in ("00000.flo", "00001.flo", "00002.flo"):
        flow = read_flow(shared_data / "blackswan" / name)
        assert flow.shape == (2, 480, 854) and flow.dtype == np.float32
        assert np.isfinite(flow).all()
        # RAFT flow on a slowly panning video: a few pixels, not zero, not garbage.
        magnitude = np.hypot(flow[0], flow[1])
        assert 0.1 < magnitude.mean() < 50


# --- bad input -------------------------------------------------------------------------------


def _flo_bytes(w: int, h: int, values: np.ndarray | None = None) -> bytes:
    if values is None:
        values = np.zeros(2 * w * h, dtype="<f4")
    return b"PIEH" + struct.pack("<ii", w, h) + values.astype("<f4").tobytes()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"PIE", "truncated header"),
        (b"XXXX" + struct.pack("<ii", 2, 2) + bytes(32), "bad magic"),
        (_flo_bytes(4, 3)[:-4], "truncated data"),
        (_flo_bytes(4, 3) + b"\0\0\0\0", "oversized payload"),
        (b"PIEH" + struct.pack("<ii", 0, 3), "non-positive size"),
        (b"PIEH" + struct.pack("<ii", -5, 3), "non-positive size"),
        (b"PIEH" + struct.pack("<ii", 2**30, 2**30), "absurd size"),
        (_flo_bytes(2, 2, np.array([0, 0, np.nan, 0, 0, 0, 0, 0])), "NaN or Inf"),
        (_flo_bytes(2, 2, np.array([0, np.inf, 0, 0, 0, 0, 0, 0])), "NaN or Inf"),
    ],
)
def test_bad_flo_names_file_and_fault(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.flo"
    path.write_bytes(content)
    with pytest.raises(FlowFileError, match=message) as info:
        read_flow(path)
    assert str(path) in str(info.value)


def test_bad_npy(tmp_path: Path) -> None:
    path = tmp_path / "bad.npy"
    np.save(path, np.zeros((3, 4, 5), np.float32))
    with pytest.raises(FlowFileError, match=r"expected shape \(H, W, 2\)"):
        read_flow(path)
    path.write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(FlowFileError, match="not a readable .npy") as info:
        read_flow(path)
    assert str(path) in str(info.value)
    np.save(path, np.full((2, 3, 3), np.nan, np.float32))
    with pytest.raises(FlowFileError, match="NaN"):
        read_flow(path)


def test_bad_png(tmp_path: Path) -> None:
    path = tmp_path / "bad.png"
    path.write_bytes(b"not a png at all")
    with pytest.raises(FlowFileError, match="bad signature"):
        read_flow(path)
    write_flow(path, np.zeros((2, 4, 4), np.float32))
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(FlowFileError, match="truncated") as info:
        read_flow(path)
    assert str(path) in str(info.value)


def test_unknown_suffix_and_missing(tmp_path: Path) -> None:
    with pytest.raises(FlowFileError, match="unknown flow suffix"):
        read_flow(tmp_path / "x.txt")
    with pytest.raises(FileNotFoundError, match="x.flo"):
        read_flow(tmp_path / "x.flo")


def test_write_refuses_bad_flow_and_keeps_old_file(tmp_path: Path) -> None:
    path = tmp_path / "keep.flo"
    good = _random_flow(np.random.default_rng(4))
    write_flow(path, good)
    bad = good.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        write_flow(path, bad)
    with pytest.raises(ValueError, match=r"shape \(2, H, W\)"):
        write_flow(path, good[0])
    np.testing.assert_array_equal(read_flow(path), good)
    assert [p.name for p in tmp_path.iterdir()] == ["keep.flo"]  # no temp files left behind


def test_an_8_bit_png_is_not_kitti_flow(tmp_path: Path) -> None:
    from PIL import Image

    path = tmp_path / "photo.png"
    Image.fromarray(np.zeros((4, 5, 3), np.uint8)).save(path)
    with pytest.raises(FlowFileError, match="16-bit RGB; this one is uint8 with 3") as info:
        read_flow(path)
    assert str(path) in str(info.value)
