"""Tests for stseg_deploy.pipeline: the Segmenter, with a fake numpy model (no torch needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fakes import FakeModel
from fakes import write_sequence as _write_sequence

from stseg_deploy.errors import StsegInputError
from stseg_deploy.io.flowio import write_flow
from stseg_deploy.output.folder import segment_to_folder
from stseg_deploy.pipeline import Segmenter
from stseg_deploy.settings import InferenceSettings
from stseg_deploy.sources import sequences_from_folders
from stseg_deploy.stages.linker import DEFAULT_LINK, DEFAULT_SPAN, LinkSettings
from stseg_deploy.stages.tta import TtaSettings
from stseg_kernels import link_windows, unravel_windows


def test_segmenter_matches_batch_reference(tmp_path: Path) -> None:
    paths = _write_sequence(tmp_path / "seq", 9)
    model = FakeModel()
    seq = sequences_from_folders([tmp_path / "seq"])[0]
    labels = Segmenter(model, InferenceSettings.from_options(cut_size=3, tta="none", motion_split="none"), batch_size=4).segment(seq)
    assert model.calls == [4, 3]  # 7 windows, streamed in batches
    # Reference: all windows at once through the kernels.
    from stseg_deploy.io.flowio import read_flow
    from stseg_deploy.preprocess import flow_windows, resize_flow

    flows = np.stack([resize_flow(read_flow(p), (12, 16)) for p in paths])
    windows = flow_windows(flows)
    argmax = FakeModel().run(windows).argmax(axis=1).astype(np.uint8)
    np.testing.assert_array_equal(labels, unravel_windows(link_windows(argmax, 3, 3, DEFAULT_LINK, span=DEFAULT_SPAN)))


def test_the_vote_streams_through_the_carry_and_the_foreground(tmp_path: Path) -> None:
    """With the vote a frame comes out one window late, so a batch gives out the last frame
    of the batch before: the carry and the foreground decision still get every frame in
    order, with its own flows."""
    from stseg_deploy.output.sinks import MemorySink

    _write_sequence(tmp_path / "seq", 11)
    (seq,) = sequences_from_folders([tmp_path / "seq"])
    options = dict(cut_size=4, tta="none", motion_split="none")
    voting = InferenceSettings.from_options(**options, link_vote=True)
    plain = Segmenter(_AstrayMiddle(), InferenceSettings.from_options(**options)).segment(seq)
    labels = Segmenter(_AstrayMiddle(), voting, batch_size=3).segment(seq)
    # Every window's middle frame went astray on a block, which its neighbours outvote: the
    # frames whose three windows share a chunk (9 windows in chunks of 4: middles of windows
    # 1, 2, 5, 6) get the block back.
    honest = Segmenter(FakeModel(), InferenceSettings.from_options(**options)).segment(seq)
    mended = [t for t in range(11) if not np.array_equal(labels[t], plain[t])]
    assert mended == [2, 3, 6, 7]
    np.testing.assert_array_equal(labels[mended][:, :4, :4], honest[mended][:, :4, :4])
    for carry in ("none", "forward", "both"):
        sinks = {}
        for batch_size in (1, 3, 8):
            sink = MemorySink()
            settings = InferenceSettings.from_options(**options, link_vote=True, carry=carry, foreground="motion")
            Segmenter(_AstrayMiddle(), settings, batch_size=batch_size).run(seq, sink)
            sinks[batch_size] = sink
            assert sink.labels.shape[0] == 11
        np.testing.assert_array_equal(sinks[1].labels, sinks[3].labels)
        np.testing.assert_array_equal(sinks[1].labels, sinks[8].labels)
        np.testing.assert_array_equal(sinks[1].objects, sinks[8].objects)
    np.testing.assert_array_equal(labels, Segmenter(_AstrayMiddle(), voting, batch_size=1).segment(seq))


class _AstrayMiddle(FakeModel):
    """FakeModel whose every window gives its middle frame's top-left 4x4 block to the next
    label: the windows before and after, which hold that frame too, disagree with it."""

    def run(self, flow: np.ndarray, features: bool = False):
        out = super().run(flow, features)
        proba = out[0] if features else out
        proba[:, :, 1, :4, :4] = np.roll(proba[:, :, 1, :4, :4], 1, axis=1)
        return out


def test_a_paused_object_gets_its_label_back_whatever_the_batches(tmp_path: Path) -> None:
    """--link-reclaim: the object that comes back in another segment after its pause takes
    its first label again, through the carry and the foreground decision, at any batch size."""
    from stseg_deploy.output.sinks import MemorySink

    _write_sequence(tmp_path / "seq", 12)
    (seq,) = sequences_from_folders([tmp_path / "seq"])
    options = dict(cut_size=None, tta="none", motion_split="none", refine="none")
    plain = Segmenter(_PausingObject(), InferenceSettings.from_options(**options)).segment(seq)
    assert (plain[:4, 3:8, 3:8] == plain[0, 4, 4]).all() and (plain[7:, 3:8, 3:8] != plain[0, 4, 4]).all()
    for carry in ("none", "forward", "both"):
        runs = []
        for batch_size in (1, 3, 8):
            sink = MemorySink()
            settings = InferenceSettings.from_options(**options, link_reclaim=True, carry=carry, foreground="motion")
            Segmenter(_PausingObject(), settings, batch_size=batch_size).run(seq, sink)
            runs.append(sink.labels)
        for labels in runs:
            np.testing.assert_array_equal(labels, runs[0])
        assert (runs[0][7:, 3:8, 3:8] == plain[0, 4, 4]).all()


class _PausingObject(FakeModel):
    """Segments of a scene, whatever the flow: an object in segment 1 on frames 0-3, in the
    background's segment 0 on frames 4-6 (it stopped) and in segment 2 from frame 7 on;
    segment 1 keeps two stray pixels from frame 4 on. Windows must come in order."""

    def __init__(self) -> None:
        super().__init__()
        frames = np.zeros((12, 12, 16), np.int64)
        frames[:4, 3:8, 3:8] = 1
        frames[4:, 0, 14:] = 1
        frames[7:, 3:8, 3:8] = 2
        self.windows = np.stack([frames[:-2], frames[1:-1], frames[2:]], axis=1)
        self.given = 0

    def run(self, flow: np.ndarray, features: bool = False):
        b = flow.shape[0]
        segments = self.windows[self.given : self.given + b]
        self.given += b
        proba = 0.1 + 0.7 * np.moveaxis(np.eye(3, dtype=np.float32)[segments], -1, 1)
        return (proba, flow.copy()) if features else proba


def test_motion_split_runs_between_the_model_and_linking(tmp_path: Path) -> None:
    """With the split, outputs have L + extra labels: the model's probabilities split per
    window (stseg_deploy.stages.motionsplit), then linked like any others."""
    from stseg_deploy.io.flowio import read_flow
    from stseg_deploy.preprocess import flow_windows, resize_flow
    from stseg_deploy.stages.motionsplit import MotionSplitter, SplitSettings

    paths = _write_sequence(tmp_path / "seq", 9)
    (seq,) = sequences_from_folders([tmp_path / "seq"])
    settings = SplitSettings(extra=2, min_gain=0.05)
    stages = InferenceSettings(tta=TtaSettings(mode="none"), split=settings, link=LinkSettings(cut_size=3))
    segmenter = Segmenter(FakeModel(), stages, batch_size=4)
    assert segmenter.n_labels == 3 + 2
    labels = segmenter.segment(seq)
    windows = flow_windows(np.stack([resize_flow(read_flow(p), (12, 16)) for p in paths]))
    split = MotionSplitter(settings)(FakeModel().run(windows), windows)
    argmax = split.argmax(axis=1).astype(np.uint8)
    np.testing.assert_array_equal(labels, unravel_windows(link_windows(argmax, 5, 3, DEFAULT_LINK, span=DEFAULT_SPAN)))


def test_labels_come_from_the_model_unless_probabilities_are_kept(tmp_path: Path) -> None:
    """Without probabilities or features the pipeline asks the model for labels only (the
    in-graph argmax of an export); with them it reduces the probabilities itself. Same maps."""

    class Recording(FakeModel):
        def __init__(self) -> None:
            super().__init__()
            self.asked: list[str] = []

        def run(self, flow, features=False):
            self.asked.append("run")
            return super().run(flow, features)

        def labels(self, flow):
            self.asked.append("labels")
            return super().run(flow).argmax(axis=1).astype(np.uint8)

    _write_sequence(tmp_path / "seq", 9)
    (seq,) = sequences_from_folders([tmp_path / "seq"])
    plain, kept = Recording(), Recording()
    labels = Segmenter(plain, InferenceSettings.from_options(cut_size=3, tta="none", motion_split="none"), batch_size=4).segment(seq)
    frames = list(Segmenter(kept, InferenceSettings.from_options(cut_size=3, tta="none", motion_split="none"), batch_size=4).linked_frames(seq, keep_proba=True))
    assert set(plain.asked) == {"labels"} and set(kept.asked) == {"run"}
    np.testing.assert_array_equal(labels, np.stack([f.labels for f in frames]))
    np.testing.assert_array_equal(labels, np.stack([f.proba.argmax(axis=0) for f in frames]))


@pytest.mark.parametrize("mode", ["antialias", "plain"])
def test_segmenter_resizes_flow_as_the_model_was_trained(tmp_path: Path, mode: str) -> None:
    paths = _write_sequence(tmp_path / "seq", 4, size=(25, 33))
    model = FakeModel(resize=mode)
    seq = sequences_from_folders([tmp_path / "seq"])[0]
    Segmenter(model, InferenceSettings.from_options(cut_size=None, tta="none"), batch_size=8).segment(seq)
    from stseg_deploy.io.flowio import read_flow
    from stseg_deploy.preprocess import flow_windows, resize_flow

    expected = flow_windows(np.stack([resize_flow(read_flow(p), (12, 16), mode) for p in paths]))
    np.testing.assert_allclose(model.inputs[0], expected, rtol=1e-6, atol=1e-6)
    other = "plain" if mode == "antialias" else "antialias"
    wrong = flow_windows(np.stack([resize_flow(read_flow(p), (12, 16), other) for p in paths]))
    assert not np.allclose(model.inputs[0], wrong, atol=1e-3)


def test_bad_sequences(tmp_path: Path) -> None:
    _write_sequence(tmp_path / "short", 2)
    seq = sequences_from_folders([tmp_path / "short"])[0]
    with pytest.raises(StsegInputError, match="'short': 2 flow frame"):
        Segmenter(FakeModel()).segment(seq)
    paths = _write_sequence(tmp_path / "mixed", 4)
    write_flow(paths[2], np.zeros((2, 10, 10), np.float32))
    seq = sequences_from_folders([tmp_path / "mixed"])[0]
    with pytest.raises(StsegInputError, match="00002.flo: flow size 10x10 differs"):
        segment_to_folder(Segmenter(FakeModel()), seq, tmp_path / "out")
    assert not (tmp_path / "out" / "mixed").exists()  # nothing half-written is left




def test_flip_runs_the_mirrored_windows_in_the_same_call(tmp_path: Path) -> None:
    from stseg_deploy.io.flowio import read_flow
    from stseg_deploy.preprocess import flow_windows, resize_flow
    from stseg_deploy.stages.tta import run_flipped

    paths = _write_sequence(tmp_path / "seq", 9)
    (seq,) = sequences_from_folders([tmp_path / "seq"])
    model = FakeModel(n_labels=4)
    labels = Segmenter(model, InferenceSettings.from_options(cut_size=3, tta="flip", refine="none", motion_split="none"), batch_size=4).segment(seq)
    assert model.calls == [8, 6]  # 7 windows: each batch with its mirror, one call
    windows = flow_windows(np.stack([resize_flow(read_flow(p), (12, 16)) for p in paths]))
    _, argmax, _ = run_flipped(FakeModel(n_labels=4), windows)
    np.testing.assert_array_equal(labels, unravel_windows(link_windows(argmax, 4, 3, DEFAULT_LINK, span=DEFAULT_SPAN)))
    plain = Segmenter(FakeModel(n_labels=4), InferenceSettings.from_options(cut_size=3, tta="none", refine="none", motion_split="none"), batch_size=4).segment(seq)
    assert (labels != plain).any()  # this fake is not mirror-symmetric: the flip changes labels


def _sequence_with_frames(tmp_path: Path, n: int = 7, frame_size=(48, 60)):
    from dataclasses import replace

    from fakes import write_frames

    _write_sequence(tmp_path / "seq", n)
    (seq,) = sequences_from_folders([tmp_path / "seq"])
    images = write_frames(tmp_path / "frames", seq.frame_names, frame_size)
    return replace(seq, images=tuple(images), frame_size=frame_size)


def test_refinement_needs_frames_when_asked_for(tmp_path: Path) -> None:
    _write_sequence(tmp_path / "seq", 5)
    (seq,) = sequences_from_folders([tmp_path / "seq"])
    assert Segmenter(FakeModel(), InferenceSettings.from_options(refine="auto")).refinement(seq) == "none"
    assert Segmenter(FakeModel(), InferenceSettings.from_options(refine="none")).refinement(seq) == "none"
    with pytest.raises(StsegInputError, match="sequence 'seq': --refine guided needs the video's frames"):
        list(Segmenter(FakeModel(), InferenceSettings.from_options(refine="guided")).linked_frames(seq))
    with pytest.raises(ValueError, match="refine must be one of"):
        Segmenter(FakeModel(), InferenceSettings.from_options(refine="crf"))
    with pytest.raises(ValueError, match="tta must be one of"):
        Segmenter(FakeModel(), InferenceSettings.from_options(tta="rotate"))


def test_refined_frames_are_the_guided_argmax_of_the_linked_probabilities(tmp_path: Path) -> None:
    from stseg_deploy.io.videoio import read_image
    from stseg_deploy.stages.refine import RefineSettings, refine_labels

    seq = _sequence_with_frames(tmp_path)
    settings = RefineSettings(mode="auto", radius=40, eps=0.02, subsample=2)
    refiner = Segmenter(FakeModel(), InferenceSettings(tta=TtaSettings(mode="none"), refine=settings, link=LinkSettings(cut_size=3)), batch_size=2)
    assert refiner.refinement(seq) == "guided"
    kept = list(refiner.linked_frames(seq, keep_proba=True))
    unrefined = Segmenter(FakeModel(), InferenceSettings.from_options(cut_size=3, tta="none", refine="none"), batch_size=2).segment(seq)
    np.testing.assert_array_equal(np.stack([f.labels for f in kept]), unrefined)  # linking is untouched
    for frame in kept:
        assert frame.refined.shape == (48, 60) and frame.refined.dtype == np.uint8
        expected = refine_labels(frame.proba, read_image(seq.images[frame.index]), settings)
        np.testing.assert_array_equal(frame.refined, expected)
    dropped = list(refiner.linked_frames(seq))  # probabilities were only needed to refine
    assert all(f.proba is None for f in dropped)
    np.testing.assert_array_equal(np.stack([f.refined for f in dropped]), np.stack([f.refined for f in kept]))


def test_a_frame_of_another_size_is_named(tmp_path: Path) -> None:
    from PIL import Image

    seq = _sequence_with_frames(tmp_path)
    Image.new("RGB", (61, 48)).save(seq.images[3])
    with pytest.raises(StsegInputError, match=r"00003.png: frame size 61x48 differs from the sequence's 60x48"):
        list(Segmenter(FakeModel(), InferenceSettings.from_options(refine="guided")).linked_frames(seq))


def test_a_source_without_frames_support_is_not_refined(tmp_path: Path) -> None:
    """A user's own SequenceSource written before has_frames existed still runs under auto."""
    _write_sequence(tmp_path / "seq", 5)
    (seq,) = sequences_from_folders([tmp_path / "seq"])

    class OwnSource:
        name, video, n_frames, flows, masks, frame_size, frame_names = seq.name, None, seq.n_frames, seq.flows, seq.masks, None, seq.frame_names

        def read_flows(self, with_images=False):
            return seq.read_flows(with_images)

    segmenter = Segmenter(FakeModel(), InferenceSettings.from_options(refine="auto"))
    assert segmenter.refinement(OwnSource()) == "none"
    np.testing.assert_array_equal(segmenter.segment(OwnSource()), segmenter.segment(seq))


