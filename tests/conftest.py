"""Fixtures shared by all test packages."""

from __future__ import annotations

from pathlib import Path

import pytest

# shared/ sits beside the repository, as it does for developers and CI.
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """../shared/data, or a skip saying why it is missing."""
    if not (SHARED_DATA / "blackswan").is_dir():
        pytest.skip(f"real sample flows not found at {SHARED_DATA} (shared/ is not beside the clone)")
    return SHARED_DATA
