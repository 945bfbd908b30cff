"""Verbs on trained policies: ``export``, ``eval``."""

from __future__ import annotations

from typing import Annotated

import typer

from hybridrl.cli._common import (
    DATASET_HELP,
    app,
    load_optional_dataset,
    refuse_overwrite,
)
from hybridrl.types import HybridRLError


@app.command()
def export(
    run_dir: Annotated[
        str, typer.Argument(help="A run directory (run.json and checkpoints/latest.ckpt).")
    ],
    out: Annotated[str, typer.Option("--out", "-o", help="Where to write the policy (.npz).")],
    dataset: Annotated[
        str | None,
        typer.Option(
            help="The run's dataset: needed only for a run from before run.json recorded its "
            f"observation statistics. {DATASET_HELP}"
        ),
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output.")] = False,
) -> None:
    """Write a run's final policy as a portable .npz (evaluated with numpy alone)."""
    from hybridrl.training.export import policy_from_run

    refuse_overwrite(out, overwrite)
    policy = policy_from_run(run_dir, dataset=load_optional_dataset(dataset))
    where = policy.save(out)
    i = policy.info
    typer.echo(
        f"wrote the {policy.kind} policy of {i['agent']} ({i['recipe']} on {i['env_id']}, "
        f"env step {i['env_step']}, update {i['update']}) to {where}"
    )


@app.command(name="eval")
def eval_policy(
    target: Annotated[str, typer.Argument(help="A run directory or a saved policy .npz.")],
    env: Annotated[
        str | None,
        typer.Option(help="Gymnasium env id; default: the run's, or the policy file's."),
    ] = None,
    episodes: Annotated[int, typer.Option(help="Number of episodes.")] = 10,
    seed: Annotated[int, typer.Option(help="Episode i resets with seed + i.")] = 0,
    deterministic: Annotated[
        bool,
        typer.Option(
            "--deterministic/--stochastic",
            help="The policy's deterministic action (its mean), or samples from it.",
        ),
    ] = True,
    ref_random: Annotated[
        float | None, typer.Option(help="Random-policy return: the 0 of normalized scores.")
    ] = None,
    ref_expert: Annotated[
        float | None, typer.Option(help="Expert return: the 100 of normalized scores.")
    ] = None,
    video: Annotated[
        str | None,
        typer.Option(help="Also record the episodes to this .mp4 (the 'video' extra)."),
    ] = None,
    dataset: Annotated[
        str | None,
        typer.Option(help="The run's dataset, for a run from before run.json kept its statistics."),
    ] = None,
) -> None:
    """Roll out a trained policy: each episode's return, mean ± std and normalized scores.

    Reference returns for normalized scores: --ref-random/--ref-expert, else the run's own
    (run.json or the policy header, on the run's env), else the D4RL table for the env id.
    """
    from hybridrl.evaluation.policy_eval import (
        load_policy_source,
        reference_returns,
        run_episodes,
        score,
    )

    source = load_policy_source(target, dataset=load_optional_dataset(dataset))
    env_id = env or source.env_id
    if env_id is None:
        raise HybridRLError(f"{target} does not name its environment; pass --env")
    ref, ref_from = reference_returns(source, env_id, ref_random, ref_expert)
    returns = run_episodes(
        source, env_id, episodes, seed=seed, deterministic=deterministic, video=video
    )
    i = source.policy.info
    made_by = f" (agent {i['agent']}, env step {i['env_step']})" if "agent" in i else ""
    mode = "deterministic" if deterministic else "stochastic"
    typer.echo(f"{target}{made_by} on {env_id}: {episodes} episode(s), {mode}")
    for k, ret in enumerate(returns):
        extra = f"  score {score(ret, ref):8.2f}" if ref is not None else ""
        typer.echo(f"  episode {k + 1:3d}  return {ret:10.2f}{extra}")
    typer.echo(f"return: {returns.mean():.2f} ± {returns.std():.2f} (mean ± std)")
    if ref is None:
        typer.echo(
            "raw returns: no reference returns for this env (pass --ref-random and --ref-expert)"
        )
    else:
        s = score(returns, ref)
        typer.echo(
            f"normalized score: {s.mean():.2f} ± {s.std():.2f} "
            f"(random {ref[0]:g} = 0, expert {ref[1]:g} = 100; from {ref_from})"
        )
    if video is not None:
        typer.echo(f"wrote {video}")