def test_segment_returns_the_linked_labels_without_refining(tmp_path: Path, monkeypatch) -> None:
    import stseg_deploy.pipeline as pipeline

    seq = _sequence_with_frames(tmp_path)
    calls = []
    original = pipeline.refine_labels
    monkeypatch.setattr(pipeline, "refine_labels", lambda *args: calls.append(1) or original(*args))
    labels = Segmenter(FakeModel(), InferenceSettings.from_options(refine="guided")).segment(seq)
    assert calls == [] and labels.shape == (7, 12, 16)
    frames = list(Segmenter(FakeModel(), InferenceSettings.from_options(refine="guided")).linked_frames(seq))
    np.testing.assert_array_equal(labels, np.stack([f.labels for f in frames]))


def _pausing_square(folder: Path, n_frames: int = 12, pause=range(4, 8)) -> list[Path]:
    """Flows (24, 40) of a background drifting down with an 8x8 square moving 4 px right per
    frame, except on ``pause`` frames, where it moves with the background (its flow is the
    background's, so the model cannot see it)."""
    folder.mkdir(parents=True)
    paths, left = [], 2
    for t in range(n_frames):
        flow = np.zeros((2, 24, 40), np.float32)
        flow[1] = 0.2
        if t not in pause:
            flow[0, 8:16, left : left + 8] = 4.0
            flow[1, 8:16, left : left + 8] = 0.0
            left += 4
        paths.append(folder / f"{t:05d}.flo")
        write_flow(paths[-1], flow)
    return paths


