"""When training stops short of its epochs: a step count, a time budget or a signal, and one
answer for every process.

Under torchrun each process has its own clock and may see a signal at another step, yet all
of them must leave the loop after the same step or the next collective hangs; so every
reason is local first and then agreed on (see :func:`agreed_reason`).
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from . import distributed
from .config import TrainConfig

# Logged under the trainer's name: these lines are part of what the training loop says, and
# the log format shows the logger's name.
log = logging.getLogger("stseg_train.trainer")

# Why training stops, in the order processes agree on (the last that any process has wins,
# as max_steps wins over time_budget over an interrupt on one process).
STOP_REASONS = (None, "interrupted", "time_budget", "max_steps")


def stop_reason(
    cfg: TrainConfig, global_step: int, seconds: float, requested: bool, dist: distributed.Dist, device: torch.device
) -> str | None:
    """Why training must stop now, or None: max_steps, time_budget or interrupted; all
    processes agree (their clocks and signals may differ: the weightiest reason wins)."""
    reason = None
    if cfg.max_steps is not None and global_step >= cfg.max_steps:
        reason = "max_steps"
    elif cfg.time_budget is not None and seconds >= cfg.time_budget * 60:
        reason = "time_budget"
    elif requested:
        reason = "interrupted"
    return agreed_reason(reason, dist, device)


def agreed_reason(reason: str | None, dist: distributed.Dist, device: torch.device) -> str | None:
    """The weightiest of every process's ``reason`` (a collective: every process calls it)."""
    return STOP_REASONS[distributed.all_max(STOP_REASONS.index(reason), dist, device)]


class Stopwatch:
    """Training seconds across resumes: those saved before this session plus this session's,
    on a monotonic clock so a changed wall clock cannot eat into the time budget."""

    def __init__(self, before: float = 0.0) -> None:
        self._started = time.monotonic()
        self._before = before

    def seconds(self) -> float:
        return self._before + time.monotonic() - self._started


class StopRequest:
    """A stop asked for from outside (Ctrl-C, or SIGTERM under torchrun), honoured after the
    step in progress so that last.pt holds a whole step. ``requested`` is only a flag: the
    loop reads it at its next agreement (:func:`stop_reason`)."""

    def __init__(self, dist: distributed.Dist) -> None:
        self.dist = dist
        self.requested = False

    @contextmanager
    def on_signals(self) -> Iterator[None]:
        """First Ctrl-C: finish the step, save last.pt, return. Second: abort at once.

        Under torchrun every process gets the terminal's Ctrl-C and then the same signal
        again from torchrun's agent, and a scheduler stops jobs with SIGTERM: there, any
        number of SIGINT or SIGTERM only asks for the stop, and the processes agree on the
        step (the agent kills workers that outlast its timeout)."""
        signals = (signal.SIGINT, signal.SIGTERM) if self.dist.active else (signal.SIGINT,)
        previous = {s: signal.getsignal(s) for s in signals}

        def handler(signum, frame):  # noqa: ARG001
            if self.requested and not self.dist.active:
                raise KeyboardInterrupt
            if not self.requested:
                self.requested = True
                again = "" if self.dist.active else " (Ctrl-C again to abort)"
                log.warning("interrupt: stopping after this step and saving last.pt%s", again)

        try:
            for s in signals:
                signal.signal(s, handler)
        except ValueError:  # not the main thread: leave signals alone
            yield
            return
        try:
            yield
        finally:
            for s, handler_before in previous.items():
                signal.signal(s, handler_before)


def ignore_stop_signals(_worker_id: int) -> None:
    """DataLoader workers leave Ctrl-C and SIGTERM to the training process, which stops after
    the step (every process at the same one under torchrun) and shuts them down itself."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
