"""Tests of the synthetic optical-flow video generator (stseg_synth.flows)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from stseg_synth.flows import (
    AREA_FRACTION,
    MIN_AREA_FRACTION,
    SynthSequence,
    min_area_fraction,
    min_motion_margin,
    motion_scale,
    sequence_rng,
    synth_sequence,
)

# Sizes cover the reference, a larger one, the smallest allowed and extreme aspect ratios.
SIZES = [(64, 112), (96, 160), (8, 8), (8, 60), (72, 16)]
SEEDS = range(6)


def _sequences():
    for size in SIZES:
        for seed in SEEDS:
            yield size, synth_sequence(np.random.default_rng(seed), 8, size)


@pytest.fixture(scope="module")
def sequences() -> list[tuple[tuple[int, int], SynthSequence]]:
    return list(_sequences())


def _all_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# --- synth_sequence ------------------------------------------------------------------------


def test_same_seed_same_arrays_different_seed_differs() -> None:
    a = synth_sequence(np.random.default_rng(7), 6, (32, 48))
    b = synth_sequence(np.random.default_rng(7), 6, (32, 48))
    c = synth_sequence(np.random.default_rng(8), 6, (32, 48))
    for field in ("flows", "layers", "clean_flows", "background_flows", "silhouettes"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert a.depth_order == b.depth_order
    assert not np.array_equal(a.flows, c.flows)


def test_shapes_and_dtypes(sequences) -> None:
    for (height, width), seq in sequences:
        n = seq.n_objects
        assert 1 <= n <= 3
        assert seq.flows.shape == seq.clean_flows.shape == seq.background_flows.shape == (8, 2, height, width)
        assert seq.flows.dtype == seq.clean_flows.dtype == seq.background_flows.dtype == np.float32
        assert seq.layers.shape == seq.foreground.shape == (8, height, width)
        assert seq.layers.dtype == np.uint8 and seq.foreground.dtype == bool
        assert seq.silhouettes.shape == (8, n, height, width) and seq.silhouettes.dtype == bool
        np.testing.assert_array_equal(seq.foreground, seq.layers > 0)
        assert sorted(seq.depth_order) == list(range(1, n + 1))
        assert [o.id for o in seq.objects] == list(range(1, n + 1))
        assert set(np.unique(seq.layers)) <= set(range(n + 1))
        assert np.isfinite(seq.flows).all()
        assert seq.size == (height, width) and seq.n_frames == 8


def test_requested_object_count() -> None:
    for n in (1, 2, 3, 5):
        seq = synth_sequence(np.random.default_rng(n), 4, (64, 112), n_objects=n)
        assert seq.n_objects == n
        assert seq.silhouettes.shape[1] == n


def test_masks_non_empty_and_large_enough(sequences) -> None:
    for (height, width), seq in sequences:
        assert seq.foreground.any(axis=(1, 2)).all()
        areas = seq.silhouettes.sum(axis=(2, 3))  # (F, N)
        assert areas.min() >= MIN_AREA_FRACTION * height * width


def test_occlusion_order_matches_layers(sequences) -> None:
    for _, seq in sequences:
        expected = np.zeros_like(seq.layers)
        for obj_id in seq.depth_order:  # far to near
            expected[seq.silhouettes[:, obj_id - 1]] = obj_id
        np.testing.assert_array_equal(seq.layers, expected)


def test_occlusions_happen() -> None:
    # Some sequence among a few seeds must show one object hiding part of another.
    hidden = 0
    for seed in range(10):
        seq = synth_sequence(np.random.default_rng(seed), 20, (64, 112), n_objects=3)
        hidden += int((seq.silhouettes.sum(axis=1) > 1).sum())
    assert hidden > 0


def test_masks_move_over_time(sequences) -> None:
    for (height, width), seq in sequences:
        assert not np.array_equal(seq.foreground[0], seq.foreground[-1])
        for obj in seq.objects:
            # The translation is the dominant motion: several pixels per frame at the reference size.
            speeds = np.hypot(obj.translations[:, 0], obj.translations[:, 1])
            assert speeds.min() >= 2.5 * motion_scale((height, width))
            np.testing.assert_allclose(obj.centres[1:], obj.centres[:-1] + obj.translations[:-1])


def test_objects_advect_with_their_flow() -> None:
    # Centroid at t + mean clean flow over the silhouette = centroid at t+1 (exact for a
    # continuous shape moved by an affine map; pixel sampling costs a fraction of a pixel).
    checked = 0
    for seed in range(5):
        seq = synth_sequence(np.random.default_rng(seed), 10, (96, 160), noise=0.0, outlier_fraction=0.0)
        height, width = seq.size
        for obj in seq.objects:
            for t in range(seq.n_frames - 1):
                now, nxt = seq.silhouettes[t, obj.id - 1], seq.silhouettes[t + 1, obj.id - 1]
                touching = any(m[0].any() or m[-1].any() or m[:, 0].any() or m[:, -1].any() for m in (now, nxt))
                if touching:
                    continue
                ys, xs = np.nonzero(now)
                ys1, xs1 = np.nonzero(nxt)
                # Flow of this object's own motion at its own pixels, occluded or not.
                flow = np.array(_own_flow(obj, t, ys, xs))
                moved = np.array([xs.mean(), ys.mean()]) + flow.mean(axis=1)
                np.testing.assert_allclose(moved, [xs1.mean(), ys1.mean()], atol=0.5)
                visible = seq.layers[t] == obj.id
                vy, vx = np.nonzero(visible)
                np.testing.assert_allclose(
                    seq.clean_flows[t][:, vy, vx], np.array(_own_flow(obj, t, vy, vx)), atol=1e-4
                )
                checked += 1
    assert checked >= 10


def _own_flow(obj, t, ys, xs):
    w, s = obj.rotations[t], obj.scalings[t]
    m = (1 + s) * np.array([[np.cos(w), -np.sin(w)], [np.sin(w), np.cos(w)]]) - np.eye(2)
    dx, dy = xs - obj.centres[t, 0], ys - obj.centres[t, 1]
    return (
        obj.translations[t, 0] + m[0, 0] * dx + m[0, 1] * dy,
        obj.translations[t, 1] + m[1, 0] * dx + m[1, 1] * dy,
    )


def test_object_flow_differs_from_background_by_margin(sequences) -> None:
    for size, seq in sequences:
        margin = min_motion_margin(size)
        # Per pixel, clean flows: the guarantee itself.
        gap = np.linalg.norm(seq.clean_flows - seq.background_flows, axis=1)
        assert gap[seq.foreground].min() >= margin
        # Outside the objects the clean flow is the camera flow.
        np.testing.assert_array_equal(
            np.moveaxis(seq.clean_flows, 1, -1)[~seq.foreground],
            np.moveaxis(seq.background_flows, 1, -1)[~seq.foreground],
        )
        # On the written (noisy) flows: mean motion of each visible object vs the background region.
        for t in range(seq.n_frames):
            background = seq.flows[t][:, ~seq.foreground[t]].mean(axis=1)
            for obj in seq.objects:
                visible = seq.layers[t] == obj.id
                if visible.sum() < 20:
                    continue
                mean = seq.flows[t][:, visible].mean(axis=1)
                assert np.linalg.norm(mean - background) >= margin


def test_margin_and_motion_scale_with_size() -> None:
    assert motion_scale((64, 112)) == pytest.approx(1.0)
    assert min_motion_margin((128, 224)) == pytest.approx(2.0)
    small = synth_sequence(np.random.default_rng(3), 5, (64, 112), n_objects=1, noise=0.0, outlier_fraction=0)
    large = synth_sequence(np.random.default_rng(3), 5, (128, 224), n_objects=1, noise=0.0, outlier_fraction=0)
    ratio = np.abs(large.objects[0].translations).max() / np.abs(small.objects[0].translations).max()
    assert ratio == pytest.approx(2.0)


def test_noise_and_outliers() -> None:
    clean = synth_sequence(np.random.default_rng(4), 5, (64, 112), noise=0.0, outlier_fraction=0.0)
    np.testing.assert_array_equal(clean.flows, clean.clean_flows)
    noisy = synth_sequence(np.random.default_rng(4), 5, (64, 112), noise=0.2, outlier_fraction=0.01)
    residual = noisy.flows - noisy.clean_flows
    inliers = np.abs(residual).max(axis=1) < 1.5  # 7.5 sigma: no Gaussian draw goes that far
    assert 0.2 * 0.9 < residual.transpose(1, 0, 2, 3)[:, inliers].std() < 0.2 * 1.1
    n_outliers = (~inliers).sum(axis=(1, 2))
    assert (n_outliers > 0).all() and (n_outliers <= round(0.01 * 64 * 112)).all()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_frames": 2},
        {"n_frames": 0},
        {"size": (7, 64)},
        {"size": (64, 7)},
        {"size": (64,)},
        {"n_objects": 0},
        {"n_objects": 17},
        {"noise": -0.1},
        {"noise": float("nan")},
        {"outlier_fraction": 0.5},
        {"n_frames": 3.5},
        {"noise": "0.1"},
    ],
)
def test_synth_sequence_rejects_bad_arguments(kwargs) -> None:
    args = {"n_frames": 4, "size": (16, 16)} | kwargs
    with pytest.raises(ValueError):
        synth_sequence(np.random.default_rng(0), **args)


def test_object_count_range() -> None:
    counts = {synth_sequence(sequence_rng(5, k), 3, (32, 48), n_objects=(4, 5)).n_objects for k in range(12)}
    assert counts == {4, 5}
    for k in range(4):  # (1, 3) is the generator's own draw, sequence for sequence
        a = synth_sequence(sequence_rng(1, k), 3, (32, 48))
        b = synth_sequence(sequence_rng(1, k), 3, (32, 48), n_objects=(1, 3))
        np.testing.assert_array_equal(a.flows, b.flows)
        np.testing.assert_array_equal(a.layers, b.layers)
    with pytest.raises(ValueError, match="n_objects maximum"):
        synth_sequence(sequence_rng(1, 0), 3, (32, 48), n_objects=(3, 2))


def test_pauses_move_with_the_background() -> None:
    size = (48, 80)
    for k in range(4):
        seq = synth_sequence(sequence_rng(7, k), 12, size, n_objects=(2, 3), noise=0.0, outlier_fraction=0.0, pauses=(3, 5))
        for obj in seq.objects:
            run = np.flatnonzero(obj.paused)
            # One pause of 3 to 5 frames, with a moving frame before and after it.
            assert 3 <= len(run) <= 5 and np.all(np.diff(run) == 1)
            assert run[0] >= 1 and run[-1] <= seq.n_frames - 2
            for t in range(seq.n_frames):
                visible = seq.layers[t] == obj.id
                gap = np.abs(seq.clean_flows[t][:, visible] - seq.background_flows[t][:, visible]).max(initial=0.0)
                if obj.paused[t]:
                    assert gap == 0.0  # the flow cannot show it
                elif visible.any():
                    assert gap >= min_motion_margin(size) - 1e-4
            # Its centre rides the camera flow meanwhile.
            t = run[0]
            row, col = (int(round(c)) for c in obj.centres[t][::-1])
            np.testing.assert_allclose(obj.translations[t], seq.background_flows[t][:, row, col], atol=1e-5)


def test_no_pauses_by_default_and_bad_pauses_refused() -> None:
    a = synth_sequence(sequence_rng(3, 0), 6, (32, 48))
    b = synth_sequence(sequence_rng(3, 0), 6, (32, 48), pauses=None)
    np.testing.assert_array_equal(a.flows, b.flows)
    assert not any(obj.paused.any() for obj in a.objects)
    with pytest.raises(ValueError, match=r"pauses maximum must be an integer in \[2, 4\]"):
        synth_sequence(sequence_rng(3, 0), 6, (32, 48), pauses=(2, 5))
    with pytest.raises(ValueError, match=r"pauses minimum must be an integer >= 1"):
        synth_sequence(sequence_rng(3, 0), 6, (32, 48), pauses=(0, 2))


def test_areas_give_objects_of_the_size_asked_for() -> None:
    size = (128, 224)
    small, default = [], []
    for k in range(6):
        seq = synth_sequence(sequence_rng(9, k), 6, size, areas=(0.005, 0.02), noise=0.0, outlier_fraction=0.0)
        small += [seq.silhouettes[0, i].mean() for i in range(seq.n_objects)]
        # Every frame keeps at least half the smallest area asked for.
        assert seq.silhouettes.sum(axis=(2, 3)).min() >= min_area_fraction((0.005, 0.02)) * size[0] * size[1]
        plain = synth_sequence(sequence_rng(9, k), 6, size)
        default += [plain.silhouettes[0, i].mean() for i in range(plain.n_objects)]
    # The unit shape's area is measured on a raster and objects may leave the frame in part,
    # hence the slack around 0.005-0.02 and 0.04-0.10.
    assert 0.002 < min(small) and max(small) < 0.025
    assert min(default) > 0.02 and max(small) < min(default)
    assert min_area_fraction((0.005, 0.02)) == 0.0025 and min_area_fraction(None) == MIN_AREA_FRACTION
    assert min_area_fraction((0.1, 0.2)) == MIN_AREA_FRACTION
    # areas=None is the draw of earlier versions; AREA_FRACTION given is the same draw.
    a = synth_sequence(sequence_rng(4, 0), 5, (32, 48))
    b = synth_sequence(sequence_rng(4, 0), 5, (32, 48), areas=AREA_FRACTION)
    np.testing.assert_array_equal(a.flows, b.flows)


@pytest.mark.parametrize("areas", [(0.0, 0.1), (0.2, 0.1), (0.1, 0.3), (0.01,), (0.01, float("nan")), "small"])
def test_bad_areas_are_refused(areas) -> None:
    with pytest.raises(ValueError, match="areas must"):
        synth_sequence(sequence_rng(4, 0), 5, (32, 48), areas=areas)


def test_areas_too_small_for_the_frame_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"areas minimum 0.001 is 1.5 pixels of a 32x48 frame; objects need at least 16"):
        synth_sequence(sequence_rng(4, 0), 5, (32, 48), areas=(0.001, 0.01))
