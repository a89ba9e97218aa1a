"""Function-preserving widening of a trained U-Net: start a wider network from a narrower
one's weights, so that more features can be trained without starting from scratch.

Each tensor's channels at level k grow from ``f·2^k`` to ``f'·2^k``. The checkpoint's
channels keep their weights in the first positions (the skip concatenations keep their two
halves apart); a new channel's incoming weights keep the fresh network's random values and
its outgoing weights start at zero. So the wider network computes exactly what the narrow
one did (its normalisation is per channel, and the new channels feed nothing yet), and
training grows the new channels from there: the gradient of a zero outgoing weight is the
new channel's activation times the error, which is not zero.
"""

from __future__ import annotations

import re

import torch
from torch import nn

__all__ = ["widen_state_dict"]

# Inputs of the decoder's first conv are [skip, upsampled] concatenated: two blocks of channels.
_CONCAT_INPUT = re.compile(r"^up_convs\.\d+\.block\.0\.weight$")


def _input_dim(module: nn.Module) -> int | None:
    """Which dimension of ``module.weight`` runs over its input channels (None: not a conv)."""
    if isinstance(module, nn.ConvTranspose3d):
        return 0
    if isinstance(module, nn.Conv3d):
        return 1
    return None


def _blocks(name: str, dim: int, input_dim: int | None) -> int:
    return 2 if dim == input_dim and _CONCAT_INPUT.match(name) else 1


def widen_state_dict(weights: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """A state dict for ``model`` (a :class:`~stseg_train.model.UNet3D`) made from the weights
    of a narrower one with the same levels, segments and normalisation.

    Args:
        weights: the narrow network's state dict; every channel count at most ``model``'s.
        model: the wide network, freshly initialised (its random values fill the new channels'
            incoming weights, norms and biases).

    Returns:
        a state dict ``model.load_state_dict`` takes, whose network gives the same output
        as the narrow one on any input (up to float rounding).

    Raises:
        ValueError: a tensor is missing, has another rank, or is wider in ``weights``.
    """
    modules = dict(model.named_modules())
    out: dict[str, torch.Tensor] = {}
    for name, fresh in model.state_dict().items():
        if name not in weights:
            raise ValueError(f"the checkpoint has no {name!r}")
        old = weights[name].to(fresh.dtype)
        if old.dim() != fresh.dim() or any(o > n for o, n in zip(old.shape, fresh.shape)):
            raise ValueError(f"{name}: {tuple(old.shape)} in the checkpoint does not fit in {tuple(fresh.shape)}")
        owner = modules.get(name.rpartition(".")[0])
        input_dim = _input_dim(owner) if name.endswith(".weight") else None
        new = fresh.detach().clone()
        if input_dim is not None:  # weights reading a new input channel: zero, so it feeds nothing yet
            blocks = _blocks(name, input_dim, input_dim)
            ob, nb = old.shape[input_dim] // blocks, new.shape[input_dim] // blocks
            for b in range(blocks):
                new.narrow(input_dim, b * nb + ob, nb - ob).zero_()
        # Copy each old block of channels into the start of its new block, dim by dim.
        index: list[torch.Tensor] = []
        for dim, (o, n) in enumerate(zip(old.shape, new.shape)):
            blocks = _blocks(name, dim, input_dim)
            if o % blocks or n % blocks:
                raise ValueError(f"{name}: dimension {dim} ({o} -> {n}) does not split into {blocks} blocks")
            ob, nb = o // blocks, n // blocks
            index.append(torch.cat([torch.arange(ob) + b * nb for b in range(blocks)]))
        new[torch.meshgrid(*index, indexing="ij")] = old
        out[name] = new
    return out

