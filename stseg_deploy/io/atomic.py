"""Write files so that readers never see a half-written one: write a temp file, then rename."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO


def default_file_mode() -> int:
    """The permissions ``open()`` would give a new file under the current umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "wb", durable: bool = False) -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success rename it over ``path``.

    On any exception the temporary file is removed and ``path`` is left as it was, so a
    crashed or interrupted process never leaves a half-written file. ``durable=True`` also
    fsyncs before the rename, which survives power loss too but costs milliseconds per
    file: worth it for checkpoints, not for thousands of per-frame PNGs.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise _naming(exc, path) from exc
    try:
        # mkstemp makes 0600 files; give the result the permissions open() would have.
        os.chmod(tmp, default_file_mode())
        with os.fdopen(fd, mode) as handle:
            yield handle
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.filename in (tmp, None):
            raise _naming(exc, path) from exc
        raise


def _naming(exc: OSError, path: Path) -> OSError:
    """``exc`` about ``path`` rather than the temporary file the user never asked for."""
    if exc.filename is not None and exc.filename != str(path) and Path(exc.filename) in path.parents:
        return exc  # a parent folder is the problem: its name says more
    return type(exc)(exc.errno, exc.strerror, str(path)) if exc.errno else exc


def write_npy(path: str | Path, array) -> None:
    """Save ``array`` (a numeric array) as ``.npy`` atomically."""
    import numpy as np

    array = np.asarray(array)
    if not array.flags.c_contiguous:
        array = array.copy(order="C")
    with atomic_write(path) as handle:
        np.lib.format.write_array_header_1_0(handle, np.lib.format.header_data_from_array_1_0(array))
        # file.write reports a full disk with its errno (ENOSPC); np.save's tofile does not.
        handle.write(array.data)
