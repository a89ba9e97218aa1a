"""stseg_train.torchthreads: torch keeps its CPU thread count across stseg_kernels' parallel
kernels, which (with numba's OpenMP layer) would otherwise raise it to numba's."""

from __future__ import annotations

import os
import subprocess
import sys

import numba
import pytest
import torch

from stseg_train.torchthreads import torch_threads_kept


@pytest.fixture
def one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_the_count_comes_back_whatever_the_block_set(one_torch_thread) -> None:
    with torch_threads_kept() as threads:
        assert threads == 1
        torch.set_num_threads(2)
    assert torch.get_num_threads() == 1


_KERNEL_ALONE = """
import numpy as np, torch
from stseg_kernels import jaccard
torch.set_num_threads(1)
# A torch operator first, as a trainer runs before it validates: the count is raised only
# once torch has used OpenMP.
torch.nn.functional.conv2d(torch.randn(1, 4, 16, 16), torch.randn(4, 4, 3, 3))
mask = np.ones((1, 8, 8), bool)
jaccard(mask, mask)  # unguarded, as the trainer's validation called it before the guard
print(torch.get_num_threads())
"""

_FRESH_PROCESS = """
import sys, torch
torch.set_num_threads(1)
from stseg_synth.datasplit import write_synth_split
from stseg_train.config import TrainConfig
from stseg_train.trainer import Trainer
root = sys.argv[1]
prefix = write_synth_split(root + "/d", n_sequences=2, n_frames=5, size=(16, 24), seed=1, val_fraction=0.5)
cfg = TrainConfig(data_file=str(prefix), base_dir=root + "/d", save_dir=root + "/run", image_size=(16, 24),
                  features_start=4, batch_size=2, epochs=1, workers=0, train_results=True)
Trainer(cfg).fit()
print(torch.get_num_threads())
"""


def test_trainer_validation_keeps_one_thread(tmp_path) -> None:
    # A fresh process: numba's OpenMP layer sets the count when its pool first starts, which
    # in this test process may have happened already.
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("numba has one thread here: it cannot raise torch's count")
    env = {**os.environ, "NUMBA_THREADING_LAYER": "omp"}
    counts = []
    for script in (_KERNEL_ALONE, _FRESH_PROCESS):
        result = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, timeout=240, env=env)
        assert result.returncode == 0, result.stderr[-2000:]
        counts.append(int(result.stdout.split()[-1]))
    raised, after_training = counts
    assert raised > 1  # the kernel alone does raise it, so the check below tests the guard
    assert after_training == 1
