"""Tests for the training losses (stseg_train.losses)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from piecewise import piecewise_flow as shared_piecewise_flow

from stseg_train.losses import (
    DEFAULT_REGULARISATION,
    REGULARISERS,
    coherence_loss,
    label_cost_per_sample,
    mover_weights,
    temporal_regulariser,
    temporal_regulariser_per_sample,
    total_loss,
)
from stseg_train.motion import basis as make_basis
from stseg_train.solvers import fit_theta

B, L, T, H, W = 2, 3, 3, 16, 20


def piecewise_flow(seed: int):
    return shared_piecewise_flow(seed, (B, L, T, H, W))


def test_registry() -> None:
    assert REGULARISERS["EulerPottsl1R3"] is temporal_regulariser_per_sample
    assert REGULARISERS["LabelCost"] is label_cost_per_sample
    assert DEFAULT_REGULARISATION == {"EulerPottsl1R3": 1.0}


@pytest.mark.parametrize("distance", ["l1", "l2", "squared"])
@pytest.mark.parametrize("scale", [True, False])
def test_zero_on_exact_parametric_flow(distance: str, scale: bool) -> None:
    flow, proba, A, theta = piecewise_flow(0)
    assert coherence_loss(flow, proba, theta, A, distance, scale) < 1e-4
    loss, parts, est = total_loss(flow, proba, A, distance=distance, scale=scale)
    assert loss < 1e-3
    assert set(parts) == {"coherence", "EulerPottsl1R3", "per_sample"}
    assert parts["EulerPottsl1R3"] == 0  # labels constant in time


def test_coherence_value_by_hand() -> None:
    A = make_basis("Affine", 1, 1, 2)
    theta = torch.zeros(1, 2, 2, 3)
    theta[0, 1, 0, 2] = 1.0  # segment 1: u = 1
    flow = torch.tensor([[3.0, 1.0], [0.0, 0.0]]).view(1, 2, 1, 1, 2)  # u = 3, 1; v = 0
    proba = torch.tensor([[1.0, 0.5], [0.0, 0.5]]).view(1, 2, 1, 1, 2)
    # pixel 0: p0=1 · |0-3| = 3; pixel 1: 0.5·|0-1| + 0.5·|1-1| = 0.5 → mean 1.75.
    assert torch.isclose(coherence_loss(flow, proba, theta, A, scale=False), torch.tensor(1.75))
    # Scale: mean |u|+|v| of the frame = 2.
    assert torch.isclose(coherence_loss(flow, proba, theta, A), torch.tensor(1.75 / 2), atol=1e-6)
    # l2 and squared on this 1-D error.
    assert torch.isclose(
        coherence_loss(flow, proba, theta, A, "squared", False), torch.tensor((9 + 0.5) / 2)
    )
    l2 = coherence_loss(flow, proba, theta, A, "l2", False)
    assert torch.isclose(l2, torch.tensor(1.75), atol=1e-4)


def test_scale_invariance() -> None:
    flow, proba, A, _ = piecewise_flow(1)
    noisy = flow + torch.randn(flow.shape, generator=torch.Generator().manual_seed(1))
    soft = torch.softmax(proba * 2 + 0.3, dim=1)
    a = total_loss(noisy, soft, A, regularisation={})[0]
    b = total_loss(10 * noisy, soft, A, regularisation={})[0]
    assert torch.isclose(a, b, rtol=1e-3)


def test_gradient_flows_to_probabilities_only() -> None:
    flow, proba, A, _ = piecewise_flow(2)
    flow = (flow + torch.randn(flow.shape, generator=torch.Generator().manual_seed(2)))
    flow.requires_grad_(True)
    logits = torch.randn(B, L, T, H, W, requires_grad=True)
    proba = torch.softmax(logits, dim=1)
    loss, parts, theta = total_loss(flow, proba, A)
    assert not theta.requires_grad and theta.grad_fn is None
    loss.backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all()
    assert logits.grad.abs().sum() > 0
    assert flow.grad is None


@pytest.mark.parametrize("distance", ["l1", "l2", "squared"])
def test_zero_flow_and_empty_segment_are_finite(distance: str) -> None:
    logits = torch.randn(B, L, T, H, W)
    logits[:, 2] = -float("inf")  # segment 2 is empty: p ≡ 0
    logits.requires_grad_(True)
    for flow in [torch.zeros(B, 2, T, H, W), piecewise_flow(3)[0]]:
        proba = torch.softmax(logits, dim=1)
        assert (proba[:, 2] == 0).all()
        loss, parts, theta = total_loss(flow, proba, make_basis("QuadraticFullPT", T, H, W),
                                        distance=distance)
        assert torch.isfinite(loss) and torch.isfinite(theta).all()
        (grad,) = torch.autograd.grad(loss, logits)
        assert torch.isfinite(grad[:, :2]).all()


def test_temporal_regulariser_constant_and_value() -> None:
    flow = torch.randn(B, 2, T, H, W)
    const = torch.softmax(torch.randn(B, L, 1, H, W), dim=1).expand(B, L, T, H, W)
    assert temporal_regulariser(flow, const) == 0
    # Hard labels that switch everywhere between frames, on a constant-in-time flow
    # (no change → every pixel counted): mean_l |Δp| = 2/L per pixel.
    labels = torch.zeros(B, T, H, W, dtype=torch.long)
    labels[:, 1] = 1
    proba = F.one_hot(labels, L).permute(0, 4, 1, 2, 3).float()
    static = torch.randn(B, 2, 1, H, W).expand(B, 2, T, H, W)
    assert torch.isclose(temporal_regulariser(static, proba), torch.tensor(2 / L))
    assert temporal_regulariser(flow[:, :, :1], proba[:, :, :1]) == 0


def test_temporal_regulariser_mask_excludes_top_changes() -> None:
    """Pixels with the 1% largest flow change are not counted."""
    b, h, w = 1, 20, 20  # 2 frame pairs × 400 pixels = 800 values: top 1% = 8 pixels
    flow = torch.zeros(b, 2, T, h, w)
    change_pixels = [(r, c) for r in range(2) for c in range(4)]  # 8 pixels change in pair 0
    for k, (r, c) in enumerate(change_pixels):
        flow[0, 0, 1:, r, c] = 5.0 + k  # one jump between frames 0 and 1, then constant
    labels = torch.zeros(b, T, h, w, dtype=torch.long)
    for r, c in change_pixels:
        labels[0, 1:, r, c] = 1  # the segmentation follows the moving pixels
    proba = F.one_hot(labels, L).permute(0, 4, 1, 2, 3).float()
    # Threshold = 0.99 quantile of 792 zeros and 8 jumps: the jumps (above it) are excluded.
    assert temporal_regulariser(flow, proba) == 0
    # Without the mask (quantile 1 keeps everything) the label switches would cost.
    expected = len(change_pixels) * (2 / L) / (2 * h * w)
    assert torch.isclose(temporal_regulariser(flow, proba, quantile=1.0), torch.tensor(expected))
    # A label switch on a pixel whose flow does not change is penalised.
    labels[0, 1:, 10, 10] = 2
    proba = F.one_hot(labels, L).permute(0, 4, 1, 2, 3).float()
    counted = 2 * h * w - len(change_pixels)
    assert torch.isclose(temporal_regulariser(flow, proba), torch.tensor((2 / L) / counted))


def test_total_loss_weights_and_errors() -> None:
    flow, proba, A, _ = piecewise_flow(4)
    soft = torch.softmax(torch.randn(B, L, T, H, W), dim=1)
    loss1, parts, _ = total_loss(flow, soft, A, regularisation={"EulerPottsl1R3": 1.0})
    loss3, _, _ = total_loss(flow, soft, A, regularisation={"EulerPottsl1R3": 3.0})
    loss0, parts0, _ = total_loss(flow, soft, A, regularisation={})
    assert torch.isclose(loss1, parts["coherence"] + parts["EulerPottsl1R3"])
    assert torch.isclose(loss3, parts["coherence"] + 3 * parts["EulerPottsl1R3"])
    assert set(parts0) == {"coherence", "per_sample"} and torch.isclose(loss0, parts["coherence"])
    # The solver choice is passed through to fit_theta.
    _, _, theta = total_loss(flow, soft, A, solver="lstsq")
    assert torch.allclose(theta, fit_theta(flow, soft, A, "lstsq"))
    with pytest.raises(ValueError, match="EulerPottsl1R3"):
        total_loss(flow, soft, A, regularisation={"Potts": 1.0})
    with pytest.raises(ValueError, match="l1"):
        total_loss(flow, soft, A, distance="l3")


# -- the original's regulariser (--potts-mask all, the paper preset) -------------------------


def _original_euler_potts(flow: torch.Tensor, proba: torch.Tensor) -> torch.Tensor:
    """EulerPottsl1R3 as the original defines it, per sample: mean over labels of
    |p(t+1) − p(t)| where Σ_c |F(t+1) − F(t)| < its 0.99 quantile, divided by all pixels."""
    out = []
    for s in range(flow.shape[0]):
        jump = (proba[s, :, 1:] - proba[s, :, :-1]).abs().mean(dim=0)
        change = (flow[s, :, 1:] - flow[s, :, :-1]).abs().sum(dim=0)
        q = torch.quantile(change.flatten(), 0.99)
        out.append((jump * (change < q)).sum() / change.numel())
    return torch.stack(out).mean()


def test_potts_mask_all_is_the_original_regulariser() -> None:
    gen = torch.Generator().manual_seed(3)
    flow = torch.randn(2, 2, 3, 9, 11, generator=gen)
    proba = torch.softmax(torch.randn(2, 4, 3, 9, 11, generator=gen), dim=1)
    got = temporal_regulariser(flow, proba, mask="all")
    torch.testing.assert_close(got, _original_euler_potts(flow, proba), rtol=1e-6, atol=1e-7)
    # On a temporally constant flow every change ties at the quantile: the original counts
    # none of them, the default counts all.
    still = torch.ones(1, 2, 3, 9, 11)
    assert float(temporal_regulariser(still, proba[:1], mask="all")) == 0.0
    assert float(temporal_regulariser(still, proba[:1], mask="counted")) > 0.0


def test_per_sample_losses_average_to_the_loss() -> None:
    flow, proba, A, _theta = piecewise_flow(4)
    noisy = flow + 0.3 * torch.randn(flow.shape, generator=torch.Generator().manual_seed(0))
    loss, parts, _ = total_loss(noisy, proba, A, potts_mask="all")
    assert parts["per_sample"].shape == (B,)
    torch.testing.assert_close(parts["per_sample"].mean(), loss)
    alone = total_loss(noisy[1:], proba[1:], A, potts_mask="all")[0]
    torch.testing.assert_close(parts["per_sample"][1], alone, rtol=1e-5, atol=1e-6)


# -- the label cost ------------------------------------------------------------------------


def _one_hot_window(labels: torch.Tensor, n_labels: int) -> torch.Tensor:
    """labels: (B, T, H, W) int → (B, L, T, H, W) float one-hot."""
    return F.one_hot(labels, n_labels).permute(0, 4, 1, 2, 3).float()


def test_label_cost_values_by_hand() -> None:
    flow = torch.zeros(2, 2, 2, 4, 4)
    labels = torch.zeros(2, 2, 4, 4, dtype=torch.long)
    labels[1, :, :, 2:] = 1  # sample 1: two halves
    cost = label_cost_per_sample(flow, _one_hot_window(labels, 4), eps=0.0)
    # one segment: sqrt(1) - 1 = 0; two halves: (2 sqrt(1/2) - 1) / (sqrt(4) - 1).
    assert torch.allclose(cost, torch.tensor([0.0, (2 * 0.5**0.5 - 1) / 1.0]), atol=1e-6)
    uniform = torch.full((1, 4, 2, 4, 4), 0.25)
    assert torch.allclose(label_cost_per_sample(flow[:1], uniform, eps=0.0), torch.tensor([1.0]))
    assert torch.equal(label_cost_per_sample(flow[:1], torch.ones(1, 1, 2, 4, 4)), torch.zeros(1))


def test_label_cost_charges_one_motion_cut_in_two_and_not_two_motions_kept_apart() -> None:
    """The degeneracy it removes: a flow with one motion scores the same coherence whether
    one segment or two hold it, so only the label cost tells them apart; with two motions,
    the coherence gained by keeping them apart outweighs it at a small weight."""
    A = make_basis("Affine", 1, 8, 8)
    one = torch.zeros(1, 2, 1, 8, 8)
    one[:, 0] = 2.0  # a pan: u = 2 everywhere
    two = one.clone()
    two[:, 0, :, :, 4:] = -3.0  # the right half moves the other way
    halves = torch.zeros(1, 1, 8, 8, dtype=torch.long)
    halves[..., 4:] = 1
    split = _one_hot_window(halves, 3)
    whole = _one_hot_window(torch.zeros_like(halves), 3)
    reg = {"LabelCost": 0.05}
    loss_whole, _, _ = total_loss(one, whole, A, regularisation=reg, solver="lstsq")
    loss_split, parts, _ = total_loss(one, split, A, regularisation=reg, solver="lstsq")
    assert parts["coherence"] < 1e-5  # each half fits the pan exactly
    # 0.05 · ((2·sqrt(1/2) + sqrt(eps)) − (1 + 2·sqrt(eps))) / (sqrt(3) − 1) ≈ 0.028 apart
    assert loss_split - loss_whole == pytest.approx(0.05 * (2 * 0.5**0.5 - 1 - 0.01) / (3**0.5 - 1), abs=1e-3)
    loss_whole, _, _ = total_loss(two, whole, A, regularisation=reg, solver="lstsq")
    loss_split, _, _ = total_loss(two, split, A, regularisation=reg, solver="lstsq")
    assert loss_split < loss_whole


def test_label_cost_gradient_is_finite_at_an_empty_segment() -> None:
    logits = torch.zeros(1, 3, 2, 4, 4)
    logits[:, 2] = -1e4  # segment 2 empty
    logits.requires_grad_(True)
    label_cost_per_sample(torch.zeros(1, 2, 2, 4, 4), torch.softmax(logits, dim=1)).sum().backward()
    assert torch.isfinite(logits.grad).all()


def _background_with_a_mover(size: int = 3, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``(flow (1, 2, T, H, W), mover mask (T, H, W))``: an affine background flow and a
    ``size``-pixel square translating (4, -3) pixels a frame on it."""
    g = torch.Generator().manual_seed(seed)
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, H), torch.linspace(-1, 1, W), indexing="ij")
    flow = torch.zeros(1, 2, T, H, W)
    flow[0, 0] = (0.5 + 0.3 * xs - 0.2 * ys).expand(T, H, W)
    flow[0, 1] = (-0.4 + 0.1 * xs + 0.2 * ys).expand(T, H, W)
    flow += 0.01 * torch.randn(flow.shape, generator=g)
    mask = torch.zeros(T, H, W, dtype=torch.bool)
    mask[:, 5 : 5 + size, 8 : 8 + size] = True
    flow[0, 0][mask] = 4.0
    flow[0, 1][mask] = -3.0
    return flow, mask


