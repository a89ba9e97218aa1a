"""Fixtures of the deploy tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from evalkit import infer


@pytest.fixture
def outputs(tmp_path: Path) -> Path:
    """tmp_path holding out/cat: six frames segmented by the fake model."""
    infer(tmp_path, "cat")
    return tmp_path
