"""Output folders that are complete or absent: never half-written, never clobbering a user's files.

An *output unit* is a folder one stseg command writes as a whole: a sequence folder of
stseg-infer (``OUT/SEQ``), the flow folder of stseg-flow. Every such command follows one rule:

1. Lock ``PARENT/.NAME.lock`` with an OS file lock (``flock``), which the kernel releases when
   its holder dies, even by SIGKILL; a second writer of the same unit fails at once, naming
   the holder's host and pid. On NFS, Linux maps ``flock`` to byte-range locks, which the
   server arbitrates between machines.
2. Finish or undo a swap that an earlier run had cut short (step 5), and remove the temp
   folders of writers that died (they held the lock, so none is alive now).
3. Check the target: absent, an empty folder, or a complete output of the same tool whose
   marker lists every file in it. A folder that holds anything else, a plain file, a link,
   or a folder that holds one of the command's inputs is refused: stseg only deletes or
   replaces what it wrote itself.
4. Write everything into ``PARENT/.NAME.stseg-tmp.<host>.<pid>``; the marker (a JSON file
   with ``"stseg": {"tool": ..., "complete": true, "files": [...]}`` plus the settings and
   the model's hash) is written last.
5. Swap: the old output becomes ``.NAME.stseg-old``, the temp folder becomes ``NAME``, the
   old one is removed.

So an earlier good result survives any failed, interrupted or killed rerun, and a folder
without a complete marker is never taken for a result.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from ..errors import StsegInputError
from .atomic import atomic_write

log = logging.getLogger(__name__)

MARKER_KEY = "stseg"
TMP_TAG = ".stseg-tmp."
OLD_TAG = ".stseg-old"
LOCK_SUFFIX = ".lock"
# Hidden names are stseg's own (temp folders, locks); a host name and pid follow the tag.
MAX_NAME_LENGTH = 160
NAME_MAX = 255  # bytes in one file name on common filesystems
# Times a unit makes its parent folder again when another writer's clean-up removed it
# before the lock file was in it (each removal needs a writer that failed meanwhile).
PARENT_ATTEMPTS = 5


class StsegOutputError(OSError):
    """An output that cannot be written safely: the message names the folder and why.

    ``errno`` carries the cause's error number when there was one (e.g. ENOSPC).
    """

    def __init__(self, message: str, errno_: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno_


class OutputBusyError(StsegOutputError):
    """Another process holds the output's lock."""


# -- names and inputs ----------------------------------------------------------------------


def check_name(name: str, where: str = "") -> str:
    """``name`` if it is safe as one folder name under ``--out``, else StsegInputError.

    Refused: empty, ``.`` / ``..``, path separators, control characters, a leading dot
    (hidden names are stseg's temp folders and locks), more than MAX_NAME_LENGTH characters.
    ``where`` says where the name came from, for the message.
    """
    problem = None
    if not name or name in (".", ".."):
        problem = "is empty or a relative path"
    elif "/" in name or "\\" in name:
        problem = "holds a path separator"
    elif any(ord(c) < 32 or ord(c) == 127 for c in name):
        problem = "holds a control character"
    elif name.startswith("."):
        problem = "starts with a dot (hidden names are stseg's temp folders)"
    elif len(name) > MAX_NAME_LENGTH:
        problem = f"is longer than {MAX_NAME_LENGTH} characters"
    if problem is not None:
        prefix = f"{where}: " if where else ""
        raise StsegInputError(f"{prefix}sequence name {name!r} {problem}; it must be one plain folder name")
    return name


def check_inputs_outside(targets: Iterable[Path], inputs: Iterable[str | Path]) -> None:
    """Refuse output folders that are, or hold, one of the inputs (StsegOutputError).

    ``targets``: the output units about to be written; ``inputs``: every file or folder
    the command reads (flows, frames, videos, masks).
    """
    owners = {Path(os.path.abspath(t)).resolve(): Path(t) for t in targets}
    for item in inputs:
        path = Path(os.path.abspath(item)).resolve()
        for candidate in (path, *path.parents):
            if candidate in owners:
                raise StsegOutputError(
                    f"{owners[candidate]}: this output folder would hold the input {item}; "
                    "writing there could destroy it. Choose an --out outside the input folders"
                )


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file: identifies the model that made an output."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


# -- markers -------------------------------------------------------------------------------


