"""The Python API in three lines::

    import stseg_deploy as st
    result = st.segment("clip.mp4")          # a video file, a frame folder or a flow folder
    result.labels                             # (F, H, W) uint8, one label map per flow frame

``segment`` runs what ``stseg-infer`` runs on one input, with the same defaults and the same
option names (``tta``, ``refine``, ``motion_split``, ``link``, ``cut_size``, ...), and keeps
the result in memory instead of writing a folder. ``list_models()`` lists the bundled models.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stseg_kernels import DEFAULT_CUT_SIZE

from .carry import DEFAULT_CARRY, CarrySettings
from .flowrecipe import resolve_recipe
from .linker import DEFAULT_LINK
from .motionsplit import DEFAULT_SPLIT, SplitSettings
from .pipeline import Segmenter, SequenceStats
from .preprocess import resize_labels
from .refine import DEFAULT_REFINE, GuidedSettings
from .runtime import load_model
from .sinks import MemorySink
from .errors import StsegInputError
from .sources import sequences_from_inputs, with_frames
from .tta import DEFAULT_TTA
from .zoo import DEFAULT_MODEL, bundled_models, model_card, resolve_model


@dataclass
class Segmentation:
    """One segmented sequence.

    name: the sequence (the video's file stem, or the folder's name); frame_names: one per
    flow frame (frame t's flow goes to frame t + step); model: the bundled model's name, or
    the model file given; n_labels: labels the maps may hold (the model's L, plus the motion
    split's spare segments); labels: (F, H, W) uint8 at the frames' size (refined when the
    frames guided a refinement, else the linked labels upsampled, nearest); proba:
    (F, n_labels, h, w) float32 at the model's size, when ``save_proba``; stats: timings.
    """

    name: str
    frame_names: list[str]
    model: str
    n_labels: int
    labels: np.ndarray
    proba: np.ndarray | None
    stats: SequenceStats


def segment(
    source: str | Path,
    model: str | Path | None = None,
    *,
    save_proba: bool = False,
    provider: str = "auto",
    threads: int | None = None,
    batch_size: int = 8,
    cut_size: int | None = DEFAULT_CUT_SIZE,
    link: str = DEFAULT_LINK,
    image_size: tuple[int, int] | None = None,
    tta: str = DEFAULT_TTA,
    refine: str = DEFAULT_REFINE,
    motion_split: str = DEFAULT_SPLIT,
    motion_split_gain: float = SplitSettings().min_gain,
    motion_split_extra: int = SplitSettings().extra,
    carry: str = DEFAULT_CARRY,
    carry_weight: float = CarrySettings().weight,
    guided_radius: float = GuidedSettings().radius,
    guided_eps: float = GuidedSettings().eps,
    guided_subsample: int = GuidedSettings().subsample,
    flow_method: str | None = None,
    flow_size: tuple[int, int] | None = None,
    flow_scale: float | str | None = None,
    flow_step: int = 1,
    frames: str | Path | None = None,
) -> Segmentation:
    """Segment one video file, frame folder or flow folder, as ``stseg-infer INPUT`` does.

    ``model``: a bundled name or a model file (.onnx, or .ts with torch); None is the
    bundled default. Video flow follows the model's training flow unless ``flow_*`` say
    otherwise. ``frames``: for a flow folder, the folder of its frames (named like the
    flows), which the guided refinement needs. Raises StsegInputError (a ValueError)
    naming the file for bad input.
    """
    model_file, bundled = resolve_model(model)
    loaded = load_model(model_file, provider=provider, threads=threads)
    recipe = resolve_recipe(loaded.info.flow, flow_method, flow_size, flow_scale, flow_step)
    (sequence,) = sequences_from_inputs([source], recipe)
    if frames is not None:
        if sequence.video is not None:
            raise StsegInputError(f"{source}: frames= applies to a flow folder; a video or frame folder has its own frames")
        sequence = with_frames(sequence, frames, single=True)
    segmenter = Segmenter(
        loaded, batch_size=batch_size, cut_size=cut_size, link=link, image_size=image_size,
        tta=tta, refine=refine, guided=GuidedSettings(guided_radius, guided_eps, guided_subsample),
        split=motion_split, split_settings=SplitSettings(extra=motion_split_extra, min_gain=motion_split_gain),
        carry=carry, carry_settings=CarrySettings(weight=carry_weight),
    )
    sink = MemorySink()
    stats = segmenter.run(sequence, sink, keep_proba=save_proba)
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
