"""Keeping torch's CPU thread count when stseg_kernels' parallel kernels run in the same process.

When numba's OpenMP threading layer starts its pool in a process where torch has already run
OpenMP code, OpenMP's thread count becomes numba's (all cores by default), and torch's CPU
operators follow it. So a process that limits torch (``OMP_NUM_THREADS=1``,
``torch.set_num_threads``) and then scores a validation with :func:`stseg_kernels.jaccard`
trains on every core from then on: two such trainings on two cores were measured 4x slower a
step after their first validation.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def torch_threads_kept() -> Iterator[int]:
    """Run the block, then give torch back the CPU thread count it had before (yielded)."""
    threads = torch.get_num_threads()
    try:
        yield threads
    finally:
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
