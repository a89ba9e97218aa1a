"""Where sequences come from: flow folders, the Sequence column of a DataSplit, or videos
(a video file or a folder of frames) whose flow is computed on the fly.

Input detection lives here alone (:func:`sequences_from_inputs`); the pipeline reads any
object with the :class:`SequenceSource` shape, as it runs any :class:`SegmentationModel`."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import numpy as np

from .errors import StsegInputError
from .flow.recipe import FlowRecipe
from .io.datasplit import read_datasplit, resolve
from .io.flowfiles import list_flow_files
from .io.flowio import read_flow
from .io.outdir import check_name

log = logging.getLogger(__name__)


class SequenceSource(Protocol):
    """What the pipeline needs from a sequence.

    ``name``: the output folder's name; ``n_frames``: flow frames F; ``frame_names``: F
    output names; ``flows`` and ``masks``: F descriptions of where each flow comes from and
    the ground truth (None where absent), for the record; ``video``: the frames behind the
    flows (a ``stseg_deploy.io.videoio.FrameSource``) or None; ``frame_size``: (H, W) to write
    outputs at, or None for the flows' own size; ``has_frames``: whether each flow frame's
    image is known (a video, or image files), which refinement needs, and
    ``check_frames()`` raises naming a listed image file that is missing (optional, like
    ``has_frames``: a source without them has no frames);
    ``read_flows(with_images)``: yields ``(where, flow (2, H, W) float32 pixels, frame
    (H, W, 3) uint8 RGB or None)`` F times.
    """

    name: str
    video: object | None

    @property
    def has_frames(self) -> bool: ...

    def check_frames(self) -> None: ...

    @property
    def n_frames(self) -> int: ...

    @property
    def flows(self) -> tuple: ...

    @property
    def masks(self) -> tuple: ...

    @property
    def frame_size(self) -> tuple[int, int] | None: ...

    @property
    def frame_names(self) -> list[str]: ...

    def read_flows(self, with_images: bool = False) -> Iterator[tuple[str, np.ndarray, np.ndarray | None]]: ...


@dataclass(frozen=True)
class Sequence:
    """A named sequence: its flow files in frame order and, when known, ground-truth masks
    and the frames the flows start from.

    ``frame_size`` is the (H, W) of the frames the flows were computed from, when known (a
    DataSplit's Image column): outputs are written at that size, so flow computed at a
    reduced scale still gives masks on the frames' (and ground truth's) grid. None: the flows'
    own size. ``images``: one image file per flow frame (frame t for the flow t → t + 1), or
    empty when unknown; read only to refine.
    """

    name: str
    flows: tuple[Path, ...]
    masks: tuple[Path | None, ...]
    frame_size: tuple[int, int] | None = None
    images: tuple[Path, ...] = ()

    video = None  # no decoder behind flow files

    @property
    def has_frames(self) -> bool:
        return len(self.images) == len(self.flows) > 0

    def check_frames(self) -> None:
        """Raise FileNotFoundError naming the first of ``images`` that is not a file."""
        for path in self.images:
            if not Path(path).is_file():
                raise FileNotFoundError(f"{path}: frame of sequence {self.name!r} not found (needed to refine its masks)")

    @property
    def frame_names(self) -> list[str]:
        """Output frame names: the flow files' stems."""
        return [p.stem for p in self.flows]

    @property
    def n_frames(self) -> int:
        return len(self.flows)

    def read_flows(self, with_images: bool = False) -> Iterator[tuple[str, np.ndarray, np.ndarray | None]]:
        """Yield ``(where, flow, image)`` per frame: the file path, (2, H, W) float32 pixels,
        and with ``with_images`` and known ``images`` the frame (H, W, 3) uint8 RGB, else None.
        A frame that cannot be decoded, or whose size is not ``frame_size``, is an error
        naming its file."""
        from .io.videoio import read_image

        read_images = with_images and self.has_frames
        for t, path in enumerate(self.flows):
            image = None
            if read_images:
                image = read_image(self.images[t])
                expected = self.frame_size or image.shape[:2]
                if image.shape[:2] != tuple(expected):
                    raise StsegInputError(
                        f"{self.images[t]}: frame size {image.shape[1]}x{image.shape[0]} differs from the sequence's "
                        f"{expected[1]}x{expected[0]} (width x height) of sequence {self.name!r}"
                    )
            yield str(path), read_flow(path), image


