"""Tests for stseg_train.coherence: distances and the coherence term, against the original's
definitions written out plainly on small tensors."""

from __future__ import annotations

import pytest
import torch

from stseg_train.coherence import DISTANCES, coherence_per_sample, vector_distance


def _plain(name: str, f1: torch.Tensor, f2: torch.Tensor) -> torch.Tensor:
    """The original VectorDistance, components on the last axis, one formula per name."""
    d = f1 - f2
    n1, n2 = f1.norm(dim=-1), f2.norm(dim=-1)
    return {
        "l1": d.abs().sum(-1),
        "l2": d.norm(dim=-1),
        "squared": (d**2).sum(-1),
        "charb": ((d**2 + 1e-8) ** 0.5).sum(-1),
        "l2_normed": d.norm(dim=-1) / (n1 + n2 + 1e-10),
        "l2_normed_alt": d.norm(dim=-1) / (n2 + 1e-10),
        "squared_normed_alt": (d**2).sum(-1) / (n2 + 1e-10),
    }[name]


@pytest.mark.parametrize("name", sorted(DISTANCES))
def test_distances_match_the_original_definitions(name: str) -> None:
    gen = torch.Generator().manual_seed(0)
    f1 = torch.randn(3, 2, 5, 4, generator=gen, dtype=torch.float64)  # components on axis 1
    f2 = torch.randn(3, 2, 5, 4, generator=gen, dtype=torch.float64)
    got = vector_distance(name, f1, f2, dim=1)
    expected = _plain(name, f1.movedim(1, -1), f2.movedim(1, -1))
    # l2 keeps sqrt off 0 with 1e-10 inside the root: far below this tolerance.
    torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-8)


def test_unknown_distance_names_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="charb"):
        vector_distance("l3", torch.zeros(2), torch.zeros(2), dim=0)


@pytest.mark.parametrize("scale", [True, False])
@pytest.mark.parametrize("name", ["l1", "l2", "charb"])
def test_coherence_matches_the_original_piecefit(name: str, scale: bool) -> None:
    """pieceFit(Scale): Σ_l p·d(param, F) per pixel, divided per frame by mean d(F, 0) when
    scaled, then the mean over (t, i, j) per sample."""
    gen = torch.Generator().manual_seed(1)
    b, l, t, h, w = 2, 3, 3, 4, 5
    flow = torch.randn(b, 2, t, h, w, generator=gen, dtype=torch.float64) * 3
    param = torch.randn(b, l, 2, t, h, w, generator=gen, dtype=torch.float64)
    proba = torch.softmax(torch.randn(b, l, t, h, w, generator=gen, dtype=torch.float64), dim=1)
    expected = torch.zeros(b, dtype=torch.float64)
    for s in range(b):
        total = 0.0
        for ti in range(t):
            frame = torch.zeros(h, w, dtype=torch.float64)
            for k in range(l):
                frame += proba[s, k, ti] * _plain(name, param[s, k, :, ti].movedim(0, -1), flow[s, :, ti].movedim(0, -1))
            if scale:
                frame = frame / _plain(name, flow[s, :, ti].movedim(0, -1), torch.zeros(h, w, 2, dtype=torch.float64)).mean()
            total += frame.sum()
        expected[s] = total / (t * h * w)
    got = coherence_per_sample(flow, proba, param, name, scale)
    # SCALE_EPS (1e-6 px) is added to the per-frame norm of a flow of about 3 px.
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-9)
