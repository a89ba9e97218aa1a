from __future__ import annotations

import numpy as np
import pytest

from stseg_deploy.preprocess import flow_windows, resize_flow, resize_labels


def test_resize_flow_rescales_vectors() -> None:
    # A constant flow stays constant, with vectors scaled to the new grid.
    flow = np.empty((2, 40, 60), np.float32)
    flow[0], flow[1] = 3.0, -2.0
    out = resize_flow(flow, (20, 15))
    assert out.shape == (2, 20, 15) and out.dtype == np.float32
    np.testing.assert_allclose(out[0], 3.0 * 15 / 60, rtol=1e-5)
    np.testing.assert_allclose(out[1], -2.0 * 20 / 40, rtol=1e-5)


def test_resize_flow_identity_and_smooth_field() -> None:
    yy, xx = np.mgrid[0:48, 0:64].astype(np.float32)
    flow = np.stack([xx / 64, yy / 48]).astype(np.float32)
    np.testing.assert_array_equal(resize_flow(flow, (48, 64)), flow)
    small = resize_flow(flow, (24, 32))
    # A linear field is reproduced (up to the vector scale of 1/2) away from the borders.
    yy2, xx2 = np.mgrid[0:24, 0:32].astype(np.float32)
    np.testing.assert_allclose(small[0, 2:-2, 2:-2], ((xx2 * 2 + 0.5) / 64 * 0.5)[2:-2, 2:-2], atol=1e-3)


def test_resize_flow_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match=r"\(2, H, W\)"):
        resize_flow(np.zeros((3, 4, 4), np.float32), (2, 2))
    with pytest.raises(ValueError, match="positive"):
        resize_flow(np.zeros((2, 4, 4), np.float32), (0, 2))


def test_resize_labels_nearest_keeps_values() -> None:
    labels = np.random.default_rng(0).integers(0, 4, size=(8, 10)).astype(np.uint8)
    up = resize_labels(labels, (16, 20))
    np.testing.assert_array_equal(up, np.repeat(np.repeat(labels, 2, 0), 2, 1))
    odd = resize_labels(labels, (13, 7))
    assert odd.shape == (13, 7) and set(np.unique(odd)) <= set(np.unique(labels))


def test_flow_windows_layout() -> None:
    flows = np.arange(5 * 2 * 3 * 4, dtype=np.float32).reshape(5, 2, 3, 4)
    windows = flow_windows(flows)
    assert windows.shape == (3, 2, 3, 3, 4)
    for w in range(3):
        for t in range(3):
            np.testing.assert_array_equal(windows[w, :, t], flows[w + t])
    with pytest.raises(ValueError, match="at least 3"):
        flow_windows(flows[:2])


# -- the original's resize (mode "plain") ------------------------------------------------------


def _plain_bilinear(channel: np.ndarray, h: int, w: int) -> np.ndarray:
    """Bilinear sampling at half-pixel centres, two taps, written out pixel by pixel."""
    height, width = channel.shape
    out = np.empty((h, w))
    for r in range(h):
        y = max((r + 0.5) * height / h - 0.5, 0.0)
        y0 = min(int(np.floor(y)), height - 1)
        y1, fy = min(y0 + 1, height - 1), y - y0
        for c in range(w):
            x = max((c + 0.5) * width / w - 0.5, 0.0)
            x0 = min(int(np.floor(x)), width - 1)
            x1, fx = min(x0 + 1, width - 1), x - x0
            top = channel[y0, x0] * (1 - fx) + channel[y0, x1] * fx
            bottom = channel[y1, x0] * (1 - fx) + channel[y1, x1] * fx
            out[r, c] = top * (1 - fy) + bottom * fy
    return out


@pytest.mark.parametrize("size", [(5, 7), (13, 9), (24, 40)])
def test_plain_resize_is_bilinear_without_antialias_and_keeps_vectors(size) -> None:
    rng = np.random.default_rng(0)
    flow = rng.normal(size=(2, 12, 20)).astype(np.float32) * 4
    out = resize_flow(flow, size, "plain")
    assert out.shape == (2, *size) and out.dtype == np.float32
    for c in range(2):
        np.testing.assert_allclose(out[c], _plain_bilinear(flow[c].astype(np.float64), *size), rtol=1e-5, atol=1e-5)
    # A constant field keeps its vectors in the source pixels: not rescaled.
    const = np.stack([np.full((12, 20), 3.0, np.float32), np.full((12, 20), -2.0, np.float32)])
    np.testing.assert_allclose(resize_flow(const, size, "plain")[0], 3.0, rtol=1e-6)
    np.testing.assert_allclose(resize_flow(const, size, "antialias")[0], 3.0 * size[1] / 20, rtol=1e-5)


def test_unknown_resize_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="antialias, plain"):
        resize_flow(np.zeros((2, 4, 4), np.float32), (2, 2), "nearest")
