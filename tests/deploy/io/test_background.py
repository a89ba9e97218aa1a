from __future__ import annotations

import threading
import time

import pytest

from stseg_deploy.io.background import BackgroundWriter, prefetch


def test_prefetch_keeps_order_and_bounds_read_ahead() -> None:
    produced = []

    def items():
        for i in range(50):
            produced.append(i)
            yield i

    seen = []
    for value in prefetch(items(), depth=3):
        time.sleep(0.001)
        # The producer is at most depth + 1 ahead (depth queued, one being put).
        assert len(produced) - len(seen) <= 5
        seen.append(value)
    assert seen == list(range(50))


def test_prefetch_reraises_at_the_failing_item() -> None:
    def items():
        yield 1
        yield 2
        raise ValueError("frame 3 is corrupt")

    got = []
    with pytest.raises(ValueError, match="frame 3 is corrupt"):
        for value in prefetch(items(), depth=2):
            got.append(value)
    assert got == [1, 2]


def test_prefetch_stops_the_producer_when_closed_early() -> None:
    started = threading.active_count()
    gen = prefetch(iter(range(10_000)), depth=1)
    assert next(gen) == 0
    gen.close()
    time.sleep(0.2)
    assert threading.active_count() <= started


def test_writer_runs_jobs_in_order_and_reraises() -> None:
    done = []
    writer = BackgroundWriter(depth=2)
    for i in range(20):
        writer.submit(lambda i=i: done.append(i))
    writer.close()
    assert done == list(range(20))
    failing = BackgroundWriter()
    failing.submit(lambda: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError, match="disk full"):
        failing.close()


def test_abort_drops_queued_jobs_and_returns() -> None:
    import threading
    import time

    from stseg_deploy.io.background import BackgroundWriter

    done: list[int] = []
    writer = BackgroundWriter(depth=8)
    writer.submit(lambda: time.sleep(0.2))
    for i in range(5):
        writer.submit(lambda i=i: done.append(i))
    before = set(threading.enumerate())
    writer.abort(timeout=2.0)
    left = set(threading.enumerate())
    assert done == [] and left <= before and len(before - left) == 1  # its thread is gone


def test_ctrl_c_at_any_moment_never_hangs_the_writer() -> None:
    """A KeyboardInterrupt inside queue.put() can leave the queue's lock held; abort()
    must still return (close() used to wait forever, about 1 in 30 interrupted runs)."""
    import random
    import signal
    import time

    from stseg_deploy.io.background import BackgroundWriter

    def interrupt(*_args):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    rng = random.Random(0)
    try:
        for _ in range(40):
            started = time.monotonic()
            signal.setitimer(signal.ITIMER_REAL, rng.uniform(0.0005, 0.005))
            try:
                writer = BackgroundWriter()
                try:
                    for _ in range(100_000):
                        writer.submit(lambda: None)
                    writer.close()
                except BaseException:
                    signal.setitimer(signal.ITIMER_REAL, 0)
                    writer.abort(timeout=0.5)
                    raise
            except (KeyboardInterrupt, RuntimeError):
                pass  # RuntimeError: "release unlocked lock", the interrupt's damage to the queue
            signal.setitimer(signal.ITIMER_REAL, 0)
            assert time.monotonic() - started < 5
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
