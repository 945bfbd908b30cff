"""The ``hybridrl`` command line: ``hybridrl --help`` lists the verbs.

Every verb is a thin shell over the library: parse, call one function, print. Errors from bad
input (`HybridRLError`) are printed as one clear line and exit with status 2.
"""

from __future__ import annotations

import sys

import typer

from hybridrl.cli import data, policies, runs, suite  # noqa: F401  (register the verbs)
from hybridrl.cli._common import app
from hybridrl.types import HybridRLError

__all__ = ["app", "main"]


def main() -> None:
    """Entry point: run the app, turning bad-input errors into one line and exit code 2."""
    try:
        app()
    except HybridRLError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
