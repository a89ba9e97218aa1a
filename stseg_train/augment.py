"""Training-time flow augmentations.

- :func:`global_motion_augmentation`: adds a random global parametric motion to every flow of
  a sample, for the network input and the loss target alike (segmentation must not depend on
  the camera motion).
- :func:`perturb_input_noise`: replaces one time slice of the network input (only) by noise,
  so the network learns to cope with a bad flow field in the window: per sample (this
  package's default) or, as the original, per batch (:func:`perturb_input_noise_batch`).

Randomness comes only from the ``generator`` argument (CPU generator by default), so results
are reproducible under a seeded generator whatever the tensors' device.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .config import DEFAULT_AUGMENTATION
from .motion import MOTION_MODELS, basis, expansion, flow_from_theta, n_params

__all__ = [
    "GLOBAL_MOTION_STRENGTHS",
    "parse_global_motion",
    "global_motion_augmentation",
    "perturb_input_noise",
    "perturb_input_noise_batch",
    "NOISE_FUNCTIONS",
]

# α: the added flow's mean magnitude, relative to the sample's, before the random m ~ U(0, 1).
GLOBAL_MOTION_STRENGTHS: dict[str, float] = {"light": 2.0, "medium": 4.0, "strong": 8.0}
DEFAULT_GLOBAL_MOTION = DEFAULT_AUGMENTATION
_MAG_EPS = 1e-12


def parse_global_motion(name: str) -> tuple[str, float]:
    """``"globalmotion.<Model>.<light|medium|strong>"`` → ``(model name, α)``; ValueError if bad."""
    parts = name.split(".") if isinstance(name, str) else []
    if len(parts) != 3 or parts[0] != "globalmotion":
        raise ValueError(
            f"bad flow augmentation {name!r}: expected 'globalmotion.<Model>.<strength>', "
            f"e.g. {DEFAULT_GLOBAL_MOTION!r}"
        )
    _, model, strength = parts
    if model not in MOTION_MODELS:
        raise ValueError(
            f"bad flow augmentation {name!r}: unknown motion model {model!r}; "
            f"valid: {', '.join(sorted(MOTION_MODELS))}"
        )
    if strength not in GLOBAL_MOTION_STRENGTHS:
        raise ValueError(
            f"bad flow augmentation {name!r}: unknown strength {strength!r}; "
            f"valid: {', '.join(GLOBAL_MOTION_STRENGTHS)}"
        )
    return model, GLOBAL_MOTION_STRENGTHS[strength]


def _mean_magnitude(flow: Tensor) -> Tensor:
    """``(B, 2, T, H, W)`` → ``(B,)`` mean of sqrt(u² + v²), pixels."""
    return flow.pow(2).sum(dim=1).sqrt().flatten(1).mean(dim=1)


def global_motion_augmentation(
    flow: Tensor,
    name: str = DEFAULT_GLOBAL_MOTION,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Add a random global parametric motion to each sample.

    Per sample: draw coefficients uniform in [-0.5, 0.5] for the named model (its free
    parameters, for a coupled one), giving a flow
    g; rescale g so its mean magnitude is α × the sample's mean flow magnitude (α = 2, 4, 8
    for light, medium, strong); return ``flow + m · g`` with m ~ U(0, 1). A zero flow stays
    zero (nothing to scale against).

    Args:
        flow: ``(B, 2, T, H, W)`` or ``(2, T, H, W)`` float, pixels.
        name: ``"globalmotion.<Model>.<light|medium|strong>"``.
        generator: source of randomness (draws happen on the generator's device, default CPU).

    Returns:
        Augmented flow, same shape, dtype and device; the input is not modified.
    """
    model, alpha = parse_global_motion(name)
    single = flow.dim() == 4
    x = flow.unsqueeze(0) if single else flow
    if x.dim() != 5 or x.shape[1] != 2:
        raise ValueError(f"flow must be (B, 2, T, H, W) or (2, T, H, W), got {tuple(flow.shape)}")
    b, _, t, h, w = x.shape
    gen_device = generator.device if generator is not None else torch.device("cpu")
    k = len(MOTION_MODELS[model])
    tied = expansion(model, device=x.device, dtype=x.dtype)
    if tied is None:
        coeffs = torch.rand(b, 1, 2, k, generator=generator, device=gen_device) - 0.5
    else:  # a coupled model: draw its free parameters, then lay them out as θ
        coeffs = torch.rand(b, 1, n_params(model), generator=generator, device=gen_device) - 0.5
    m = torch.rand(b, generator=generator, device=gen_device)
    coeffs = coeffs.to(device=x.device, dtype=x.dtype)
    if tied is not None:
        coeffs = torch.einsum("ckp,blp->blck", tied, coeffs)
    m = m.to(device=x.device, dtype=x.dtype)

    g = flow_from_theta(coeffs, basis(model, t, h, w, device=x.device, dtype=x.dtype))[:, 0]
    target = alpha * _mean_magnitude(x)
    gain = m * target / (_mean_magnitude(g) + _MAG_EPS)
    out = x + gain.view(b, 1, 1, 1, 1) * g
    return out[0] if single else out


