"""Tests for stseg_train.config: the one source of defaults and the named presets."""

from __future__ import annotations

import dataclasses

import pytest

from stseg_train.config import PRESETS, TrainConfig, default, preset_values


def test_default_preset_is_the_dataclass_defaults() -> None:
    values = preset_values("default")
    for f in dataclasses.fields(TrainConfig):
        if f.name in ("data_file", "base_dir", "save_dir", "preset"):
            continue
        assert values[f.name] == default(f.name), f.name
    assert values["preset"] == "default"


def test_paper_preset_is_the_originals_setting() -> None:
    cfg = TrainConfig("d", "b", "s", **preset_values("paper"))
    assert cfg.image_size == (128, 224) and cfg.n_labels == 4 and cfg.features_start == 32
    assert (cfg.batch_size, cfg.lr, cfg.epochs, cfg.weight_decay) == (10, 1e-4, 1000, 0.0)
    assert cfg.param_model == "QuadraticFullPT"
    assert cfg.flow_augmentation == ("globalmotion.QuadraticFullPT.light",)
    assert (cfg.norm, cfg.solver, cfg.input_noise_mode, cfg.resize, cfg.potts_mask) == (
        "instance3d", "lbfgs-paper", "batch", "plain", "all",
    )
    assert cfg.input_noise and cfg.input_noise_prob == 0.2 and cfg.train_results
    assert cfg.to_dict()["preset"] == "paper"


def test_every_preset_names_only_real_fields_and_builds() -> None:
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    for name, values in PRESETS.items():
        assert set(values) <= fields, name
        TrainConfig("d", "b", "s", **preset_values(name))


def test_unknown_names_are_refused_with_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="default, small, paper"):
        preset_values("fast")
    with pytest.raises(ValueError, match="norm must be one of frame, instance3d"):
        TrainConfig("d", "b", "s", norm="batch")
    with pytest.raises(ValueError, match="resize must be one of antialias, plain"):
        TrainConfig("d", "b", "s", resize="area")


def test_the_torch_free_choice_lists_match_the_modules_that_implement_them() -> None:
    """config names the choices without importing torch; the modules hold the code."""
    from stseg_train import config
    from stseg_train.augment import NOISE_FUNCTIONS
    from stseg_train.model import NORMS

    assert set(config.NORMS) == set(NORMS)
    assert set(config.NOISE_MODES) == set(NOISE_FUNCTIONS)
