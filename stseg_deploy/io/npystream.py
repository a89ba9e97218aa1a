"""Writing a large ``.npy`` array frame by frame: header first, then each frame's bytes.

Memory stays flat in the number of frames, and a full disk is an ordinary ``OSError`` at the
write that failed (a memory-mapped file would die of SIGBUS instead).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np


class NpyFrameWriter:
    """Stream ``(F, *frame_shape)`` frames into ``path`` in index order.

    Args:
        path: the ``.npy`` file to create.
        n_frames: F, fixed in the header up front.
        frame_shape: shape of one frame, e.g. (h, w).
        dtype: the array's dtype.

    :meth:`close` raises ValueError unless exactly F frames were written.
    """

    def __init__(self, path: str | Path, n_frames: int, frame_shape: tuple[int, ...], dtype=np.uint8) -> None:
        self.path = Path(path)
        self.n_frames = int(n_frames)
        self.frame_shape = tuple(int(s) for s in frame_shape)
        self.dtype = np.dtype(dtype)
        self.written = 0
        self._handle = open(self.path, "wb")
        header = {
            "descr": np.lib.format.dtype_to_descr(self.dtype),
            "fortran_order": False,
            "shape": (self.n_frames, *self.frame_shape),
        }
        try:
            np.lib.format.write_array_header_1_0(self._handle, header)
        except BaseException:
            self._handle.close()
            raise

    def write(self, index: int, frame: np.ndarray) -> None:
        """Append frame ``index``, which must be the next one (0, 1, 2, ...)."""
        if index != self.written:
            raise ValueError(f"{self.path}: frame {index} written out of order (expected {self.written})")
        frame = np.ascontiguousarray(frame, dtype=self.dtype)
        if frame.shape != self.frame_shape:
            raise ValueError(f"{self.path}: frame of shape {frame.shape}, expected {self.frame_shape}")
        try:
            self._handle.write(frame.tobytes())
        except OSError as exc:  # a file object's write() names no file: name it
            raise type(exc)(exc.errno, exc.strerror, str(self.path)) from exc
        self.written += 1

    def close(self) -> None:
        """Flush and close; the file is then a complete ``.npy``."""
        if self._handle.closed:
            return
        try:
            self._handle.close()  # flushes the buffered tail: a full disk may show only here
        except OSError as exc:
            raise type(exc)(exc.errno, exc.strerror, str(self.path)) from exc
        if self.written != self.n_frames:
            raise ValueError(f"{self.path}: {self.written} of {self.n_frames} frames written")

    def abort(self) -> None:
        """Close without the completeness check (the caller discards the file)."""
        if not self._handle.closed:
            # Closing flushes; on a full disk that fails again and would hide the first error.
            with contextlib.suppress(OSError):
                self._handle.close()
