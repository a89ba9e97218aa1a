"""Segmenting several sequences at once on this machine: one process per worker, each with the
model loaded once, as the Ray workers of :mod:`stseg_deploy.cluster.infer` but without Ray.

Why processes: the pipeline's stages between two model calls (the motion split, the guided
refinement, the foreground decision, the linking) run one thread each, so one sequence at a
time leaves cores idle between the model's calls. Two workers of one runtime thread each
segment the 6 development sequences at 480p in 24.5–25.1 s on 2 cores (two runs), where one
process with two threads takes 35.4 s, with identical labels.

Each worker writes a sequence exactly as a single process does
(:func:`stseg_deploy.output.folder.segment_to_folder`: an output unit swapped in only when
complete), so a failure or an interruption never leaves a half-written sequence folder.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from ..errors import error_line
from .infer import InferJob, Outcome, SegmentWorker

log = logging.getLogger(__name__)

_WORKER: SegmentWorker | None = None  # the worker of this process, once started

ATTEMPTS = 2
"""Times a sequence is given to a worker: one more after a worker died (killed, out of memory)."""


def _start(job: InferJob, verbose: bool) -> None:
    global _WORKER
    import signal

    import cv2

    from ..cli.kit import setup_logging

    # Ctrl-C is the parent's to handle: it stops the pool, so the workers ignore it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    setup_logging(verbose)
    # One process per core: the model's own threads are set by job.threads, OpenCV's here.
    cv2.setNumThreads(1)
    _WORKER = SegmentWorker(job)


def _segment(sequence) -> dict:
    assert _WORKER is not None, "the pool's initializer starts the worker"
    return _WORKER.segment(sequence)


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity, which containers and schedulers set)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def default_workers(n_sequences: int, cores: int | None = None) -> int:
    """Workers for ``n_sequences`` on this machine's CPU: one per core, at most one per sequence."""
    return max(1, min(cores or available_cores(), n_sequences))


def segment_in_processes(
    sequences: Sequence, job: InferJob, workers: int, on_done: Callable[[Outcome], None] | None = None,
    verbose: bool = False, attempts: int = ATTEMPTS,
) -> list[Outcome]:
    """Segment ``sequences`` into ``job.out_dir`` with ``workers`` processes of this machine.

    Returns one :class:`~stseg_deploy.cluster.infer.Outcome` per sequence, in the order given;
    a sequence that fails (its input, its output folder, the model in its worker) is named
    there while the others go on. When a worker dies, the pool is replaced and the sequences
    not yet written are given to the new one, each up to ``attempts`` times in all.
    ``on_done(outcome)`` is called as each finishes. Ctrl-C (KeyboardInterrupt) stops the
    workers at once and is raised again; the sequences they were writing are left unwritten
    (their temporary folders are removed by the next run).
    """
    sequences = list(sequences)
    outcomes = {s.name: Outcome(s.name, "failed") for s in sequences}
    todo = list(sequences)
    while todo:
        todo = _run_pool(todo, job, workers, outcomes, on_done, verbose, attempts)
    return [outcomes[s.name] for s in sequences]


def _run_pool(todo: list, job: InferJob, workers: int, outcomes: dict[str, Outcome], on_done, verbose: bool, attempts: int) -> list:
    """One pool over ``todo``; returns the sequences to give to a new pool (a worker died)."""
    # spawn, not fork: forking a process whose other threads hold locks can hang the child.
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=max(1, workers), mp_context=context, initializer=_start, initargs=(job, verbose))
    again: list = []
    try:
        pending = {}
        for sequence in todo:
            outcomes[sequence.name].attempts += 1
            pending[pool.submit(_segment, sequence)] = sequence
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                sequence = pending.pop(future)
                outcome = outcomes[sequence.name]
                try:
                    result = future.result()
                except BrokenProcessPool:  # a worker died (killed, out of memory): not this sequence's fault
                    if outcome.attempts < attempts:
                        again.append(sequence)
                        continue
                    result = {"error": f"its worker process died {outcome.attempts} time(s) (killed, or out of memory?)"}
                except Exception as exc:  # an error the worker did not turn into a result
                    result = {"error": error_line(exc)}
                if "error" in result:
                    outcome.error = result["error"]
                else:
                    outcome.status, outcome.frames, outcome.error = "done", int(result["frames"]), None
                if on_done is not None:
                    on_done(outcome)
    except BaseException:
        # Ctrl-C or the caller's error: the queued sequences are dropped and the running ones
        # stopped now, not written to the end.
        for process in list(getattr(pool, "_processes", {}).values()):
            process.terminate()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    if again:
        log.warning("a worker process died; %d sequence(s) given to new workers", len(again))
    return again
