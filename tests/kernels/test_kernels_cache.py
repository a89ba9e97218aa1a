"""stseg_kernels._cache: numba's cache files go when any kernel source changes, and stay
while none does."""

from __future__ import annotations

import os
from pathlib import Path

from stseg_kernels import _counting
from stseg_kernels._cache import STAMP_NAME, drop_stale_cache, numba_cache_dir, sources_stamp


def _tree(tmp_path: Path) -> tuple[Path, Path]:
    sources = tmp_path / "pkg"
    cache = sources / "__pycache__"
    cache.mkdir(parents=True)
    (sources / "linking.py").write_text("def f(): pass\n")
    (sources / "_counting.py").write_text("def g(): pass\n")
    return sources, cache


def _fill(cache: Path) -> None:
    for name in ("linking.f-1.py311.nbi", "linking.f-1.py311.1.nbc", "_counting.g-1.py311.nbi"):
        (cache / name).write_bytes(b"compiled")
    (cache / "linking.cpython-311.pyc").write_bytes(b"bytecode")


def test_cache_is_dropped_when_another_file_changes_and_kept_otherwise(tmp_path: Path) -> None:
    sources, cache = _tree(tmp_path)
    _fill(cache)
    assert drop_stale_cache(sources, cache)  # no stamp yet: whatever is there may be stale
    assert sorted(p.name for p in cache.iterdir()) == sorted([STAMP_NAME, "linking.cpython-311.pyc"])
    assert (cache / STAMP_NAME).read_text() == sources_stamp(sources)
    _fill(cache)
    assert not drop_stale_cache(sources, cache)
    assert len(list(cache.glob("*.nb?"))) == 3
    # Only the helper's file changes (numba's own check looks at linking.py only).
    helper = sources / "_counting.py"
    helper.write_text("def g(): return 1\n")
    os.utime(helper, ns=(10**18, 10**18))
    assert drop_stale_cache(sources, cache)
    assert not list(cache.glob("*.nb?")) and (cache / "linking.cpython-311.pyc").exists()
    assert not drop_stale_cache(sources, cache)


def test_stamp_lists_each_source_with_time_and_size(tmp_path: Path) -> None:
    sources, _ = _tree(tmp_path)
    os.utime(sources / "linking.py", ns=(5, 7))
    lines = sources_stamp(sources).splitlines()
    size = len("def f(): pass\n")
    assert lines[1] == f"linking.py 7 {size}"
    assert [line.split()[0] for line in lines] == ["_counting.py", "linking.py"]


def test_a_missing_or_unwritable_cache_folder_is_not_an_error(tmp_path: Path) -> None:
    sources, cache = _tree(tmp_path)
    cache.rmdir()
    assert drop_stale_cache(sources, cache)
    assert not cache.exists()


def test_the_package_checks_the_folder_numba_really_uses() -> None:
    sources = Path(_counting.__file__).parent
    found = numba_cache_dir(_counting._hist16, sources)
    assert found == Path(_counting._hist16._cache._cache_path)
    assert (found / STAMP_NAME).read_text() == sources_stamp(sources)
    assert numba_cache_dir(object(), sources) == sources / "__pycache__"


def test_hidden_and_vanishing_files_are_not_sources(tmp_path: Path) -> None:
    """An editor's lock file (a dangling link named .#linking.py) must not break the import."""
    sources, cache = _tree(tmp_path)
    (sources / ".#linking.py").symlink_to(tmp_path / "nowhere")
    stamp = sources_stamp(sources)
    assert [line.split()[0] for line in stamp.splitlines()] == ["_counting.py", "linking.py"]
    assert drop_stale_cache(sources, cache) and not drop_stale_cache(sources, cache)
    assert drop_stale_cache(tmp_path / "missing", tmp_path / "missing" / "__pycache__")
