"""Output units: complete-or-absent folders, locks that die with their holder, no clobbering."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from stseg_deploy.errors import StsegInputError
from stseg_deploy.io.outdir import (
    OutputBusyError,
    OutputLock,
    OutputUnit,
    StsegOutputError,
    check_inputs_outside,
    check_name,
    read_marker,
)

TOOL, MARKER = "stseg-test", "done.json"


def _write_unit(target: Path, files: dict[str, str], **record) -> None:
    with OutputUnit(target, TOOL, MARKER) as unit:
        for name, text in files.items():
            (unit.tmp / name).parent.mkdir(parents=True, exist_ok=True)
            (unit.tmp / name).write_text(text)
        unit.commit(record)


def _tree(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): p.read_text() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_commit_writes_marker_last_and_lists_files(tmp_path: Path) -> None:
    target = tmp_path / "out" / "seq"
    _write_unit(target, {"a.txt": "1", "sub/b.txt": "2"}, answer=42)
    record = read_marker(target, MARKER, TOOL)
    assert record["answer"] == 42 and record["stseg"]["files"] == ["a.txt", "sub/b.txt"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["seq"]  # no temp folder, no lock
    assert read_marker(target, MARKER, "another-tool") is None


def test_rerun_replaces_only_after_success(tmp_path: Path) -> None:
    target = tmp_path / "seq"
    _write_unit(target, {"a.txt": "old", "extra.txt": "old"})
    before = _tree(target)
    with pytest.raises(RuntimeError, match="boom"):
        with OutputUnit(target, TOOL, MARKER) as unit:
            (unit.tmp / "a.txt").write_text("new")
            raise RuntimeError("boom")
    assert _tree(target) == before
    with pytest.raises(KeyboardInterrupt):
        with OutputUnit(target, TOOL, MARKER) as unit:
            (unit.tmp / "a.txt").write_text("new")
            raise KeyboardInterrupt
    assert _tree(target) == before
    _write_unit(target, {"a.txt": "new"})
    assert set(_tree(target)) == {"a.txt", MARKER}  # the earlier run's extra file is gone
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seq"]


def test_foreign_files_are_refused_and_kept(tmp_path: Path) -> None:
    target = tmp_path / "walk"
    target.mkdir()
    (target / "00000.png").write_text("a user's frame")
    with pytest.raises(StsegOutputError, match=r"walk: holds files that stseg-test did not write \(00000.png\)"):
        _write_unit(target, {"x": "1"})
    assert _tree(target) == {"00000.png": "a user's frame"}
    # Our own output with a file added by hand: also refused, nothing deleted.
    _write_unit(tmp_path / "mine", {"x": "1"})
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    with pytest.raises(StsegOutputError, match="holds files that stseg-test did not write \\(notes.txt\\)"):
        _write_unit(tmp_path / "mine", {"x": "2"})
    assert (tmp_path / "mine" / "notes.txt").read_text() == "mine"
    assert (tmp_path / "mine" / "x").read_text() == "1"


def test_a_parent_folder_made_by_another_writer_meanwhile_is_taken(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two --workers processes make the same output root: one's mkdir lands between the
    other's is_dir() (not there yet) and exists() (there now). That is a folder, not a file
    in the way: the unit is written under it."""
    root = tmp_path / "out"
    real_is_dir = Path.is_dir
    raced = []

    def is_dir_with_a_writer_racing(self: Path) -> bool:
        answer = real_is_dir(self)
        if self == root and not raced:  # the other writer makes it right after this look
            raced.append(True)
            root.mkdir()
        return answer

    monkeypatch.setattr(Path, "is_dir", is_dir_with_a_writer_racing)
    _write_unit(root / "seq", {"x": "1"})
    assert raced and _tree(root / "seq")["x"] == "1"


