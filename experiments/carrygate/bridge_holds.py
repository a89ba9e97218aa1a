"""Where the forward and the backward carry hold, frame by frame, on one video (2026-12-08).

Run with ``PYTHONPATH`` on a copy of ``stseg_deploy`` patched with ``bridge.patch``: it replaces
the bridge's backward step by one that logs, for each frame given out, its linking chunk, the
model pixels the forward pass holds (its label differs from the frame's own), those the backward
pass over the frames' own probabilities holds, those both hold, those both hold with the same
label, and the labels each holds. The frame is given out as the network made it.

    PYTHONPATH=/work/meas/vars/bridge python bridge_holds.py mo_pause2/Flows/seq024
"""

import sys

import numpy as np

import stseg_deploy as st
from stseg_deploy.stages import carry

rows = []


def logged_backward(self):
    waiting = [(index, raw, flow) for index, _, flow, raw in self._waiting]
    held = waiting[-1][1]
    for (index, own, _), (_, _, flow) in zip(reversed(waiting[:-1]), reversed(waiting[1:])):
        if flow is None:
            held = own
            continue
        pulled, coverage = carry.pull_back(held, flow)
        if self.chunk(index) != self.chunk(index + 1):
            pulled = carry._renamed(pulled, coverage, own, self.n_labels)
        held = carry._blend(own, pulled, coverage, self.settings.weight)
    forward, raw = self._waiting[0][1], self._waiting[0][3]
    lf, lb, lp = (np.argmax(x, axis=0) for x in (forward, held, raw))
    fh, bh = lf != lp, lb != lp
    rows.append((
        waiting[0][0], self.chunk(waiting[0][0]), int(fh.sum()), int(bh.sum()), int((fh & bh).sum()),
        int((fh & bh & (lf == lb)).sum()), sorted(set(map(int, lf[fh]))), sorted(set(map(int, lb[bh]))),
    ))
    return waiting[0][0], raw


carry.TemporalCarry._backward = logged_backward
st.segment(sys.argv[1], carry="both", carry_lookahead=8, link_reclaim=True)
print("frame chunk forward backward both same_label forward_labels backward_labels")
for row in rows:
    print(*row)
