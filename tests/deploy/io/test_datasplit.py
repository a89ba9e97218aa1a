from __future__ import annotations

from pathlib import Path

import pytest

from stseg_deploy.errors import DataSplitError
from stseg_deploy.io.datasplit import read_datasplit, resolve, window_centres


def _write(tmp_path: Path, text: str, split: str = "train") -> Path:
    prefix = tmp_path / "Split"
    (tmp_path / f"Split_{split}.csv").write_text(text)
    return prefix


def test_real_davis_split_parses(shared_data: Path) -> None:
    table = read_datasplit(shared_data / "DAVIS_D16Split", "val")
    assert len(table) == 1356
    assert table["Sequence"].nunique() == 20
    first = table.iloc[0]
    assert first["Sequence"] == "blackswan" and first["Sequence_Index"] == 0
    assert first["Flow"].endswith("blackswan/00000.flo")
    assert first["GtMask"].endswith("blackswan/00000.png")
    # Every row except the two ends of each sequence has a window.
    assert len(window_centres(table)) == 1356 - 2 * 20


def test_optional_columns_are_derived(tmp_path: Path) -> None:
    prefix = _write(tmp_path, "Flow,Extra\nb/10.flo,x\nb/2.flo,y\na/1.flo,z\nb/1.flo,w\n")
    table = read_datasplit(prefix, "train")
    assert list(table["Sequence"]) == ["a", "b", "b", "b"]
    assert list(table["Flow"]) == ["a/1.flo", "b/1.flo", "b/2.flo", "b/10.flo"]
    assert list(table["Sequence_Index"]) == [0, 0, 1, 2]
    assert table["GtMask"].isna().all()
    assert window_centres(table) == [(1, 2, 3)]


def test_gaps_break_windows(tmp_path: Path) -> None:
    rows = "\n".join(f"s/{i}.flo,s,{i}" for i in (0, 1, 2, 4, 5, 6))
    table = read_datasplit(_write(tmp_path, "Flow,Sequence,Sequence_Index\n" + rows + "\n"), "train")
    assert window_centres(table) == [(0, 1, 2), (3, 4, 5)]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Image,GtMask\na.jpg,a.png\n", r"missing column\(s\) \['Flow'\]"),
        ("Flow\n", "no rows"),
        ("Flow,Sequence_Index\na.flo,one\n", "Sequence_Index must be an integer, bad on CSV line"),
        ("Flow,Sequence,Sequence_Index\na.flo,s,0\nb.flo,s,0\n", "duplicate"),
        ("Flow,GtMask\na.flo,a.png\n,b.png\n", "empty Flow cell on CSV line"),
    ],
)
def test_bad_csv(tmp_path: Path, text: str, message: str) -> None:
    prefix = _write(tmp_path, text)
    with pytest.raises(DataSplitError, match=message) as info:
        read_datasplit(prefix, "train")
    assert "Split_train.csv" in str(info.value)


def test_missing_split_and_bad_name(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="Split_val.csv"):
        read_datasplit(tmp_path / "Split", "val")
    with pytest.raises(ValueError, match="unknown split"):
        read_datasplit(tmp_path / "Split", "validation")


def test_resolve(tmp_path: Path) -> None:
    assert resolve(tmp_path, "a/b.flo") == tmp_path / "a/b.flo"
    assert resolve(tmp_path, "/abs/b.flo") == Path("/abs/b.flo")




def test_write_datasplit_orders_columns_and_reads_back(tmp_path) -> None:
    import pandas as pd

    from stseg_deploy.io.datasplit import COLUMNS, read_datasplit, write_datasplit

    table = pd.DataFrame({"Sequence": ["a", "a"], "Flow": ["a/0.flo", "a/1.flo"], "Sequence_Index": [0, 1]})
    path = write_datasplit(tmp_path / "S_val.csv", table)
    assert path.read_text().splitlines() == ["Flow,Sequence,Sequence_Index", "a/0.flo,a,0", "a/1.flo,a,1"]
    assert list(read_datasplit(tmp_path / "S", "val")["Flow"]) == ["a/0.flo", "a/1.flo"]
    assert COLUMNS[0] == "Flow" and not list(tmp_path.glob(".*"))  # no temp file left
    with pytest.raises(ValueError, match="Flow required"):
        write_datasplit(tmp_path / "S_test.csv", table.drop(columns=["Flow"]))
    with pytest.raises(ValueError, match=r"got \['Flow', 'Mask'\]"):
        write_datasplit(tmp_path / "S_test.csv", pd.DataFrame({"Flow": ["x"], "Mask": ["y"]}))
    assert not (tmp_path / "S_test.csv").exists()
