"""Segmenting many sequences on a Ray cluster: one model per worker, the outputs of one process.

The driver (``stseg-infer --ray``) hands sequences out one at a time to workers, Ray actors
that each load the model once: one per GPU, or one per ``threads`` CPUs of the cluster. A
worker writes a sequence exactly as a single process does
(:func:`stseg_deploy.output.folder.segment_to_folder`: an output unit swapped in only when
complete, under a lock that dies with its holder), so ``--out`` must be a folder that every
node sees at the same path, on a shared filesystem; the driver checks this by leaving a probe
file there that every worker must find. Paths given relative to the driver's working folder
mean the same on every worker, which starts in that folder (it must exist on every node, as
the shared filesystem makes it).

Faults: a worker that dies mid-sequence (killed, out of memory, node lost) is replaced, and
its sequence goes to a worker again, up to ``attempts`` times; the next writer of that
sequence removes the dead writer's temporary folder. A sequence that fails on its input (a
corrupt file, mixed sizes) fails once and is reported by name while the others go on.

Ray itself (importing, connecting, the probe) is :mod:`stseg_deploy.cluster.raykit`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import KW_ONLY, dataclass, field

from ..errors import error_line
from ..io.outdir import StsegOutputError
from ..output.layout import OutputOptions
from ..settings import InferenceSettings
from .raykit import DEFAULT_ATTEMPTS, ClusterError, check_probe, shared_probe

log = logging.getLogger(__name__)

# How long workers may take to start (scheduling, loading the model) before the driver gives
# up on them: a worker asking for resources that another job holds never starts.
START_TIMEOUT = 300.0


@dataclass(frozen=True)
class InferJob:
    """Everything a worker needs to build its segmenter and write outputs as stseg-infer does."""

    out_dir: str
    model_file: str
    _: KW_ONLY
    settings: InferenceSettings = field(default_factory=InferenceSettings)
    provider: str = "auto"
    threads: int | None = None
    batch_size: int = 8
    image_size: tuple[int, int] | None = None
    outputs: OutputOptions = OutputOptions()
    model_sha256: str | None = None
    cwd: str | None = None  # the driver's working folder, where relative paths start


@dataclass
class Outcome:
    """What became of one sequence: ``status`` "done" or "failed" (with ``error``);
    ``attempts``: how many workers it was given to."""

    name: str
    status: str
    frames: int = 0
    error: str | None = None
    attempts: int = 0


@dataclass
class Progress:
    """The run so far, for a progress display: frames segmented (finished sequences and the
    part done of running ones), sequences finished, and each busy worker's (host, pid,
    sequence, frames done)."""

    frames: int = 0
    finished: int = 0
    workers: list[tuple[str, int, str, int]] = field(default_factory=list)


def worker_plan(resources: dict, provider: str, threads: int | None, n_sequences: int) -> tuple[int, dict]:
    """(number of workers, Ray resources of each): one per GPU when the provider is CUDA (or
    auto on a cluster with GPUs), else one per ``threads`` CPUs (1 when not given); never
    more workers than sequences."""
    gpus = int(resources.get("GPU", 0))
    if provider == "cuda" or (provider == "auto" and gpus > 0):
        if gpus == 0:
            raise ClusterError("--provider cuda: the Ray cluster has no GPU")
        return max(1, min(gpus, n_sequences)), {"num_gpus": 1, "num_cpus": 1}
    per = threads or 1
    cpus = int(resources.get("CPU", 1))
    if cpus < per:
        raise ClusterError(f"--threads {per}: the Ray cluster has only {cpus} CPU(s)")
    return max(1, min(cpus // per, n_sequences)), {"num_cpus": per}


# -- the worker ------------------------------------------------------------------------------


class SegmentWorker:
    """One model, loaded once, segmenting sequences into the job's output folder.

    Made a Ray actor by :func:`segment_on_ray`; plain Python, so it runs (and is tested)
    without Ray too. A setup failure (model, output folder) is kept and reported by
    :meth:`hello`, not raised, so the driver can name the node.
    """

    def __init__(self, job: InferJob, probe: str | None = None) -> None:
        from ..pipeline import Segmenter
        from ..runtime import load_model

        self.job = job
        self.host, self.pid = socket.gethostname(), os.getpid()
        self.error: str | None = None
        self.device = ""
        self.current: str | None = None
        self.frames_done = 0
        try:
            if job.cwd is not None and os.getcwd() != job.cwd:
                # Each Ray actor is a process of its own: this changes nothing but it.
                try:
                    os.chdir(job.cwd)
                except OSError as exc:
                    raise StsegOutputError(
                        f"{job.cwd}: the driver's working folder is not there on node {self.host}; run from a "
                        "folder every node sees, or give absolute paths"
                    ) from exc
            if probe is not None:
                check_probe(probe)
            model = load_model(job.model_file, provider=job.provider, threads=job.threads)
            self.segmenter = Segmenter(
                model, job.settings, batch_size=job.batch_size, image_size=job.image_size,
            )
            self.device = f"{model.engine} on {model.device}"
        except (OSError, ValueError, RuntimeError) as exc:
            self.error = error_line(exc)

    def hello(self) -> dict:
        """Where this worker runs and whether it is ready: host, pid, device, error."""
        return {"host": self.host, "pid": self.pid, "device": self.device, "error": self.error}

    def segment(self, sequence) -> dict:
        """Segment ``sequence`` into the output folder: {"frames", "seconds"} or {"error"}."""
        from ..output.folder import segment_to_folder

        if self.error is not None:
            return {"error": self.error}
        self.current, self.frames_done = sequence.name, 0
        job = self.job
        try:
            stats = segment_to_folder(
                self.segmenter, sequence, job.out_dir, job.outputs, on_frame=self._count, model_sha256=job.model_sha256,
            )
        except MemoryError:
            return {"error": (
                f"out of memory at model input {self.segmenter.image_size[0]}x{self.segmenter.image_size[1]} with batch size "
                f"{job.batch_size}; try a smaller --image-size or --batch-size, or fewer --workers"
            )}
        except (OSError, ValueError, RuntimeError) as exc:
            return {"error": error_line(exc)}
        finally:
            self.current = None
        return {"frames": stats.n_frames, "seconds": stats.total}

    def _count(self, _frame) -> None:
        self.frames_done += 1

    def progress(self) -> tuple[str, int, str | None, int]:
        """(host, pid, sequence being segmented or None, frames of it written)."""
        return self.host, self.pid, self.current, self.frames_done


# -- the driver ------------------------------------------------------------------------------


def segment_on_ray(
    ray,
    sequences: Sequence,
    job: InferJob,
    workers: int | None = None,
    attempts: int = DEFAULT_ATTEMPTS,
    on_progress: Callable[[Progress], None] | None = None,
    on_start: Callable[[list[dict]], None] | None = None,
    poll: float = 0.25,
) -> list[Outcome]:
    """Segment ``sequences`` on the connected Ray (see :func:`ray_session`) into ``job.out_dir``.

    ``workers``: how many (default: :func:`worker_plan`'s). ``on_start(hellos)`` sees each
    worker's host, pid and device once all are ready; ``on_progress`` is called about every
    ``poll`` seconds. Returns one :class:`Outcome` per sequence, in the order given.

    Raises ClusterError when a worker cannot start (its node and reason named).
    """
    sequences = list(sequences)
    if not sequences:
        return []
    count, resources = worker_plan(ray.cluster_resources(), job.provider, job.threads, len(sequences))
    count = min(count, workers) if workers else count
    actor_class = ray.remote(max_concurrency=2, **resources)(SegmentWorker)
    with shared_probe(job.out_dir) as probe:

        def start() -> object:
            return actor_class.options(scheduling_strategy="SPREAD").remote(job, str(probe))

        pool = _Workers(ray, start, count)
        hellos = pool.wait_first(START_TIMEOUT)
        if on_start is not None:
            on_start(hellos)
        return _drive(ray, sequences, pool, attempts, on_progress, poll)


class _Workers:
    """The driver's workers: starting (their hello not yet answered), idle, or busy. A
    worker is used once it has said hello, so one that cannot be scheduled never blocks."""

    def __init__(self, ray, start, count: int) -> None:
        self.ray, self.start = ray, start
        self.starting: dict[object, object] = {}  # hello ref -> actor
        self.idle: list = []
        for _ in range(count):
            self.add()

    def add(self) -> None:
        actor = self.start()
        self.starting[actor.hello.remote()] = actor

    def wait_first(self, timeout: float) -> list[dict]:
        """Wait (up to ``timeout`` s) for every first worker, at least for one; their hellos.
        Raises ClusterError when none starts in time, or one names what stops it."""
        ready, _ = self.ray.wait(list(self.starting), num_returns=len(self.starting), timeout=timeout)
        if not ready:
            raise ClusterError(
                f"no Ray worker started within {timeout:.0f} s: the cluster has no free resources for one "
                "(another job may hold them)"
            )
        return [self.greeted(ref) for ref in ready]

    def greeted(self, ref) -> dict:
        """A started worker's hello; the worker joins the idle ones. ClusterError when it names
        a fault of the setup (model, output folder), which every worker would meet."""
        actor = self.starting.pop(ref)
        try:
            hello = self.ray.get(ref)
        except self.ray.exceptions.RayActorError as exc:
            raise ClusterError(f"a Ray worker could not start: {error_line(exc)}") from exc
        if hello["error"] is not None:
            raise ClusterError(f"worker on {hello['host']} (pid {hello['pid']}): {hello['error']}")
        self.idle.append(actor)
        return hello


def _drive(ray, sequences, pool: _Workers, attempts, on_progress, poll) -> list[Outcome]:
    """Hand sequences to idle workers until every one is done or failed; replace dead workers
    (without waiting for the replacement: it joins when it says hello)."""
    pending = deque(sequences)
    running: dict[object, tuple[object, object]] = {}  # result ref -> (actor, sequence)
    tries: Counter = Counter()
    outcomes: dict[str, Outcome] = {}
    frames_done = 0
    waited_since = time.monotonic()
    while pending or running:
        while pool.idle and pending:
            actor, sequence = pool.idle.pop(), pending.popleft()
            tries[sequence.name] += 1
            running[actor.segment.remote(sequence)] = (actor, sequence)
        if not running and not pool.idle and time.monotonic() - waited_since > START_TIMEOUT:
            for sequence in pending:
                outcomes[sequence.name] = Outcome(sequence.name, "failed", error="no worker could be started again", attempts=tries[sequence.name])
            break
        ready, _ = ray.wait([*running, *pool.starting], num_returns=1, timeout=poll)
        for ref in ready:
            if ref in pool.starting:
                try:
                    pool.greeted(ref)
                except ClusterError as exc:  # a replacement: go on with the workers there are
                    log.warning("%s; going on without it", exc)
                continue
            waited_since = time.monotonic()
            actor, sequence = running.pop(ref)
            name = sequence.name
            try:
                result = ray.get(ref)
            except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError) as exc:
                log.warning("%s: its worker died (%s); attempt %d of %d", name, type(exc).__name__, tries[name], attempts)
                with contextlib.suppress(Exception):
                    ray.kill(actor)
                pool.add()
                if tries[name] < attempts:
                    pending.appendleft(sequence)
                else:
                    outcomes[name] = Outcome(name, "failed", error=f"its worker died {tries[name]} time(s)", attempts=tries[name])
                continue
            except ray.exceptions.RayTaskError as exc:  # an error segment() did not expect: this sequence's
                pool.idle.append(actor)
                outcomes[name] = Outcome(name, "failed", error=error_line(getattr(exc, "cause", None) or exc), attempts=tries[name])
                continue
            pool.idle.append(actor)
            if "error" in result:
                outcomes[name] = Outcome(name, "failed", error=result["error"], attempts=tries[name])
            else:
                frames_done += result["frames"]
                outcomes[name] = Outcome(name, "done", frames=result["frames"], attempts=tries[name])
        if on_progress is not None:
            on_progress(_progress(ray, running, frames_done, len(outcomes), poll))
    return [outcomes[s.name] for s in sequences]


def _progress(ray, running: dict, frames_done: int, finished: int, timeout: float) -> Progress:
    """Frames of finished sequences plus what busy workers report (a dead one reports none)."""
    progress = Progress(frames=frames_done, finished=finished)
    refs = [actor.progress.remote() for actor, _ in running.values()]
    ready, _ = ray.wait(refs, num_returns=len(refs), timeout=timeout)
    for ref in ready:
        with contextlib.suppress(ray.exceptions.RayError):
            host, pid, current, frames = ray.get(ref)
            if current is not None:
                progress.frames += frames
                progress.workers.append((host, pid, current, frames))
    return progress


