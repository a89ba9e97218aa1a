"""stseg_train.stopping: which reason wins, locally and across processes; the time budget's
clock across resumes; Ctrl-C and SIGTERM as requests to stop after the step."""

from __future__ import annotations

import logging
import signal
import threading

import pytest
import torch

from stseg_train import distributed, stopping
from stseg_train.config import TrainConfig
from stseg_train.distributed import Dist
from stseg_train.stopping import STOP_REASONS, StopRequest, Stopwatch, agreed_reason, ignore_stop_signals, stop_reason

CPU = torch.device("cpu")


def _cfg(**values) -> TrainConfig:
    return TrainConfig(data_file="d", base_dir="b", save_dir="s", **values)


def test_max_steps_outweighs_time_budget_outweighs_an_interrupt() -> None:
    cfg = _cfg(max_steps=10, time_budget=1.0)  # minutes
    assert stop_reason(cfg, 9, 59.9, False, Dist(), CPU) is None
    assert stop_reason(cfg, 9, 59.9, True, Dist(), CPU) == "interrupted"
    assert stop_reason(cfg, 9, 60.0, True, Dist(), CPU) == "time_budget"
    assert stop_reason(cfg, 10, 60.0, True, Dist(), CPU) == "max_steps"
    assert stop_reason(_cfg(), 10**9, 1e9, False, Dist(), CPU) is None  # no limits but the epochs


def test_processes_agree_on_the_weightiest_reason(monkeypatch) -> None:
    def another_process_has(reason: str | None) -> None:
        other = STOP_REASONS.index(reason)
        monkeypatch.setattr(distributed, "all_max", lambda value, dist, device: max(value, other))

    another_process_has("max_steps")
    assert agreed_reason("interrupted", Dist(0, 2), CPU) == "max_steps"
    assert agreed_reason(None, Dist(0, 2), CPU) == "max_steps"
    another_process_has("interrupted")
    assert agreed_reason(None, Dist(0, 2), CPU) == "interrupted"  # a Ctrl-C seen by one process stops all
    assert agreed_reason("time_budget", Dist(0, 2), CPU) == "time_budget"
    another_process_has(None)
    assert stop_reason(_cfg(max_steps=3), 3, 0.0, False, Dist(0, 2), CPU) == "max_steps"


def test_a_world_of_one_keeps_its_own_reason() -> None:
    for reason in STOP_REASONS:
        assert agreed_reason(reason, Dist(), CPU) == reason


def test_stopwatch_adds_this_sessions_seconds_to_the_saved_ones(monkeypatch) -> None:
    now = iter([100.0, 102.5, 110.0])
    monkeypatch.setattr(stopping.time, "monotonic", lambda: next(now))
    clock = Stopwatch(before=30.0)
    assert clock.seconds() == 32.5
    assert clock.seconds() == 40.0


def test_first_ctrl_c_asks_second_aborts_and_the_old_handler_returns(caplog) -> None:
    before = signal.getsignal(signal.SIGINT)
    request = StopRequest(Dist())
    with caplog.at_level(logging.WARNING, logger="stseg_train.trainer"), request.on_signals():
        handler = signal.getsignal(signal.SIGINT)
        assert signal.getsignal(signal.SIGTERM) is not handler  # SIGTERM still ends a lone process
        handler(signal.SIGINT, None)  # called directly: a missing handler could never stop pytest
        assert request.requested
        with pytest.raises(KeyboardInterrupt):
            handler(signal.SIGINT, None)
    assert signal.getsignal(signal.SIGINT) is before
    (record,) = caplog.records
    assert record.name == "stseg_train.trainer"
    assert record.getMessage() == "interrupt: stopping after this step and saving last.pt (Ctrl-C again to abort)"


def test_under_torchrun_any_number_of_signals_only_asks(caplog) -> None:
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    request = StopRequest(Dist(0, 2))
    with caplog.at_level(logging.WARNING, logger="stseg_train.trainer"), request.on_signals():
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGINT):
            signal.getsignal(s)(s, None)
    assert request.requested
    assert [r.getMessage() for r in caplog.records] == ["interrupt: stopping after this step and saving last.pt"]
    assert {s: signal.getsignal(s) for s in before} == before


def test_off_the_main_thread_signals_are_left_alone() -> None:
    before = signal.getsignal(signal.SIGINT)
    seen = []

    def run() -> None:
        with StopRequest(Dist()).on_signals():
            seen.append(signal.getsignal(signal.SIGINT))

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert seen == [before]


def test_dataloader_workers_ignore_stop_signals() -> None:
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        ignore_stop_signals(0)
        assert signal.getsignal(signal.SIGINT) == signal.getsignal(signal.SIGTERM) == signal.SIG_IGN
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)
