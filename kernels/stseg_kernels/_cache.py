"""Numba's on-disk cache, dropped when any kernel source changed.

Numba checks a cached kernel against its own file's time and size only. A kernel compiled
with a helper from another file (``linking`` with ``_counting``, say) keeps running the old
helper after that file is edited, with no warning. Here the times and sizes of all the
package's sources are stamped beside the cache; when the stamp differs, the cache files go
and numba compiles afresh on first use. An installed release never trips this: its files
change all at once, and each kernel's own check already catches that.

Checked once, at import. A process that imported the package before an edit (a long training,
say) still runs, and may cache, the code it compiled then; after editing a kernel, restart such
processes (or ``make clean``) before trusting what they compile.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

STAMP_NAME = "stseg_kernels-sources.stamp"
CACHE_SUFFIXES = (".nbi", ".nbc")


def sources_stamp(sources: Path) -> str:
    """One line per ``*.py`` file of the folder ``sources``: name, mtime (ns) and size.
    Hidden names (an editor's lock file ``.#linking.py``, a dangling link) are not sources;
    a file gone between listing and reading is left out."""
    lines = []
    with contextlib.suppress(OSError):
        for path in sorted(sources.glob("*.py")):
            if path.name.startswith("."):
                continue
            try:
                stat = path.stat()
            except OSError:
                continue
            lines.append(f"{path.name} {stat.st_mtime_ns} {stat.st_size}")
    return "\n".join(lines) + "\n"


def drop_stale_cache(sources: Path, cache: Path) -> bool:
    """Remove numba's cache files (``*.nbi``, ``*.nbc``) in ``cache`` unless the stamp there
    matches the sources in ``sources``; then write the stamp. Returns True when files were
    dropped (or there was no stamp yet). Never raises for a folder it cannot read or write:
    numba then caches elsewhere or not at all."""
    stamp = sources_stamp(sources)
    stamp_file = cache / STAMP_NAME
    with contextlib.suppress(OSError):
        if stamp_file.read_text() == stamp:
            return False
    try:
        entries = list(cache.iterdir())
    except OSError:  # not there (yet), or not readable
        return True
    for entry in entries:
        if entry.suffix in CACHE_SUFFIXES:
            with contextlib.suppress(OSError):  # another process may have removed it first
                entry.unlink()
    temp = cache / f".{STAMP_NAME}.{os.getpid()}"
    with contextlib.suppress(OSError):
        temp.write_text(stamp)
        os.replace(temp, stamp_file)  # whole or not at all, for processes starting together
    with contextlib.suppress(OSError):
        temp.unlink()
    return True


def numba_cache_dir(dispatcher: object, sources: Path) -> Path:
    """Where numba caches ``dispatcher``'s kernels (it may pick a user-wide folder when the
    package's own ``__pycache__`` cannot be written, or ``NUMBA_CACHE_DIR``)."""
    path = getattr(getattr(dispatcher, "_cache", None), "_cache_path", None)
    return Path(path) if path else sources / "__pycache__"