@dataclass(frozen=True)
class VideoSequence:
    """A video (file or frame folder) whose forward flows are computed while it is read.

    Frame t's flow goes from frame t to frame t + step, so F frames give F − step flow
    frames, named by zero-padded index. The frames are counted exactly when opened (a
    decode pass: containers' counts can be wrong), since the pipeline sizes its outputs.
    """

    name: str
    video: object  # stseg_deploy.io.videoio.FrameSource; typed loosely to keep cv2 optional here
    recipe: FlowRecipe
    size: tuple[int, int] | None  # the recipe's flow size for these frames (None: theirs)
    n_frames: int

    @property
    def frame_size(self) -> tuple[int, int]:
        """(H, W) of the video's frames: outputs are written there whatever the flow size."""
        return tuple(self.video.size)

    @property
    def has_frames(self) -> bool:
        return True  # decoded for the flow

    def check_frames(self) -> None:
        """Nothing to check: the frames are the video's own."""

    @property
    def masks(self) -> tuple[None, ...]:
        return (None,) * self.n_frames

    @property
    def frame_names(self) -> list[str]:
        from .io.videoio import frame_name

        return [frame_name(t) for t in range(self.n_frames)]

    @property
    def flows(self) -> tuple[str, ...]:
        """Where each flow comes from, for the sequence record."""
        return tuple(f"{self.video.path} frame {name}" for name in self.frame_names)

    def read_flows(self, with_images: bool = False) -> Iterator[tuple[str, np.ndarray, np.ndarray | None]]:
        """Yield ``(where, flow, image)`` per flow frame t: the frame's description, its flow
        (2, H, W) float32 pixels, and with ``with_images`` frame t itself, (H, W, 3) uint8 RGB
        (the frames decoded for the flow, so showing them costs no second decode)."""
        from .flow.opticalflow import iter_flows
        from .io.videoio import frame_name

        for t, flow, image in iter_flows(self.video, self.recipe.method, self.size, self.recipe.step, with_images=True):
            yield f"{self.video.path} frame {frame_name(t)}", flow, image if with_images else None


def open_video_sequence(source: str | Path, recipe: FlowRecipe | None = None) -> VideoSequence:
    """A :class:`VideoSequence` named after the video's file stem (or the frame folder),
    its flow made by ``recipe`` (None: the defaults)."""
    from .flow.opticalflow import FlowEstimator
    from .io.videoio import ImageFolderSource, open_frame_source

    recipe = recipe or FlowRecipe()
    video = open_frame_source(source)
    size = recipe.size_for(video.size)
    FlowEstimator(recipe.method, size)  # refuse bad options before the counting pass
    count = len(video) if isinstance(video, ImageFolderSource) else sum(1 for _ in video)
    step = recipe.step
    if count <= step:
        raise StsegInputError(f"{video.path}: only {count} frame(s); flow with step {step} needs at least {step + 1}")
    return VideoSequence(check_name(video.name, str(video.path)), video, recipe, size, count - step)


