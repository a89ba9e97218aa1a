"""Writing a segmented sequence into its OUT/SEQ folder (the format: :mod:`stseg_deploy.output.layout`):
the settings record, ``--skip-done``, and the sinks that write the files.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict
from pathlib import Path

from ..errors import StsegInputError
from ..io.flowfiles import FLOW_MARKER
from ..io.outdir import check_inputs_outside, check_name, file_sha256, read_marker
from ..io.videoio import DEFAULT_FPS
from ..pipeline import Segmenter, SequenceStats
from ..settings import InferenceSettings
from ..sources import Sequence
from ..stages.linker import LinkedFrame, LinkSettings
from .layout import SEQUENCE_FILE, TOOL, OutputOptions, sequence_output_unit
from .sinks import FolderSink, FrameSink, OverlaySink, drive


def sequence_inputs(sequence, frames: bool = True) -> list[Path]:
    """Every file or folder a sequence reads: its flow files and masks, or its video, and
    with ``frames`` the image files it has for refinement (``Sequence.images``)."""
    if sequence.video is not None:
        return [Path(sequence.video.path)]
    images = getattr(sequence, "images", ()) if frames else ()
    return [Path(p) for p in (*sequence.flows, *sequence.masks, *images) if p is not None]


def input_stamp(sequence, frames: bool = False) -> str:
    """A digest of the size and modification time of every file a sequence reads (a frame
    folder's files too; with ``frames``, the image files that guide its refinement): what
    tells ``--skip-done`` that inputs of the same names were made again. The frames count
    only for a refined output, so the stamps of unrefined outputs are as before."""
    import hashlib

    digest = hashlib.sha256()
    for path in sequence_inputs(sequence, frames):
        files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
        for file in files:
            try:
                stat = file.stat()
            except OSError:
                digest.update(f"{file}|missing\n".encode())
                continue
            digest.update(f"{file}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def check_outputs_spare_inputs(sequences: Iterable, out_dir: str | Path) -> None:
    """Refuse, before anything is written, an ``out_dir`` whose sequence folders would hold
    any sequence's input (flows, masks, frames or video)."""
    sequences = list(sequences)
    check_inputs_outside(
        [Path(out_dir) / check_name(s.name) for s in sequences],
        [p for s in sequences for p in sequence_inputs(s)],
    )


def segment_to_folder(
    segmenter: Segmenter,
    sequence: Sequence,
    out_dir: str | Path,
    options: OutputOptions = OutputOptions(),
    on_frame: Callable[[LinkedFrame], None] | None = None,
    model_sha256: str | None = None,
) -> SequenceStats:
    """Segment ``sequence`` and write its outputs to ``out_dir / sequence.name``.

    The folder is an output unit (:mod:`stseg_deploy.io.outdir`): it is written beside any
    earlier output under a temporary name and swapped in only when complete, so a failed
    or interrupted run leaves the earlier output as it was; a folder holding files stseg
    did not write, or one of this sequence's inputs, is refused; a second writer of the
    same sequence fails at once. ``sequence.json`` is written last and marks the output
    complete, with the settings and the model file's SHA-256 (``model_sha256``, computed
    from the model's file when not given).

    The files come from :class:`~stseg_deploy.output.sinks.FolderSink` (and
    :class:`~stseg_deploy.output.sinks.OverlaySink` with ``options.overlay``) fed by
    :meth:`Segmenter.run`. Memory stays flat: labels stream into ``labels.npy`` frame by
    frame, other files are written by a background thread as frames are linked
    (``on_frame`` is called from that thread, once a frame's files are written).
    """
    def run(sinks: list[FrameSink]) -> SequenceStats:
        return segmenter.run(sequence, sinks, keep_proba=options.save_proba, keep_features=options.save_features)

    return _write_unit(segmenter, sequence, out_dir, options, run, on_frame, model_sha256)


def frames_to_folder(
    segmenter: Segmenter,
    sequence,
    frames: list[LinkedFrame],
    stats: SequenceStats,
    out_dir: str | Path,
    options: OutputOptions = OutputOptions(),
    model_sha256: str | None = None,
) -> SequenceStats:
    """Write frames ``segmenter`` already made of ``sequence`` (kept in memory, e.g. by the
    Python API's :meth:`~stseg_deploy.api.Segmentation.save`) to ``out_dir / sequence.name``
    exactly as :func:`segment_to_folder` would, under the same output-unit rules. Their
    ``proba`` / ``features`` are written when ``options`` asks for them; ``options.overlay``
    is refused (its frames are not kept)."""
    if options.overlay:
        raise ValueError("frames_to_folder writes no overlay: its video frames are not kept")
    frames = sorted(frames, key=lambda f: f.index)
    if [f.index for f in frames] != list(range(sequence.n_frames)):
        raise ValueError(f"sequence {sequence.name!r}: {len(frames)} frames given for its {sequence.n_frames}")

    def run(sinks: list[FrameSink]) -> SequenceStats:
        drive(sinks, sequence, stats, iter(frames))
        return stats

    return _write_unit(segmenter, sequence, out_dir, options, run, None, model_sha256)


def _write_unit(segmenter, sequence, out_dir, options, run, on_frame, model_sha256) -> SequenceStats:
    """The output unit of one sequence: refused where it would hold an input, written under a
    temporary name by ``run(sinks)``, committed with its record."""
    unit = sequence_output_unit(out_dir, sequence.name)
    check_inputs_outside([unit.target], sequence_inputs(sequence))
    if model_sha256 is None:
        model_sha256 = model_file_sha256(segmenter)
    with unit:
        markers = _flow_markers(sequence)
        names = sequence.frame_names
        folder = FolderSink(unit.tmp, names, segmenter.image_size, options.save_proba, options.save_features, on_frame,
                            foreground=segmenter.settings.foreground.on)
        sinks: list[FrameSink] = [folder]
        if options.overlay:
            fps = sequence.video.fps if sequence.video is not None else DEFAULT_FPS
            sinks.append(OverlaySink(unit.tmp, names, fps))
        stats = run(sinks)
        if _flow_markers(sequence) != markers:
            raise StsegInputError(
                f"{sequence.name}: its flow folder was replaced by another stseg-flow run while being read; "
                "nothing was written, run again"
            )
        unit.commit(_sequence_record(segmenter, sequence, stats, model_sha256, options, folder.objects))
    return stats


def _flow_markers(sequence) -> dict[Path, bytes | None]:
    """The stseg-flow markers of a sequence's flow folders, as bytes (None where absent).

    stseg-flow swaps a folder in whole with a new marker, so an unchanged marker before
    and after reading means every flow came from one run.
    """
    if sequence.video is not None:
        return {}
    found = {}
    for folder in {Path(p).parent for p in sequence.flows}:
        try:
            found[folder] = (folder / FLOW_MARKER).read_bytes()
        except OSError:
            found[folder] = None
    return found


def model_file_sha256(segmenter: Segmenter) -> str | None:
    """SHA-256 of the segmenter's model file (None for a model that has no file)."""
    path = getattr(segmenter.model, "path", None)
    return file_sha256(path) if path is not None else None


def output_settings(segmenter: Segmenter, sequence, options: OutputOptions) -> dict:
    """The settings a sequence's output is made with, as sequence.json records them: the
    run's (batch size, model input size and resize, outputs asked for, a video's flow) and
    the stages' (:meth:`InferenceSettings.record`, the refinement as applied to this
    sequence). Raises StsegInputError for ``refine="guided"`` on a sequence without frames."""
    settings = {
        "batch_size": segmenter.batch_size,
        "image_size": list(segmenter.image_size),
        "resize": segmenter.model.info.resize,  # the model's training resize, which inference repeats
        **asdict(options),
        **segmenter.settings_for(sequence).record(),
    }
    if sequence.video is not None:  # a video: its flow was computed here
        size = None if sequence.size is None else list(sequence.size)
        settings["flow"] = {"method": sequence.recipe.method, "size": size, "step": sequence.recipe.step}
    return settings


def is_done(out_dir: str | Path, sequence, settings: dict, model_sha256: str | None) -> bool:
    """Whether ``out_dir/<sequence>`` is a complete output of this sequence's inputs as they
    are now (names, sizes and times: :func:`input_stamp`), made with ``settings`` (see
    :func:`output_settings`) by the model file ``model_sha256``: what ``--skip-done`` skips.
    Timings, engine and device may differ."""
    record = read_marker(Path(out_dir) / sequence.name, SEQUENCE_FILE, TOOL)
    if record is None:
        return False
    written = record.get("settings") or {}
    if not isinstance(written, dict):
        return False
    try:
        # Linking's flat keys read back through its settings: an output written before
        # link_span existed was linked with span 1, not today's default.
        linked_with = LinkSettings.from_record(written).record()
    except (TypeError, ValueError):
        return False
    # Stages an older output does not name did not run then.
    done_with = {**InferenceSettings.from_record({}).record(), **linked_with, **written}
    return (
        model_sha256 is not None
        and (record.get("model_file") or {}).get("sha256") == model_sha256
        and done_with == settings
        and record.get("frames") == sequence.frame_names
        and record.get("flows") == [str(p) for p in sequence.flows]
        and record.get("input_stamp") == input_stamp(sequence, frames=settings.get("refine") == "guided")
    )


def _sequence_record(
    segmenter: Segmenter,
    sequence: Sequence,
    stats: SequenceStats,
    model_sha256: str | None,
    options: OutputOptions,
    objects: list[list[int] | None],
) -> dict:
    info = segmenter.model.info
    settings = output_settings(segmenter, sequence, options)
    path = getattr(segmenter.model, "path", None)
    asked = segmenter.settings.refine.mode
    refine = {"asked": asked, "applied": settings["refine"]}
    if asked == "auto" and settings["refine"] == "none":
        refine["note"] = "no frames known for this sequence (flow files only): labels upsampled, nearest"
    return {
        "sequence": sequence.name,
        "frames": sequence.frame_names,
        "flows": [str(p) for p in sequence.flows],
        "masks": [None if m is None else str(m) for m in sequence.masks],
        "input_stamp": input_stamp(sequence, frames=settings["refine"] == "guided"),
        "original_size": list(stats.original_size),
        "model_size": list(segmenter.image_size),
        "n_labels": segmenter.n_labels,
        "cut_size": segmenter.settings.link.cut_size,
        "link": segmenter.settings.link.mode,
        "link_span": segmenter.settings.link.link_span,
        "link_vote": segmenter.settings.link.link_vote,
        "link_reclaim": segmenter.settings.link.link_reclaim,
        "settings": settings,
        "refine": refine,
        "model_file": {"path": None if path is None else str(path), "sha256": model_sha256},
        "model": {**asdict(info), "image_size": list(info.image_size)},
        "engine": segmenter.model.engine,
        "device": segmenter.model.device,
        "seconds": {k: round(v, 4) for k, v in asdict(stats).items() if isinstance(v, float)},
        # Per frame, the labels that are moving objects (foreground/ and objects/ are drawn
        # from them); absent when the foreground was not decided.
        **({"objects": objects} if segmenter.settings.foreground.on else {}),
    }


