"""The Python API in three lines::

    import stseg_deploy as st
    result = st.segment("clip.mp4")          # a video file, a frame folder or a flow folder
    result.labels                             # (F, H, W) uint8, one label map per flow frame
    result.foreground                         # (F, H, W) bool, the moving objects (no ground truth used)
    result.save("out")                        # out/clip/: what stseg-infer writes

``segment`` runs what ``stseg-infer`` runs on one input, with the same defaults and the same
option names (``tta``, ``refine``, ``motion_split``, ``link``, ``cut_size``, ...), and keeps
the result in memory instead of writing a folder. ``list_models()`` lists the bundled models.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import StsegInputError
from .flow.recipe import resolve_recipe, swapped_engine
from .output.folder import frames_to_folder
from .output.layout import OutputOptions, object_id_maps
from .output.sinks import CallbackSink, MemorySink
from .pipeline import Segmenter, SequenceStats
from .preprocess import resize_labels
from .runtime import load_model
from .settings import InferenceSettings
from .sources import sequences_from_inputs, with_frames
from .stages.linker import LinkedFrame
from .zoo import DEFAULT_MODEL, bundled_models, model_card, resolve_model

log = logging.getLogger(__name__)


@dataclass(repr=False, eq=False)  # eq=False: array fields make == ambiguous
class Segmentation:
    """One segmented sequence.

    name: the sequence (the video's file stem, or the folder's name); frame_names: one per
    flow frame (frame t's flow goes to frame t + step); model: the bundled model's name, or
    the model file given; n_labels: labels the maps may hold (the model's L, plus the motion
    split's spare segments); labels: (F, H, W) uint8 at the frames' size (refined when the
    frames guided a refinement, else the linked labels upsampled, nearest); proba:
    (F, n_labels, h, w) float32 at the model's size, when ``save_proba``; stats: timings;
    object_labels: (F, n_labels) bool, which labels are moving objects in each frame (None
    with ``foreground="none"``). :attr:`foreground` and :attr:`objects` are the masks and
    object-id maps drawn from them; :meth:`save` writes what ``stseg-infer`` writes;
    :meth:`overlay` draws the objects over the frames.
    """

    name: str
    frame_names: list[str]
    model: str
    n_labels: int
    labels: np.ndarray
    proba: np.ndarray | None
    stats: SequenceStats
    object_labels: np.ndarray | None = None
    _linked: np.ndarray | None = field(default=None, repr=False)  # (F, h, w) at model size
    _refined: bool = field(default=False, repr=False)
    _segmenter: Segmenter | None = field(default=None, repr=False)
    _sequence: object = field(default=None, repr=False)

    @property
    def foreground(self) -> np.ndarray | None:
        """(F, H, W) bool: the moving objects' pixels (no ground truth used), None when the
        foreground was not decided."""
        return None if self.object_labels is None else self.objects > 0

    @property
    def objects(self) -> np.ndarray | None:
        """(F, H, W) uint8 object-id maps: 0 background, label + 1 on an object's pixels (ids as
        stable over time as the labels), None when the foreground was not decided."""
        return None if self.object_labels is None else object_id_maps(self.labels, self.object_labels)

    def __repr__(self) -> str:
        height, width = self.labels.shape[1:]
        decided = "not decided" if self.object_labels is None else f"{int(self.object_labels.any(axis=0).sum())} object label(s)"
        return (
            f"Segmentation({self.name!r}: {len(self.frame_names)} frames {width}x{height}, "
            f"{self.n_labels} labels, model {self.model!r}, foreground {decided})"
        )

    def save(self, out_dir: str | Path) -> Path:
        """Write ``out_dir/<name>/`` as ``stseg-infer`` does (labels.npy, the label PNGs,
        foreground/ and objects/, proba/ when kept, sequence.json), under the same rules: an
        earlier output is replaced only once this one is complete, and a folder holding files
        stseg did not write is refused. Returns the sequence folder."""
        if self._segmenter is None or self._linked is None:
            raise ValueError("this Segmentation was not made by stseg_deploy.segment(); nothing to save it with")
        frames = [
            LinkedFrame(
                index=t, labels=self._linked[t], proba=None if self.proba is None else self.proba[t], features=None,
                refined=self.labels[t] if self._refined else None,
                objects=None if self.object_labels is None else self.object_labels[t],
            )
            for t in range(len(self.frame_names))
        ]
        options = OutputOptions(save_proba=self.proba is not None)
        # A copy: writing adds its time to the stats, and this result's own stay as they were.
        frames_to_folder(self._segmenter, self._sequence, frames, copy.copy(self.stats), out_dir, options)
        return Path(out_dir) / self.name

    def overlay(self, alpha: float = 0.5) -> Iterator[np.ndarray]:
        """The frames with the moving objects tinted (every segment, when the foreground was
        not decided), one (H, W, 3) uint8 RGB image per flow frame, read again from the
        source as they are drawn (a flow folder without frames: over the flow's colours)."""
        from .viz.overlay import blend_labels

        for t, image in enumerate(_source_frames(self._sequence, len(self.frame_names))):
            labels = self.labels[t]
            untinted = None if self.object_labels is None else ~self.object_labels[t][labels]
            yield blend_labels(image, labels, alpha=alpha, untinted=untinted)


def _source_frames(sequence, n: int) -> Iterator[np.ndarray]:
    """The first ``n`` frames a sequence's flows start from, (H, W, 3) uint8 RGB: a video's
    decoded again, a folder's images, or the flows' colours when no frame is known."""
    if sequence is None:
        raise ValueError("this Segmentation was not made by stseg_deploy.segment(); it has no frames to draw on")
    if sequence.video is not None:
        for index, frame in sequence.video:  # a FrameSource decodes afresh on each iteration
            if index >= n:
                return
            yield frame
    elif sequence.has_frames:
        from .io.videoio import read_image

        for path in sequence.images[:n]:
            yield read_image(path)
    else:
        from .io.flowio import read_flow
        from .viz.flowcolour import flow_to_rgb

        for path in sequence.flows[:n]:
            yield flow_to_rgb(read_flow(path))


def segment(
    source: str | Path,
    model: str | Path | None = None,
    *,
    settings: InferenceSettings | None = None,
    save_proba: bool = False,
    provider: str = "auto",
    threads: int | None = None,
    batch_size: int = 8,
    image_size: tuple[int, int] | None = None,
    flow_method: str | None = None,
    flow_size: tuple[int, int] | None = None,
    flow_scale: float | str | None = None,
    flow_step: int = 1,
    frames: str | Path | None = None,
    on_frame: Callable[[int, int], None] | None = None,
    **options: Any,
) -> Segmentation:
    """Segment one video file, frame folder or flow folder, as ``stseg-infer INPUT`` does.

    ``model``: a bundled name or a model file (.onnx, or .ts with torch); None is the
    bundled default. The stages take stseg-infer's option names, with its defaults
    (``tta="flip"``, ``refine="auto"``, ``guided_radius``, ``motion_split="motion"``,
    ``carry``, ``foreground="motion"``, ``link``, ``cut_size``, ...: all of them in
    :meth:`InferenceSettings.option_defaults`), or a whole ``settings`` object instead.
    Video flow follows the model's training flow unless ``flow_*`` say otherwise (a model
    trained on DeepFlow gets ``deepflow-dis``: :data:`stseg_deploy.flow.recipe.INFERENCE_METHOD`).
    ``frames``: for a flow folder, the folder of its frames (named like the flows), which the
    guided refinement needs. ``on_frame(done, total)``: called after each frame, for a
    progress display (a long video takes minutes). Raises StsegInputError (a ValueError)
    naming the file for bad input, TypeError for an option no stage has.
    """
    if settings is not None and options:
        raise TypeError(f"give settings= or stage options ({', '.join(sorted(options))}), not both")
    settings = settings if settings is not None else InferenceSettings.from_options(**options)
    model_file, bundled = resolve_model(model)
    loaded = load_model(model_file, provider=provider, threads=threads)
    recipe = resolve_recipe(loaded.info.flow, flow_method, flow_size, flow_scale, flow_step)
    (sequence,) = sequences_from_inputs([source], recipe)
    trained = swapped_engine(loaded.info.flow, flow_method, recipe) if sequence.video is not None else None
    if trained is not None:
        log.info("the model was trained on %s flow; computing %s (flow_method=%r for its own)", trained, recipe.method, trained)
    if frames is not None:
        if sequence.video is not None:
            raise StsegInputError(f"{source}: frames= applies to a flow folder; a video or frame folder has its own frames")
        sequence = with_frames(sequence, frames, single=True)
    segmenter = Segmenter(loaded, settings, batch_size=batch_size, image_size=image_size)
    sink = MemorySink()
    sinks = [sink] if on_frame is None else [sink, CallbackSink(on_frame)]
    stats = segmenter.run(sequence, sinks, keep_proba=save_proba)
    if sink.refined is not None:
        labels = sink.refined
    else:
        labels = np.stack([resize_labels(frame, stats.original_size) for frame in sink.labels])
    return Segmentation(
        name=sequence.name,
        frame_names=list(sequence.frame_names),
        model=bundled or str(model_file),
        n_labels=segmenter.n_labels,
        labels=labels,
        proba=sink.proba if save_proba else None,
        stats=stats,
        object_labels=sink.objects,
        _linked=sink.labels,
        _refined=sink.refined is not None,
        _segmenter=segmenter,
        _sequence=sequence,
    )


def list_models() -> dict[str, str]:
    """The bundled models, name → one line of its card: steps, CPU minutes, scores."""
    lines = {}
    for name in bundled_models():
        card = model_card(name)
        scores = card.get("scores", {})
        objects = scores.get("objects", {})
        parts = [f"{card.get('steps', '?')} steps in its last run ({card.get('training_minutes', '?')} CPU min to this checkpoint)"]
        if "J_mean" in scores:
            stages = "" if "inference" in card else " (without the inference stages)"
            parts.append(f"DAVIS dev J {scores['J_mean']:.3f} F {scores['F_mean']:.3f}{stages}")
        if "J_objects" in objects:
            parts.append(f"multi-object J_objects {objects['J_objects']:.3f}")
        lines[name] = ("(default) " if name == DEFAULT_MODEL else "") + ", ".join(parts)
    return lines