def is_flow_folder(path: Path) -> bool:
    """True for a folder of flow files rather than of video frames.

    ``.flo`` / ``.npy`` mean flow; ``.png`` means flow only when 16-bit RGB (KITTI), since
    ordinary 8-bit PNGs are frames.
    """
    if not path.is_dir():
        return False
    files = [p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")]
    if any(p.suffix.lower() in (".flo", ".npy") for p in files):
        return True
    pngs = sorted((p for p in files if p.suffix.lower() == ".png"), key=lambda p: p.name)
    return bool(pngs) and _is_rgb16_png(pngs[0])


def _is_rgb16_png(path: Path) -> bool:
    with open(path, "rb") as handle:
        header = handle.read(26)
    # Signature (8), IHDR length and type (8), width, height (8), bit depth, colour type.
    return len(header) == 26 and header[:8] == b"\x89PNG\r\n\x1a\n" and header[24] == 16 and header[25] == 2


def sequences_from_folders(folders: list[str | Path]) -> list[Sequence]:
    """One sequence per folder, named after it; frames are its flow files in natural order."""
    out, names = [], set()
    for folder in folders:
        folder = Path(folder)
        flows = list_flow_files(folder)
        # Named after the path as given ("." and ".." folded), not a link's target.
        name = check_name(Path(os.path.abspath(folder)).name, str(folder))
        if name in names:
            raise StsegInputError(f"{folder}: two input folders are both named {name!r}; outputs would collide")
        names.add(name)
        out.append(Sequence(name, tuple(flows), (None,) * len(flows)))
    return out


def sequences_from_datasplit(prefix: str | Path, split: str, base_dir: str | Path | None) -> list[Sequence]:
    """Sequences of a DataSplit split, rows ordered by Sequence_Index.

    Raises FileNotFoundError naming the first missing flow file: inference cannot skip
    frames without shifting every later label.
    """
    table = read_datasplit(prefix, split)
    out = []
    for name, group in table.groupby("Sequence", sort=False):
        check_name(str(name), f"{prefix}_{split}.csv (Sequence of the Flow {group['Flow'].iloc[0]})")
        flows = tuple(resolve(base_dir, f) for f in group["Flow"])
        for path in flows:
            if not path.is_file():
                raise FileNotFoundError(
                    f"{path}: flow file of sequence {name!r} not found (listed in {prefix}_{split}.csv; "
                    f"its paths are relative to --base-dir, here {base_dir or 'not given'})"
                )
        masks = tuple(resolve(base_dir, m) if isinstance(m, str) else None for m in group["GtMask"])
        out.append(Sequence(
            str(name), flows, masks, _frame_size(group, base_dir, f"{prefix}_{split}.csv"),
            _images(group, base_dir),
        ))
        indices = group["Sequence_Index"].to_numpy()
        if len(indices) > 1 and (indices[1:] - indices[:-1] != 1).any():
            log.warning("sequence %s of %s_%s.csv has gaps in Sequence_Index; frames are used in order", name, prefix, split)
    return out


def _frame_size(group, base_dir: str | Path | None, csv_name: str) -> tuple[int, int] | None:
    """(H, W) of a sequence's first Image (read from its header), or None without an Image.

    A listed image that cannot be read is an error rather than a silent fall-back to the
    flow size: the masks would come out on another grid than the user's frames.
    """
    from .datasets.listing import image_size

    first = group["Image"].iloc[0]
    if not isinstance(first, str):
        return None
    path = resolve(base_dir, first)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: Image of sequence {group['Sequence'].iloc[0]!r} not found (listed in {csv_name})")
    return image_size(path)


def _images(group, base_dir: str | Path | None) -> tuple[Path, ...]:
    """A sequence's Image files, one per row, when every row names one; else empty (the
    frames are then unknown). Their files are checked only when a run refines with them
    (:meth:`Sequence.check_frames`): a run that does not read them does not need them."""
    images = list(group["Image"])
    if not all(isinstance(i, str) and i for i in images):
        return ()
    return tuple(resolve(base_dir, i) for i in images)


def with_frames(sequence: Sequence, frames_dir: str | Path, single: bool) -> Sequence:
    """``sequence`` (flow files) with its frames found in ``frames_dir``: for each flow file
    ``NAME.flo`` the image ``NAME.<jpg|png|...>`` in ``frames_dir/<sequence>/``, or directly
    in ``frames_dir`` when ``single`` (one input) and it holds images. Every flow frame needs
    its image: a missing one is an error naming the file looked for."""
    from .datasets.listing import image_size
    from .io.videoio import IMAGE_SUFFIXES

    root = Path(frames_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: --frames folder not found")
    folder = root / sequence.name
    if not folder.is_dir():
        if not single:
            raise FileNotFoundError(f"{folder}: no frames of sequence {sequence.name!r} (--frames holds one folder per sequence)")
        folder = root
    by_stem: dict[str, Path] = {}
    for path in folder.iterdir():
        if path.is_file() and not path.name.startswith(".") and path.suffix.lower() in IMAGE_SUFFIXES:
            by_stem.setdefault(path.stem, path)
    images = []
    for name in sequence.frame_names:
        if name not in by_stem:
            raise FileNotFoundError(
                f"{folder / name}.*: no frame for flow {name!r} of sequence {sequence.name!r} "
                f"(looked for {', '.join(IMAGE_SUFFIXES)} files named like the flows in {folder})"
            )
        images.append(by_stem[name])
    return replace(sequence, images=tuple(images), frame_size=image_size(images[0]))


def sequences_from_inputs(inputs: list[str | Path], recipe: FlowRecipe | None = None) -> list[Sequence | VideoSequence]:
    """Sequences for stseg-infer's INPUT arguments: each a folder of flow files, a video file
    or a folder of frames (flow made by ``recipe``; None: the defaults). A folder of
    sequence folders is refused with the way to pass them; names that would collide in the
    output folder are refused, all listed."""
    sequences: list[Sequence | VideoSequence] = []
    for item in inputs:
        path = Path(item)
        if is_flow_folder(path):
            sequences += sequences_from_folders([path])
        elif path.is_dir() and not _has_frames(path) and any(p.is_dir() for p in path.iterdir()):
            subfolders = sorted(p.name for p in path.iterdir() if p.is_dir())
            raise StsegInputError(
                f"{path}: holds no flow files or frames, but {len(subfolders)} folder(s) "
                f"({', '.join(subfolders[:3])}{', ...' if len(subfolders) > 3 else ''}); "
                f"pass each sequence folder as its own input, e.g. {path}/*"
            )
        else:
            sequences.append(open_video_sequence(path, recipe))
    by_name: dict[str, list[str]] = {}
    for item, sequence in zip(inputs, sequences):
        by_name.setdefault(sequence.name, []).append(str(item))
    clashes = {name: items for name, items in by_name.items() if len(items) > 1}
    if clashes:
        listed = "; ".join(f"{name!r}: {', '.join(items)}" for name, items in sorted(clashes.items()))
        raise StsegInputError(f"several inputs have the same sequence name, so their outputs would collide ({listed})")
    return sequences


def _has_frames(folder: Path) -> bool:
    from .io.videoio import IMAGE_SUFFIXES

    return any(p.suffix.lower() in IMAGE_SUFFIXES for p in folder.iterdir() if p.is_file())
