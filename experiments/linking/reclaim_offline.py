"""The reclaim's first prototype, replayed offline on the renamed windows recwin.py kept: a
segment that appears from almost nothing takes the label of one that vanished where it appears
(its last mask dilated), from that window to the chunk's end (the two labels swapped). Its
thresholds come from the environment, to see how much each one matters:

    MIN=0.005 NEW=0.2 GONE=0.2 H=8 R=3 OV=0.5 python experiments/linking/reclaim_offline.py out/rw_pause2 out/rc_pause2
    stseg-eval out/rc_pause2 --data-file mo_pause2/DataSplit/Synth --split val --base-dir mo_pause2 --objects

It rewrites labels.npy and removes the PNGs, so stseg-eval scores labels.npy. Outputs without
refinement only. An experiment's tool; the package's version is stseg_deploy.stages.reclaim.
"""
import os, pickle, shutil, sys
import numpy as np
import cv2
from stseg_kernels import unravel_windows
MIN = float(os.environ.get('MIN', '0.005'))     # substantial area, share of frame
NEW = float(os.environ.get('NEW', '0.2'))       # B before: below NEW x its area now
GONE = float(os.environ.get('GONE', '0.2'))     # A now: below GONE x its recent max
H = int(os.environ.get('H', '8'))               # windows back to remember A
R = int(os.environ.get('R', '3'))               # dilation, model pixels
OV = float(os.environ.get('OV', '0.5'))         # share of B inside dilated A

def reclaim(windows, cut, L):
    n = windows.shape[0]
    win = windows.copy()
    size = win.shape[2] * win.shape[3]
    chunk = lambda w: w // cut if cut else 0
    ker = np.ones((2 * R + 1, 2 * R + 1), np.uint8)
    swaps = 0
    for w in range(1, n):
        c0 = chunk(w)
        if chunk(w - 1) != c0:
            continue
        mid = win[w][1]
        area = np.bincount(mid.ravel(), minlength=L) / size
        prev = np.bincount(win[w - 1][1].ravel(), minlength=L) / size
        lo = max(w - H, c0 * cut if cut else 0)
        # last substantial mask of each label within horizon
        for b in range(L):
            if area[b] < MIN or prev[b] >= NEW * area[b]:
                continue
            best, bestov = None, OV
            bmask = mid == b
            for a in range(L):
                if a == b:
                    continue
                hist = [np.count_nonzero(win[v][1] == a) / size for v in range(lo, w)]
                if not hist or max(hist) < MIN or area[a] >= GONE * max(hist):
                    continue
                v = lo + int(np.argmax(hist))
                # most recent window where a was substantial
                for u in range(w - 1, lo - 1, -1):
                    if np.count_nonzero(win[u][1] == a) / size >= 0.5 * max(hist):
                        v = u; break
                amask = cv2.dilate((win[v][1] == a).astype(np.uint8), ker) > 0
                ov = (bmask & amask).sum() / bmask.sum()
                if ov > bestov:
                    best, bestov = a, ov
            if best is not None:
                end = ((c0 + 1) * cut) if cut else n
                seg = win[w:end]
                ia, ib = seg == best, seg == b
                seg[ia] = b; seg[ib] = best
                swaps += 1
    return win, swaps

def main():
    src, dst = sys.argv[1:3]
    L = int(os.environ.get('L', '0'))
    records = pickle.load(open(src + '_windows.pkl', 'rb'))
    shutil.rmtree(dst, ignore_errors=True); shutil.copytree(src, dst)
    used = set(); tot = 0
    for seq in sorted(d for d in os.listdir(src) if os.path.isdir(os.path.join(src, d))):
        labels = np.load(os.path.join(src, seq, 'labels.npy'))
        i = next(i for i, (_, _, w) in enumerate(records) if i not in used and w.shape[0] + 2 == labels.shape[0] and np.array_equal(unravel_windows(w), labels))
        used.add(i)
        _, cut, windows = records[i]
        nl = int(max(windows.max() + 1, L))
        new, s = reclaim(windows, cut, nl); tot += s
        np.save(os.path.join(dst, seq, 'labels.npy'), unravel_windows(new))
        for f in os.listdir(os.path.join(dst, seq)):
            if f.endswith('.png'): os.remove(os.path.join(dst, seq, f))
    print('swaps', tot)

main()
