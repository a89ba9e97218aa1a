"""stseg_deploy.errors: the input-error classes name their file, and long messages shrink to
one readable line."""

from __future__ import annotations

import pytest

from stseg_deploy.errors import DataSplitError, FlowFileError, StsegInputError, summary_line


def test_flow_file_error_names_the_file_and_is_an_input_error() -> None:
    error = FlowFileError("flows/cat/00003.flo", "truncated: 12 of 20 bytes")
    assert str(error) == "flows/cat/00003.flo: truncated: 12 of 20 bytes"
    assert error.path.name == "00003.flo" and error.reason == "truncated: 12 of 20 bytes"
    # One except clause catches every bad-input error, and they are ValueErrors for callers
    # that know nothing of stseg.
    for exc in (error, DataSplitError("x")):
        assert isinstance(exc, StsegInputError) and isinstance(exc, ValueError)


def test_summary_line_cuts_at_a_sentence_or_word() -> None:
    gist = "PytorchStreamReader failed reading zip archive: failed finding central directory."
    advice = " If you are seeing this error, there is a high likelihood that your file is corrupted." * 3
    assert summary_line(RuntimeError(gist + advice + "\nmore")) == gist
    assert summary_line(RuntimeError(gist + "\nmore")) == gist  # short first lines are kept whole
    long_sentence = "word " * 60 + "(an aside that runs on and on"
    cut = summary_line(ValueError(long_sentence), limit=80)
    assert len(cut) <= 80 and cut.endswith("word...") and "(" not in cut
    assert summary_line(EOFError()) == "EOFError"


@pytest.mark.parametrize(
    ("message", "line"),
    [
        ("\x1b[1mWeights only load failed.\x1b[0m Re-running may help.", "Weights only load failed. Re-running may help."),
        ("\n\n  first  \nsecond", "first"),
        ("   \n ", "RuntimeError"),  # nothing said: the type's name
    ],
)
def test_summary_line_drops_colour_codes_and_blank_lines(message: str, line: str) -> None:
    assert summary_line(RuntimeError(message)) == line
