"""Temporal linking of a stream of windows, batch by batch, in constant memory.

Linking is sequential and local to chunks of ``cut_size`` windows: window w is renamed
against the already renamed windows w-1 and (``link_span`` 2) w-2 of its chunk, those that
share frames with it. So a stream can be linked piece by piece, carrying only the last two
renamed windows (``link_windows(..., start=, carry=)``, which also places the chunk
boundaries), and gives exactly what ``stseg_kernels.link_windows`` gives on the whole array
at once. With the vote (``link_vote``), each frame's labels also hear the other two windows
that hold it, so frames come out one window later. With the reclaim (``link_reclaim``), a
label whose segment vanished and came back is given back to it from there to the chunk's end.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from stseg_kernels import DEFAULT_CUT_SIZE, LINK_METHODS, LINK_SPANS, is_chunk_start, link_windows

from .base import StageSettings, option
from .reclaim import LabelReclaimer

# One-to-one renaming: with the motion split's spare segments, the best match per label
# (naive) merges segments back that were split apart (multi-object J_objects 0.686 against
# 0.730; docs/model-merging.md).
DEFAULT_LINK = "optimal"
# Each window scored against both earlier windows it shares frames with, not only the
# previous one: on the multi-object sets an object keeps its label more often (J_objects
# +0.007 to +0.014 on the pausing videos, the proxy and the rendered clips) and DAVIS moves
# by 0.001 (docs/inference.md, "Linking").
DEFAULT_SPAN = 2


@dataclass(frozen=True, kw_only=True)
class LinkSettings(StageSettings):
    """``mode``: how labels are renamed from window to window, "optimal" (one-to-one) or
    "naive" (each label its best match; two may merge); ``cut_size``: windows per
    independently linked chunk (None: the whole sequence); ``link_span``: the earlier
    windows of its chunk each window is scored against, 1 (the previous one, the
    original's linking) or 2 (also the one before, which shares its first frame);
    ``link_vote``: each frame's pixel takes the label the two other windows of its chunk that
    hold the frame agree on, where they outvote the window whose middle frame it is
    (:class:`StreamLinker`); ``link_reclaim``: a segment that appears from almost nothing
    where another vanished takes that one's label (:mod:`stseg_deploy.stages.reclaim`).
    Recorded as sequence.json's ``link``, ``cut_size``, ``link_span``, ``link_vote`` and
    ``link_reclaim``."""

    MODE_KEY = "link"
    PARAMS_KEY = "link_settings"  # unused: the cut size and the span are recorded beside the mode
    FLAT_PARAMS = True
    MODES = LINK_METHODS

    mode: str = option("link", DEFAULT_LINK)
    cut_size: int | None = option("cut_size", DEFAULT_CUT_SIZE)
    link_span: int = option("link_span", DEFAULT_SPAN)
    link_vote: bool = option("link_vote", False)
    link_reclaim: bool = option("link_reclaim", False)

    def check(self) -> None:
        if self.cut_size is not None and (isinstance(self.cut_size, bool) or int(self.cut_size) != self.cut_size or self.cut_size < 1):
            raise ValueError(f"cut_size must be an integer >= 1 or None, got {self.cut_size!r}")
        if isinstance(self.link_span, bool) or not isinstance(self.link_span, (int, np.integer)) or self.link_span not in LINK_SPANS:
            raise ValueError(f"link_span must be one of {LINK_SPANS}, got {self.link_span!r}")
        for name in ("link_vote", "link_reclaim"):
            if not isinstance(getattr(self, name), bool):  # a numpy bool would not go into sequence.json
                raise ValueError(f"{name} must be true or false, got {getattr(self, name)!r}")

    @classmethod
    def from_record(cls, settings: dict[str, Any]) -> LinkSettings:
        # Outputs linked before the span, the vote and the reclaim existed record none of
        # them: they were linked with span 1, without the vote or the reclaim.
        if cls.MODE_KEY in settings:
            settings = {"link_span": 1, "link_vote": False, "link_reclaim": False, **settings}
        return super().from_record(settings)

    @property
    def on(self) -> bool:
        return True  # linking always runs


@dataclass
class LinkedFrame:
    """One output frame: its index, labels (h, w) uint8 at model size and, when kept, renamed
    proba (L, h, w) float32 and features (C, h, w); ``refined`` (H, W) uint8: its labels at
    the frame's size after refinement (None when not refined: the labels upsampled, nearest,
    stand for it); ``objects`` (L,) bool: which segments are moving objects, when the
    foreground was decided (:mod:`stseg_deploy.stages.foreground`), else None."""

    index: int
    labels: np.ndarray
    proba: np.ndarray | None
    features: np.ndarray | None
    refined: np.ndarray | None = None
    objects: np.ndarray | None = None


def rename_proba(proba: np.ndarray, mapping: np.ndarray) -> np.ndarray:
    """Probabilities of renamed labels: proba (L, ...) with old label l → mapping[l].

    Where labels merge (naive linking may send two labels to one), the new label keeps the
    larger of their probabilities, so the argmax of the result is the renamed label map,
    as saved in labels.npy (adding them instead could let two merged small labels outvote
    the one that won the pixel). Labels no old label maps to get 0. Without merges this is
    a permutation and the values still sum to 1 over labels.
    """
    out = np.zeros_like(proba)
    for old, new in enumerate(mapping):
        np.maximum(out[new], proba[old], out=out[new])
    return out


class StreamLinker:
    """Feed windows in order; get back one linked label map per frame, in order.

    Args:
        n_labels: L.
        n_windows: total windows N of the sequence (frames = N + 2).
        cut_size: windows per independently linked chunk; None = the whole sequence.
        method: "naive" or "optimal"; span: 1 or 2 (see ``stseg_kernels.link_windows``).
        vote: frame t (1..N) is window t-1's middle frame, except on the pixels where windows
            t-2 and t of the same chunk, which also hold it, agree on another label: those
            take it, and their renamed probabilities swap the two labels' values, so the
            probabilities' argmax stays the labels. A frame then comes out once window t is
            linked, one window later.
        reclaim: a :class:`~stseg_deploy.stages.reclaim.LabelReclaimer` follows the linked
            windows, and each window's labels get the swaps it made so far in the chunk.
            Linking goes on in its own names (the vote too, its voters then given the frame's
            window's swaps), so the labels do not depend on where batches begin.
    """

    def __init__(
        self, n_labels: int, n_windows: int, cut_size: int | None = None, method: str = DEFAULT_LINK,
        span: int = DEFAULT_SPAN, vote: bool = False, reclaim: bool = False,
    ) -> None:
        if cut_size is not None and cut_size < 1:
            raise ValueError(f"cut_size must be >= 1 or None, got {cut_size}")
        self.n_labels = n_labels
        self.n_windows = n_windows
        self.cut_size = cut_size
        self.method = method
        self.span = int(span)
        self.vote = bool(vote)
        self._reclaimer = LabelReclaimer(n_labels, cut_size) if reclaim else None
        # The reclaimer's swaps so far in the current chunk: linking's label l is output as
        # _swapped[l]. Linking itself goes on in its own names, so the output does not depend
        # on where batches begin.
        self._swapped = np.arange(n_labels)
        self.next_window = 0
        # The last windows up to window next_window - 1, (k, 3, h, w), as linking renamed them:
        # the next batch's carry (its last `span`) and, with the vote, the voters of the frame
        # waiting (its last 3), each with its output renaming (L,) when the reclaimer runs.
        self._kept: np.ndarray | None = None
        self._kept_names: np.ndarray | None = None
        self._waiting: list[LinkedFrame] = []  # frames whose next window is not linked yet

    def push(
        self,
        labels: np.ndarray,
        proba: np.ndarray | None = None,
        features: np.ndarray | None = None,
    ) -> list[LinkedFrame]:
        """labels (b, 3, h, w) uint8 argmax of the next b windows; proba (b, L, 3, h, w) and
        features (b, C, 3, h, w) optional. Returns the frames these windows complete, in order
        (a list, not a generator: the linker's state moves on when push returns)."""
        b = labels.shape[0]
        if self.next_window + b > self.n_windows:
            raise ValueError(f"pushed {self.next_window + b} windows, expected {self.n_windows}")
        first = self.next_window
        renamed, mapping = link_windows(
            labels, self.n_labels, self.cut_size, self.method, span=self.span, return_mapping=True, start=first,
            carry=None if self._kept is None else self._kept[-self.span:],
            threads=1,  # the pipeline's read-ahead and writer threads already keep the cores busy
        )
        kept = renamed if self._kept is None else np.concatenate([self._kept, renamed])
        # A copy: the batch's array is not kept alive. The vote reads up to three windows.
        self._kept = kept[-(3 if self.vote else self.span):].copy()
        names = None
        if self._reclaimer is not None:
            renamed, mapping, names = self._reclaim(first, renamed, mapping)
            if self.vote:
                names = names if self._kept_names is None else np.concatenate([self._kept_names, names])
                self._kept_names = names[-3:].copy()
        self.next_window += b
        frames: list[LinkedFrame] = []
        for k in range(b):
            frames.extend(self._completed_frames(
                first + k,
                renamed[k],
                mapping[k],
                None if proba is None else proba[k],
                None if features is None else features[k],
            ))
        if not self.vote:
            return frames
        self._waiting.extend(frames)
        done = []
        # Frame t is final once window t, its last voter, is linked (or there is none).
        while self._waiting and (self._waiting[0].index < self.next_window or self.next_window == self.n_windows):
            done.append(self._voted(self._waiting.pop(0), kept, names, self.next_window - len(kept)))
        return done

    def _reclaim(self, first: int, renamed: np.ndarray, mapping: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The batch's renamed windows (b, 3, h, w) and mappings (b, L), windows first.., with
        the labels the reclaimer swapped so far in each one's chunk swapped (new arrays), and
        each window's renaming from linking's names to the output's (b, L)."""
        renamed, mapping = renamed.copy(), mapping.copy()
        names = np.empty((renamed.shape[0], self.n_labels), np.int64)
        for k in range(renamed.shape[0]):
            if is_chunk_start(first + k, self.cut_size):
                self._swapped = np.arange(self.n_labels)
            renamed[k] = self._swapped[renamed[k]]
            swap = self._reclaimer(first + k, renamed[k, 1])
            if swap is not None:
                self._swapped = swap[self._swapped]
                renamed[k] = swap[renamed[k]]
            mapping[k] = self._swapped[mapping[k]]
            names[k] = self._swapped
        return renamed, mapping, names

    def _voted(self, frame: LinkedFrame, windows: np.ndarray, names: np.ndarray | None, first: int) -> LinkedFrame:
        """``frame`` with the vote of the windows before and after the one whose middle frame
        it is, read from the renamed ``windows`` (k, 3, h, w), windows first.., when both are
        in that window's chunk (frames 0 and 1 and the last two have fewer voters and stay
        as they are)."""
        home = frame.index - 1
        if not (first <= home - 1 and home + 1 < first + len(windows)):
            return frame
        if is_chunk_start(home, self.cut_size) or is_chunk_start(home + 1, self.cut_size):
            return frame
        before, after = windows[home - 1 - first, 2], windows[home + 1 - first, 0]
        if names is not None:
            # Linking's names are one naming through the chunk; the reclaimer's swaps are not,
            # so the voters are read in linking's names and given the frame's own window's.
            before, after = names[home - first][before], names[home - first][after]
        agree = (before == after) & (before != frame.labels)
        if not agree.any():
            return frame
        rows, cols = np.nonzero(agree)
        new, old = before[rows, cols], frame.labels[rows, cols]
        labels = frame.labels.copy()
        labels[rows, cols] = new
        proba = frame.proba
        if proba is not None:
            proba = proba.copy()
            taken = proba[new, rows, cols]
            proba[new, rows, cols] = proba[old, rows, cols]
            proba[old, rows, cols] = taken
        return LinkedFrame(index=frame.index, labels=labels, proba=proba, features=frame.features)

    def _completed_frames(
        self, window: int, labels: np.ndarray, mapping: np.ndarray, proba: np.ndarray | None, features: np.ndarray | None
    ) -> Iterator[LinkedFrame]:
        """The frames window ``window`` completes: labels (3, h, w) renamed, mapping (L,) old →
        new label, proba (L, 3, h, w) and features (C, 3, h, w) as given (or None). Frame 0
        from the first window, then each window's middle frame, then the last window's last
        frame: N windows give N + 2 frames."""
        slots = [1]
        if window == 0:
            slots = [0, 1]
        if window == self.n_windows - 1:
            slots = slots + [2]
        renamed = None if proba is None else rename_proba(proba, mapping)
        for t in slots:
            yield LinkedFrame(
                index=window + t,
                labels=labels[t],
                proba=None if renamed is None else renamed[:, t],
                features=None if features is None else features[:, t],
            )
