"""stseg_deploy.cli.kit: what every stseg command shares. Ctrl-C exits 130 with one line,
errors are one line naming the file, and the flow size/scale pair is checked."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from stseg_deploy.cli.kit import (
    SIGINT_EXIT,
    command,
    fail,
    flow_recipe,
    parse_flow_scale,
)
from stseg_deploy.flow.recipe import FlowRecipe


@command()
@click.option("--what", type=click.Choice(["interrupt", "fail", "ok"]), default="ok")
@click.option("--flow-scale", default=None, callback=parse_flow_scale)
def _tool(what: str, flow_scale) -> None:
    """A command built the way every stseg command is."""
    if what == "interrupt":
        raise KeyboardInterrupt
    if what == "fail":
        fail(FileNotFoundError(2, "No such file or directory", "flows/cat"))
    click.echo(f"scale={flow_scale!r}")


def test_ctrl_c_exits_130_with_one_line() -> None:
    result = CliRunner().invoke(_tool, ["--what", "interrupt"], prog_name="stseg-x")
    assert result.exit_code == SIGINT_EXIT == 130
    assert result.stderr == "stseg-x: interrupted\n" and "Aborted" not in result.output


def test_fail_is_one_error_line_exit_1() -> None:
    result = CliRunner().invoke(_tool, ["--what", "fail"])
    assert result.exit_code == 1
    assert result.stderr == "Error: flows/cat: no such file or directory\n"


def test_help_shows_defaults_and_takes_h() -> None:
    result = CliRunner().invoke(_tool, ["-h"])
    assert result.exit_code == 0 and "[default: ok]" in result.output


@pytest.mark.parametrize(("given", "value"), [(None, "scale=None"), ("auto", "scale='auto'"), ("0.5", "scale=0.5"), ("4", "scale=4.0")])
def test_flow_scale_accepts_auto_or_a_factor(given, value) -> None:
    args = [] if given is None else ["--flow-scale", given]
    result = CliRunner().invoke(_tool, args)
    assert result.exit_code == 0 and result.stdout.strip() == value


@pytest.mark.parametrize("given", ["0", "-1", "4.5", "big", "nan"])
def test_flow_scale_refuses_the_rest(given: str) -> None:
    result = CliRunner().invoke(_tool, ["--flow-scale", given])
    assert result.exit_code == 2 and "'auto' or a factor in (0, 4]" in result.output


def test_flow_recipe_from_options_over_the_models() -> None:
    trained = FlowRecipe("dis", None, 0.5)
    assert flow_recipe(None, None, None) == FlowRecipe("deepflow-dis", None, "auto", 1)
    # A model trained on DeepFlow gets the default engine, DeepFlow averaged with DIS.
    assert flow_recipe(None, None, None, trained=FlowRecipe("deepflow")).method == "deepflow-dis"
    assert flow_recipe(None, None, None, 2, trained=trained) == FlowRecipe("dis", None, 0.5, 2)
    assert flow_recipe("farneback", [16, 24], None, trained=trained) == FlowRecipe("farneback", (16, 24), "auto")
    with pytest.raises(click.UsageError, match="give --size or --scale, not both"):
        flow_recipe(None, (16, 24), 0.5, options=("--size", "--scale"))
