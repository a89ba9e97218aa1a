"""Overlapping I/O with the model: a bounded read-ahead thread and a background writer.

Flow reading (np.fromfile), resizing (Pillow), PNG encoding (zlib) and onnxruntime all
release the GIL, so plain threads overlap them; bounded queues keep memory flat.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
_DONE = object()


def prefetch(items: Iterable[T], depth: int) -> Iterator[T]:
    """Yield ``items`` in order while a thread produces up to ``depth`` of them ahead.

    An exception raised while producing is re-raised here, at the item where it happened.
    Closing the generator early stops the producer.
    """
    buffer: queue.Queue = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        buffer.put((item, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            buffer.put((_DONE, None))
        except BaseException as exc:  # handed to the consumer, which raises it
            buffer.put((_DONE, exc))

    thread = threading.Thread(target=produce, name="stseg-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item, error = buffer.get()
            if item is _DONE:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                buffer.get_nowait()
            except queue.Empty:
                thread.join(timeout=0.05)


class BackgroundWriter:
    """Runs write jobs in order on one thread; ``close()`` waits and re-raises the first error.

    At most ``depth`` jobs wait at a time, so a slow disk throttles the producer instead of
    filling memory.
    """

    def __init__(self, depth: int = 8) -> None:
        self._jobs: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._error: BaseException | None = None
        self._abort = threading.Event()
        self._thread = threading.Thread(target=self._work, name="stseg-writer", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        while not self._abort.is_set():
            try:
                job = self._jobs.get(timeout=0.1)  # polling, so that abort() is noticed
            except queue.Empty:
                continue
            if job is None or self._abort.is_set():
                return
            if self._error is None:
                try:
                    job()
                except BaseException as exc:  # kept for close()
                    self._error = exc

    def submit(self, job: Callable[[], None]) -> None:
        if self._error is not None:
            raise self._error
        self._jobs.put(job)

    def close(self) -> None:
        """Wait for every job; raise the first error any of them raised."""
        self._jobs.put(None)
        while self._thread.is_alive():
            self._thread.join(timeout=0.1)  # in slices, so Ctrl-C still gets through
        if self._error is not None:
            raise self._error

    def abort(self, timeout: float = 1.0) -> None:
        """Stop after the running job, dropping queued ones: for an error or Ctrl-C.

        Does not touch the queue: a Ctrl-C landing inside ``put()`` can leave the queue's
        lock held for good, and ``close()`` would then wait forever. Waits at most
        ``timeout`` seconds for the thread (a daemon, so it cannot keep the process alive).
        """
        self._abort.set()
        self._thread.join(timeout)
