"""Tests for the 3D U-Net (stseg_train.model)."""

from __future__ import annotations

import pytest
import torch

from stseg_train.model import FrameNorm, UNet3D


@pytest.fixture(scope="module")
def small_model() -> UNet3D:
    torch.manual_seed(0)
    return UNet3D(n_labels=3, num_layers=3, features_start=8).eval()


def test_output_shape_and_softmax(small_model: UNet3D) -> None:
    x = torch.randn(2, 2, 3, 32, 48)
    with torch.no_grad():
        p = small_model(x)
    assert p.shape == (2, 3, 3, 32, 48)
    assert torch.allclose(p.sum(dim=1), torch.ones(2, 3, 32, 48), atol=1e-5)
    assert (p >= 0).all()


@pytest.mark.parametrize("hw", [(37, 53), (1, 1), (5, 6), (33, 32)])
def test_odd_sizes_are_padded_and_cropped(small_model: UNet3D, hw: tuple[int, int]) -> None:
    x = torch.randn(1, 2, 3, *hw)
    with torch.no_grad():
        p, feats = small_model.forward_with_features(x)
    assert p.shape == (1, 3, 3, *hw)
    assert feats.shape == (1, 8, 3, *hw)
    assert torch.isfinite(p).all()
    # Values: the same as running the input replicate-padded to a multiple of 4 by hand and
    # keeping the top-left h x w, i.e. padding is at the bottom and right and cropping undoes it.
    h, w = hw
    padded = torch.nn.functional.pad(x, (0, -w % 4, 0, -h % 4, 0, 0), mode="replicate")
    with torch.no_grad():
        full = small_model(padded)
    torch.testing.assert_close(p, full[..., :h, :w], rtol=1e-5, atol=1e-6)


def test_default_architecture() -> None:
    model = UNet3D()
    assert model.config == {"n_labels": 4, "num_layers": 3, "features_start": 32, "in_channels": 2, "norm": "frame"}
    assert [c.block[0].out_channels for c in [model.inc, *model.down_convs]] == [32, 64, 128]
    rebuilt = UNet3D(**model.config)
    rebuilt.load_state_dict(model.state_dict())
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())
    # Downsampling is spatial only: kernel and stride (1, 2, 2).
    assert all(d.kernel_size == (1, 2, 2) and d.stride == (1, 2, 2) for d in model.downs)
    assert all(u.kernel_size == (1, 2, 2) and u.stride == (1, 2, 2) for u in model.ups)


def test_batch_independence(small_model: UNet3D) -> None:
    torch.manual_seed(1)
    x = torch.randn(4, 2, 3, 24, 40) * torch.tensor([0.1, 1.0, 10.0, 100.0]).view(4, 1, 1, 1, 1)
    small_model.train()  # no running stats: train mode must behave the same
    try:
        with torch.no_grad():
            batched = small_model(x)
            alone = torch.cat([small_model(x[i : i + 1]) for i in range(4)])
    finally:
        small_model.eval()
    assert torch.allclose(batched, alone, atol=1e-5)


def test_features_feed_head(small_model: UNet3D) -> None:
    x = torch.randn(1, 2, 3, 21, 30)
    with torch.no_grad():
        p, feats = small_model.forward_with_features(x)
        again = torch.softmax(small_model.head(feats), dim=1)
    assert torch.allclose(p, again, atol=1e-6)
    assert torch.equal(p, small_model(x))


def test_frame_norm_per_frame() -> None:
    norm = FrameNorm(2)
    x = torch.randn(2, 2, 3, 8, 9) * 5 + 3
    y = norm(x)
    assert torch.allclose(y.mean(dim=(-2, -1)), torch.zeros(2, 2, 3), atol=1e-5)
    assert torch.allclose(y.var(dim=(-2, -1), unbiased=False), torch.ones(2, 2, 3), atol=1e-3)


def test_gradients_flow() -> None:
    model = UNet3D(n_labels=2, num_layers=2, features_start=4)
    x = torch.randn(2, 2, 3, 10, 14)
    p = model(x)
    p[:, 0].mean().backward()
    for name, prm in model.named_parameters():
        assert prm.grad is not None and torch.isfinite(prm.grad).all(), name
        assert prm.grad.abs().sum() > 0, f"{name}: zero gradient"


def test_bad_args() -> None:
    with pytest.raises(ValueError, match="num_layers must be >= 1, got 0"):
        UNet3D(num_layers=0)


def test_onnx_export_dynamic_shapes(tmp_path) -> None:
    onnxruntime = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    torch.manual_seed(0)
    model = UNet3D(n_labels=4, num_layers=3, features_start=8).eval()
    # An example whose H, W are not multiples of 4: the export must not pin their residue.
    example = torch.randn(2, 2, 3, 37, 53)
    dims = {name: torch.export.Dim(name, min=1) for name in ("batch", "height", "width")}
    path = tmp_path / "unet.onnx"
    program = torch.onnx.export(
        model,
        (example,),
        dynamo=True,
        external_data=False,
        input_names=["flow"],
        output_names=["proba"],
        dynamic_shapes={"x": {0: dims["batch"], 3: dims["height"], 4: dims["width"]}},
    )
    program.save(str(path))
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    # One shape divisible by 4, one not, one tiny (and other batch sizes than the example's).
    for shape in [(3, 2, 3, 40, 64), (1, 2, 3, 29, 46), (1, 2, 3, 3, 2)]:
        x = torch.randn(*shape) * 4
        with torch.no_grad():
            expected = model(x).numpy()
        (got,) = session.run(["proba"], {"flow": x.numpy()})
        assert got.shape == expected.shape
        assert abs(got - expected).max() < 1e-4


# -- the original's normalisation (norm="instance3d") -------------------------------------


def test_instance3d_norm_is_instance_norm_over_the_window() -> None:
    """Each (sample, channel) normalised over (T, H, W) together, no affine: written out."""
    model = UNet3D(n_labels=3, num_layers=2, features_start=4, norm="instance3d")
    assert model.config["norm"] == "instance3d"
    norm = model.inc.block[1]
    assert not any(True for _ in norm.parameters())  # no affine weights
    x = torch.randn(2, 4, 3, 6, 5, generator=torch.Generator().manual_seed(0)) * 3 + 1
    flat = x.flatten(2)
    expected = ((flat - flat.mean(-1, keepdim=True)) / torch.sqrt(flat.var(-1, unbiased=False, keepdim=True) + 1e-5)).view_as(x)
    torch.testing.assert_close(norm(x), expected, rtol=1e-5, atol=1e-5)
    # Unlike the per-frame norm, a frame's output then depends on the other frames.
    y = x.clone()
    y[:, :, 2] += 10
    assert not torch.allclose(norm(y)[:, :, 0], norm(x)[:, :, 0])
    frame = UNet3D(n_labels=3, num_layers=2, features_start=4).inc.block[1]
    torch.testing.assert_close(frame(y)[:, :, 0], frame(x)[:, :, 0])


def test_unknown_norm_is_refused() -> None:
    with pytest.raises(ValueError, match="frame, instance3d"):
        UNet3D(norm="batch")
