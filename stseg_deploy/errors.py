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


def summary_line(exc: BaseException, limit: int = 200) -> str:
    """One line for a user from an exception whose message may run to a page.

    torch's load errors put the gist first and pages of advice after it; other messages
    are one line anyway. Falls back to the exception's type name when it says nothing.
    """
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0][:limit] if lines else type(exc).__name__
