"""stseg_deploy.stages.refine: the colour-guided filter and refined label maps."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from stseg_deploy.stages import refine
from stseg_deploy.stages.refine import RefineSettings, guided_filter, refine_labels


def _smooth(rng, shape, sigma) -> np.ndarray:
    x = cv2.GaussianBlur(rng.random(shape).astype(np.float32), (0, 0), sigma)
    return (x - x.min()) / (x.max() - x.min())


@pytest.mark.parametrize(
    "shape, radius, eps, smooth",
    [((40, 64), 4, 0.01, 2), ((37, 53), 8, 0.03, 2), ((120, 201), 16, 0.05, 2), ((37, 53), 3, 0.001, 0)],
)
def test_exact_form_equals_opencv_contrib(shape, radius, eps, smooth) -> None:
    rng = np.random.default_rng(0)
    guide = _smooth(rng, (*shape, 3), smooth) if smooth else rng.random((*shape, 3)).astype(np.float32)
    src = _smooth(rng, (*shape, 4), 4)
    ours = guided_filter(guide, src, radius, eps)
    for c in range(4):
        theirs = cv2.ximgproc.guidedFilter(guide, np.ascontiguousarray(src[..., c]), radius, eps)
        np.testing.assert_allclose(ours[..., c], theirs, atol=2e-5)
    np.testing.assert_allclose(guided_filter(guide, src[..., 1], radius, eps), ours[..., 1], atol=1e-6)


def _reference64(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """The guided filter's definition in float64, a 3x3 solve per pixel."""
    guide, src = guide.astype(np.float64), src.astype(np.float64)
    box = lambda x: cv2.boxFilter(x, -1, (2 * radius + 1,) * 2, normalize=True, borderType=cv2.BORDER_REFLECT)  # noqa: E731
    mean_i = np.stack([box(guide[..., k]) for k in range(3)], -1)
    mean_p = box(src)
    sigma = np.empty((*src.shape, 3, 3))
    for i in range(3):
        for j in range(3):
            sigma[..., i, j] = box(guide[..., i] * guide[..., j]) - mean_i[..., i] * mean_i[..., j]
    cov = np.stack([box(guide[..., k] * src) - mean_i[..., k] * mean_p for k in range(3)], -1)
    a = np.linalg.solve(sigma + eps * np.eye(3), cov[..., None])[..., 0]
    b = mean_p - (a * mean_i).sum(-1)
    return (np.stack([box(a[..., k]) for k in range(3)], -1) * guide).sum(-1) + box(b)


def test_exact_form_is_accurate_where_the_guide_is_nearly_flat() -> None:
    # A smooth guide with a small eps makes Σ + eps·I nearly singular; there OpenCV's float32
    # result drifts from the definition by up to 0.1 (seen with opencv-contrib 4.x), ours not.
    rng = np.random.default_rng(0)
    guide = _smooth(rng, (40, 64, 3), 2)
    src = _smooth(rng, (40, 64), 4)
    np.testing.assert_allclose(guided_filter(guide, src, 4, 0.001), _reference64(guide, src, 4, 0.001), atol=5e-6)


def test_fast_form_stays_close_to_the_exact_filter() -> None:
    rng = np.random.default_rng(1)
    guide = _smooth(rng, (96, 160, 3), 6)
    src = _smooth(rng, (96, 160), 8)
    exact = guided_filter(guide, src, 8, 0.01)
    fast = guided_filter(guide, src, 8, 0.01, subsample=4)
    assert np.abs(fast - exact).mean() < 0.01
    assert np.abs(fast - src).mean() < 0.1  # and still a filter of src, not something else


def _disc_scene(size=(96, 160)) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A red disc on grey (lightly noisy), its mask, and the probabilities a perfect model
    would give on an 8x10 grid: each cell's object share (2 segments)."""
    h, w = size
    yy, xx = np.mgrid[:h, :w]
    truth = (((yy - 48) ** 2 + (xx - 83) ** 2) < 29**2).astype(np.uint8)
    frame = np.where(truth[..., None] > 0, np.array([200, 40, 30]), np.array([110, 110, 110]))
    frame = np.clip(frame + np.random.default_rng(2).integers(-6, 7, frame.shape), 0, 255).astype(np.uint8)
    share = cv2.resize(truth.astype(np.float32), (10, 8), interpolation=cv2.INTER_AREA)
    return frame, truth, np.stack([1 - share, share]).astype(np.float32)


def test_refined_boundary_follows_the_colour_edge() -> None:
    frame, truth, proba = _disc_scene()
    nearest = cv2.resize(proba.argmax(axis=0).astype(np.uint8), (160, 96), interpolation=cv2.INTER_NEAREST)
    assert np.mean(nearest != truth) > 0.03  # blocky: a coarse cell off along the rim
    for subsample in (1, 2, 4):
        refined = refine_labels(proba, frame, RefineSettings(radius=32, eps=0.01, subsample=subsample))
        assert refined.shape == (96, 160) and refined.dtype == np.uint8
        assert np.mean(refined != truth) < 0.002, subsample


def test_labels_are_first_of_equal_filtered_probabilities() -> None:
    frame = np.full((20, 30, 3), 90, dtype=np.uint8)
    proba = np.full((3, 4, 6), 1 / 3, dtype=np.float32)
    np.testing.assert_array_equal(refine_labels(proba, frame, RefineSettings(radius=8)), 0)


