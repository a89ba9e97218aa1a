"""Giving back the label of a segment that vanished and came back (``--link-reclaim``).

Linking renames each window's labels by their overlap with the windows before it. An object
that stops for a few frames moves like the background there, and the network gives it the
background's segment. When the object moves again, its segment overlaps nothing of its own in
the windows before, so linking names it with whatever label is left over, and within one chunk
the object has two ids: the protocol that matches objects to labels per chunk loses every frame
on one side of the pause.

The reclaimer remembers the renamed middle frames of the last ``HORIZON`` windows of the chunk.
When a window holds a segment that appears from almost nothing, it may take the label of a
segment that vanished where the new one appears:
- the new segment covers at least ``MIN_AREA`` of the frame, and its label held less than
  ``NEW_SHARE`` of that area in the window before;
- another label held at least ``MIN_AREA`` within the horizon, and holds less than
  ``GONE_SHARE`` of its largest area there now;
- more than ``OVERLAP`` of the new segment lies within ``REACH`` of where that label's segment
  was last seen at half its largest area or more.

Then the two labels are swapped from this window to the end of its chunk. Linking itself goes
on in its own names; the linker gives every later window of the chunk the swaps made so far
(``StreamLinker``), so the labels do not depend on where batches begin.

The settings were not tuned (docs/inference.md, "Linking"): replayed offline, the multi-object
sets gained the same within 0.008 when each was changed alone (reach 3 or 6 pixels, overlap 0.3
to 0.7, gone 0.2 or 0.4, new 0.2 or 0.5, horizon 8 or 20 windows).
"""

from __future__ import annotations

from collections import deque

import cv2
import numpy as np

from stseg_kernels import is_chunk_start

MIN_AREA = 0.005
NEW_SHARE = 0.2
GONE_SHARE = 0.2
HORIZON = 8
OVERLAP = 0.5
# How far from where the vanished segment was last seen the new one may lie, as a share of the
# frame's diagonal at model size: 3 pixels at 64×112, 6 at 128×224 (an object that stopped has
# moved with the camera a little over its pause).
REACH = 0.025


class LabelReclaimer:
    """Follows one sequence's renamed windows, in order, and says where two labels swap.

    Args:
        n_labels: L.
        cut_size: the linker's windows per chunk (None: one chunk); the memory starts afresh
            at each chunk, whose labels are named afresh.
    """

    def __init__(self, n_labels: int, cut_size: int | None) -> None:
        self.n_labels = n_labels
        self.cut_size = cut_size
        # (labels (h, w), areas (L,) in pixels) of the chunk's last HORIZON middle frames.
        self._seen: deque[tuple[np.ndarray, np.ndarray]] = deque(maxlen=HORIZON)

    def __call__(self, window: int, middle: np.ndarray) -> np.ndarray | None:
        """Window ``window``'s renamed middle frame ``middle`` (h, w) uint8 → the renaming
        (L,) int64, label l → ``renaming[l]``, to apply to this window and the rest of its
        chunk, or None to keep the labels. Windows must come in order, each once."""
        if is_chunk_start(window, self.cut_size):
            self._seen.clear()
        areas = np.bincount(middle.ravel(), minlength=self.n_labels)
        renaming = None
        if self._seen:
            renaming = self._reclaimed(middle, areas)
            if renaming is not None:
                middle = renaming[middle]
                areas = np.bincount(middle.ravel(), minlength=self.n_labels)
        self._seen.append((middle.copy(), areas))
        return renaming

    def _reclaimed(self, middle: np.ndarray, areas: np.ndarray) -> np.ndarray | None:
        size = middle.size
        before = self._seen[-1][1]
        history = np.stack([seen_areas for _, seen_areas in self._seen])  # (k, L)
        peaks = history.max(axis=0)
        gone = (peaks >= MIN_AREA * size) & (areas < GONE_SHARE * peaks)
        new = (areas >= MIN_AREA * size) & (before < NEW_SHARE * areas)
        if not gone.any() or not new.any():
            return None
        reach = max(1, round(REACH * float(np.hypot(*middle.shape))))
        kernel = np.ones((2 * reach + 1, 2 * reach + 1), np.uint8)
        renaming = np.arange(self.n_labels)
        taken: set[int] = set()
        for appeared in np.argsort(-areas, kind="stable"):
            if not new[appeared] or int(appeared) in taken:
                continue
            segment = middle == appeared
            best, best_share = -1, OVERLAP
            for vanished in np.flatnonzero(gone):
                if vanished == appeared or vanished in taken:
                    continue
                # Its segment where last seen at half its largest area or more.
                last = max(i for i in range(len(self._seen)) if history[i, vanished] >= 0.5 * peaks[vanished])
                where = cv2.dilate((self._seen[last][0] == vanished).astype(np.uint8), kernel) > 0
                share = np.count_nonzero(segment & where) / np.count_nonzero(segment)
                if share > best_share:
                    best, best_share = int(vanished), share
            if best >= 0:
                renaming[[appeared, best]] = renaming[[best, appeared]]
                taken.update((best, int(appeared)))
        return None if not taken else renaming
