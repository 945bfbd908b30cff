"""The ``sweep`` verb: a sweep file's runs on Ray (`hybridrl.sweep.run_sweep`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hybridrl.cli._common import app


@app.command()
def sweep(
    file: Annotated[Path, typer.Argument(help="A sweep file (.toml), see docs/sweeps.md.")],
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Sweep directory (default: runs/<file name>)."),
    ] = None,
    resume: Annotated[
        bool,
        typer.Option(help="Continue the sweep in OUT: skip finished runs, resume the others."),
    ] = False,
    address: Annotated[
        str | None,
        typer.Option(
            help="An existing Ray cluster (e.g. auto or HOST:6379); default: a local one."
        ),
    ] = None,
    num_cpus: Annotated[
        int | None, typer.Option(help="CPUs of the local Ray instance (default: all).")
    ] = None,
    max_concurrent: Annotated[
        int | None,
        typer.Option(help="Runs at once (default: the file's [resources] max_concurrent)."),
    ] = None,
    check: Annotated[bool, typer.Option(help="Only validate the file and list its runs.")] = False,
    report: Annotated[bool, typer.Option(help="Write OUT/report at the end.")] = True,
) -> None:
    """Run a sweep: every trial x seed is one `hybridrl run` process, scheduled on Ray.

    The file is validated before any run starts. A run process that dies is resumed from its
    checkpoint; after a killed driver, run the same command with --resume.
    """
    from hybridrl.sweep import load_sweep, run_sweep

    spec = load_sweep(file)  # before Ray starts: a bad file costs nothing
    if check:
        for trial, seed in spec.runs():
            typer.echo(f"{trial.name}/seed_{seed}")
        typer.echo(f"{len(spec.trials)} trials x {len(spec.seeds)} seeds: ok")
        return
    where = out or Path("runs") / spec.name
    result = run_sweep(
        spec,
        where,
        resume=resume,
        address=address,
        num_cpus=num_cpus,
        max_concurrent=max_concurrent,
        report=report,
    )
    if result.report is not None:
        typer.echo(result.report["table"])
        typer.echo(f"report: {where / 'report'}")
    for o in result.failed:
        typer.echo(f"failed: {o.trial}/seed_{o.seed} (exit {o.returncode}): {o.error}", err=True)
    if result.best is not None:
        typer.echo(f"best: {result.best.trial} seed {result.best.seed}: {result.best.score:.4g}")
    if result.failed:
        raise typer.Exit(1)
