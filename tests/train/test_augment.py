"""Tests for the flow augmentations (stseg_train.augment)."""

from __future__ import annotations

import pytest
import torch

from stseg_train.augment import (
    global_motion_augmentation,
    parse_global_motion,
    perturb_input_noise,
)


def mean_magnitude(flow: torch.Tensor) -> torch.Tensor:
    return flow.pow(2).sum(dim=1).sqrt().flatten(1).mean(dim=1)


def sample_flow(b: int = 4, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, 2, 3, 12, 16, generator=g) * 3


def test_parse() -> None:
    assert parse_global_motion("globalmotion.QuadraticFullPT.light") == ("QuadraticFullPT", 2.0)
    assert parse_global_motion("globalmotion.Affine.strong") == ("Affine", 8.0)
    for bad, match in [
        ("globalmotion.QuadraticFullPT", "expected"),
        ("motion.Affine.light", "expected"),
        ("globalmotion.Quadratic.light", "QuadraticFullPT"),
        ("globalmotion.Affine.huge", "medium"),
    ]:
        with pytest.raises(ValueError, match=match):
            parse_global_motion(bad)
        with pytest.raises(ValueError):
            global_motion_augmentation(sample_flow(), bad)


def test_global_motion_deterministic_and_shapes() -> None:
    flow = sample_flow()
    before = flow.clone()
    a = global_motion_augmentation(flow, generator=torch.Generator().manual_seed(5))
    b = global_motion_augmentation(flow, generator=torch.Generator().manual_seed(5))
    c = global_motion_augmentation(flow, generator=torch.Generator().manual_seed(6))
    assert a.shape == flow.shape and a.dtype == flow.dtype
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(flow, before)
    single = global_motion_augmentation(flow[0], generator=torch.Generator().manual_seed(5))
    assert single.shape == flow[0].shape


def test_global_motion_is_parametric() -> None:
    """The added field is an exact flow of the named model (Affine: linear in i, j)."""
    flow = sample_flow(2)
    added = global_motion_augmentation(flow, "globalmotion.Affine.medium",
                                       torch.Generator().manual_seed(1)) - flow
    # Affine has no time term: identical in every frame, and zero second differences.
    assert torch.allclose(added[:, :, 0], added[:, :, 2], atol=1e-5)
    assert torch.allclose(added[..., 2:] - 2 * added[..., 1:-1] + added[..., :-2],
                          torch.zeros(()), atol=1e-4)


def test_global_motion_magnitudes() -> None:
    """|added| / |flow| = m · α with m ~ U(0, 1): at most α, on average α / 2."""
    flow = sample_flow(400, seed=1)
    base = mean_magnitude(flow)
    ratios = {}
    for strength, alpha in [("light", 2.0), ("medium", 4.0), ("strong", 8.0)]:
        added = global_motion_augmentation(
            flow, f"globalmotion.QuadraticFullPT.{strength}", torch.Generator().manual_seed(3)
        ) - flow
        r = mean_magnitude(added) / base
        assert r.max() <= alpha * (1 + 1e-4)
        assert abs(r.mean().item() - alpha / 2) < 0.1 * alpha  # U(0,1) mean, 400 samples
        ratios[strength] = r
    # Same seed → same m and coefficients: the ratios scale exactly with α.
    assert torch.allclose(ratios["medium"], 2 * ratios["light"], rtol=1e-4)
    assert torch.allclose(ratios["strong"], 4 * ratios["light"], rtol=1e-4)


