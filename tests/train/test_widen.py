"""stseg_train.widen: a wider network made from a narrower one's weights computes the same
output, keeps the old weights in place, and its new channels can learn."""

from __future__ import annotations

import pytest
import torch

from stseg_train.model import UNet3D
from stseg_train.widen import widen_state_dict


def _trained_like(model: UNet3D) -> UNet3D:
    """Norm affines away from 1 / 0, as after training, so that copying them is checked too."""
    with torch.no_grad():
        for name, value in model.named_parameters():
            if ".block.1." in name or ".block.4." in name:
                value.uniform_(0.5, 1.5) if name.endswith("weight") else value.uniform_(-0.3, 0.3)
    return model


@pytest.mark.parametrize(("levels", "narrow", "wide", "norm"), [(3, 4, 6, "frame"), (2, 3, 8, "frame"), (3, 4, 8, "instance3d")])
def test_the_wide_network_computes_what_the_narrow_one_did(levels: int, narrow: int, wide: int, norm: str) -> None:
    torch.manual_seed(0)
    small = _trained_like(UNet3D(n_labels=3, num_layers=levels, features_start=narrow, norm=norm)).eval()
    big = UNet3D(n_labels=3, num_layers=levels, features_start=wide, norm=norm).eval()
    big.load_state_dict(widen_state_dict(small.state_dict(), big))
    flow = 3 * torch.randn(2, 2, 3, 20, 28)  # 20x28: padded to the level grid and cropped back
    with torch.no_grad():
        before, after = small(flow), big(flow)
    torch.testing.assert_close(after, before, atol=2e-5, rtol=1e-4)
    # The narrow network's weights sit in the first channels, the decoder's concatenated
    # input keeping its two halves: old skip channels first, then old upsampled ones.
    concat = big.up_convs[-1].block[0].weight
    old = small.up_convs[-1].block[0].weight
    assert torch.equal(concat[:narrow, :narrow], old[:, :narrow])
    assert torch.equal(concat[:narrow, wide : wide + narrow], old[:, narrow:])
    assert not concat[:, narrow:wide].any() and not concat[:, wide + narrow :].any()


def test_the_new_channels_learn() -> None:
    torch.manual_seed(1)
    small = UNet3D(n_labels=2, features_start=2)
    big = UNet3D(n_labels=2, features_start=4)
    big.load_state_dict(widen_state_dict(small.state_dict(), big))
    loss = big(torch.randn(1, 2, 3, 8, 8))[:, 0].mean()
    loss.backward()
    # The head's weights reading the new top-level channels start at zero, yet get a gradient.
    assert not big.head.weight[:, 2:].any()
    assert big.head.weight.grad[:, 2:].abs().sum() > 0


def test_a_wider_checkpoint_or_other_levels_are_refused() -> None:
    big = UNet3D(features_start=4)
    with pytest.raises(ValueError, match=r"inc\.block\.0\.weight: \(8, 2, 3, 3, 3\) in the checkpoint does not fit in \(4, 2, 3, 3, 3\)"):
        widen_state_dict(UNet3D(features_start=8).state_dict(), big)
    with pytest.raises(ValueError, match=r"the checkpoint has no 'downs\.1\.weight'"):
        widen_state_dict(UNet3D(features_start=2, num_layers=2).state_dict(), big)
