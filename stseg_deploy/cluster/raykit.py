"""Ray plumbing shared by ``stseg-infer --ray`` and ``stseg-prepare --ray``: importing Ray (an
optional dependency, ``pip install "stseg[cluster]"``, imported only here), connecting to a
cluster, checking that every node sees the output folder, and plain tasks mapped over the
cluster (:func:`map_on_ray`). The segmentation driver is :mod:`stseg_deploy.cluster.infer`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from ..errors import error_line
from ..io.outdir import StsegOutputError

INSTALL_HINT = 'pip install "stseg[cluster]"'
PROBE_PREFIX = ".stseg-ray-probe."
DEFAULT_ATTEMPTS = 3


class ClusterError(RuntimeError):
    """The cluster cannot run the job: Ray missing or unreachable, no worker can start."""


def import_ray():
    try:
        import ray
    except ImportError:
        raise ClusterError(f"--ray needs Ray, an optional dependency: {INSTALL_HINT}") from None
    return ray


@contextlib.contextmanager
def ray_session(address: str) -> Iterator[object]:
    """Ray, connected to ``address``: "local" starts Ray on this machine (stopped on exit),
    "auto" joins the cluster this machine is part of, anything else is a cluster's address
    (``host:6379`` or ``ray://host:10001``). Reuses a Ray this process already started."""
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    try:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ClusterError(f"--ray {address}: cannot start or reach Ray ({error_line(exc)})") from exc
    try:
        yield ray
    finally:
        ray.shutdown()


@contextlib.contextmanager
def shared_probe(out_dir: str | Path) -> Iterator[Path]:
    """A probe file in ``out_dir`` (created if need be) for workers to find, removed on exit."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    probe = out / f"{PROBE_PREFIX}{uuid.uuid4().hex}"
    probe.write_text(f"written by {socket.gethostname()} pid {os.getpid()}\n")
    try:
        yield probe.resolve()
    finally:
        probe.unlink(missing_ok=True)


def check_probe(probe: str | Path) -> None:
    """Refuse to work on a node that does not see the driver's output folder."""
    probe = Path(probe)
    if not probe.is_file():
        raise StsegOutputError(
            f"{probe.parent}: not visible from node {socket.gethostname()}; --out must be a folder on a "
            "filesystem every node sees at the same path (NFS, a cluster filesystem)"
        )


# -- plain tasks (stseg-prepare's flows) ---------------------------------------------------


def _on_node(probe: str, fn: Callable, args: tuple):
    check_probe(probe)
    return fn(*args)


def map_on_ray(
    ray,
    fn: Callable,
    calls: dict[str, tuple],
    out_dir: str | Path,
    on_done: Callable[[str, str | None], None] | None = None,
    retries: int = DEFAULT_ATTEMPTS - 1,
) -> dict[str, object]:
    """``fn(*args)`` for each named call on the connected Ray, one CPU each, results written
    under ``out_dir`` (which every node must see). A task whose worker dies is run again
    (``retries`` times, by Ray); one that raises is not. Returns {name: result, or the error
    line of what it raised}; ``on_done(name, error or None)`` as each finishes."""
    remote = ray.remote(num_cpus=1, max_retries=retries)(_on_node)
    results: dict[str, object] = {}
    with shared_probe(out_dir) as probe:
        running = {remote.remote(str(probe), fn, args): name for name, args in calls.items()}
        while running:
            ready, _ = ray.wait(list(running), num_returns=1)
            for ref in ready:
                name = running.pop(ref)
                error = None
                try:
                    results[name] = ray.get(ref)
                except ray.exceptions.RayTaskError as exc:
                    cause = getattr(exc, "cause", None) or exc
                    results[name] = error = error_line(cause)
                except ray.exceptions.RayError as exc:
                    results[name] = error = f"its worker died ({type(exc).__name__})"
                if on_done is not None:
                    on_done(name, error)
    return results
