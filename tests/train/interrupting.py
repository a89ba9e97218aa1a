"""Helpers of the tests that Ctrl-C a real training process: start a console script, wait for
its first training step, interrupt it, and collect what it said."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

# The progress bar's description, which appears after the first step inside fit.
STEP_LINE = re.compile(rb"epoch \d+ \d+/\d+")


def console_script(name: str) -> Path:
    """The venv's ``name`` executable, or a skip saying it is not installed."""
    script = Path(sys.executable).parent / name
    if not script.exists():
        pytest.skip(f"{script} not installed (pip install -e .)")
    return script


def interrupt_after_first_step(command: list[str], *, group: bool = False, env: dict | None = None, wait: float = 60) -> tuple[int, str, str]:
    """Run ``command``; once its stderr shows a training step, send SIGINT (to its whole
    process group with ``group``, as a terminal's Ctrl-C does) and wait for it to end.

    Returns (exit status, stdout, stderr). Stderr is read by one thread from the start,
    so the pipe never fills; stdout is read only after the exit (it holds a line or two,
    and a second reader of stderr would race the first for the closing lines)."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=group, env=env)
    seen = bytearray()
    stepped = threading.Event()

    def read_stderr() -> None:
        while chunk := os.read(process.stderr.fileno(), 4096):
            seen.extend(chunk)
            if STEP_LINE.search(seen):
                stepped.set()

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    try:
        assert stepped.wait(2 * wait), f"no training step within {2 * wait:.0f} s:\n{seen.decode(errors='replace')}"
        if group:
            os.killpg(process.pid, signal.SIGINT)
        else:
            process.send_signal(signal.SIGINT)
        process.wait(timeout=wait)
    finally:
        if process.poll() is None:
            if group:
                os.killpg(process.pid, signal.SIGKILL)
            else:
                process.kill()
    reader.join(10)
    stdout = process.stdout.read().decode(errors="replace")
    process.stdout.close()
    process.stderr.close()
    return process.returncode, stdout, seen.decode(errors="replace")
