"""stseg_deploy.stages.foreground: the dominant motion, each segment's evidence, the chunk decision."""

from __future__ import annotations

import numpy as np
import pytest

from stseg_deploy.stages.foreground import (
    ForegroundDecider,
    ForegroundSettings,
    choose_objects,
    dominant_residual,
    segment_evidence,
)
from stseg_deploy.stages.linker import LinkedFrame


def _scene(h=40, w=64, seed=0, object_motion=(3.0, -2.0)):
    """A camera zooming and panning (a quadratic flow on [-1, 1] coordinates), a square
    object moving on its own in the middle, light noise; labels 0 background, 1 object,
    2 a background patch touching no border."""
    rng = np.random.default_rng(seed)
    ii, jj = np.meshgrid(np.linspace(-1, 1, h), np.linspace(-1, 1, w), indexing="ij")
    flow = np.stack([1.5 + 0.8 * jj + 0.3 * ii * jj, -0.5 + 0.8 * ii + 0.2 * jj**2]).astype(np.float32)
    labels = np.zeros((h, w), dtype=np.uint8)
    labels[12:24, 20:34] = 1
    labels[30:36, 44:54] = 2
    flow[:, labels == 1] = np.array(object_motion, dtype=np.float32)[:, None]
    flow += rng.normal(scale=0.02, size=flow.shape).astype(np.float32)
    return labels, flow


def test_dominant_motion_explains_the_camera_not_the_object() -> None:
    labels, flow = _scene()
    residual = dominant_residual(flow)
    assert residual.shape == labels.shape
    assert np.median(residual[labels == 0]) < 0.05  # the camera: noise only
    assert np.median(residual[labels == 1]) > 2.0  # the object: its own motion


def test_dominant_motion_holds_when_a_quarter_of_the_frame_moves_otherwise() -> None:
    # Least squares lands between the two motions, and a biweight started there stays (its
    # cutoff spans both); the L1 steps first bring it to the majority's.
    labels, flow = _scene()
    block = np.zeros(labels.shape, dtype=bool)
    block[10:30, 16:48] = True  # a quarter of the frame
    flow[:, block] = np.array([-4.0, 3.0], dtype=np.float32)[:, None]
    residual = dominant_residual(flow)
    assert np.median(residual[~block]) < 0.05
    assert np.median(residual[block]) > 5.0


def test_segment_evidence_values() -> None:
    labels, flow = _scene()
    contrast, border = segment_evidence(labels, flow, n_labels=4)
    assert contrast[1] > 10 and contrast[0] < 0.5 and contrast[2] < 0.5
    assert np.isnan(contrast[3]) and np.isnan(border[3])  # absent label
    edge = 2 * 64 + 2 * 38
    np.testing.assert_allclose(border[:3], [1.0, 0.0, 0.0], atol=1 / edge)


@pytest.mark.parametrize(
    "contrast, border, expected",
    [
        # an object, a slower object above 0.35 x the fastest, a slow one below, background
        ([0.2, 8.0, 3.0, 2.0], [1.0, 0.0, 0.0, 0.05], [False, True, True, False]),
        # a strong contrast on the border is background (water, a cut-off object)
        ([0.2, 8.0, 3.0], [0.6, 0.3, 0.0], [False, False, True]),
        # nothing contrasts: nothing is an object
        ([0.3, 0.9, np.nan], [0.9, 0.0, np.nan], [False, False, False]),
    ],
)
def test_choose_objects(contrast, border, expected) -> None:
    chosen = choose_objects(np.array(contrast, float), np.array(border, float), ForegroundSettings())
    assert chosen.tolist() == expected


@pytest.mark.parametrize("kwargs, word", [({"min_contrast": -1}, "min_contrast"), ({"share": 1.5}, "share"), ({"max_border": 0}, "max_border")])
def test_bad_settings_are_named(kwargs, word) -> None:
    with pytest.raises(ValueError, match=word):
        ForegroundSettings(**kwargs)


