"""stseg_train.streams: a draw depends on its key alone, so it is the same whichever process
makes it, in whatever batch and order, and after a resume; other keys draw otherwise."""

from __future__ import annotations

import random

import numpy as np
import torch

from stseg_train import streams
from stseg_train.config import TrainConfig
from stseg_train.streams import AUGMENT, BATCH_NOISE, SAMPLE_NOISE, VAL_NOISE


def _cfg(**values) -> TrainConfig:
    return TrainConfig(data_file="d", base_dir="b", save_dir="s", **values)


def _draws(gen: torch.Generator) -> torch.Tensor:
    return torch.rand(8, generator=gen)


def _flow(batch: int = 4) -> torch.Tensor:
    return torch.randn(batch, 2, 3, 16, 24, generator=torch.Generator().manual_seed(5))


def test_the_same_key_gives_the_same_draws_and_other_keys_differ() -> None:
    same = _draws(streams.generator(123, AUGMENT, 2, 7))
    torch.testing.assert_close(_draws(streams.generator(123, AUGMENT, 2, 7)), same, rtol=0, atol=0)
    others = [
        streams.generator(124, AUGMENT, 2, 7),  # another seed
        streams.generator(123, SAMPLE_NOISE, 2, 7),  # another stream
        streams.generator(123, AUGMENT, 3, 7),  # another epoch
        streams.generator(123, AUGMENT, 7, 2),  # the key's order counts
        streams.generator(123, AUGMENT, 2, 7, 0),  # a longer key
    ]
    for gen in others:
        assert not torch.equal(_draws(gen), same)
    assert len({AUGMENT, SAMPLE_NOISE, BATCH_NOISE, VAL_NOISE}) == 4


def test_the_streams_leave_the_global_generators_alone() -> None:
    saved = (torch.get_rng_state(), np.random.get_state(), random.getstate())
    try:
        streams.seed_globals(3)
        expected = (torch.rand(3), np.random.rand(3), random.random())
        streams.seed_globals(3)
        _draws(streams.generator(3, AUGMENT, 0, 0))
        got = (torch.rand(3), np.random.rand(3), random.random())
    finally:
        torch.set_rng_state(saved[0])
        np.random.set_state(saved[1])
        random.setstate(saved[2])
    torch.testing.assert_close(got[0], expected[0], rtol=0, atol=0)
    np.testing.assert_array_equal(got[1], expected[1])
    assert got[2] == expected[2]


def test_an_epochs_order_depends_on_seed_and_epoch_only() -> None:
    order = streams.epoch_order(123, 4, 50)
    assert sorted(order) == list(range(50))
    assert streams.epoch_order(123, 4, 50) == order
    assert streams.epoch_order(123, 5, 50) != order
    assert streams.epoch_order(124, 4, 50) != order


def test_a_samples_augmentation_does_not_depend_on_its_batch() -> None:
    cfg = _cfg()
    flow = _flow()
    whole = streams.augmented(flow, [10, 11, 12, 13], cfg, epoch=1)
    assert not torch.equal(whole, flow)
    # Sample 12 alone, or first in another batch, gets the same motion added.
    alone = streams.augmented(flow[2:3], [12], cfg, epoch=1)
    reordered = streams.augmented(flow[[2, 0]], [12, 10], cfg, epoch=1)
    torch.testing.assert_close(alone[0], whole[2], rtol=0, atol=0)
    torch.testing.assert_close(reordered[0], whole[2], rtol=0, atol=0)
    assert not torch.equal(streams.augmented(flow, [10, 11, 12, 13], cfg, epoch=2), whole)
    assert streams.augmented(flow, [10, 11, 12, 13], _cfg(flow_augmentation=()), epoch=1) is flow


def test_sample_noise_is_keyed_by_epoch_and_index() -> None:
    cfg = _cfg(input_noise=True, input_noise_mode="sample", input_noise_prob=1.0)
    flow = _flow()
    whole = streams.noisy_input(flow, [10, 11, 12, 13], cfg, epoch=0, batch_number=0, rank=0)
    assert not torch.equal(whole, flow)
    # Batch number and rank do not matter per sample: the same window gets the same noise.
    moved = streams.noisy_input(flow[3:4], [13], cfg, epoch=0, batch_number=5, rank=1)
    torch.testing.assert_close(moved[0], whole[3], rtol=0, atol=0)
    assert not torch.equal(streams.noisy_input(flow, [10, 11, 12, 13], cfg, 1, 0, 0), whole)
    assert streams.noisy_input(flow, [10, 11, 12, 13], _cfg(input_noise=False), 0, 0, 0) is flow


def test_batch_noise_is_keyed_by_epoch_batch_and_rank_and_validation_has_its_own() -> None:
    cfg = _cfg(input_noise=True, input_noise_mode="batch", input_noise_prob=1.0)
    flow = _flow()
    one = streams.noisy_input(flow, [10, 11, 12, 13], cfg, epoch=0, batch_number=2, rank=0)
    assert not torch.equal(one, flow)
    torch.testing.assert_close(streams.noisy_input(flow, [0, 1, 2, 3], cfg, 0, 2, 0), one, rtol=0, atol=0)
    assert not torch.equal(streams.noisy_input(flow, [10, 11, 12, 13], cfg, 0, 2, 1), one)  # another rank
    assert not torch.equal(streams.noisy_input(flow, [10, 11, 12, 13], cfg, 0, 3, 0), one)  # another batch
    val = streams.noisy_val_input(flow, cfg, epoch=0, batch_number=2, rank=0)
    assert not torch.equal(val, flow) and not torch.equal(val, one)
    torch.testing.assert_close(streams.noisy_val_input(flow, cfg, 0, 2, 0), val, rtol=0, atol=0)


def test_validation_inputs_are_left_alone_but_in_batch_mode() -> None:
    flow = _flow()
    for cfg in (_cfg(input_noise=True, input_noise_mode="sample", input_noise_prob=1.0), _cfg(input_noise=False)):
        assert streams.noisy_val_input(flow, cfg, 0, 0, 0) is flow
