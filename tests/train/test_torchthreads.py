"""stseg_train.torchthreads: torch keeps its CPU thread count across stseg_kernels' parallel
kernels, which (with numba's OpenMP layer) would otherwise raise it to numba's."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from stseg_kernels import jaccard
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


def test_a_parallel_kernel_leaves_torch_as_it_was(one_torch_thread) -> None:
    mask = np.random.default_rng(0).random((32, 48)) > 0.5
    with torch_threads_kept():
        np.testing.assert_allclose(jaccard(mask[None], mask[None]), [1.0])
    assert torch.get_num_threads() == 1


_FRESH_PROCESS = """
import sys, torch, numba
torch.set_num_threads(1)
from stseg_synth.datasplit import write_synth_split
from stseg_train.config import TrainConfig
from stseg_train.trainer import Trainer
root = sys.argv[1]
prefix = write_synth_split(root + "/d", n_sequences=2, n_frames=5, size=(16, 24), seed=1, val_fraction=0.5)
cfg = TrainConfig(data_file=str(prefix), base_dir=root + "/d", save_dir=root + "/run", image_size=(16, 24),
                  features_start=4, batch_size=2, epochs=1, workers=0, train_results=True)
Trainer(cfg).fit()
print(numba.config.NUMBA_NUM_THREADS, torch.get_num_threads())
"""


def test_trainer_validation_keeps_one_thread(tmp_path) -> None:
    # A fresh process: numba's OpenMP layer sets the count when its pool first starts, which
    # in this test process may have happened already.
    result = subprocess.run([sys.executable, "-c", _FRESH_PROCESS, str(tmp_path)], capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-2000:]
    numba_threads, torch_threads = map(int, result.stdout.split()[-2:])
    assert torch_threads == 1, f"numba has {numba_threads} threads"
