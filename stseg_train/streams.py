"""The training run's random draws, each from a generator seeded by what the draw is for.

A draw keyed by (seed, stream, epoch, dataset index, ...) rather than taken from one shared
generator is the same whichever process makes it, in whatever order, and after a resume:
that is what lets a resumed or data-parallel run repeat a straight single-process one.
"""

from __future__ import annotations

import hashlib
import random

import numpy as np
import torch

from .augment import global_motion_augmentation, perturb_input_noise, perturb_input_noise_batch
from .config import TrainConfig

# What a random draw is for: each stream gets its own generator per key (see generator).
AUGMENT, SAMPLE_NOISE, BATCH_NOISE, VAL_NOISE = range(4)


def seed_globals(seed: int) -> None:
    """Seed torch's, NumPy's and Python's global generators: the network's initial weights come
    from torch's; the keyed streams below never touch them."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def generator(seed: int, stream: int, *key: int) -> torch.Generator:
    """A generator for one draw, seeded by (seed, stream, key): a sample's augmentation
    depends on (epoch, its index) only, so it is the same whichever process draws it,
    in whatever order, and after a resume."""
    digest = hashlib.blake2b(repr((seed, stream, *key)).encode(), digest_size=8).digest()
    return torch.Generator(device="cpu").manual_seed(int.from_bytes(digest, "little") >> 1)


def epoch_order(seed: int, epoch: int, size: int) -> list[int]:
    """The training set's order in ``epoch``: it depends on (seed, epoch) only, so a resumed
    epoch replays the same batches."""
    gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(size, generator=gen).tolist()


def augmented(flow: torch.Tensor, indices: list[int], cfg: TrainConfig, epoch: int) -> torch.Tensor:
    """``flow`` (B, 2, 3, h, w) with each sample's global-motion augmentation, drawn from
    its own generator (epoch, dataset index)."""
    if not cfg.flow_augmentation:
        return flow
    out = []
    for i, index in enumerate(indices):
        gen = generator(cfg.seed, AUGMENT, epoch, index)
        sample = flow[i : i + 1]
        for name in cfg.flow_augmentation:
            sample = global_motion_augmentation(sample, name, generator=gen)
        out.append(sample)
    return torch.cat(out)


def noisy_input(
    flow: torch.Tensor, indices: list[int], cfg: TrainConfig, epoch: int, batch_number: int, rank: int
) -> torch.Tensor:
    """The network input: ``flow`` with the input noise, per sample (keyed by epoch and
    index) or, in the original's batch mode, one draw per process's batch (keyed by
    epoch, batch number and rank)."""
    if not cfg.input_noise:
        return flow
    if cfg.input_noise_mode == "batch":
        gen = generator(cfg.seed, BATCH_NOISE, epoch, batch_number, rank)
        return perturb_input_noise_batch(flow, p=cfg.input_noise_prob, generator=gen)
    return torch.cat([
        perturb_input_noise(flow[i : i + 1], p=cfg.input_noise_prob, generator=generator(cfg.seed, SAMPLE_NOISE, epoch, index))
        for i, index in enumerate(indices)
    ])


def noisy_val_input(flow: torch.Tensor, cfg: TrainConfig, epoch: int, batch_number: int, rank: int) -> torch.Tensor:
    """The network input for validation: the original perturbs validation inputs too, in
    batch mode only; keyed by the epoch, a validation is reproducible and leaves the
    training draws alone."""
    if cfg.input_noise and cfg.input_noise_mode == "batch":
        gen = generator(cfg.seed, VAL_NOISE, epoch, batch_number, rank)
        return perturb_input_noise_batch(flow, p=cfg.input_noise_prob, generator=gen)
    return flow
