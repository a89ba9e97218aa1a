"""Data-parallel training under torchrun: which process this is, and the few collective steps
the trainer needs.

``torchrun --nproc-per-node N --no-python stseg-train ...`` starts N processes and tells each
its place through the environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT); a plain
``stseg-train`` is a world of one and never touches torch.distributed. Every helper here is a
no-op for a world of one, so the training loop reads the same in both cases.

How the work is split (see :class:`stseg_train.trainer.Trainer`): ``--batch-size`` is the
global batch, cut into equal per-process parts (the last batch of an epoch may leave some
short, or empty: an empty part gets one weightless sample, as every process must take the
step); each process scales its loss so that DistributedDataParallel's gradient average
equals the gradient of the global batch's mean loss.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from typing import NoReturn

import torch
import torch.distributed as torch_dist


@dataclass(frozen=True)
class Dist:
    """This process's place: ``rank`` of ``world_size``, ``local_rank`` on its node."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes checkpoints, CSVs and progress."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1


def from_env() -> Dist:
    """This process's place as torchrun sets it; a world of one without torchrun."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", "0"))
    except ValueError as exc:
        raise ValueError(f"WORLD_SIZE, RANK and LOCAL_RANK must be integers (as torchrun sets them): {exc}") from None
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"RANK {rank} is not within WORLD_SIZE {world}")
    return Dist(rank, world, local)


def device_for(dist: Dist, device: torch.device) -> torch.device:
    """One GPU per process: ``cuda:LOCAL_RANK`` when training on CUDA under torchrun."""
    if dist.active and device.type == "cuda" and device.index is None:
        return torch.device("cuda", dist.local_rank)
    return device


def init(dist: Dist, device: torch.device) -> None:
    """Join the process group (NCCL on GPUs, Gloo on CPU) unless alone or already joined."""
    if not dist.active or torch_dist.is_initialized():
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
    torch_dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=dist.rank, world_size=dist.world_size)


def shutdown(dist: Dist, wait: bool = True) -> None:
    """Leave the process group. ``wait``: first wait for every process to get here, since a
    process that leaves while another still talks to it makes Gloo abort that one (C++
    terminate); not after an error, when the others may never come."""
    if dist.active and torch_dist.is_initialized():
        if wait:
            torch_dist.barrier()
        torch_dist.destroy_process_group()


def exit_now(status: int) -> NoReturn:
    """End this process at once with ``status``, after flushing logs and the standard
    streams, skipping the interpreter's teardown: once the Gloo group is gone, that teardown
    sometimes aborts in C++ ("terminate called without an active exception", about one run
    in 40 here) although every file is written and the work is done."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def all_sum(value: float, dist: Dist, device: torch.device) -> float:
    """The sum of ``value`` over all processes."""
    if not dist.active:
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    torch_dist.all_reduce(tensor)
    return float(tensor.item())


def all_max(value: int, dist: Dist, device: torch.device) -> int:
    """The largest ``value`` over all processes: how every process agrees on a stop."""
    if not dist.active:
        return value
    tensor = torch.tensor([value], dtype=torch.int64, device=device)
    torch_dist.all_reduce(tensor, op=torch_dist.ReduceOp.MAX)
    return int(tensor.item())


def all_gather_lists(items: list, dist: Dist) -> list:
    """Every process's ``items``, concatenated in rank order."""
    if not dist.active:
        return list(items)
    gathered: list = [None] * dist.world_size
    torch_dist.all_gather_object(gathered, items)
    return [item for part in gathered for item in part]


def part_of(batch: list[int], dist: Dist, per_process: int) -> tuple[list[int], int]:
    """This process's part of a global batch: (dataset indices, how many of them count).
    Process r takes ``batch[r * per_process : (r + 1) * per_process]``, which is shorter in an
    epoch's last batch; a process left with nothing still has to take part in the step, so
    it gets one copy of the batch's first index that carries no weight."""
    mine = batch[dist.rank * per_process : (dist.rank + 1) * per_process]
    return (mine, len(mine)) if mine else ([batch[0]], 0)
