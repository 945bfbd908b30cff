"""The D4RL-style suite (``datasets ...``) and the benchmarks (``bench ...``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from hybridrl.cli._common import (
    DOWNLOAD_HELP,
    HelpGroup,
    app,
    load_dataset_arg,
    refuse_overwrite,
)
from hybridrl.types import HybridRLError

datasets_app = typer.Typer(
    help="D4RL-style suites rebuilt locally: behaviour policies, builds, mixes.", cls=HelpGroup
)
app.add_typer(datasets_app, name="datasets")


@datasets_app.command("train-behaviour")
def datasets_train_behaviour(
    env_id: Annotated[str, typer.Argument(help="Gymnasium environment id, e.g. Hopper-v5.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for the policies.")],
    steps: Annotated[int, typer.Option(help="Online SAC env steps.")] = 1_000_000,
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
    eval_interval: Annotated[int, typer.Option(help="Env steps between snapshots.")] = 10_000,
    num_envs: Annotated[
        int, typer.Option(help="Env copies stepped at once (one update per env step).")
    ] = 1,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted training.")] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Train SAC online and export a policy snapshot at every evaluation (expert = final).

    The snapshots are what medium (first snapshot at 1/3 of the expert's return) and
    medium-replay (the snapshots before it) datasets are rebuilt from.
    """
    from hybridrl.suite.behaviour import train_behaviour

    snaps = train_behaviour(
        env_id,
        out,
        steps=steps,
        seed=seed,
        eval_interval=eval_interval,
        num_envs=num_envs,
        resume=resume,
        progress=progress,
    )
    for snap in snaps:
        typer.echo(f"{snap.env_step:>9d}  {snap.return_mean:10.1f}  {snap.path.name}")
    typer.echo(f"expert: {out / 'expert.npz'}")


@datasets_app.command("publish")
def datasets_publish(
    src: Annotated[Path, typer.Argument(help="A train-behaviour output directory.")],
    env: Annotated[str, typer.Option(help="Suite env name: hopper, halfcheetah, walker2d.")],
    dest: Annotated[Path | None, typer.Option(help="Policy root (default: the package's).")] = (
        None
    ),
    episodes: Annotated[int, typer.Option(help="Episodes for the reference returns.")] = 100,
    expert: Annotated[
        str, typer.Option(help="Expert snapshot: latest (as D4RL), best, or best-stochastic.")
    ] = "latest",
) -> None:
    """Finalize a training (the expert chosen by --expert) and copy what the suite needs into
    the policy root: expert, snapshots up to medium, behaviour.json, references.json."""
    from hybridrl.suite.behaviour import finalize_behaviour, publish
    from hybridrl.suite.datasets import POLICY_ROOT, SUITE_ENVS

    if env not in SUITE_ENVS:
        raise HybridRLError(f"unknown suite env '{env}'; available: {', '.join(SUITE_ENVS)}")
    run_json = src / "run" / "run.json"
    planned = json.loads(run_json.read_text())["phases"][-1]["end_step"] if run_json.exists() else 0
    finalize_behaviour(src, SUITE_ENVS[env], steps=planned, expert=expert)
    refs = publish(src, env, dest or POLICY_ROOT, reference_episodes=episodes)
    typer.echo(json.dumps(refs, indent=2))


@datasets_app.command("list")
def datasets_list(
    details: Annotated[
        bool,
        typer.Option(help="Also load each built dataset: transitions, episodes, mean score."),
    ] = False,
) -> None:
    """The suite's datasets: whether their behaviour policies are present (buildable) and
    whether they are built (in the local Minari store)."""
    from hybridrl.data.minari_io import load_minari, minari_store_path
    from hybridrl.suite.datasets import POLICY_ROOT, suite_entries

    store = minari_store_path()
    header = f"{'dataset':28s} {'buildable':9s} {'built':5s} "
    if details:
        header += f"{'transitions':>11s} {'episodes':>8s} {'return':>9s} {'normalized':>10s} "
    typer.echo(header + "minari id")
    for e in suite_entries():
        policies = POLICY_ROOT / e.env
        buildable = e.env == "pointmaze" or (
            ((policies / "expert.npz").exists() or e.kind == "random")
            and (policies / "references.json").exists()
        )
        built = (store / e.minari_id).exists()
        line = f"{e.name:28s} {'yes' if buildable else 'no':9s} {'yes' if built else 'no':5s} "
        if details:
            line += _dataset_details(load_minari(e.minari_id)) if built else " " * 42
        typer.echo(line + e.minari_id)


