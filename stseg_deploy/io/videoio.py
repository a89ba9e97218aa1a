"""Streaming video input and MP4 output: a video file or a folder of images, one frame at a time.

Frames are always ``(H, W, 3) uint8 RGB`` (OpenCV decodes to BGR; the conversion happens here,
once, so no caller ever sees BGR). A source never holds more than the frame being decoded, so a
10,000-frame video costs the memory of one frame.

Naming, so that outputs line up with ground truth: a sequence is named after the video's file
stem (or the folder's name), and frame ``t`` is called :func:`frame_name` ``(t)`` = ``00000``,
``00001``, ... whatever the image files were called.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import cv2
import numpy as np

from ..errors import StsegInputError
from .atomic import default_file_mode
from .flowfiles import natural_key

__all__ = [
    "DEFAULT_FPS",
    "IMAGE_SUFFIXES",
    "VIDEO_SUFFIXES",
    "FrameSource",
    "ImageFolderSource",
    "ImageListSource",
    "list_image_files",
    "VideoFileSource",
    "VideoWriter",
    "frame_name",
    "open_frame_source",
]

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".m4v", ".avi", ".mov", ".webm", ".mkv", ".mpg", ".mpeg")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
DEFAULT_FPS = 25.0
"""Frame rate given to image folders, and to videos whose container does not state one."""


def frame_name(index: int) -> str:
    """Name of frame ``index``: the zero-padded index, ``frame_name(7) == "00007"``.

    Indices past 99999 get more digits; natural sort (:func:`natural_key`) still orders them.
    """
    if index < 0:
        raise ValueError(f"frame index must be >= 0, got {index}")
    return f"{index:05d}"


def _bgr_to_rgb(frame: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(frame[..., ::-1])


class FrameSource(ABC):
    """A sequence of RGB frames that can be iterated (several times) without loading it whole.

    Attributes:
        name: the sequence name (video file stem, or folder name).
        fps: frames per second (float); :data:`DEFAULT_FPS` for image folders.
        size: ``(H, W)`` in pixels, taken from the first decoded frame.
    """

    name: str
    fps: float
    size: tuple[int, int]
    path: Path

    @abstractmethod
    def __len__(self) -> int:
        """Number of frames (see the subclass for how exact it is)."""

    @abstractmethod
    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(index, frame)`` with frame ``(H, W, 3) uint8 RGB``, index from 0, in order."""

    def __repr__(self) -> str:
        # No len() here: for a video without a frame count it would decode the whole file.
        return f"{type(self).__name__}({str(self.path)!r}, size={self.size}, fps={self.fps:g})"


