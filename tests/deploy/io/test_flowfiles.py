"""stseg_deploy.io.flowfiles: a folder's flow files in natural order, and folders that hold none or mix formats."""

from __future__ import annotations

from pathlib import Path

import pytest

from stseg_deploy.errors import StsegInputError
from stseg_deploy.io.flowfiles import list_flow_files, natural_key


def test_list_flow_files(tmp_path: Path) -> None:
    for name in ("f10.flo", "f2.flo", "f1.flo", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in list_flow_files(tmp_path)] == ["f1.flo", "f2.flo", "f10.flo"]
    assert natural_key("a2") < natural_key("a10")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(StsegInputError, match="no flow files"):
        list_flow_files(empty)
    with pytest.raises(FileNotFoundError, match="nowhere"):
        list_flow_files(tmp_path / "nowhere")
    (tmp_path / "x.npy").write_bytes(b"")
    with pytest.raises(StsegInputError, match="mixes flow formats"):
        list_flow_files(tmp_path)