def _dataset_details(ds: Any) -> str:
    s = ds.summary()
    mean = s["return_mean"]
    refs = (ds.metadata.ref_min_score, ds.metadata.ref_max_score)
    norm = "-" if mean is None or None in refs else f"{float(ds.normalized_score(mean)):.1f}"
    ret = "-" if mean is None else f"{mean:.1f}"
    return f"{s['transitions']:>11d} {s['episodes']:>8d} {ret:>9s} {norm:>10s} "


@datasets_app.command("build")
def datasets_build(
    name: Annotated[str, typer.Argument(help="A suite dataset, e.g. hopper-medium-v0.")],
    steps: Annotated[
        int | None,
        typer.Option(help="Transitions per rollout (default: 1M; mazes: 1M/2M/4M as D4RL)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
    overwrite: Annotated[bool, typer.Option(help="Replace a built dataset.")] = False,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
    portable: Annotated[
        bool,
        typer.Option(
            help="Policy inference without BLAS: bit-identical on any x86-64 CPU "
            "(the published v0 sets were built without it)."
        ),
    ] = False,
) -> None:
    """Build a suite dataset into the local Minari store (deterministic for the seed and, with
    --portable, for any x86-64 CPU)."""
    import time

    from hybridrl.data import save_dataset
    from hybridrl.data.dataset import Dataset
    from hybridrl.data.minari_io import load_minari, minari_store_path
    from hybridrl.suite.datasets import SuiteEntry, build, parse_name

    def in_store(part: SuiteEntry) -> Dataset | None:
        present = (minari_store_path() / part.minari_id).exists()
        return load_minari(part.minari_id) if present else None

    entry = parse_name(name)
    start = time.perf_counter()
    ds = build(entry, steps=steps, seed=seed, progress=progress, built=in_store, portable=portable)
    save_dataset(ds, f"minari:{entry.minari_id}", overwrite=overwrite)
    s = ds.summary()
    typer.echo(
        f"built {entry.minari_id}: {s['transitions']} transitions, {s['episodes']} episodes, "
        f"mean return {s['return_mean']:.1f}, in {time.perf_counter() - start:.0f} s"
    )


@datasets_app.command("comblock")
def datasets_comblock(
    out: Annotated[str, typer.Option("--out", "-o", help="Where to write the dataset.")],
    horizon: Annotated[int, typer.Option(help="H, the lock's length.")] = 10,
    episodes: Annotated[int, typer.Option(help="Episodes to collect.")] = 5000,
    epsilon: Annotated[
        float | None, typer.Option(help="Probability of a uniform action (default: 1/H).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the episodes.")] = 0,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --out.")] = False,
) -> None:
    """HNPG's offline data for hybridrl/Comblock-H<H>-v0: the optimal policy with ε-greedy
    exploration (uniform actions in [0, 1]^10 with probability ε = 1/H), as the official
    collect_offline.py.

    Example: hybridrl datasets comblock --horizon 10 --episodes 5000 --out comblock10.npz,
    then hybridrl run hnpg --dataset comblock10.npz (the env id is in its metadata).
    """
    from hybridrl.data import save_dataset
    from hybridrl.envs.comblock import collect_offline

    refuse_overwrite(out, overwrite)
    ds = collect_offline(horizon, episodes, epsilon=epsilon, seed=seed)
    where = save_dataset(ds, out, overwrite=overwrite)
    opened = ds.metadata.provenance["episodes_reaching_the_end"]
    typer.echo(
        f"wrote {where}: {len(ds)} transitions, {episodes} episodes of {ds.metadata.env_id} "
        f"({opened} open the lock)"
    )


@datasets_app.command("mix")
def datasets_mix(
    random: Annotated[str, typer.Option(help="The low-return source, e.g. a random dataset.")],
    expert: Annotated[str, typer.Option(help="The high-return source, e.g. an expert dataset.")],
    out: Annotated[str, typer.Option("--out", "-o", help="Where to write the mix.")],
    expert_fraction: Annotated[
        float, typer.Option(help="Fraction of the mix's transitions from --expert.")
    ] = 0.05,
    size: Annotated[
        int | None, typer.Option(help="Transitions in the mix (default: --random's).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the episode draw.")] = 0,
    name: Annotated[str | None, typer.Option(help="Dataset name in the metadata.")] = None,
    download: Annotated[bool, typer.Option(help=DOWNLOAD_HELP)] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --out.")] = False,
) -> None:
    """Mix two datasets by whole episodes, as trajectory weighting's random + x% expert sets
    (Hong et al. 2023): (1 - f)·size transitions of --random and f·size of --expert, each
    rounded up to whole episodes drawn without replacement.

    Example: hybridrl datasets mix --random minari:hybridrl/hopper/random-v0
    --expert minari:hybridrl/hopper/expert-v0 --expert-fraction 0.05 --out mix.npz
    """
    from hybridrl.data import save_dataset
    from hybridrl.data.mix import mix_datasets

    refuse_overwrite(out, overwrite)
    low = load_dataset_arg(random, download)
    high = load_dataset_arg(expert, download)
    ds = mix_datasets(
        low, high, expert_fraction, size=size, seed=seed, name=name, paths=(random, expert)
    )
    where = save_dataset(ds, out, overwrite=overwrite)
    op = ds.metadata.provenance["transforms"][-1]
    typer.echo(
        f"wrote {where}: {len(ds)} transitions, {op['random_episodes']} + "
        f"{op['expert_episodes']} episodes ({op['expert_transitions']} expert transitions)"
    )


bench_app = typer.Typer(
    help="Benchmarks (scripts, not tests): throughput beside d3rlpy.", cls=HelpGroup
)
app.add_typer(bench_app, name="bench")


@bench_app.command("throughput")
def bench_throughput(
    agents: Annotated[
        str, typer.Option(help="Comma-separated agents; default: every registered agent.")
    ] = "",
    chunk: Annotated[int, typer.Option(help="Updates per compiled chunk.")] = 200,
    batch_size: Annotated[int, typer.Option(help="Minibatch size.")] = 256,
    d3rlpy_python: Annotated[
        str | None,
        typer.Option(help="Python of an environment with d3rlpy (default .venv-compare)."),
    ] = None,
    json_out: Annotated[Path | None, typer.Option(help="Also write the raw numbers here.")] = None,
) -> None:
    """Updates/s per agent at its default size (2x256; edac, rebrac, ro2o 3x256; batch 256,
    obs 17, act 6), and d3rlpy's for SAC, IQL, TD3+BC and CQL in the same run when d3rlpy is
    available. Costly updates are timed in shorter chunks (about 8 GFLOP x --chunk each)."""
    from hybridrl.agents import AGENTS
    from hybridrl.bench import throughput_table

    names = [a for a in agents.split(",") if a] or sorted(AGENTS)
    table, results = throughput_table(
        names, chunk=chunk, batch_size=batch_size, d3rlpy_python=d3rlpy_python
    )
    typer.echo(table)
    if json_out is not None:
        from hybridrl.data.io import atomic_path

        with atomic_path(json_out) as tmp:
            tmp.write_text(json.dumps(results, indent=2))