class VideoFileSource(FrameSource):
    """Frames of a video file, decoded by OpenCV (FFmpeg backend) one at a time.

    ``len()`` is the container's frame count (``CAP_PROP_FRAME_COUNT``), which for some
    formats (variable frame rate, webm/mkv without an index, damaged files) is only an estimate
    or missing; when missing the video is decoded once to count its frames. Iteration yields
    whatever the decoder delivers, and logs a warning when that differs from ``len()``.
    Use it for progress bars, never to size arrays.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.name = self.path.stem
        capture = self._open()
        try:
            ok, first = capture.read()
            if not ok or first is None:
                raise StsegInputError(f"{self.path}: corrupt or empty video (no frame could be decoded)")
            self.size = (int(first.shape[0]), int(first.shape[1]))
            fps = float(capture.get(cv2.CAP_PROP_FPS))
            count = capture.get(cv2.CAP_PROP_FRAME_COUNT)
        finally:
            capture.release()
        if not math.isfinite(fps) or fps <= 0:
            log.warning("%s: the container states no frame rate; assuming %g fps", self.path, DEFAULT_FPS)
            fps = DEFAULT_FPS
        self.fps = fps
        self._count = int(count) if math.isfinite(count) and count > 0 else None

    def _open(self) -> cv2.VideoCapture:
        capture = cv2.VideoCapture(str(self.path))
        if not capture.isOpened():
            capture.release()
            raise StsegInputError(f"{self.path}: corrupt or empty video (OpenCV cannot open it)")
        return capture

    def __len__(self) -> int:
        if self._count is None:
            # No count in the container: one decode pass, still one frame in memory at a time.
            self._count = sum(1 for _ in self)
        return self._count

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        capture = self._open()
        index = 0
        try:
            while True:
                ok, frame = capture.read()
                if not ok or frame is None:
                    break
                if frame.shape[:2] != self.size:
                    raise StsegInputError(
                        f"{self.path}: frame {index} has size {frame.shape[:2]}, the first frame {self.size}"
                    )
                if frame.ndim == 2:
                    frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
                yield index, _bgr_to_rgb(frame)
                index += 1
        finally:
            capture.release()
        if index == 0:
            raise StsegInputError(f"{self.path}: corrupt or empty video (no frame could be decoded)")
        if self._count is not None and index != self._count:
            log.warning("%s: decoded %d frames, the container announced %d", self.path, index, self._count)
            self._count = index


def read_image(path: Path) -> np.ndarray:
    """Decode an image file to (H, W, 3) uint8 RGB; 16-bit and grey images are converted."""
    try:
        # np.fromfile + imdecode rather than imread: imread fails silently on non-ASCII paths.
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise StsegInputError(f"{path}: cannot read image ({exc})") from exc
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise StsegInputError(f"{path}: not a decodable image (corrupt, truncated or not an image)")
    return _bgr_to_rgb(image)


def list_image_files(folder: Path) -> list[Path]:
    """The frames of an image folder, as :class:`ImageFolderSource` reads them: files with an
    :data:`IMAGE_SUFFIXES` suffix, hidden ones (``.*``) left out, in natural sort order."""
    return sorted(
        (p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES),
        key=lambda p: natural_key(p.name),
    )


class ImageListSource(FrameSource):
    """Frames stored as the given image files, in the given order (a dataset's listing).

    ``path`` is the folder named as the source (the files' folder, where they share one) and
    ``name`` its name. ``len()`` is exact. Every frame must have the first frame's size; a
    frame that differs, or that fails to decode, raises :class:`StsegInputError` naming its
    file when it is reached.
    """

    def __init__(self, files: list[Path], path: str | Path | None = None) -> None:
        self.files = [Path(f) for f in files]
        if not self.files:
            raise StsegInputError(f"{path}: no frames listed")
        self.path = Path(path) if path is not None else self.files[0].parent
        self.name = Path(os.path.abspath(self.path)).name  # as given, not a link's target
        self.fps = DEFAULT_FPS
        first = read_image(self.files[0])
        self.size = (int(first.shape[0]), int(first.shape[1]))

    def __len__(self) -> int:
        return len(self.files)

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        for index, file in enumerate(self.files):
            frame = read_image(file)
            if frame.shape[:2] != self.size:
                raise StsegInputError(
                    f"{file}: frame size {frame.shape[:2]} (H, W) differs from the first frame's "
                    f"{self.size} ({self.files[0].name}); all frames of a folder must have one size"
                )
            yield index, frame


class ImageFolderSource(ImageListSource):
    """Frames stored as image files in a folder, in natural sort order (``f2`` before ``f10``).

    Files with other suffixes and hidden files (``.*``, such as macOS ``._x.jpg``) are ignored.
    ``len()`` is exact. Every frame must have the first frame's size; a frame that differs, or
    that fails to decode, raises :class:`StsegInputError` naming its file when it is reached.
    """

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        files = list_image_files(path)
        if not files:
            raise StsegInputError(f"{path}: empty folder (no image files {', '.join(IMAGE_SUFFIXES)})")
        super().__init__(files, path)


def open_frame_source(source: str | Path) -> FrameSource:
    """Open a video file or a folder of images as a streaming :class:`FrameSource`.

    Args:
        source: a video file (``VIDEO_SUFFIXES``, decoded by OpenCV) or a folder of images
            (``IMAGE_SUFFIXES``).

    Raises:
        FileNotFoundError: ``source`` does not exist.
        StsegInputError: unsupported suffix, empty folder, corrupt or empty video, or an
            undecodable first image; the message names the path.
    """
    path = Path(source)
    if path.is_dir():
        return ImageFolderSource(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: video file or frame folder not found")
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        raise StsegInputError(f"{path}: a single image, not a video; pass the folder that holds the frames")
    if suffix not in VIDEO_SUFFIXES:
        raise StsegInputError(
            f"{path}: unsupported video suffix {suffix!r}; expected a folder of images or one of {VIDEO_SUFFIXES}"
        )
    if path.stat().st_size == 0:
        raise StsegInputError(f"{path}: corrupt or empty video (the file is empty)")
    return VideoFileSource(path)


class VideoWriter:
    """Write an MP4 (MPEG-4 part 2, fourcc ``mp4v``) frame by frame; the file appears only on success.

    Frames go to a temporary ``.mp4`` beside ``path`` that is renamed over ``path`` when the
    ``with`` block ends without an exception and at least one frame was written; otherwise it
    is deleted and ``path`` is left as it was. ``mp4v`` is used because OpenCV's pip wheels
    can always encode it (H.264 needs a separately licensed encoder).

    The MPEG-4 encoder needs even sides; frames with an odd height or width are padded by one
    replicated row/column (OpenCV would otherwise crop them silently).

    Usage::

        with VideoWriter("out.mp4", fps=25) as writer:
            for frame in frames:            # (H, W, 3) uint8 RGB
                writer.write(frame)
    """

    def __init__(self, path: str | Path, fps: float = DEFAULT_FPS, size: tuple[int, int] | None = None) -> None:
        """Args: path: the ``.mp4`` to write; fps: frames per second (> 0); size: ``(H, W)``,
        or None to take it from the first frame.

        Raises OSError (on entering, or on the first frame without ``size``) when OpenCV cannot
        open the encoder."""
        self.path = Path(path)
        if self.path.suffix.lower() != ".mp4":
            raise ValueError(f"{self.path}: VideoWriter writes MP4 files; the name must end in .mp4")
        if not (math.isfinite(fps) and fps > 0):
            raise ValueError(f"{self.path}: fps must be a positive number, got {fps}")
        self.fps = float(fps)
        self.size = size
        self.frames_written = 0
        self._writer: cv2.VideoWriter | None = None
        self._tmp: Path | None = None

    def __enter__(self) -> VideoWriter:
        if self.size is not None:
            self._open(self.size)
        return self

    def _open(self, size: tuple[int, int]) -> None:
        height, width = size
        if height <= 0 or width <= 0:
            raise ValueError(f"{self.path}: frame size must be positive, got {size}")
        self.size = (int(height), int(width))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # The temp name must end in .mp4: OpenCV picks the container from the suffix.
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.stem}.", suffix=".mp4", dir=self.path.parent)
        os.close(fd)
        self._tmp = Path(tmp)
        even = (width + width % 2, height + height % 2)
        writer = cv2.VideoWriter(str(self._tmp), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, even)
        if not writer.isOpened():
            writer.release()
            self._discard()
            raise OSError(
                f"{self.path}: OpenCV cannot open an MP4 writer (fourcc mp4v, {even[0]}x{even[1]} W x H); "
                "check that the folder is writable and that OpenCV has FFmpeg (opencv-python-headless does)"
            )
        self._writer = writer

    def write(self, frame: np.ndarray) -> None:
        """Append one frame: (H, W, 3) uint8 RGB, the writer's size."""
        frame = np.asarray(frame)
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"{self.path}: frames must be (H, W, 3) uint8 RGB, got {frame.shape} {frame.dtype}")
        if self._writer is None:
            self._open(frame.shape[:2])
        if frame.shape[:2] != self.size:
            raise ValueError(f"{self.path}: frame of size {frame.shape[:2]}, the video's is {self.size}")
        height, width = self.size
        if height % 2 or width % 2:
            frame = np.pad(frame, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")
        self._writer.write(np.ascontiguousarray(frame[..., ::-1]))
        self.frames_written += 1

    def _discard(self) -> None:
        if self._tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                self._tmp.unlink()
            self._tmp = None

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        if exc_type is not None:
            self._discard()
            return
        if self.frames_written == 0:
            self._discard()
            raise ValueError(f"{self.path}: no frames were written; no video created")
        assert self._tmp is not None
        # mkstemp makes 0600 files; give the video the permissions open() would have.
        os.chmod(self._tmp, default_file_mode())
        os.replace(self._tmp, self.path)
        self._tmp = None
