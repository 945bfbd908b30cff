"""Verbs on datasets: ``collect``, ``inspect``, ``corrupt``, ``convert``."""

from __future__ import annotations

import dataclasses
import json
import math
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from hybridrl.cli._common import (
    DATASET_HELP,
    DOWNLOAD_HELP,
    app,
    load_dataset_arg,
    refuse_overwrite,
)
from hybridrl.types import HybridRLError


class CorruptionKind(StrEnum):
    observations = "observations"
    actions = "actions"
    rewards = "rewards"
    dynamics = "dynamics"


class CorruptionMode(StrEnum):
    random = "random"
    adversarial = "adversarial"


@app.command()
def collect(
    env_id: Annotated[str, typer.Argument(help="Gymnasium environment id, e.g. Pendulum-v1.")],
    out: Annotated[str, typer.Option("--out", "-o", help=f"Where to write. {DATASET_HELP}")],
    steps: Annotated[int | None, typer.Option(help="Number of transitions to collect.")] = None,
    episodes: Annotated[int | None, typer.Option(help="Number of episodes to collect.")] = None,
    policy: Annotated[
        str,
        typer.Option(
            help="'random', a scripted controller (pendulum_swingup), a saved policy .npz, "
            "a run directory (its final policy), or module:function."
        ),
    ] = "random",
    deterministic: Annotated[
        bool, typer.Option(help="Use the policy's deterministic action.")
    ] = False,
    action_noise: Annotated[
        float, typer.Option(help="Gaussian action noise std, as a fraction of the half-range.")
    ] = 0.0,
    random_action_prob: Annotated[
        float, typer.Option(help="Probability of a uniform random action at each step.")
    ] = 0.0,
    seed: Annotated[int, typer.Option(help="Seed for the environment and the noise.")] = 0,
    ref_episodes: Annotated[
        int, typer.Option(help="Episodes of a random policy to measure ref_min_score (0: skip).")
    ] = 10,
    expert_return: Annotated[
        float | None, typer.Option(help="Expert return stored as ref_max_score.")
    ] = None,
    name: Annotated[str | None, typer.Option(help="Dataset name stored in metadata.")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output.")] = False,
    portable: Annotated[
        bool,
        typer.Option(
            help="Evaluate a saved MLP policy without BLAS: the same data on any x86-64 CPU."
        ),
    ] = False,
) -> None:
    """Roll out a behaviour policy in a Gymnasium env into a dataset."""
    from hybridrl.data import save_dataset
    from hybridrl.data.collect import NoiseConfig
    from hybridrl.data.collect import collect as run_collect
    from hybridrl.envs.make import env_spaces
    from hybridrl.policies import MLPPolicy, load_policy

    refuse_overwrite(out, overwrite)
    obs_space, act_space = env_spaces(env_id)
    obs_dim = math.prod(obs_space.shape)
    behaviour = load_policy(policy, act_space, observation_dim=obs_dim, env=env_id)
    if portable:
        if not isinstance(behaviour, MLPPolicy):
            raise HybridRLError(f"--portable applies to saved MLP policies; '{policy}' is not one")
        behaviour = dataclasses.replace(behaviour, portable=True)
    ds = run_collect(
        env_id,
        behaviour,
        num_steps=steps,
        num_episodes=episodes,
        seed=seed,
        deterministic=deterministic,
        noise=NoiseConfig(action_noise, random_action_prob),
        ref_max_score=expert_return,
        random_reference_episodes=ref_episodes,
        name=name,
    )
    where = save_dataset(ds, out, overwrite=overwrite)
    s = ds.summary()
    typer.echo(
        f"wrote {s['transitions']} transitions, {s['episodes']} episodes "
        f"(mean return {s['return_mean']:.2f}) to {where}"
    )


@app.command()
def inspect(
    dataset: Annotated[str, typer.Argument(help=DATASET_HELP)],
    histogram: Annotated[
        Path | None, typer.Option(help="Write a PNG histogram of episode returns here.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
    random_return: Annotated[
        float | None, typer.Option(help="Random-policy return for TQ (default: metadata).")
    ] = None,
    expert_return: Annotated[
        float | None, typer.Option(help="Expert return for TQ (default: metadata).")
    ] = None,
    saco_bins: Annotated[int, typer.Option(help="Bins per dimension for SACo.")] = 100,
    saco_reference: Annotated[
        int | None,
        typer.Option(help="Unique state-action pairs of a reference dataset (SACo's divisor)."),
    ] = None,
    download: Annotated[bool, typer.Option(help=DOWNLOAD_HELP)] = False,
) -> None:
    """Size, episodes, returns, ranges and the TQ/SACo quality measures of a dataset."""
    from hybridrl.data.inspect import format_report, inspect_dataset, plot_return_histogram

    ds = load_dataset_arg(dataset, download)
    report = inspect_dataset(
        ds,
        random_return=random_return,
        expert_return=expert_return,
        saco_bins=saco_bins,
        saco_reference=saco_reference,
    )
    if histogram is not None:
        plot_return_histogram(ds, histogram)
        report["histogram"] = str(histogram)
    typer.echo(json.dumps(report, indent=2, default=str) if as_json else format_report(report))


@app.command()
def corrupt(
    dataset: Annotated[str, typer.Argument(help=DATASET_HELP)],
    out: Annotated[str, typer.Option("--out", "-o", help=f"Where to write. {DATASET_HELP}")],
    kind: Annotated[
        list[CorruptionKind], typer.Option(help="What to corrupt; repeat for several kinds.")
    ],
    mode: Annotated[CorruptionMode, typer.Option(help="Random noise or adversarial.")] = (
        CorruptionMode.random
    ),
    rate: Annotated[float, typer.Option(help="Fraction of transitions corrupted.")] = 0.3,
    scale: Annotated[float, typer.Option(help="Corruption scale epsilon.")] = 1.0,
    seed: Annotated[int, typer.Option(help="Seed choosing rows and noise.")] = 0,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output.")] = False,
    download: Annotated[bool, typer.Option(help=DOWNLOAD_HELP)] = False,
) -> None:
    """Corrupt states, actions, rewards or dynamics (Yang et al., 2024) for robustness studies.

    Adversarial attacks on states, actions and dynamics need a critic and are available from
    Python (`hybridrl.data.corrupt.corrupt_dataset(..., critic=...)`); adversarial rewards work
    here.
    """
    from hybridrl.data import save_dataset
    from hybridrl.data.corrupt import corrupt_dataset

    refuse_overwrite(out, overwrite)
    ds = load_dataset_arg(dataset, download)
    bad = corrupt_dataset(
        ds, [k.value for k in kind], mode=mode.value, rate=rate, scale=scale, seed=seed
    )
    where = save_dataset(bad, out, overwrite=overwrite)
    typer.echo(f"wrote corrupted dataset to {where}")


@app.command()
def convert(
    source: Annotated[str, typer.Argument(help=DATASET_HELP)],
    target: Annotated[str, typer.Argument(help=DATASET_HELP)],
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output.")] = False,
    download: Annotated[bool, typer.Option(help=DOWNLOAD_HELP)] = False,
) -> None:
    """Convert between formats: npz, D4RL-style HDF5 and Minari."""
    from hybridrl.data import save_dataset

    refuse_overwrite(target, overwrite)
    ds = load_dataset_arg(source, download)
    where = save_dataset(ds, target, overwrite=overwrite)
    typer.echo(f"wrote {len(ds)} transitions to {where}")
