"""Streaming frame sources (video files, image folders) and the atomic MP4 writer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from stseg_deploy.errors import StsegInputError
from stseg_deploy.io import videoio
from stseg_deploy.io.videoio import (
    DEFAULT_FPS,
    ImageFolderSource,
    VideoFileSource,
    VideoWriter,
    frame_name,
    open_frame_source,
)


def _solid(colour: tuple[int, int, int], size: tuple[int, int] = (12, 20)) -> np.ndarray:
    return np.broadcast_to(np.array(colour, dtype=np.uint8), size + (3,)).copy()


def _pattern(index: int, size: tuple[int, int] = (48, 80)) -> np.ndarray:
    """A smooth RGB test card that changes with the frame index (survives MPEG-4 compression)."""
    y, x = np.mgrid[0 : size[0], 0 : size[1]]
    red = 128 + 100 * np.sin(x / 9.0 + index * 0.3)
    green = 128 + 100 * np.cos(y / 7.0)
    blue = np.full(size, 40.0)
    return np.stack([red, green, blue], axis=-1).astype(np.uint8)


def _save(path: Path, frame: np.ndarray) -> None:
    Image.fromarray(frame).save(path)


def test_frame_name_is_zero_padded_index() -> None:
    assert [frame_name(i) for i in (0, 1, 42, 99999, 123456)] == ["00000", "00001", "00042", "99999", "123456"]
    with pytest.raises(ValueError):
        frame_name(-1)


def test_image_folder_natural_order_rgb_and_metadata(tmp_path: Path) -> None:
    folder = tmp_path / "my_seq"
    folder.mkdir()
    colours = {"f1.png": (255, 0, 0), "f2.png": (0, 255, 0), "f10.png": (0, 0, 255)}
    for name, colour in colours.items():
        _save(folder / name, _solid(colour))
    (folder / "notes.txt").write_text("not a frame")
    (folder / "._f3.png").write_bytes(b"macOS resource fork, not an image")

    source = open_frame_source(folder)
    assert isinstance(source, ImageFolderSource)
    assert (source.name, len(source), source.size, source.fps) == ("my_seq", 3, (12, 20), DEFAULT_FPS)
    got = list(source)
    assert [i for i, _ in got] == [0, 1, 2]
    # Natural order f1, f2, f10 and RGB (not OpenCV's BGR) channel order.
    assert [tuple(f[0, 0]) for _, f in got] == [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    assert all(f.dtype == np.uint8 and f.shape == (12, 20, 3) for _, f in got)
    # A source can be iterated again.
    assert len(list(source)) == 3


def test_image_folder_accepts_grey_and_jpeg(tmp_path: Path) -> None:
    Image.fromarray(np.full((10, 14), 77, dtype=np.uint8), mode="L").save(tmp_path / "a.png")
    Image.fromarray(_solid((200, 100, 50), (10, 14))).save(tmp_path / "b.jpg", quality=95)
    frames = [f for _, f in open_frame_source(tmp_path)]
    assert frames[0].shape == (10, 14, 3) and (frames[0] == 77).all()
    assert np.abs(frames[1].astype(int) - (200, 100, 50)).max() <= 4


def test_folder_name_of_dot_is_the_real_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "dance"
    folder.mkdir()
    _save(folder / "0.png", _solid((1, 2, 3)))
    monkeypatch.chdir(folder)
    assert open_frame_source(".").name == "dance"


def test_empty_folder_names_the_folder(tmp_path: Path) -> None:
    with pytest.raises(StsegInputError, match="empty folder") as info:
        open_frame_source(tmp_path)
    assert str(tmp_path) in str(info.value)
    (tmp_path / "readme.txt").write_text("no images here")
    with pytest.raises(StsegInputError, match=str(tmp_path)):
        open_frame_source(tmp_path)


def test_missing_path_names_it(tmp_path: Path) -> None:
    missing = tmp_path / "nope.mp4"
    with pytest.raises(FileNotFoundError, match="nope.mp4"):
        open_frame_source(missing)


def test_differing_frame_size_names_the_file(tmp_path: Path) -> None:
    _save(tmp_path / "00000.png", _solid((1, 2, 3), (12, 20)))
    _save(tmp_path / "00001.png", _solid((1, 2, 3), (12, 21)))
    source = open_frame_source(tmp_path)
    with pytest.raises(StsegInputError, match="00001.png") as info:
        list(source)
    assert "differs" in str(info.value)


def test_undecodable_image_names_the_file(tmp_path: Path) -> None:
    _save(tmp_path / "00000.png", _solid((1, 2, 3)))
    _save(tmp_path / "00001.png", _solid((4, 5, 6)))
    (tmp_path / "00002.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated garbage")
    source = open_frame_source(tmp_path)
    frames = iter(source)
    # Streaming: the frames before the bad one decode; the error comes when it is reached.
    assert next(frames)[0] == 0 and next(frames)[0] == 1
    with pytest.raises(StsegInputError, match="00002.png"):
        next(frames)
    # A corrupt *first* image is reported when the source is opened.
    (tmp_path / "00000.png").write_bytes(b"")
    with pytest.raises(StsegInputError, match="00000.png"):
        open_frame_source(tmp_path)


def test_corrupt_video_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "corrupt.mp4"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 20_000, dtype=np.uint8).tobytes())
    with pytest.raises(StsegInputError, match="corrupt or empty video") as info:
        open_frame_source(bad)
    assert str(bad) in str(info.value)


def test_empty_video_file_names_the_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.webm"
    empty.write_bytes(b"")
    with pytest.raises(StsegInputError, match=r"empty\.webm.*corrupt or empty video"):
        open_frame_source(empty)


def test_unsupported_suffix_and_single_image(tmp_path: Path) -> None:
    odd = tmp_path / "clip.xyz"
    odd.write_bytes(b"data")
    with pytest.raises(StsegInputError, match="unsupported video suffix"):
        open_frame_source(odd)
    image = tmp_path / "one.png"
    _save(image, _solid((1, 2, 3)))
    with pytest.raises(StsegInputError, match="single image"):
        open_frame_source(image)


def test_mp4_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    frames = [_pattern(i) for i in range(7)]
    with VideoWriter(path, fps=12.5) as writer:
        for frame in frames:
            writer.write(frame)
    assert writer.frames_written == 7
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]  # no temp file left behind

    source = open_frame_source(path)
    assert isinstance(source, VideoFileSource)
    assert (source.name, len(source), source.size) == ("clip", 7, (48, 80))
    assert source.fps == pytest.approx(12.5)
    decoded = list(source)
    assert [i for i, _ in decoded] == list(range(7))
    for (_, got), want in zip(decoded, frames, strict=True):
        assert got.shape == (48, 80, 3) and got.dtype == np.uint8
        # MPEG-4 is lossy; a mean error of a few grey levels is typical at this size. A BGR/RGB
        # swap would cost ~90 (red carries the pattern, blue is flat 40).
        assert np.abs(got.astype(int) - want).mean() < 8


def test_video_writer_pads_odd_sizes(tmp_path: Path) -> None:
    path = tmp_path / "odd.mp4"
    with VideoWriter(path) as writer:
        for i in range(3):
            writer.write(_pattern(i, (47, 79)))
    assert open_frame_source(path).size == (48, 80)


def test_video_writer_failure_leaves_nothing(tmp_path: Path) -> None:
    path = tmp_path / "out.mp4"
    path.write_bytes(b"previous content")
    with pytest.raises(RuntimeError, match="boom"):
        with VideoWriter(path) as writer:
            writer.write(_pattern(0))
            raise RuntimeError("boom")
    assert path.read_bytes() == b"previous content"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]

    with pytest.raises(ValueError, match="no frames"):
        with VideoWriter(tmp_path / "none.mp4"):
            pass
    assert not (tmp_path / "none.mp4").exists()

    with pytest.raises(ValueError, match=r"\(H, W, 3\) uint8"):
        with VideoWriter(tmp_path / "bad.mp4") as writer:
            writer.write(np.zeros((8, 8, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="size"):
        with VideoWriter(tmp_path / "bad.mp4") as writer:
            writer.write(_pattern(0, (16, 16)))
            writer.write(_pattern(0, (16, 18)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]
    with pytest.raises(ValueError, match=r"\.mp4"):
        VideoWriter(tmp_path / "clip.avi")


def test_video_writer_reports_an_unopenable_encoder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class _Closed:
        def __init__(self, *args: object) -> None:
            pass

        def isOpened(self) -> bool:  # noqa: N802 - OpenCV's name
            return False

        def release(self) -> None:
            pass

    monkeypatch.setattr(videoio.cv2, "VideoWriter", _Closed)
    path = tmp_path / "x.mp4"
    with pytest.raises(OSError, match="cannot open an MP4 writer") as info:
        with VideoWriter(path, size=(16, 16)):
            pass
    assert str(path) in str(info.value)
    assert list(tmp_path.iterdir()) == []