def test_a_parent_folder_removed_by_another_writers_clean_up_is_made_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another --workers process made the output root, failed early, and removes it (still
    empty) between this unit's mkdir and its lock file: the root is made again and the unit
    written under it. A root that keeps vanishing ends in the error, not in a loop."""
    from stseg_deploy.io import outdir

    root = tmp_path / "out"
    real_acquire = outdir.OutputLock.acquire
    removals = []

    def acquire_after_a_clean_up(self, times: int) -> None:
        if len(removals) < times:
            removals.append(True)
            root.rmdir()  # the other writer's _remove_made_dirs
        real_acquire(self)

    monkeypatch.setattr(outdir.OutputLock, "acquire", lambda self: acquire_after_a_clean_up(self, 1))
    _write_unit(root / "seq", {"x": "1"})
    assert removals == [True] and _tree(root / "seq")["x"] == "1"

    removals.clear()
    root = tmp_path / "gone"
    monkeypatch.setattr(outdir.OutputLock, "acquire", lambda self: acquire_after_a_clean_up(self, 99))
    with pytest.raises(StsegOutputError, match="gone: removed each time it was made"):
        _write_unit(root / "seq", {"x": "1"})
    assert len(removals) == outdir.PARENT_ATTEMPTS and not root.exists()


def test_empty_folder_is_taken_and_things_in_the_way_are_refused(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    _write_unit(tmp_path / "empty", {"x": "1"})
    assert _tree(tmp_path / "empty")["x"] == "1"
    (tmp_path / "file").write_text("a file")
    with pytest.raises(StsegOutputError, match="file: a file is in the way"):
        _write_unit(tmp_path / "file", {"x": "1"})
    with pytest.raises(StsegOutputError, match="file: is a file, not a folder"):
        _write_unit(tmp_path / "file" / "seq", {"x": "1"})
    (tmp_path / "link").symlink_to(tmp_path / "empty")
    with pytest.raises(StsegOutputError, match="symbolic link"):
        _write_unit(tmp_path / "link", {"x": "1"})
    assert (tmp_path / "file").read_text() == "a file"


def test_folders_made_for_a_failed_run_are_removed(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError):
        with OutputUnit(tmp_path / "a" / "b" / "seq", TOOL, MARKER):
            raise RuntimeError
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("old_state", ["swap cut after the first rename", "clean-up cut"])
def test_next_run_finishes_or_undoes_a_cut_swap(tmp_path: Path, old_state: str) -> None:
    target = tmp_path / "seq"
    _write_unit(target, {"a.txt": "old"})
    old = tmp_path / ".seq.stseg-old"
    if old_state == "swap cut after the first rename":
        os.rename(target, old)  # killed between the two renames: no output at NAME
        _write_unit(tmp_path / "other", {})  # an unrelated run does not touch it
        assert old.exists()
        with pytest.raises(RuntimeError):  # the next run puts the old output back first
            with OutputUnit(target, TOOL, MARKER):
                assert _tree(target)["a.txt"] == "old"
                raise RuntimeError
        assert _tree(target)["a.txt"] == "old" and not old.exists()
    else:
        _write_unit(tmp_path / "spare", {"a.txt": "older"})
        os.rename(tmp_path / "spare", old)  # killed after the swap, before removing the old one
        _write_unit(target, {"a.txt": "new"})
        assert _tree(target)["a.txt"] == "new" and not old.exists()


def test_temp_folders_of_dead_writers_are_removed(tmp_path: Path) -> None:
    stale = tmp_path / ".seq.stseg-tmp.otherhost.123"
    stale.mkdir()
    (stale / "labels.npy").write_text("half")
    _write_unit(tmp_path / "seq", {"x": "1"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seq"]


def test_second_writer_fails_at_once_in_process(tmp_path: Path) -> None:
    with OutputUnit(tmp_path / "seq", TOOL, MARKER):
        with pytest.raises(OutputBusyError, match="seq: already being written by this process"):
            with OutputUnit(tmp_path / "seq", TOOL, MARKER):
                pass
    _write_unit(tmp_path / "seq", {"x": "1"})  # released: the next one goes through


def test_lock_dies_with_its_holder(tmp_path: Path) -> None:
    lock_path = tmp_path / ".seq.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            from stseg_deploy.io.outdir import OutputLock
            OutputLock({str(lock_path)!r}, "seq").acquire()
            print("locked", flush=True)
            time.sleep(60)
        """)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(OutputBusyError, match=rf"being written by another stseg process \(host=\S+ pid={holder.pid} "):
            OutputLock(lock_path, "seq").acquire()
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
        with OutputLock(lock_path, "seq"):
            assert lock_path.exists()
        assert not lock_path.exists()  # released locks leave no file behind
    finally:
        holder.kill()
        holder.wait()


