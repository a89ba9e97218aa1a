"""Exceptions raised for bad user input, each naming the offending file."""

from __future__ import annotations

from pathlib import Path


class StsegInputError(ValueError):
    """Bad input data: a file or value that cannot be used as given."""


class FlowFileError(StsegInputError):
    """An optical-flow file that cannot be read: the message names the file and the fault."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class DataSplitError(StsegInputError):
    """A DataSplit CSV that is missing, malformed or points at missing files."""


def error_line(exc: BaseException, limit: int | None = None) -> str:
    """One line for a user from an exception: the one helper every command, log and
    summary.csv reason goes through.

    An OSError reads ``path: reason`` (``src -> dst: reason`` for a rename) rather than
    ``[Errno N] ...: 'path'``. Other messages lose terminal colour codes (torch uses them)
    and blank lines. Without ``limit`` their lines are joined with spaces. With ``limit``,
    only the first line is kept: torch's load errors put the gist in the first sentence and
    pages of advice after it. A first line longer than ``limit`` characters is cut to its
    first sentence, and a first sentence still too long is cut after a whole word (before
    any parenthesis left open) and marked ``...``: never mid-word. Falls back to the
    exception's type name when it says nothing.
    """
    import re

    if isinstance(exc, OSError) and exc.strerror and exc.filename is not None:
        where = f"{exc.filename} -> {exc.filename2}" if exc.filename2 is not None else str(exc.filename)
        return f"{where}: {exc.strerror[0].lower()}{exc.strerror[1:]}"
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    if limit is None:
        return " ".join(lines)
    line = lines[0]
    if len(line) <= limit:
        return line
    line = re.split(r"(?<=[.!?])\s+", line, maxsplit=1)[0]
    if len(line) <= limit:
        return line
    cut = line[: limit - 3].rsplit(" ", 1)[0]
    if cut.count("(") > cut.count(")"):
        cut = cut[: cut.rindex("(")]
    return cut.rstrip(" ,;:-(") + "..."
