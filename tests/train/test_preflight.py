"""stseg_train.preflight: a device or a name that cannot work is refused before any data is
read, with the choices that would."""

from __future__ import annotations

import pytest
import torch

from stseg_train.config import TrainConfig
from stseg_train.preflight import check_names, resolve_device


def _cfg(**values) -> TrainConfig:
    return TrainConfig(data_file="d", base_dir="b", save_dir="s", **values)


def test_auto_takes_cuda_when_there_is_one() -> None:
    assert resolve_device("auto") == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is there")
def test_cuda_without_cuda_is_refused() -> None:
    with pytest.raises(ValueError, match="device 'cuda:1' requested but CUDA is not available"):
        resolve_device("cuda:1")


def test_the_defaults_pass() -> None:
    check_names(_cfg())


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"regularisation": {"nope": 1.0}}, r"unknown regulariser\(s\) \['nope'\]; valid: \["),
        ({"param_model": "Spline"}, r"unknown motion model 'Spline'; valid: \["),
        ({"distance": "l3"}, r"unknown distance 'l3'; valid: \['l1'"),
        ({"flow_augmentation": ("globalmotion.Foo.light",)}, "Foo"),
    ],
)
def test_unknown_names_are_refused_with_the_valid_ones(values: dict, message: str) -> None:
    cfg = _cfg(**values)  # the config takes them: the names are the modules' to know
    with pytest.raises(ValueError, match=message):
        check_names(cfg)
