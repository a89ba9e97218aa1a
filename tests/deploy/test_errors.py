"""stseg_deploy.errors: the input-error classes name their file, and long messages shrink to
one readable line."""

from __future__ import annotations

import pytest

from stseg_deploy.errors import DataSplitError, FlowFileError, StsegInputError, error_line


def test_flow_file_error_names_the_file_and_is_an_input_error() -> None:
    error = FlowFileError("flows/cat/00003.flo", "truncated: 12 of 20 bytes")
    assert str(error) == "flows/cat/00003.flo: truncated: 12 of 20 bytes"
    assert error.path.name == "00003.flo" and error.reason == "truncated: 12 of 20 bytes"
    # One except clause catches every bad-input error, and they are ValueErrors for callers
    # that know nothing of stseg.
    for exc in (error, DataSplitError("x")):
        assert isinstance(exc, StsegInputError) and isinstance(exc, ValueError)


def test_error_line_with_a_limit_cuts_at_a_sentence_or_word() -> None:
    gist = "PytorchStreamReader failed reading zip archive: failed finding central directory."
    advice = " If you are seeing this error, there is a high likelihood that your file is corrupted." * 3
    assert error_line(RuntimeError(gist + advice + "\nmore"), limit=200) == gist
    assert error_line(RuntimeError(gist + "\nmore"), limit=200) == gist  # short first lines are kept whole
    long_sentence = "word " * 60 + "(an aside that runs on and on"
    cut = error_line(ValueError(long_sentence), limit=80)
    assert len(cut) <= 80 and cut.endswith("word...") and "(" not in cut
    assert error_line(EOFError(), limit=200) == "EOFError"


@pytest.mark.parametrize(
    ("message", "line"),
    [
        ("\x1b[1mWeights only load failed.\x1b[0m Re-running may help.", "Weights only load failed. Re-running may help."),
        ("\n\n  first  \nsecond", "first"),
        ("   \n ", "RuntimeError"),  # nothing said: the type's name
    ],
)
def test_error_line_with_a_limit_drops_colour_codes_and_blank_lines(message: str, line: str) -> None:
    assert error_line(RuntimeError(message), limit=200) == line


def test_error_line_without_a_limit_keeps_every_line() -> None:
    assert error_line(PermissionError(13, "Permission denied", "/out/a.png")) == "/out/a.png: permission denied"
    moved = OSError(18, "Invalid cross-device link", "/tmp/a", None, "/mnt/b")
    assert error_line(moved) == "/tmp/a -> /mnt/b: invalid cross-device link"
    assert error_line(ValueError("line one\n  line two \n")) == "line one line two"
    assert error_line(RuntimeError()) == "RuntimeError"
