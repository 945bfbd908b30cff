"""Verbs on runs: ``demo``, ``run``, ``recipes``, ``report``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from hybridrl.cli._common import (
    DATASET_HELP,
    DOWNLOAD_HELP,
    app,
    load_dataset_arg,
    parse_value,
)
from hybridrl.types import HybridRLError


@app.command()
def demo(
    out_dir: Annotated[Path, typer.Option(help="Directory for the demo's files.")] = Path(
        "runs/demo"
    ),
    steps: Annotated[int, typer.Option(help="Transitions in the demo dataset.")] = 10_000,
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """The whole pipeline on Pendulum-v1 with no download, in a few minutes on 2 CPU cores.

    Builds a dataset from a scripted controller with random actions mixed in (inspected, saved
    as npz, HDF5 and Minari, reloaded), pretrains offline and fine-tunes online with WSRL and
    with IQL fine-tuning, then prints a before/dip/after table and writes curves.png.
    """
    from hybridrl.demo import run_demo

    run_demo(out_dir, steps=steps, seed=seed, progress=progress, echo=typer.echo)


@app.command(name="run")
def run_recipe(
    recipe: Annotated[
        str, typer.Argument(help="A recipe name (see `hybridrl recipes`) or a .toml/.json file.")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Run directory.")],
    env: Annotated[
        str | None,
        typer.Option(
            help="Gymnasium environment id, e.g. Hopper-v5 (default: the dataset's env id)."
        ),
    ] = None,
    dataset: Annotated[str | None, typer.Option(help=DATASET_HELP)] = None,
    download: Annotated[bool, typer.Option(help=DOWNLOAD_HELP)] = False,
    seed: Annotated[int, typer.Option(help="Seed of the run.")] = 0,
    seeds: Annotated[
        str | None,
        typer.Option(help="Several seeds, e.g. 0,1,2: one run each in OUT/seed_K (in turn)."),
    ] = None,
    offline_updates: Annotated[
        int | None, typer.Option(help="Updates of every offline phase (default: the recipe's).")
    ] = None,
    warmup_steps: Annotated[
        int | None, typer.Option(help="Env steps of every warm-up phase.")
    ] = None,
    online_steps: Annotated[int | None, typer.Option(help="Env steps of every online phase.")] = (
        None
    ),
    random_steps: Annotated[
        int | None,
        typer.Option(
            help="Random-action / no-update prefix of the online phases that have one "
            "(RLPD: 5000), for short budgets."
        ),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set", help="Agent config override FIELD=VALUE (JSON value), e.g. cql_alpha=1.0."
        ),
    ] = None,
    num_envs: Annotated[int, typer.Option(help="Vector environments collecting.")] = 1,
    eval_interval: Annotated[int, typer.Option(help="Env steps between evaluations.")] = 10_000,
    offline_eval_interval: Annotated[
        int, typer.Option(help="Offline updates between evaluations.")
    ] = 50_000,
    eval_episodes: Annotated[int, typer.Option(help="Episodes per evaluation.")] = 10,
    checkpoint_interval: Annotated[
        int, typer.Option(help="Env steps (or offline updates) between checkpoints.")
    ] = 50_000,
    buffer_capacity: Annotated[
        int, typer.Option(help="Online replay capacity (a seeded dataset always fits on top).")
    ] = 1_000_000,
    log_interval: Annotated[int, typer.Option(help="Updates between train records.")] = 1000,
    dip_fraction: Annotated[
        float, typer.Option(help="Fraction of the online steps the dip is measured over.")
    ] = 0.25,
    async_envs: Annotated[
        bool, typer.Option(help="Step the vector envs in subprocesses (slow simulators).")
    ] = False,
    resume: Annotated[
        bool,
        typer.Option(
            help="Continue the run in OUT from its checkpoint (with --seeds: every seed that "
            "has a run; the others start)."
        ),
    ] = False,
    tensorboard: Annotated[
        bool | None,
        typer.Option(
            "--tensorboard/--no-tensorboard",
            help="Log to TensorBoard (default: when tensorboardX is installed).",
            show_default=False,
        ),
    ] = None,
    wandb: Annotated[
        str | None, typer.Option(help="Also log to this Weights & Biases project.")
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Run a recipe: pretrain offline, warm up, fine-tune online; metrics, checkpoints, summary.

    Every phase's length can be overridden; Ctrl-C or a kill loses at most one checkpoint
    interval: run the same command with --resume.
    """
    from hybridrl.recipes import get_recipe
    from hybridrl.training.runner import run

    spec = get_recipe(recipe).with_budget(
        offline_updates=offline_updates,
        warmup_steps=warmup_steps,
        online_steps=online_steps,
        random_steps=random_steps,
    )
    overrides = {}
    for item in set_ or []:
        field, sep, value = item.partition("=")
        if not sep or not field:
            raise HybridRLError(f"--set expects FIELD=VALUE, got {item!r}")
        overrides[field.strip()] = parse_value(value)
    if overrides:
        spec = spec.with_config(**overrides)
        spec.validate()
    try:
        seed_list = [int(k) for k in seeds.split(",")] if seeds else [seed]
    except ValueError:
        raise HybridRLError(
            f"--seeds expects integers separated by commas, got {seeds!r}"
        ) from None
    ds = load_dataset_arg(dataset, download) if dataset else None
    if env is None:
        if ds is None:
            raise HybridRLError("--env is required when no --dataset is given")
        if not ds.metadata.env_id:
            raise HybridRLError(
                f"dataset {dataset}: field 'env_id' is empty in its metadata; pass --env"
            )
        env = ds.metadata.env_id
    from hybridrl.training.rundir import RunInterrupted

    for k in seed_list:
        run_dir = out / f"seed_{k}" if seeds else out
        try:
            result = run(
                spec,
                env,
                dataset=ds,
                run_dir=run_dir,
                # With --seeds, a resume continues the seeds that started and starts the
                # rest, so the command printed after Ctrl-C finishes the whole set.
                resume=resume and (not seeds or (run_dir / "run.json").exists()),
                progress=progress,
                tensorboard=tensorboard,
                wandb_project=wandb,
                echo=lambda line: typer.echo(line, err=True),
                seed=k,
                num_envs=num_envs,
                eval_interval=eval_interval,
                offline_eval_interval=offline_eval_interval,
                eval_episodes=eval_episodes,
                checkpoint_interval=checkpoint_interval,
                buffer_capacity=buffer_capacity,
                log_interval=log_interval,
                dip_fraction=dip_fraction,
                asynchronous=async_envs,
            )
        except RunInterrupted as exc:  # Ctrl-C: where the run stands, and how to go on
            typer.echo(f"\n{exc.message}", err=True)
            typer.echo(f"resume with: {_resume_command(sys.argv)}", err=True)
            raise typer.Exit(130) from None
        typer.echo(json.dumps(result.summary, indent=2))
        typer.echo(f"run directory: {run_dir}")