def test_write_errors_name_the_output_not_the_temp_folder(tmp_path: Path) -> None:
    target = tmp_path / "seq"
    _write_unit(target, {"a.txt": "old"})
    with pytest.raises(StsegOutputError) as info:
        with OutputUnit(target, TOOL, MARKER) as unit:
            raise OSError(errno.ENOSPC, "No space left on device", str(unit.tmp / "proba" / "00003.npy"))
    assert str(info.value) == f"{target}: could not write proba/00003.npy: no space left on device; the output there is unchanged"
    assert info.value.errno == errno.ENOSPC
    assert _tree(target)["a.txt"] == "old"
    # An input that cannot be read is not a write error: it passes through as it is.
    with pytest.raises(FileNotFoundError, match="flows/00001.flo"):
        with OutputUnit(target, TOOL, MARKER):
            raise FileNotFoundError(errno.ENOENT, "No such file", "flows/00001.flo")


@pytest.mark.parametrize("name", ["", ".", "..", "../victim", "DAVIS/bear", "a\\b", ".hidden", "tab\there", "x" * 161])
def test_unsafe_names_are_refused(name: str) -> None:
    with pytest.raises(StsegInputError, match="it must be one plain folder name"):
        check_name(name, "split.csv line 3")


def test_safe_names_pass() -> None:
    for name in ("bear", "scooter-black", "clip 01", "été", "a..b"):
        assert check_name(name) == name


def test_outputs_may_not_hold_inputs(tmp_path: Path) -> None:
    (tmp_path / "t" / "walk").mkdir(parents=True)
    frame = tmp_path / "t" / "walk" / "00000.png"
    check_inputs_outside([tmp_path / "out" / "walk"], [frame])  # fine
    with pytest.raises(StsegOutputError, match=r"walk: this output folder would hold the input .*00000.png"):
        check_inputs_outside([tmp_path / "t" / "walk"], [frame])
    with pytest.raises(StsegOutputError, match="would hold the input"):  # the same folder reached by a link
        (tmp_path / "alias").symlink_to(tmp_path / "t")
        check_inputs_outside([tmp_path / "alias" / "walk"], [tmp_path / "t" / "walk"])


def test_marker_must_say_complete(tmp_path: Path) -> None:
    (tmp_path / MARKER).write_text(json.dumps({"stseg": {"tool": TOOL, "complete": False}}))
    assert read_marker(tmp_path, MARKER, TOOL) is None
    (tmp_path / MARKER).write_text("{truncated")
    assert read_marker(tmp_path, MARKER, TOOL) is None


def test_files_added_during_a_rerun_are_kept(tmp_path: Path) -> None:
    target = tmp_path / "seq"
    _write_unit(target, {"a.txt": "old"})
    with pytest.raises(StsegOutputError, match=r"seq: files were added to it while this run was writing \(notes.txt, sub/b.txt\)"):
        with OutputUnit(target, TOOL, MARKER) as unit:
            (unit.tmp / "a.txt").write_text("new")
            (target / "notes.txt").write_text("mine")  # the user, while the rerun works
            (target / "sub").mkdir()
            (target / "sub" / "b.txt").write_text("mine too")
            unit.commit({})
    tree = _tree(target)
    assert tree["a.txt"] == "old" and tree["notes.txt"] == "mine" and tree["sub/b.txt"] == "mine too" and MARKER in tree
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seq"]


def test_current_folder_and_relative_names(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StsegOutputError, match="is the current folder or holds it"):
        _write_unit(Path("."), {"x": "1"})
    with pytest.raises(StsegOutputError, match="is the current folder or holds it"):
        _write_unit(tmp_path.parent, {"x": "1"})
    _write_unit(Path("a/../b"), {"x": "1"})
    assert _tree(tmp_path / "b")["x"] == "1"


def test_too_long_names_are_refused_up_front(tmp_path: Path) -> None:
    with pytest.raises(StsegOutputError, match="the folder name is too long; at most"):
        OutputUnit(tmp_path / ("x" * 240), TOOL, MARKER)