def test_mover_weights_favour_the_mover_and_keep_each_frames_mean() -> None:
    flow, mask = _background_with_a_mover()
    A = make_basis("QuadraticFullPT", T, H, W)
    weights = mover_weights(flow, A, 1.0)
    assert weights.shape == (1, 1, T, H, W)
    torch.testing.assert_close(weights.mean(dim=(-2, -1)), torch.ones(1, 1, T))
    w = weights[0, 0]
    # 9 of 320 pixels move: their residual is ~35x the frame mean, capped at 10, so each
    # weighs (1 + 10) against about 1 for the background, before the common normalisation.
    ratio = w[mask].mean() / w[~mask].mean()
    assert 9.0 < float(ratio) < 11.5
    assert float(w[mask].min()) > float(w[~mask].max())


def test_mover_weights_are_flat_without_a_mover_and_ones_at_strength_zero() -> None:
    flow, _ = _background_with_a_mover(size=0)
    A = make_basis("QuadraticFullPT", T, H, W)
    weights = mover_weights(flow, A, 1.0)
    # Only the noise is left, so no pixel weighs much more than another.
    assert float(weights.max()) < 3.0
    torch.testing.assert_close(mover_weights(flow, A, 0.0), torch.ones(1, 1, T, H, W))
    with pytest.raises(ValueError, match="strength"):
        mover_weights(flow, A, -1.0)


