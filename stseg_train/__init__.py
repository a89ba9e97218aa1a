"""stseg train: the ST-MS network, its unsupervised losses, training and export (needs torch).

Submodules are imported on demand so numpy-only parts (``stseg_train.synth``,
``stseg_train.synth_video``) load without torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_LAZY = {"TrainConfig": "stseg_train.config", "UNet3D": "stseg_train.model"}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'stseg_train' has no attribute {name!r}")
