"""The README and docs/ stay true: every relative link resolves (file and heading), and every
option they show for a ``stseg-*`` command is one that command's ``--help`` lists."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest
from click.testing import CliRunner

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", REPO / "CHANGELOG.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
COMMAND = re.compile(r"\bstseg-(infer|eval|flow|viz|prepare|train|export|synth|bench)\b([^`\n|]*)")
OPTION = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*)")


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    return {_slug(line.lstrip("#")) for line in page.read_text().splitlines() if line.startswith("#")}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_resolve(page: Path) -> None:
    broken = []
    for target in LINK.findall(page.read_text()):
        if re.match(r"[a-z]+://", target) or target.startswith("mailto:"):
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked):
            broken.append(f"{target}: no such heading")
    assert not broken, f"{page.relative_to(REPO)}: {broken}"


@cache
def _help(command: str) -> str:
    """--help of a command (for stseg-prepare, of its davis subcommand too)."""
    from stseg_deploy.cli.eval import eval_main
    from stseg_deploy.cli.flow import flow_main
    from stseg_deploy.cli.infer import infer_main
    from stseg_deploy.cli.prepare import prepare_main
    from stseg_deploy.cli.viz import viz_main
    from stseg_synth.cli import synth_main
    from stseg_train.cli import export_main, train_main

    mains = {"infer": infer_main, "eval": eval_main, "flow": flow_main, "viz": viz_main, "train": train_main,
             "export": export_main, "synth": synth_main}
    if command == "prepare":
        return CliRunner().invoke(prepare_main, ["davis", "--help"]).output
    if command == "bench":
        from stseg_train.bench.cli import _bench_parser

        return _bench_parser().format_help()
    return CliRunner().invoke(mains[command], ["--help"]).output


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_options_shown_for_a_command_exist(page: Path) -> None:
    """Options after a command's name, in code (spans and blocks, lines continued with \\)."""
    text = page.read_text().replace("\\\n", " ")
    code = re.findall(r"```.*?```", text, flags=re.S) + re.findall(r"`[^`\n]+`", text)
    unknown = []
    for chunk in code:
        for line in chunk.splitlines():
            line = line.split("#", 1)[0]  # a shell comment may name other commands' options
            for command, rest in COMMAND.findall(line):
                helptext = _help(command)
                for option in OPTION.findall(rest):
                    if not re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", helptext):
                        unknown.append(f"stseg-{command} {option}")
    assert not unknown, f"{page.relative_to(REPO)}: {sorted(set(unknown))}"


def test_readme_is_short() -> None:
    assert len((REPO / "README.md").read_text().splitlines()) <= 200
