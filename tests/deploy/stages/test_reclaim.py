"""Tests for stseg_deploy.stages.reclaim: a segment that vanishes and comes back gets its label back."""

from __future__ import annotations

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st

from stseg_deploy.stages.linker import StreamLinker
from stseg_deploy.stages.reclaim import LabelReclaimer
from stseg_kernels import is_chunk_start, link_windows, unravel_windows

H, W = 16, 24
OBJECT = (slice(4, 10), slice(4, 10))


def _windows(frames: np.ndarray) -> np.ndarray:
    return np.stack([frames[:-2], frames[1:-1], frames[2:]], axis=1).copy()


def _pausing(back_at: tuple[slice, slice] = OBJECT) -> np.ndarray:
    """(12, H, W) uint8 segments as the network gives them: an object in segment 1 on frames
    0-3; it stops on frames 4-6 (the background's segment 0 takes it) and moves again on
    frames 7-11 at ``back_at``, in segment 2. Segment 1 keeps two stray pixels from frame 4 on,
    as it does on real pauses, so linking keeps label 1 on them."""
    frames = np.zeros((12, H, W), np.uint8)
    frames[:4][(slice(None), *OBJECT)] = 1
    frames[4:, 0, 22:] = 1
    frames[7:][(slice(None), *back_at)] = 2
    return frames


def _linked(frames: np.ndarray, reclaim: bool, cut: int | None = None, batch: int = 4) -> np.ndarray:
    windows = _windows(frames)
    linker = StreamLinker(3, len(windows), cut, "optimal", 2, reclaim=reclaim)
    out = [f.labels for start in range(0, len(windows), batch) for f in linker.push(windows[start : start + batch])]
    return np.stack(out)


def test_an_object_that_pauses_gets_its_label_back() -> None:
    frames = _pausing()
    plain = _linked(frames, reclaim=False)
    assert (plain[:4][(slice(None), *OBJECT)] == 1).all()
    assert (plain[7:][(slice(None), *OBJECT)] == 2).all()  # two ids for one object
    reclaimed = _linked(frames, reclaim=True)
    np.testing.assert_array_equal(reclaimed[:7], plain[:7])
    assert (reclaimed[7:][(slice(None), *OBJECT)] == 1).all()
    assert (reclaimed[7:, 0, 22:] == 2).all()  # the strays take the label the object had


def test_a_segment_that_appears_elsewhere_keeps_its_label() -> None:
    frames = _pausing(back_at=(slice(8, 14), slice(15, 21)))
    np.testing.assert_array_equal(_linked(frames, reclaim=True), _linked(frames, reclaim=False))


def test_the_memory_ends_with_the_chunk() -> None:
    # Chunks of 5 windows: window 5 (frames 5-7) begins the second chunk, after the object
    # stopped, so the second chunk never saw it and names the new segment afresh.
    frames = _pausing()
    np.testing.assert_array_equal(_linked(frames, reclaim=True, cut=5), _linked(frames, reclaim=False, cut=5))


def test_the_renaming_swaps_two_labels() -> None:
    frames = _pausing()
    reclaimer = LabelReclaimer(3, None)
    swapped, swaps = np.arange(3), {}
    for w in range(10):  # each window's middle frame, as the caller outputs it
        swap = reclaimer(w, swapped[frames[w + 1]])
        if swap is not None:
            swaps[w] = swap
            swapped = swap[swapped]
    assert list(swaps) == [6]  # frame 7, window 6's middle
    np.testing.assert_array_equal(swaps[6], [0, 2, 1])


def _reference(windows: np.ndarray, n_labels: int, cut: int | None, method: str, span: int, vote: bool) -> np.ndarray:
    """The whole sequence linked at once; each window's output renaming (the reclaimer's swaps
    so far in its chunk, in a plain loop); then each frame, voted in linking's names as
    test_linker's reference does (frame t, 1..N-1: window t-1's middle label unless windows t-2
    and t of its chunk agree on another), given its window's renaming."""
    renamed = link_windows(windows, n_labels, cut, method, span=span)
    reclaimer = LabelReclaimer(n_labels, cut)
    names = np.empty((len(renamed), n_labels), np.int64)
    swapped = np.arange(n_labels)
    for w in range(len(renamed)):
        if is_chunk_start(w, cut):
            swapped = np.arange(n_labels)
        swap = reclaimer(w, swapped[renamed[w, 1]])
        if swap is not None:
            swapped = swap[swapped]
        names[w] = swapped
    frames = unravel_windows(renamed).copy()
    chunk = [0 if cut is None else w // cut for w in range(len(renamed))]
    if vote:
        for w in range(1, len(renamed) - 1):
            if chunk[w - 1] == chunk[w] == chunk[w + 1]:
                before, middle, after = renamed[w - 1, 2], renamed[w, 1], renamed[w + 1, 0]
                agree = (before == after) & (before != middle)
                frames[w + 1][agree] = before[agree]
    home = [0] + list(range(len(renamed))) + [len(renamed) - 1]  # the window each frame comes from
    return np.stack([names[w][frame] for w, frame in zip(home, frames)])


@settings(max_examples=60, deadline=None)
@given(
    cut=st.one_of(st.none(), st.integers(1, 6)),
    batch=st.integers(1, 5),
    method=st.sampled_from(["naive", "optimal"]),
    span=st.sampled_from([1, 2]),
    vote=st.booleans(),
    seed=st.integers(0, 2**31),
)
# Streams where a swap falls next to a voted frame: voters read in the output's names there
# compare two namings (the window before the swap has the old one).
@example(cut=None, batch=4, method="optimal", span=2, vote=True, seed=7)
@example(cut=None, batch=4, method="optimal", span=2, vote=True, seed=10)
def test_stream_equals_the_whole_sequence(cut, batch, method, span, vote, seed) -> None:
    """Batch by batch, whatever the batch size, the stream gives the reference's labels, with
    probabilities whose argmax they are: on pausing objects whose segments flicker."""
    rng = np.random.default_rng(seed)
    frames = _pausing()
    noise = rng.random(frames.shape) < 0.05
    frames[noise] = rng.integers(0, 3, int(noise.sum()))
    flip = rng.integers(0, 12, 3)
    frames[flip] = np.where(frames[flip] > 0, 3 - frames[flip], 0)  # segments 1 and 2 trade places on some frames
    windows = _windows(frames)
    proba = rng.random((len(windows), 3, 3, H, W)).astype(np.float32)
    proba += 3 * np.moveaxis(np.eye(3, dtype=np.float32)[windows], -1, 1)  # argmax: the windows
    linker = StreamLinker(3, len(windows), cut, method, span, vote=vote, reclaim=True)
    out = [f for start in range(0, len(windows), batch) for f in linker.push(windows[start : start + batch], proba[start : start + batch])]
    np.testing.assert_array_equal(np.stack([f.labels for f in out]), _reference(windows, 3, cut, method, span, vote))
    for f in out:
        np.testing.assert_array_equal(f.proba.argmax(axis=0), f.labels)
