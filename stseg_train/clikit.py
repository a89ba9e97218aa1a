"""What the training package's command lines share: logging with progress at INFO, and a
clear message where torch is missing (a deploy-only install)."""

from __future__ import annotations

import logging

import click

from stseg_deploy.cli.kit import setup_logging


def setup_train_logging(verbose: bool, main: bool = True) -> None:
    """The shared logging setup, with our own progress (epoch lines, resume) at INFO.

    Other libraries (onnxscript, onnx_ir) stay at the shared WARNING level, and so do the
    processes other than rank 0 under torchrun, so progress is told once.
    """
    setup_logging(verbose)
    for name in ("stseg_train", "stseg_deploy", "stseg_kernels"):
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else logging.INFO if main else logging.WARNING)


def missing_torch(command: str) -> str | None:
    """The message for a deploy-only install, where torch is absent; None when it is there."""
    import importlib.util

    if importlib.util.find_spec("torch") is not None:
        return None
    return (
        f"{command} needs torch: pip install 'stseg[train]' with torch pinned (the README says how); "
        "stseg-infer, stseg-eval, stseg-flow and stseg-viz run without it"
    )


def require_torch(command: str) -> None:
    """A clear message instead of an import traceback on a deploy-only install."""
    message = missing_torch(command)
    if message:
        raise click.ClickException(message)
