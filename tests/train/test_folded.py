"""stseg_train.folded: the exported form of the network computes what the trained network does,
for both normalisations, any depth and odd sizes; its layers hold the original's weights
where they belong."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from stseg_train.export_wrapper import ExportWrapper, ReferenceWrapper, example_input
from stseg_train.folded import fold, fold_conv333, fold_per_frame
from stseg_train.model import UNet3D

# Float rounding only: the folded sums run in another order.
ATOL = 1e-5


def _model(norm: str, num_layers: int, seed: int = 0) -> UNet3D:
    torch.manual_seed(seed)
    model = UNet3D(n_labels=3, num_layers=num_layers, features_start=4, norm=norm).eval()
    with torch.no_grad():  # affine and biases away from their initial values, so they matter
        for parameter in model.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    return model


@pytest.mark.parametrize("norm", ["frame", "instance3d"])
@pytest.mark.parametrize(("num_layers", "shape"), [(1, (1, 9, 13)), (2, (2, 16, 24)), (3, (2, 21, 35)), (4, (1, 17, 40))])
def test_folded_wrapper_computes_the_trained_network(norm: str, num_layers: int, shape: tuple[int, int, int]) -> None:
    model = _model(norm, num_layers)
    x = example_input(*shape, seed=num_layers)
    with torch.no_grad():
        proba, features, labels = ReferenceWrapper(model)(x)
        f_proba, f_features, f_labels = ExportWrapper(model)(x)
    assert f_proba.shape == proba.shape and f_features.shape == features.shape and f_labels.shape == labels.shape
    assert torch.allclose(f_proba, proba, atol=ATOL) and torch.allclose(f_features, features, atol=ATOL)
    assert torch.allclose(f_proba.sum(dim=1), torch.ones_like(f_proba[:, 0]), atol=1e-6)


def test_fold_conv333_places_each_temporal_tap() -> None:
    torch.manual_seed(1)
    conv = nn.Conv3d(2, 3, 3, padding=1, bias=True)
    folded = fold_conv333(conv)
    w = folded.weight.detach()
    assert w.shape == (9, 6, 3, 3)
    # Output frame 0 sees input frames 0 and 1 through taps 1 and 2; frame 2 never.
    assert torch.equal(w[0:3, 0:2], conv.weight[:, :, 1]) and torch.equal(w[0:3, 2:4], conv.weight[:, :, 2])
    assert not w[0:3, 4:6].any() and not w[6:9, 0:2].any()
    assert torch.equal(w[3:6, 0:2], conv.weight[:, :, 0])  # frame 1 sees frame 0 through tap 0
    assert torch.equal(folded.bias, conv.bias.detach().repeat(3))
    x = torch.randn(2, 2, 3, 5, 7)
    y = folded(x.transpose(1, 2).reshape(2, 6, 5, 7)).reshape(2, 3, 3, 5, 7).transpose(1, 2)
    assert torch.allclose(y, conv(x), atol=ATOL)


def test_per_frame_layers_fold_into_groups() -> None:
    torch.manual_seed(2)
    down = nn.Conv3d(2, 3, kernel_size=(1, 2, 2), stride=(1, 2, 2))
    up = nn.ConvTranspose3d(3, 2, kernel_size=(1, 2, 2), stride=(1, 2, 2))
    x = torch.randn(1, 2, 3, 6, 8)
    for layer, inputs in ((down, x), (up, down(x))):
        folded = fold_per_frame(layer)
        b, c, t, h, w = inputs.shape
        y = folded(inputs.transpose(1, 2).reshape(b, t * c, h, w))
        assert folded.groups == 3
        assert torch.allclose(y.reshape(b, t, -1, *y.shape[-2:]).transpose(1, 2), layer(inputs), atol=ATOL)


def test_layers_that_do_not_fold_are_refused() -> None:
    with pytest.raises(ValueError, match="fold_conv333 folds 3x3x3 convolutions"):
        fold_conv333(nn.Conv3d(2, 2, 3, padding=0))
    with pytest.raises(ValueError, match="temporal kernel of 1"):
        fold_per_frame(nn.Conv3d(2, 2, kernel_size=(3, 1, 1)))
    model = fold(_model("frame", 2))
    assert not model.training