def test_decider_holds_a_chunk_and_decides_it_whole() -> None:
    labels, flow = _scene()
    still = np.zeros_like(flow) + flow.mean(axis=(1, 2), keepdims=True)  # the object pauses
    decider = ForegroundDecider(n_labels=3, n_frames=12, cut_size=4, settings=ForegroundSettings())
    out = []
    for t in range(12):
        frame = LinkedFrame(index=t, labels=labels, proba=None, features=None)
        returned = decider.push(frame, still if t == 2 else flow)
        out.extend(returned)
        # The chunks of 4 windows hold frames 0-4, 5-8, 9-11 (stseg_kernels.frame_chunks).
        assert [f.index for f in returned] == {4: [0, 1, 2, 3, 4], 8: [5, 6, 7, 8], 11: [9, 10, 11]}.get(t, [])
    assert [f.index for f in out] == list(range(12))
    # Frame 2's object paused, yet the chunk's decision keeps it an object there.
    assert all(f.objects.tolist() == [False, True, False] for f in out)


def test_shapes_are_checked() -> None:
    labels, flow = _scene()
    with pytest.raises(ValueError, match="one grid"):
        segment_evidence(labels[:-1], flow, 3)
    with pytest.raises(ValueError, match=r"\(2, h, w\)"):
        dominant_residual(flow[0])


def test_the_pipeline_decides_on_each_frames_own_flow(tmp_path) -> None:
    """Through batches of 2 windows and chunks of 3: the decision equals the decider fed by
    hand with each linked frame and the flow from that frame to the next."""
    from fakes import FakeModel

    from stseg_deploy.io.flowio import read_flow, write_flow
    from stseg_deploy.output.sinks import MemorySink
    from stseg_deploy.pipeline import Segmenter
    from stseg_deploy.preprocess import resize_flow
    from stseg_deploy.settings import InferenceSettings
    from stseg_deploy.sources import sequences_from_folders

    rng = np.random.default_rng(4)
    (tmp_path / "walk").mkdir()
    paths = []
    for t in range(9):  # a panning camera; a square moves against it in frames 0-3 and 7-8 only
        flow = np.zeros((2, 24, 32), np.float32)
        flow[0] = 1.0
        if t < 4 or t > 6:
            flow[:, 6:14, 8 + t : 16 + t] = np.array([-3.0, 2.0], np.float32)[:, None, None]
        paths.append(tmp_path / "walk" / f"{t:05d}.flo")
        write_flow(paths[-1], flow + rng.normal(scale=0.02, size=flow.shape).astype(np.float32))
    (sequence,) = sequences_from_folders([tmp_path / "walk"])
    segmenter = Segmenter(FakeModel(), InferenceSettings.from_options(cut_size=3, tta="none", motion_split="none"), batch_size=2)
    sink = MemorySink()
    segmenter.run(sequence, sink)
    decider = ForegroundDecider(segmenter.n_labels, 9, 3, ForegroundSettings())
    expected = {}
    for t, path in enumerate(paths):
        frame = LinkedFrame(index=t, labels=sink.labels[t], proba=None, features=None)
        for done in decider.push(frame, resize_flow(read_flow(path), segmenter.image_size)):
            expected[done.index] = done.objects
    np.testing.assert_array_equal(sink.objects, np.stack([expected[t] for t in range(9)]))
    # Chunks hold frames 0-3, 4-6, 7-8: the square is an object where it moves, not in 4-6.
    assert sink.objects[:4].any(axis=1).all() and not sink.objects[4:7].any() and sink.objects[7:].any(axis=1).all()


def test_long_chunks_are_decided_in_bounded_blocks() -> None:
    from stseg_deploy.stages.foreground import MAX_HELD_FRAMES, decision_blocks
    from stseg_kernels import frame_chunks

    np.testing.assert_array_equal(decision_blocks(40, 10), frame_chunks(40, 10))  # the default: chunks whole
    blocks = decision_blocks(100, None)  # one chunk: blocks of MAX_HELD_FRAMES
    assert np.bincount(blocks).tolist() == [MAX_HELD_FRAMES] * 3 + [100 - 3 * MAX_HELD_FRAMES]
    blocks = decision_blocks(90, 40)  # chunks of 41, 40 and 9 frames: no block crosses a chunk's edge
    chunks = frame_chunks(90, 40)
    assert all(len(set(chunks[blocks == b])) == 1 for b in np.unique(blocks))
    assert np.bincount(blocks).max() <= MAX_HELD_FRAMES
    decider = ForegroundDecider(3, 70, None, ForegroundSettings())
    labels, flow = _scene()
    held = [len(decider.push(LinkedFrame(index=t, labels=labels, proba=None, features=None), flow)) for t in range(70)]
    assert max(held) == MAX_HELD_FRAMES and sum(held) == 70
