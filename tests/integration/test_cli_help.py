"""`--help` of every verb and sub-verb reads well in an 80-column terminal.

The command tree is walked, so verbs added later are covered without touching this file.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from hybridrl.cli import app

WIDTH = 80


def _walk(command: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    found = [(path, command)]
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        if not sub.hidden:
            found.extend(_walk(sub, (*path, name)))
    return found


COMMANDS = _walk(typer.main.get_command(app))


def test_the_walk_finds_the_verbs() -> None:
    paths = {" ".join(path) for path, _ in COMMANDS}
    assert {"", "run", "recipes", "inspect", "datasets", "datasets build", "bench"} <= paths


@pytest.mark.parametrize(
    ("path", "command"), COMMANDS, ids=[" ".join(p) or "hybridrl" for p, _ in COMMANDS]
)
def test_help_fits_80_columns(path: tuple[str, ...], command: Any) -> None:
    result = CliRunner().invoke(
        app, [*path, "--help"], env={"COLUMNS": str(WIDTH)}, terminal_width=WIDTH
    )
    assert result.exit_code == 0, result.output
    text = result.output
    long_lines = [line for line in text.splitlines() if len(line) > WIDTH]
    assert not long_lines, f"lines over {WIDTH} columns:\n" + "\n".join(long_lines)
    assert "…" not in text, text
    assert "<bool>" not in text, text
    for param in command.params:
        for name in (*param.opts, *param.secondary_opts):
            if name.startswith("-"):
                whole = rf"(?<![\w-]){re.escape(name)}(?![\w-])"
                assert re.search(whole, text), f"option {name} not shown whole:\n{text}"
    # A group lists each sub-verb with its first sentence whole, never cut off with "...".
    subcommands = [n for n, sub in getattr(command, "commands", {}).items() if not sub.hidden]
    if subcommands:
        section = text.split("\nCommands:\n", 1)[-1].split("\n\n", 1)[0].splitlines()
        for name in subcommands:
            assert any(line.strip().startswith(f"{name} ") for line in section), text
        assert not any(line.rstrip().endswith("...") for line in section), text