def test_mover_weight_makes_a_loss_that_merges_a_small_mover_cost_more() -> None:
    flow, mask = _background_with_a_mover()
    A = make_basis("QuadraticFullPT", T, H, W)
    merged = torch.zeros(1, 2, T, H, W)
    merged[:, 0] = 1.0  # one segment holds everything, the mover included
    apart = torch.zeros(1, 2, T, H, W)
    apart[0, 0][~mask] = 1.0
    apart[0, 1][mask] = 1.0
    costs = {}
    for strength in (0.0, 1.0):
        costs[strength] = [
            float(total_loss(flow, proba, A, regularisation={}, solver="irls", mover_weight=strength)[0])
            for proba in (merged, apart)
        ]
    # Keeping the mover apart fits both parts (the noise is left); merging leaves the mover's
    # residual, which the weights multiply by about 10.
    assert costs[0.0][1] < 0.2 * costs[0.0][0]
    assert costs[1.0][0] > 5.0 * costs[0.0][0]
    assert costs[1.0][1] < 2.0 * costs[0.0][1]


def test_mover_weights_enter_the_theta_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    """θ is fitted on the weighted probabilities, so each θ minimises the term the network sees."""
    import stseg_train.losses as losses

    flow, mask = _background_with_a_mover()
    A = make_basis("QuadraticFullPT", T, H, W)
    proba = torch.full((1, 2, T, H, W), 0.5)
    weights = mover_weights(flow, A, 1.0)
    given = []
    real_fit = losses.fit_theta

    def recording_fit(flow_, proba_, *args, **kwargs):
        given.append(proba_.clone())
        return real_fit(flow_, proba_, *args, **kwargs)

    monkeypatch.setattr(losses, "fit_theta", recording_fit)
    total_loss(flow, proba, A, regularisation={}, solver="irls", mover_weight=1.0)
    # The last fit is the segments' (the first, inside mover_weights, fits the whole window).
    torch.testing.assert_close(given[-1], proba * weights)
    assert float(given[-1][0, 0][mask].mean()) > 4.0 * float(given[-1][0, 0][~mask].mean())
