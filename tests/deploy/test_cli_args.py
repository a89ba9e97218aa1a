"""Argument resolution of the deploy command lines (the commands themselves run end to end in
test_zoo, test_outputs and the train package's end-to-end tests)."""

from __future__ import annotations

import click
import pytest

from stseg_deploy.cli import _video_flow


def test_video_flow_follows_the_user_then_the_model_then_the_defaults() -> None:
    trained = {"method": "dis-fine", "size": None, "scale": 0.5}
    assert _video_flow(trained, None, None, None) == ("dis-fine", None, 0.5)
    assert _video_flow(trained, "farneback", None, None) == ("farneback", None, 0.5)
    # An explicit size or scale replaces the model's resolution as a whole.
    assert _video_flow(trained, None, (100, 200), None) == ("dis-fine", (100, 200), "auto")
    assert _video_flow(trained, None, None, 1.0) == ("dis-fine", None, 1.0)
    assert _video_flow({"method": "dis", "size": [240, 427], "scale": None}, None, None, None) == ("dis", (240, 427), "auto")
    assert _video_flow(None, None, None, None) == ("deepflow", None, "auto")
    with pytest.raises(click.UsageError, match="not both"):
        _video_flow(None, None, (100, 200), 0.5)