@app.command()
def recipes(
    show: Annotated[
        str | None, typer.Option(help="Print this recipe as JSON (a starting point to edit).")
    ] = None,
) -> None:
    """List the registered offline-to-online recipes, then the offline:AGENT forms."""
    from hybridrl.agents import AGENTS
    from hybridrl.recipes import RECIPES, get_recipe

    if show:
        typer.echo(json.dumps(get_recipe(show).to_dict(), indent=2))
        return
    names = sorted(RECIPES) + [f"offline:{agent}" for agent in sorted(AGENTS)]
    for name in names:
        r = get_recipe(name)
        phases = " -> ".join(p.label for p in r.phases)
        typer.echo(f"{name:14s} {r.agent:6s} {phases:32s} {r.description}")


@app.command()
def report(
    run_dirs: Annotated[
        list[Path], typer.Argument(help="Run directories (or folders holding run directories).")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the report.")] = Path(
        "report"
    ),
) -> None:
    """A table (IQM with 95% stratified-bootstrap intervals) and PNG plots of runs."""
    from hybridrl.evaluation.report import write_report

    result = write_report(run_dirs, out)
    typer.echo(result["table"])
    typer.echo("\nfinal score per task: mean ± std over seeds (runs)")
    typer.echo(result["per_task"])
    for f in result["files"]:
        typer.echo(f"wrote {f}")


def _resume_command(argv: list[str]) -> str:
    """The command line that continues an interrupted ``hybridrl run``."""
    import shlex

    args = list(argv[1:])
    if "--resume" not in args:
        args.append("--resume")
    return shlex.join(["hybridrl", *args])
