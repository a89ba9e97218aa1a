"""The Middlebury colour wheel: expected colours are worked out by hand from the wheel's definition.

Wheel (Baker et al.): 55 colours in sectors RY 15, YG 6, GC 4, CB 11, BM 13, MR 6; in a sector of
n colours the ramping channel takes floor(255 * i / n). A flow (u, v) at radius 1 has angle
a = atan2(-v, -u) / pi and wheel key fk = (a + 1) / 2 * 54, interpolated linearly between
colours floor(fk) and floor(fk) + 1; output = floor(255 * colour / 255) per channel.
"""

from __future__ import annotations

import numpy as np
import pytest

from stseg_deploy.viz.flowcolour import colour_wheel, colour_wheel_image, flow_to_rgb


def _pixels(*uv: tuple[float, float]) -> np.ndarray:
    """A (2, 1, N) flow holding the given (u, v) vectors."""
    return np.array(uv, dtype=np.float32).T[:, None, :]


def test_wheel_definition() -> None:
    wheel = colour_wheel()
    assert wheel.shape == (55, 3)
    # Sector starts: red, yellow, green, cyan, blue, magenta.
    starts = {0: (255, 0, 0), 15: (255, 255, 0), 21: (0, 255, 0), 25: (0, 255, 255), 36: (0, 0, 255), 49: (255, 0, 255)}
    for key, colour in starts.items():
        assert tuple(wheel[key]) == colour
    assert tuple(wheel[14]) == (255, 238, 0)  # floor(255 * 14 / 15) = 238
    assert tuple(wheel[54]) == (255, 0, 43)  # 255 - floor(255 * 5 / 6) = 255 - 212


# (flow direction, expected colour at full magnitude, how it was computed)
KNOWN_DIRECTIONS = [
    # right: a = atan2(-0, -1)/pi = -1 -> fk = 0 -> wheel[0]
    ((1.0, 0.0), (255, 0, 0)),
    # down (+v, image axes): a = -1/2 -> fk = 13.5 -> between RY 13 (G 221) and 14 (G 238): G 229.5
    ((0.0, 1.0), (255, 229, 0)),
    # left: a = 0 -> fk = 27 -> CB index 2: G = 255 - floor(510 / 11) = 209
    ((-1.0, 0.0), (0, 209, 255)),
    # up: a = 1/2 -> fk = 40.5 -> BM 4 (R 78) and 5 (R 98): R 88
    ((0.0, -1.0), (88, 0, 255)),
]


@pytest.mark.parametrize(("uv", "colour"), KNOWN_DIRECTIONS)
def test_known_directions_at_full_magnitude(uv: tuple[float, float], colour: tuple[int, int, int]) -> None:
    image = flow_to_rgb(_pixels(uv), max_magnitude=1.0)
    assert image.shape == (1, 1, 3) and image.dtype == np.uint8
    assert tuple(image[0, 0]) == colour


def test_directions_in_one_field_and_auto_normalisation() -> None:
    # All four at magnitude 3 in one field: the automatic maximum is 3, so each is full colour.
    flow = _pixels(*[(3 * u, 3 * v) for (u, v), _ in KNOWN_DIRECTIONS])
    image = flow_to_rgb(flow)
    assert [tuple(c) for c in image[0]] == [c for _, c in KNOWN_DIRECTIONS]


def test_zero_flow_is_white() -> None:
    assert (flow_to_rgb(np.zeros((2, 4, 5), dtype=np.float32)) == 255).all()
    # Also inside a field with motion elsewhere.
    assert tuple(flow_to_rgb(_pixels((0, 0), (5, 0)))[0, 0]) == (255, 255, 255)


def test_magnitude_scaling() -> None:
    # Half magnitude: colour = 1 - 0.5 * (1 - wheel), so red (1, 0, 0) -> (1, .5, .5) -> 255, 127, 127.
    assert tuple(flow_to_rgb(_pixels((2.0, 0.0)), max_magnitude=4.0)[0, 0]) == (255, 127, 127)
    # Up at half: R = 255 * (1 - 0.5 * (1 - 88/255)) = 171.5 -> 171; G = 127.5 -> 127; B = 255.
    assert tuple(flow_to_rgb(_pixels((0.0, -2.0)), max_magnitude=4.0)[0, 0]) == (171, 127, 255)
    # Beyond the maximum: the full colour times 0.75, floor(191.25) = 191.
    assert tuple(flow_to_rgb(_pixels((8.0, 0.0)), max_magnitude=4.0)[0, 0]) == (191, 0, 0)
    assert tuple(flow_to_rgb(_pixels((0.0, 8.0)), max_magnitude=4.0)[0, 0]) == (191, 172, 0)  # 229.5 * .75
    # Colours depend only on flow / max_magnitude.
    flow = np.random.default_rng(0).normal(0, 3, (2, 16, 16)).astype(np.float32)
    np.testing.assert_array_equal(flow_to_rgb(flow, 5.0), flow_to_rgb(flow * 2, 10.0))


def test_negative_zero_does_not_flip_the_seam() -> None:
    # atan2(+0, -1) and atan2(-0, -1) differ by 2 pi: both must give pure red, not wheel[54].
    assert tuple(flow_to_rgb(_pixels((1.0, -0.0)), 1.0)[0, 0]) == (255, 0, 0)


def test_non_finite_is_black_and_ignored_for_the_maximum() -> None:
    image = flow_to_rgb(_pixels((np.nan, 0.0), (np.inf, 1.0), (2.0, 0.0)))
    assert tuple(image[0, 0]) == (0, 0, 0) and tuple(image[0, 1]) == (0, 0, 0)
    assert tuple(image[0, 2]) == (255, 0, 0)


def test_bad_input() -> None:
    with pytest.raises(ValueError, match=r"\(2, H, W\)"):
        flow_to_rgb(np.zeros((4, 4, 2)))
    with pytest.raises(ValueError, match="max_magnitude"):
        flow_to_rgb(np.zeros((2, 4, 4)), max_magnitude=0)


def test_legend_image() -> None:
    legend = colour_wheel_image(65)
    assert legend.shape == (65, 65, 3) and legend.dtype == np.uint8
    assert tuple(legend[32, 32]) == (255, 255, 255)  # centre: zero flow
    assert tuple(legend[32, 64]) == (255, 0, 0)  # rim, right
    assert tuple(legend[64, 32]) == (255, 229, 0)  # rim, down