def test_global_motion_zero_flow_stays_finite() -> None:
    flow = torch.zeros(2, 2, 3, 8, 8)
    out = global_motion_augmentation(flow, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(out).all() and out.abs().max() == 0


def changed_slices(a: torch.Tensor, b: torch.Tensor) -> list[int]:
    """Number of time slices that differ, per sample."""
    return (a != b).flatten(3).any(dim=-1).any(dim=1).sum(dim=1).tolist()


def test_perturb_changes_zero_or_one_slice() -> None:
    x = sample_flow(200, seed=2) + 5
    before = x.clone()
    out = perturb_input_noise(x, p=0.2, generator=torch.Generator().manual_seed(4))
    assert torch.equal(x, before)
    assert out.shape == x.shape
    counts = changed_slices(out, x)
    assert set(counts) <= {0, 1}
    assert 20 <= sum(counts) <= 60  # ~Binomial(200, 0.2)
    assert changed_slices(perturb_input_noise(x, p=1.0), x) == [1] * 200
    assert changed_slices(perturb_input_noise(x, p=0.0), x) == [0] * 200


def test_perturb_statistics_and_determinism() -> None:
    x = torch.randn(3, 2, 3, 64, 64)
    x[:, 0] = x[:, 0] * 4 + 7
    x[:, 1] = x[:, 1] * 0.5 - 2
    a = perturb_input_noise(x, 1.0, torch.Generator().manual_seed(9))
    b = perturb_input_noise(x, 1.0, torch.Generator().manual_seed(9))
    assert torch.equal(a, b)
    for s in range(3):
        (t,) = [t for t in range(3) if not torch.equal(a[s, :, t], x[s, :, t])]
        new, old = a[s, :, t].flatten(1), x[s, :, t].flatten(1)
        tol = 5 * old.std(dim=1) / old.shape[1] ** 0.5  # 5 standard errors of the mean
        assert ((new.mean(dim=1) - old.mean(dim=1)).abs() < tol).all()
        assert torch.allclose(new.std(dim=1), old.std(dim=1), rtol=0.05)
    with pytest.raises(ValueError):
        perturb_input_noise(x, p=1.5)


# -- the original's input noise (--input-noise-mode batch) ---------------------------------


def test_batch_noise_is_the_originals_per_batch_draw() -> None:
    from stseg_train.augment import perturb_input_noise_batch

    x = sample_flow(b=5, seed=3) + 2.0
    # Replay the generator to know its draws: apply, slot, then the noise.
    probe = torch.Generator().manual_seed(11)
    u = torch.rand(1, generator=probe)[0]
    slot = int(torch.randint(0, 3, (1,), generator=probe)[0])
    noise = torch.randn(5, 2, 12, 16, generator=probe)
    out = perturb_input_noise_batch(x, p=1.0, generator=torch.Generator().manual_seed(11))
    assert u < 1.0
    chosen = x[:, :, slot]
    expected = noise * chosen.var(dim=(-2, -1), keepdim=True) + chosen.mean(dim=(-2, -1), keepdim=True)
    torch.testing.assert_close(out[:, :, slot], expected)
    others = [t for t in range(3) if t != slot]
    assert torch.equal(out[:, :, others], x[:, :, others])  # one index for the whole batch
    # p = 0 never perturbs, and the input is never modified in place.
    before = x.clone()
    assert torch.equal(perturb_input_noise_batch(x, p=0.0, generator=torch.Generator().manual_seed(1)), x)
    assert torch.equal(x, before)


def test_batch_noise_rate_is_per_batch() -> None:
    from stseg_train.augment import perturb_input_noise_batch

    gen = torch.Generator().manual_seed(0)
    x = sample_flow(b=4)
    hit = sum(not torch.equal(perturb_input_noise_batch(x, p=0.2, generator=gen), x) for _ in range(2000))
    assert abs(hit / 2000 - 0.2) < 0.03  # binomial sd 0.009


def test_coupled_global_motion_is_a_planar_flow() -> None:
    from stseg_train.motion import basis, expansion
    from stseg_train.solvers import fit_theta

    flow = sample_flow(b=3, seed=4)
    out = global_motion_augmentation(flow, "globalmotion.QuadraticPlanar.light", generator=torch.Generator().manual_seed(0))
    added = out - flow
    assert added.abs().max() > 0.1
    one = torch.ones(3, 1, 3, 12, 16)
    A = basis("QuadraticPlanar", 3, 12, 16)
    theta = fit_theta(added, one, A, "lstsq", expansion=expansion("QuadraticPlanar"))
    from stseg_train.motion import flow_from_theta

    torch.testing.assert_close(flow_from_theta(theta, A)[:, 0], added, rtol=1e-4, atol=1e-4)