def test_the_carry_holds_a_segment_while_its_object_pauses(tmp_path: Path) -> None:
    """--carry forward runs on the linked probabilities, in frame order, with the flow into
    each frame at model size: it holds the square's segment through its pause, follows the
    reference TemporalCarry frame for frame, and with weight 0 changes nothing."""
    from stseg_deploy.io.flowio import read_flow
    from stseg_deploy.preprocess import resize_flow
    from stseg_deploy.stages.carry import CarrySettings, TemporalCarry

    paths = _pausing_square(tmp_path / "seq")
    (seq,) = sequences_from_folders([tmp_path / "seq"])
    options = dict(cut_size=None, tta="none", motion_split="none")
    plain = Segmenter(FakeModel(size=(12, 16)), InferenceSettings.from_options(**options), batch_size=4)
    linked = list(plain.linked_frames(seq, keep_proba=True))
    square = linked[3].labels[5, 6]  # frame 3's square (columns 14-21 of 40) at model size
    assert square != linked[3].labels[0, 0]
    assert all((f.labels != square).all() for f in linked[4:8])  # the pause: the model loses it
    still = Segmenter(FakeModel(size=(12, 16)), InferenceSettings.from_options(**options, carry="forward", carry_weight=0.0), batch_size=4)
    np.testing.assert_array_equal(still.segment(seq), plain.segment(seq))
    # Held back by its lookahead, each frame still reaches the foreground decision with its
    # own flow: at weight 0 the objects are those without the carry.
    waited = Segmenter(
        FakeModel(size=(12, 16)),
        InferenceSettings.from_options(**options, carry="both", carry_weight=0.0, carry_lookahead=3), batch_size=2,
    )
    unheld = Segmenter(FakeModel(size=(12, 16)), InferenceSettings.from_options(**options), batch_size=2)
    objects = [f.objects for f in unheld.linked_frames(seq)]
    assert any(o.any() for o in objects)
    from stseg_deploy.stages import foreground

    seen = []
    real_push = foreground.ForegroundDecider.push

    def recording_push(self, frame, flow):
        seen.append((frame.index, flow.copy()))
        return real_push(self, frame, flow)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(foreground.ForegroundDecider, "push", recording_push)
        for frame, expected in zip(waited.linked_frames(seq), objects, strict=True):
            np.testing.assert_array_equal(frame.objects, expected)
    # Each frame's own flow (frame -> frame + 1) at model size, whatever batch linked it.
    assert [index for index, _ in seen] == list(range(len(paths)))
    for index, flow in seen:
        np.testing.assert_allclose(flow, resize_flow(read_flow(paths[index]), (12, 16)), atol=1e-6)
    settings = CarrySettings(mode="forward", weight=0.8)
    carried = Segmenter(FakeModel(size=(12, 16)), InferenceSettings.from_options(**options, carry="forward", carry_weight=0.8), batch_size=4)
    frames = list(carried.linked_frames(seq, keep_proba=True))
    # Held through the pause where the square stopped (columns 18-25 of 40), pushed there by
    # the flow of frame 3, and where it is once it moves again.
    for f in frames[4:9]:
        rows, cols = np.nonzero(f.labels == square)
        assert len(rows) >= 6 and rows.min() >= 3 and rows.max() <= 9 and cols.min() >= 5 and 9 <= cols.max() <= 11
    flows = [resize_flow(read_flow(p), (12, 16)) for p in paths]
    for mode, lookahead in (("forward", 4), ("both", 2)):
        settings = CarrySettings(mode=mode, weight=0.8, lookahead=lookahead)
        carried = Segmenter(
            FakeModel(size=(12, 16)),
            InferenceSettings.from_options(**options, carry=mode, carry_weight=0.8, carry_lookahead=lookahead), batch_size=4,
        )
        frames = list(carried.linked_frames(seq, keep_proba=True))
        assert [f.index for f in frames] == list(range(len(linked)))
        reference = TemporalCarry(FakeModel().info.n_labels, len(paths) - 2, None, settings)
        expected = [done for plain_frame in linked for done in reference.push(
            plain_frame.index, plain_frame.proba, None if plain_frame.index == 0 else flows[plain_frame.index - 1]
        )]
        for frame, (index, proba, labels) in zip(frames, expected, strict=True):
            assert frame.index == index
            np.testing.assert_allclose(frame.proba, proba, atol=1e-6)
            np.testing.assert_array_equal(frame.labels, labels)
        # Without keep_proba the frames drop their probabilities but keep the same labels.
        bare = list(carried.linked_frames(seq))
        assert all(f.proba is None for f in bare)
        for frame, kept in zip(bare, frames, strict=True):
            np.testing.assert_array_equal(frame.labels, kept.labels)
    with pytest.raises(ValueError, match="carry must be one of"):
        Segmenter(FakeModel(), InferenceSettings.from_options(carry="backward"))
    with pytest.raises(ValueError, match="carry lookahead applies to carry 'both' only"):
        Segmenter(FakeModel(), InferenceSettings.from_options(carry="forward", carry_lookahead=2))