def _check_noise_args(x: Tensor, p: float, generator: torch.Generator | None) -> torch.device:
    """Refuse a bad probability or input shape; the device the draws happen on."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be in [0, 1], got {p}")
    if x.dim() != 5:
        raise ValueError(f"x must be (B, C, T, H, W), got {tuple(x.shape)}")
    return generator.device if generator is not None else torch.device("cpu")


def perturb_input_noise(
    x: Tensor,
    p: float = 0.2,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Replace, with probability ``p`` per sample, one random time slice by Gaussian noise.

    The noise has, per channel, the mean and (biased) standard deviation over space of the
    slice it replaces, so the perturbed frame keeps plausible statistics but no structure.

    Args:
        x: ``(B, C, T, H, W)`` network input (flow, pixels).
        p: probability in [0, 1] that a sample is perturbed.
        generator: source of randomness (draws on the generator's device, default CPU).

    Returns:
        A new tensor, same shape; ``x`` is left untouched. Exactly zero or one time slice
        differs per sample.
    """
    gen_device = _check_noise_args(x, p, generator)
    b, c, t, h, w = x.shape
    apply = torch.rand(b, generator=generator, device=gen_device) < p
    slot = torch.randint(0, t, (b,), generator=generator, device=gen_device)
    noise = torch.randn(b, c, h, w, generator=generator, device=gen_device)
    apply, slot = apply.to(x.device), slot.to(x.device)
    noise = noise.to(device=x.device, dtype=x.dtype)

    rows = torch.arange(b, device=x.device)
    chosen = x[rows, :, slot]  # (B, C, H, W)
    mean = chosen.mean(dim=(-2, -1), keepdim=True)
    std = chosen.std(dim=(-2, -1), keepdim=True, unbiased=False)
    replaced = torch.where(apply.view(b, 1, 1, 1), noise * std + mean, chosen)
    out = x.clone()
    out[rows, :, slot] = replaced
    return out


def perturb_input_noise_batch(
    x: Tensor,
    p: float = 0.2,
    generator: torch.Generator | None = None,
) -> Tensor:
    """The original's input noise: with probability ``p`` per **batch**, one time index (the
    same for every sample) is replaced by ``randn · var + mean``.

    ``var`` (the unbiased variance, not the standard deviation) and ``mean`` are taken per
    sample and channel over (H, W) of the slice replaced. The original applies it in the
    network's forward pass, so validation batches are perturbed too.

    Args:
        x: ``(B, C, T, H, W)`` network input (flow, pixels).
        p: probability in [0, 1] that the batch is perturbed.
        generator: source of randomness (draws on the generator's device, default CPU).

    Returns:
        A new tensor, same shape; ``x`` is left untouched.
    """
    gen_device = _check_noise_args(x, p, generator)
    b, c, t, h, w = x.shape
    # Drawn in this order every call, applied or not, so the stream does not depend on data.
    apply = bool(torch.rand(1, generator=generator, device=gen_device)[0] < p)
    slot = int(torch.randint(0, t, (1,), generator=generator, device=gen_device)[0])
    noise = torch.randn(b, c, h, w, generator=generator, device=gen_device)
    out = x.clone()
    if apply:
        chosen = x[:, :, slot]
        var = chosen.var(dim=(-2, -1), keepdim=True)
        mean = chosen.mean(dim=(-2, -1), keepdim=True)
        out[:, :, slot] = noise.to(device=x.device, dtype=x.dtype) * var + mean
    return out


NOISE_FUNCTIONS = {"sample": perturb_input_noise, "batch": perturb_input_noise_batch}
