"""stseg train: the ST-MS network, its unsupervised losses, training and export (needs torch)."""

from __future__ import annotations

from .config import TrainConfig
from .model import UNet3D

__all__ = ["TrainConfig", "UNet3D"]
