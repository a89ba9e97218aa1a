"""stseg train: the ST-MS network, its unsupervised losses, training and export (needs torch).

Import the submodules (``stseg_train.model``, ``stseg_train.trainer``, ...): this package root
imports nothing, so the command lines can say that torch is missing instead of failing on an
import, on installs without it.
"""
