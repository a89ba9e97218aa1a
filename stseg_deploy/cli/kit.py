"""What every stseg command line shares: context settings, Ctrl-C handling, the error exit,
help in sections, and the parsers of options several commands take.

Every command is a :class:`StsegCommand`: Ctrl-C ends it with exit status 130 (128 + SIGINT,
what shells and schedulers expect) and one line, instead of click's "Aborted!" and 1.
"""

from __future__ import annotations

import logging

import click

from ..errors import error_line

CONTEXT = {"help_option_names": ["-h", "--help"], "show_default": True}
SIGINT_EXIT = 130


class StsegCommand(click.Command):
    """A click command that exits 130 on Ctrl-C (KeyboardInterrupt) with one line.

    ``sections``: [(title, [parameter names])], the options' help in those sections, in that
    order; options no section names (--verbose, --help) come last under "Other options"."""

    def __init__(self, *args, sections: list[tuple[str, list[str]]] | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.sections = sections or []

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        if not self.sections:
            return super().format_options(ctx, formatter)
        records = {}
        for param in self.get_params(ctx):
            if not isinstance(param, click.Option):
                continue  # arguments are in the usage line and the docstring
            record = param.get_help_record(ctx)
            if record is not None:
                records[param.name] = record
        for title, names in self.sections + [("Other options", [n for n in records if not self._placed(n)])]:
            rows = [records[name] for name in names if name in records]
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)

    def _placed(self, name: str) -> bool:
        return any(name in names for _, names in self.sections)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            click.echo(f"{ctx.info_name}: interrupted", err=True)
            ctx.exit(SIGINT_EXIT)


def command(**kwargs):
    """``click.command`` with stseg's class and context settings."""
    return click.command(cls=StsegCommand, context_settings=CONTEXT, **kwargs)


def cut_size_option(same: str | None = None):
    """Click callback for --cut-size: an integer >= 1, 'none' (whole sequence), and the word
    ``same`` where given (each sequence's own, from its record: stseg-eval, stseg-viz)."""
    accepted = "an integer >= 1, 'none'" + (f" or {same!r}" if same else "")

    def parse(ctx, param, value):  # noqa: ARG001
        if value is None or str(value).lower() == "none":
            return None
        if same and str(value).lower() == same:
            return same
        try:
            cut = int(value)
        except ValueError:
            raise click.BadParameter(f"{accepted}, got {value!r}") from None
        if cut < 1:
            raise click.BadParameter(f"{accepted}, got {value!r}")
        return cut

    return parse


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


def fail(exc: BaseException):
    """Stop the command with ``exc`` as one error line (exit 1)."""
    raise click.ClickException(error_line(exc)) from exc


def parse_flow_scale(ctx, param, value):  # noqa: ARG001
    """Click callback: ``auto`` or a factor in (0, 4] for a --flow-scale option."""
    if value is None:
        return value
    from ..flow.recipe import check_flow_scale

    try:
        return check_flow_scale(value if value == "auto" else float(value))
    except ValueError:
        raise click.BadParameter(f"'auto' or a factor in (0, 4], got {value!r}") from None


def flow_recipe(
    method: str | None,
    size,
    scale,
    step: int = 1,
    trained=None,
    options: tuple[str, str] = ("--flow-size", "--flow-scale"),
):
    """The run's :class:`stseg_deploy.flow.recipe.FlowRecipe` from a command's flow options
    (size and scale named in ``options``), over the model's training recipe ``trained`` and
    the defaults (:func:`stseg_deploy.flow.recipe.resolve_recipe`). Both a size and a scale
    is a usage error."""
    from ..flow.recipe import resolve_recipe

    if size and scale is not None:
        raise click.UsageError(f"give {options[0]} or {options[1]}, not both")
    return resolve_recipe(trained, method, tuple(size) if size else None, scale, step)