def test_empty_segments_are_not_filtered_but_keep_their_pixels(monkeypatch: pytest.MonkeyPatch) -> None:
    """The split's unused spares are empty. Their coefficients would be exactly 0, so
    refine_labels filters only the others and hands the empty ones to guided_labels as
    value 0: the labels are those of filtering every segment, even where an empty one wins."""
    frame, _, proba = _disc_scene()
    with_spares = np.zeros((6, *proba.shape[1:]), np.float32)
    with_spares[[1, 3]] = proba  # 0, 2, 4 and 5 empty
    with_spares[[1, 3], :, :5] = 0.0  # nothing on the left half: all tie at 0, the empty 0 wins
    calls = []
    real = refine.guided_labels
    monkeypatch.setattr(refine, "guided_labels", lambda a, b, image, *rest: calls.append((a, b, *rest)) or real(a, b, image, *rest))
    got = refine_labels(with_spares, frame, RefineSettings(radius=32, eps=0.01, subsample=2))
    a, b, segments, n = calls[0]
    assert segments.tolist() == [1, 3] and n == 6
    every_a = np.zeros((*a.shape[:2], 6, 3), np.float32)
    every_b = np.zeros((*b.shape[:2], 6), np.float32)
    every_a[:, :, segments], every_b[:, :, segments] = a, b
    np.testing.assert_array_equal(got, real(every_a, every_b, frame))
    assert (got[:, :8] == 0).all() and set(np.unique(got)) == {0, 1, 3}
    # An empty channel's coefficients are exactly 0, and the others' do not depend on it.
    guide = frame[::2, ::2].astype(np.float32) / 255
    src = np.random.default_rng(3).random((*guide.shape[:2], 3)).astype(np.float32)
    src[:, :, 1] = 0.0
    a3, b3 = refine._coefficients(guide, src, 4, 0.01)
    a2, b2 = refine._coefficients(guide, np.ascontiguousarray(src[:, :, [0, 2]]), 4, 0.01)
    assert not a3.reshape(*a3.shape[:2], 3, 3)[:, :, 1].any() and not b3[:, :, 1].any()
    np.testing.assert_array_equal(a3.reshape(*a3.shape[:2], 3, 3)[:, :, [0, 2]], a2.reshape(*a2.shape[:2], 2, 3))
    np.testing.assert_array_equal(b3[:, :, [0, 2]], b2)


def _refine_every_segment(proba: np.ndarray, image: np.ndarray, settings: RefineSettings) -> np.ndarray:
    """refine_labels as it was before it skipped empty segments: every channel filtered."""
    low = refine._low_size(image.shape[:2], settings.subsample)
    guide = cv2.resize(image, (low[1], low[0]), interpolation=cv2.INTER_AREA).astype(np.float32) * np.float32(1 / 255)
    shrinking = low[0] < proba.shape[1] or low[1] < proba.shape[2]
    src = refine._resize(np.ascontiguousarray(proba.transpose(1, 2, 0)), low, cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    radius = max(1, int(round(settings.radius_at(image.shape[0]) / settings.subsample)))
    a, b = refine._coefficients(guide, src, radius, settings.eps)
    return refine.guided_labels(a, b, image)


@pytest.mark.parametrize("size, subsample", [((96, 160), 2), ((24, 40), 4), ((61, 97), 1)])
def test_skipping_empty_segments_changes_no_label(size: tuple[int, int], subsample: int) -> None:
    """8 segments (the split's 4 spares among them), 3 to 5 empty per frame, on frames whose
    coefficient grid is finer and coarser than the model's: the labels of filtering every
    segment, pixel for pixel."""
    rng = np.random.default_rng(sum(size))
    for _ in range(4):
        proba = rng.random((8, 8, 10)).astype(np.float32) ** 4
        proba[rng.choice(8, rng.integers(3, 6), replace=False)] = 0.0
        proba[:, :, :2] = 0.0  # a strip where every segment is 0: the first empty one wins
        image = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
        settings = RefineSettings(radius=48, eps=1e-3, subsample=subsample)
        np.testing.assert_array_equal(refine_labels(proba, image, settings), _refine_every_segment(proba, image, settings))


def test_radius_scales_with_the_frame_height() -> None:
    settings = RefineSettings(radius=32, eps=0.01, subsample=2)
    assert settings.radius_at(480) == 32
    assert settings.radius_at(240) == 16
    assert settings.radius_at(1080) == 72
    assert settings.radius_at(10) == 1
    assert settings.params() == {"radius": 32.0, "eps": 0.01, "subsample": 2}
    assert type(settings.params()["radius"]) is float  # given as 32: recorded as its default's type


@pytest.mark.parametrize("kwargs, word", [({"radius": 0}, "radius"), ({"eps": -1}, "eps"), ({"eps": 1e-7}, "eps must be >= 1e-06"), ({"subsample": 0}, "subsample"), ({"subsample": 1.5}, "subsample")])
def test_bad_settings_are_named(kwargs, word) -> None:
    with pytest.raises(ValueError, match=word):
        RefineSettings(**kwargs)


def test_bad_shapes_are_refused() -> None:
    frame = np.zeros((20, 30, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="frame must be"):
        refine_labels(np.zeros((2, 4, 6), np.float32), frame[..., 0], RefineSettings())
    with pytest.raises(ValueError, match="probabilities must be"):
        refine_labels(np.zeros((4, 6), np.float32), frame, RefineSettings())
    with pytest.raises(ValueError, match="same height and width"):
        guided_filter(np.zeros((20, 30, 3), np.float32), np.zeros((20, 31), np.float32), 2, 0.01)
    with pytest.raises(ValueError, match="colour image"):
        guided_filter(np.zeros((20, 30), np.float32), np.zeros((20, 30), np.float32), 2, 0.01)
