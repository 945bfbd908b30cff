"""The ``hybridrl`` command line: ``hybridrl --help`` lists the verbs.

Every verb is a thin shell over the library: parse, call one function, print. Errors from bad
input (`HybridRLError`, or an option value of the wrong type) are printed as one clear line and
exit with status 2.
"""

from __future__ import annotations

import sys

import typer

from hybridrl.cli import data, policies, runs, suite, sweep  # noqa: F401  (register the verbs)
from hybridrl.cli._common import app
from hybridrl.types import HybridRLError

__all__ = ["app", "main"]


def main() -> None:
    """Entry point: run the app, turning bad-input errors (a `HybridRLError`, or an option
    value of the wrong type) into one line and exit code 2."""
    try:
        code = app(standalone_mode=False)
    except HybridRLError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except typer.BadParameter as exc:  # e.g. --dip-fraction abc: one line, not a usage block
        where = f" (see {exc.ctx.command_path} --help)" if exc.ctx else ""
        typer.echo(f"error: {exc.format_message()}{where}", err=True)
        sys.exit(2)
    except typer.Abort:
        typer.echo("Aborted!", err=True)
        sys.exit(1)
    except Exception as exc:
        # click's other usage errors (an unknown or missing option, no arguments) as click
        # shows them in its standalone mode: usage, hint, error; their exit code.
        show, exit_code = getattr(exc, "show", None), getattr(exc, "exit_code", None)
        if callable(show) and isinstance(exit_code, int):
            show()
            sys.exit(exit_code)
        raise
    sys.exit(code if isinstance(code, int) else 0)
