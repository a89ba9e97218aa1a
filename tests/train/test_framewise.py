"""stseg_train.framewise: the exported form of the network computes what the trained network
does, for both normalisations, any depth and odd sizes, in torch, TorchScript and onnxruntime;
its layers hold the original's weights where they belong."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import nn

from stseg_train.export_wrapper import ExportWrapper, ReferenceWrapper, example_input
from stseg_train.framewise import PerFrame, TapConv, framewise
from stseg_train.model import UNet3D

# Float rounding only: the framewise sums run in another order.
ATOL = 1e-5


def _model(norm: str, num_layers: int, seed: int = 0, features: int = 4) -> UNet3D:
    torch.manual_seed(seed)
    model = UNet3D(n_labels=3, num_layers=num_layers, features_start=features, norm=norm).eval()
    with torch.no_grad():  # affine and biases away from their initial values, so they matter
        for parameter in model.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    return model


@pytest.mark.parametrize("norm", ["frame", "instance3d"])
@pytest.mark.parametrize(("num_layers", "shape"), [(1, (1, 9, 13)), (2, (2, 16, 24)), (3, (2, 21, 35)), (4, (1, 17, 40))])
def test_framewise_wrapper_computes_the_trained_network(norm: str, num_layers: int, shape: tuple[int, int, int]) -> None:
    model = _model(norm, num_layers)
    x = example_input(*shape, seed=num_layers)
    with torch.no_grad():
        proba, features, labels = ReferenceWrapper(model)(x)
        f_proba, f_features, f_labels = ExportWrapper(model)(x)
    assert f_proba.shape == proba.shape and f_features.shape == features.shape and f_labels.shape == labels.shape
    assert torch.allclose(f_proba, proba, atol=ATOL) and torch.allclose(f_features, features, atol=ATOL)
    assert torch.allclose(f_proba.sum(dim=1), torch.ones_like(f_proba[:, 0]), atol=1e-6)
    # Labels agree wherever the two most probable segments are told apart beyond rounding.
    top2 = proba.topk(2, dim=1).values
    clear = (top2[:, 0] - top2[:, 1]) > 1e-4
    assert torch.equal(f_labels[clear], labels[clear])


def test_tap_conv_sums_the_taps_in_reach() -> None:
    torch.manual_seed(1)
    conv = nn.Conv3d(2, 3, 3, padding=1, bias=True)
    taps = TapConv(conv)
    assert torch.equal(taps.tap0.weight, conv.weight[:, :, 0]) and torch.equal(taps.tap2.weight, conv.weight[:, :, 2])
    assert torch.equal(taps.tap1.bias, conv.bias) and taps.tap0.bias is None and taps.tap2.bias is None
    x = torch.randn(2, 2, 3, 5, 7)
    frames = [x[:, :, t] for t in range(3)]
    y = torch.stack(taps(frames), dim=2)
    assert torch.allclose(y, conv(x), atol=ATOL)
    # Output frame 0 never sees frame 2 (beyond its temporal reach): changing it changes
    # frames 1 and 2 only.
    frames[2] = frames[2] + 1.0
    moved = torch.stack(taps(frames), dim=2)
    assert torch.equal(moved[:, :, 0], y[:, :, 0]) and not torch.allclose(moved[:, :, 1], y[:, :, 1])


def test_per_frame_layers_keep_their_weights() -> None:
    torch.manual_seed(2)
    down = nn.Conv3d(2, 3, kernel_size=(1, 2, 2), stride=(1, 2, 2))
    up = nn.ConvTranspose3d(3, 2, kernel_size=(1, 2, 2), stride=(1, 2, 2))
    x = torch.randn(1, 2, 3, 6, 8)
    for layer, inputs in ((down, x), (up, down(x))):
        per_frame = PerFrame(layer)
        y = torch.stack(per_frame([inputs[:, :, t] for t in range(3)]), dim=2)
        assert torch.allclose(y, layer(inputs), atol=ATOL)
    assert isinstance(PerFrame(up).layer, nn.ConvTranspose2d)


def test_layers_without_a_framewise_form_are_refused() -> None:
    with pytest.raises(ValueError, match="3x3x3 convolutions with zero padding 1"):
        TapConv(nn.Conv3d(2, 2, 3, padding=0))
    with pytest.raises(ValueError, match="temporal kernel of 1"):
        PerFrame(nn.Conv3d(2, 2, kernel_size=(3, 1, 1)))
    with pytest.raises(ValueError, match="no dilation"):
        TapConv(nn.Conv3d(2, 2, 3, padding=2, dilation=2))
    with pytest.raises(ValueError, match="no output padding"):
        PerFrame(nn.ConvTranspose3d(2, 2, kernel_size=(1, 3, 3), stride=(1, 2, 2), output_padding=(0, 1, 1)))
    model = framewise(_model("frame", 2))
    assert not model.training
    # A window is 3 frames: another count is refused, not cut to 3 or failed deep inside.
    for frames in (2, 5):
        with pytest.raises(ValueError, match=r"windows \(B, C, 3, H, W\)"):
            model(torch.zeros(1, 2, frames, 8, 8))


def test_torchscript_runs_the_framewise_wrapper() -> None:
    model = _model("instance3d", 3)
    wrapper = ExportWrapper(model).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = torch.jit.script(wrapper)
    with pytest.raises(Exception, match="the network takes windows"):
        scripted(torch.zeros(1, 2, 4, 8, 8))
    x = example_input(1, 19, 30, seed=5)
    with torch.no_grad():
        expected = ReferenceWrapper(model)(x)
        got = scripted(x)
    assert torch.allclose(got[0], expected[0], atol=ATOL) and torch.allclose(got[1], expected[1], atol=ATOL)


@pytest.mark.parametrize("shape", [(1, 16, 24), (3, 13, 21)])
def test_onnxruntime_runs_the_shared_tap_weights_right(tmp_path, shape: tuple[int, int, int]) -> None:
    """A tap's weight is one initializer feeding a convolution per frame: onnxruntime's
    layout rewrite of convolution weights must not apply twice to a shared one. 16 features:
    that rewrite (NCHWc) takes only convolutions of 16 output channels or a multiple."""
    from stseg_deploy.runtime import OnnxModel
    from stseg_train.export import export_onnx, model_info

    model = _model("frame", 2, features=16)
    payload = {
        "config": {"image_size": [16, 24], "param_model": "QuadraticFullPT"},
        "model_args": model.config,
        "version": "test",
        "epoch": 0,
    }
    path = tmp_path / "m.onnx"
    export_onnx(ExportWrapper(model), model_info(payload), path)
    x = example_input(*shape, seed=3)
    with torch.no_grad():
        expected = ReferenceWrapper(model)(x)[0].numpy()
    got = OnnxModel(path, provider="cpu").run(x.numpy())
    np.testing.assert_allclose(got, expected, atol=ATOL)