def stamp(tool: str, complete: bool, files: list[str]) -> dict:
    """The ``"stseg"`` block of a marker: who wrote it, whether complete, which files."""
    return {
        "tool": tool,
        "complete": complete,
        "files": files,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def stamp_of(record: object) -> dict | None:
    """The ``"stseg"`` block of a marker record, None when it has none."""
    block = record.get(MARKER_KEY) if isinstance(record, dict) else None
    return block if isinstance(block, dict) else None


def is_complete(record: object, tool: str) -> bool:
    """Whether a marker record says: a complete output of ``tool``."""
    block = stamp_of(record)
    return block is not None and block.get("tool") == tool and block.get("complete") is True


def read_record(path: str | Path) -> object | None:
    """The JSON in a marker file, or None when it is missing or unreadable (not checked further)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None


def read_stamp(path: str | Path) -> dict | None:
    """The ``"stseg"`` block of the marker file ``path``; None when missing, unreadable or unstamped."""
    return stamp_of(read_record(path))


def read_marker(folder: str | Path, marker: str, tool: str) -> dict | None:
    """The marker record of a complete ``tool`` output in ``folder``, else None."""
    record = read_record(Path(folder) / marker)
    return record if is_complete(record, tool) else None


def write_marker(path: str | Path, record: dict, tool: str, complete: bool, files: list[str]) -> None:
    """Write ``record`` with its stamp (see :func:`stamp`) to ``path`` atomically."""
    with atomic_write(path, "w") as handle:
        json.dump({**record, MARKER_KEY: stamp(tool, complete, files)}, handle, indent=2)


def _files_under(folder: Path) -> list[str]:
    """Relative POSIX paths of every non-folder entry under ``folder``, sorted."""
    found = []
    for root, dirs, files in os.walk(folder):
        rel = Path(root).relative_to(folder)
        found += [(rel / f).as_posix() for f in files]
        # A link to a folder is listed as a file: it is not ours to follow or delete.
        found += [(rel / d).as_posix() for d in dirs if (Path(root) / d).is_symlink()]
    return sorted(found)


# -- the lock ------------------------------------------------------------------------------

_HELD: set[Path] = set()
_HELD_GUARD = threading.Lock()


class OutputLock:
    """An exclusive, non-blocking lock on ``path`` that dies with its holder.

    Raises OutputBusyError at once if another process, or another thread of this one,
    holds it. The lock file is removed on release.
    """

    def __init__(self, path: str | Path, what: str) -> None:
        self.path = Path(path)
        self.what = what
        self._fd: int | None = None

    def acquire(self) -> None:
        key = Path(os.path.abspath(self.path))
        with _HELD_GUARD:
            if key in _HELD:
                raise OutputBusyError(f"{self.what}: already being written by this process")
            _HELD.add(key)
        try:
            self._fd = self._lock_file()
        except BaseException:
            with _HELD_GUARD:
                _HELD.discard(key)
            raise
        info = f"host={socket.gethostname()} pid={os.getpid()} since={time.strftime('%Y-%m-%dT%H:%M:%S')}\n"
        # Only for the message another writer gets: a full disk must not fail the lock.
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)
            os.write(self._fd, info.encode())

    def _lock_file(self) -> int:
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                _try_lock(fd)
            except BlockingIOError:
                holder = _read_holder(fd)
                os.close(fd)
                raise OutputBusyError(
                    f"{self.what}: being written by another stseg process ({holder}); "
                    "wait for it to finish, or write elsewhere"
                ) from None
            except BaseException:
                os.close(fd)
                raise
            # The holder before us may have removed the file between our open and lock:
            # then we locked an orphan inode and must start over on the current file.
            try:
                current = os.stat(self.path)
            except FileNotFoundError:
                os.close(fd)
                continue
            mine = os.fstat(fd)
            if (mine.st_dev, mine.st_ino) == (current.st_dev, current.st_ino):
                return fd
            os.close(fd)

    def release(self) -> None:
        if self._fd is None:
            return
        if os.name != "nt":  # an open file cannot be removed on Windows
            with contextlib.suppress(OSError):
                os.unlink(self.path)
        os.close(self._fd)
        self._fd = None
        with _HELD_GUARD:
            _HELD.discard(Path(os.path.abspath(self.path)))

    def __enter__(self) -> OutputLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _try_lock(fd: int) -> None:
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError as exc:
            raise BlockingIOError(errno.EAGAIN, "locked") from exc
        return
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def _read_holder(fd: int) -> str:
    with contextlib.suppress(OSError):
        text = os.pread(fd, 200, 0).decode(errors="replace").strip()
        if text:
            return text
    return "it has only just started"


# -- the unit ------------------------------------------------------------------------------


class OutputUnit:
    """Write the folder ``target`` as a whole, following the rule in this module's docstring.

    Use as a context manager; write into :attr:`tmp`, then call :meth:`commit` with the
    marker record. Leaving the block without a commit (an error, Ctrl-C) removes the temp
    folder and leaves ``target`` as it was.

    Args:
        target: the output folder, ``PARENT/NAME``.
        tool: the command that owns such folders, e.g. ``"stseg-infer"``.
        marker: the marker's file name inside the folder, e.g. ``"sequence.json"``.
        also_ours: names a complete output may hold beyond its marker's file list, written
            later by another stseg command into it (e.g. ``contact_sheet.png``).
    """

    def __init__(self, target: str | Path, tool: str, marker: str, also_ours: Iterable[str] = ()) -> None:
        self.target = Path(target)  # as the user wrote it, for messages
        # Absolute, so that "." or "a/.." still have a parent and a name to work beside.
        self.path = Path(os.path.abspath(target))
        self.tool = tool
        self.marker = marker
        self.also_ours = frozenset(also_ours)
        parent, name = self.path.parent, self.path.name
        self.old = parent / f".{name}{OLD_TAG}"
        self.tmp = parent / f".{name}{TMP_TAG}{socket.gethostname()}.{os.getpid()}"
        if len(os.fsencode(self.tmp.name)) > NAME_MAX:
            room = NAME_MAX - (len(os.fsencode(self.tmp.name)) - len(os.fsencode(name)))
            raise StsegOutputError(f"{self.target}: the folder name is too long; at most {room} bytes here")
        self._lock = OutputLock(parent / f".{name}{LOCK_SUFFIX}", str(self.target))
        self._made_dirs: list[Path] = []
        self.committed = False

    # Context management ------------------------------------------------------------------

    def __enter__(self) -> OutputUnit:
        self._make_parent_and_lock()
        try:
            self._recover()
            self._check_target()
            self.tmp.mkdir()
        except BaseException:
            self._lock.release()
            self._remove_made_dirs()
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if not self.committed:
                shutil.rmtree(self.tmp, ignore_errors=True)
        finally:
            self._lock.release()
            if not self.committed:
                self._remove_made_dirs()
        if isinstance(exc, OSError) and not isinstance(exc, StsegOutputError) and self._is_write_error(exc):
            raise self._describe(exc) from exc

    def commit(self, record: dict) -> Path:
        """Write the marker (``record`` plus the stamp) into the temp folder and swap it in."""
        files = [f for f in _files_under(self.tmp) if f != self.marker]
        write_marker(self.tmp / self.marker, record, self.tool, True, files)
        self._swap()
        self.committed = True
        return self.target

    def recover(self) -> None:
        """Only step 2 of the rule, under the lock: finish or undo a swap cut short and remove
        dead writers' temp folders (a reader's way to get at an output a killed run moved aside).

        Raises OutputBusyError when a writer is at work on it now."""
        if not self.path.parent.is_dir():
            return
        with self._lock:
            self._recover()

    # Steps -------------------------------------------------------------------------------

    def _make_parent_and_lock(self) -> None:
        for attempt in range(PARENT_ATTEMPTS):
            self._make_parent()
            try:
                self._lock.acquire()
                return
            except FileNotFoundError as exc:
                # Another writer (a --workers process) that made the parent and failed early
                # removed it, still empty, between our mkdir and our lock file: make it again
                # (a third writer may have made it again already; a retry finds it).
                if attempt == PARENT_ATTEMPTS - 1:
                    self._remove_made_dirs()
                    raise StsegOutputError(
                        f"{self.path.parent}: removed each time it was made ({PARENT_ATTEMPTS} times); "
                        "is another program deleting it?"
                    ) from exc
            except BaseException:
                self._remove_made_dirs()
                raise

    def _make_parent(self) -> None:
        missing = []
        for folder in (self.path.parent, *self.path.parent.parents):
            if folder.is_dir():
                break
            if folder.exists() or folder.is_symlink():
                # Another writer (a --workers process) may have made it since is_dir() looked.
                if folder.is_dir():
                    break
                raise StsegOutputError(f"{folder}: is a file, not a folder; the output cannot go under it")
            missing.append(folder)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._made_dirs = missing  # deepest first

    def _remove_made_dirs(self) -> None:
        # Folders this run created and left empty go again: an early error leaves no trace.
        for folder in self._made_dirs:
            try:
                folder.rmdir()
            except OSError:
                break

    def _is_complete(self, folder: Path) -> bool:
        return read_marker(folder, self.marker, self.tool) is not None

    def _recover(self) -> None:
        if self.old.exists():
            if not self.path.exists():
                # Cut between the swap's two renames: put the earlier output back.
                os.rename(self.old, self.path)
                log.warning("%s: restored the earlier output that an interrupted run had moved aside", self.target)
            elif self._is_complete(self.path):
                shutil.rmtree(self.old)  # the swap was done; only the clean-up was cut
            else:
                raise StsegOutputError(
                    f"{self.target}: an interrupted run left {self.old.name} beside a folder that is not "
                    "a complete output; look at both and remove the one you do not need"
                )
        prefix = f".{self.path.name}{TMP_TAG}"
        for entry in self.path.parent.iterdir():
            if entry.name.startswith(prefix) and entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)  # its writer is gone: we hold the lock it held
                log.info("removed %s, left by an interrupted run", entry)

    def _check_target(self) -> None:
        target = self.target
        if self.path.is_symlink():
            raise StsegOutputError(f"{target}: is a symbolic link; stseg does not replace links. Choose another --out")
        if not self.path.exists():
            return
        if not self.path.is_dir():
            raise StsegOutputError(f"{target}: a file is in the way where the output folder should be; move it or choose another --out")
        if os.path.ismount(self.path):
            raise StsegOutputError(f"{target}: is a mount point; stseg replaces output folders whole, so choose a folder below it")
        cwd = Path.cwd().resolve()
        if cwd == self.path.resolve() or self.path.resolve() in cwd.parents:
            raise StsegOutputError(f"{target}: is the current folder or holds it; stseg replaces output folders whole, so choose a folder below it")
        foreign = self._foreign_files(self.path)
        if foreign:
            raise StsegOutputError(
                f"{target}: holds files that {self.tool} did not write ({_some(foreign)}); "
                "stseg never deletes them. Choose another --out, or move them away"
            )

    def _foreign_files(self, folder: Path) -> list[str]:
        """Files in ``folder`` that its complete marker does not list (all, without one)."""
        present = _files_under(folder)
        record = read_marker(folder, self.marker, self.tool) if present else None
        if record is None:
            return present
        allowed = set(record[MARKER_KEY].get("files", [])) | {self.marker} | self.also_ours
        return [f for f in present if f not in allowed]

    def _swap(self) -> None:
        path = self.path
        if path.is_dir() and not any(path.iterdir()):
            with contextlib.suppress(OSError):  # something appeared since: handled below
                path.rmdir()
        if not path.exists():
            os.rename(self.tmp, path)
            return
        os.rename(path, self.old)
        # Moved aside, the earlier output is out of reach of anyone writing into it: check
        # it once more, since files may have been added to it while this run was writing.
        foreign = self._foreign_files(self.old)
        if foreign:
            os.rename(self.old, path)
            raise StsegOutputError(
                f"{self.target}: files were added to it while this run was writing ({_some(foreign)}); "
                "it is kept as it was and this run's output discarded. Move those files away and run again"
            )
        os.rename(self.tmp, path)
        shutil.rmtree(self.old)

    def _is_write_error(self, exc: OSError) -> bool:
        """An error writing into the temp folder (not, say, a missing input file)."""
        if exc.filename is None:
            # File objects' write() errors name no file; these numbers mean "cannot write".
            return exc.errno in _WRITE_ERRNOS
        return Path(os.path.abspath(exc.filename)).is_relative_to(Path(os.path.abspath(self.tmp)))

    def _describe(self, exc: OSError) -> StsegOutputError:
        """A write error as one line naming the output and the file, not the temp folder."""
        what = ""
        if exc.filename is not None:
            what = " " + Path(os.path.abspath(exc.filename)).relative_to(Path(os.path.abspath(self.tmp))).as_posix()
        reason = (exc.strerror or str(exc)).lower()
        return StsegOutputError(
            f"{self.target}: could not write{what}: {reason}; the output there is unchanged", exc.errno
        )


_WRITE_ERRNOS = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC), errno.EFBIG, errno.EROFS, errno.EIO}


def _some(names: list[str], shown: int = 3) -> str:
    return ", ".join(names[:shown]) + (f" and {len(names) - shown} more" if len(names) > shown else "")
