"""The ``hybridrl`` command line: ``hybridrl --help`` lists the verbs.

Every verb is a thin shell over the library: parse, call one function, print. Errors from bad
input (`HybridRLError`) are printed as one clear line and exit with status 2.
"""

from __future__ import annotations

import json
import math
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from hybridrl.types import HybridRLError


class HelpGroup(TyperGroup):
    """A verb group whose command list shows each verb's first sentence whole (wrapped), not
    cut off with "..." to fit one line. Pass ``cls=HelpGroup`` to every ``typer.Typer``."""

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=10_000)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


# Plain click help (rich_markup_mode=None, inherited by the sub-apps): rich's panels truncate
# option names and wrap mid-word in an 80-column terminal.
app = typer.Typer(
    name="hybridrl",
    help="Hybrid offline + online reinforcement learning: datasets, agents, recipes, reports.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    cls=HelpGroup,
)

DATASET_HELP = "A dataset: a .npz or .hdf5 path, or minari:ID for the local Minari store."
DOWNLOAD_HELP = "Fetch a minari:ID that is not in the local store from the Minari server."


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
) -> None:
    """Roll out a behaviour policy in a Gymnasium env into a dataset."""
    from hybridrl.data import save_dataset
    from hybridrl.data.collect import NoiseConfig
    from hybridrl.data.collect import collect as run_collect
    from hybridrl.envs.make import env_spaces
    from hybridrl.policies import load_policy

    _refuse_overwrite(out, overwrite)
    obs_space, act_space = env_spaces(env_id)
    obs_dim = math.prod(obs_space.shape)
    behaviour = load_policy(policy, act_space, observation_dim=obs_dim, env=env_id)
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

    ds = _load(dataset, download)
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

    _refuse_overwrite(out, overwrite)
    ds = _load(dataset, download)
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

    _refuse_overwrite(target, overwrite)
    ds = _load(source, download)
    where = save_dataset(ds, target, overwrite=overwrite)
    typer.echo(f"wrote {len(ds)} transitions to {where}")


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


def _parse_value(text: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


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
    resume: Annotated[bool, typer.Option(help="Continue the run in OUT from its checkpoint.")] = (
        False
    ),
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
        overrides[field.strip()] = _parse_value(value)
    if overrides:
        spec = spec.with_config(**overrides)
        spec.validate()
    try:
        seed_list = [int(k) for k in seeds.split(",")] if seeds else [seed]
    except ValueError:
        raise HybridRLError(
            f"--seeds expects integers separated by commas, got {seeds!r}"
        ) from None
    ds = _load(dataset, download) if dataset else None
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
                resume=resume,
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


datasets_app = typer.Typer(
    help="D4RL-style suites rebuilt locally: behaviour policies, builds.", cls=HelpGroup
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
) -> None:
    """Build a suite dataset into the local Minari store (deterministic for the seed)."""
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
    ds = build(entry, steps=steps, seed=seed, progress=progress, built=in_store)
    save_dataset(ds, f"minari:{entry.minari_id}", overwrite=overwrite)
    s = ds.summary()
    typer.echo(
        f"built {entry.minari_id}: {s['transitions']} transitions, {s['episodes']} episodes, "
        f"mean return {s['return_mean']:.1f}, in {time.perf_counter() - start:.0f} s"
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
    """Updates/s per agent at the standard size (2x256, batch 256, obs 17, act 6), and d3rlpy's
    for SAC, IQL, TD3+BC and CQL in the same run when d3rlpy is available."""
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


def _load(spec: str, download: bool) -> Any:
    """`load_dataset`, with ``--download`` for Minari ids (and named in the error that says
    an id is not in the local store: the library's message names ``download=True``)."""
    from hybridrl.data import dataset_format, load_dataset

    if dataset_format(spec)[0] != "minari":
        return load_dataset(spec)
    from hybridrl.data.minari_io import NotInLocalStoreError

    try:
        return load_dataset(spec, download=download)
    except NotInLocalStoreError as exc:
        raise exc.with_download_hint("pass --download") from None


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

    _refuse_overwrite(out, overwrite)
    policy = policy_from_run(run_dir, dataset=_load_dataset_option(dataset))
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

    source = load_policy_source(target, dataset=_load_dataset_option(dataset))
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


def _load_dataset_option(spec: str | None) -> Any:
    if spec is None:
        return None
    from hybridrl.data import load_dataset

    return load_dataset(spec)


def _refuse_overwrite(target: str, overwrite: bool) -> None:
    # Checked before any work (a collection can take hours); save_dataset checks again.
    where = Path(target)
    if target.startswith("minari:"):
        from hybridrl.data.minari_io import minari_store_path

        where = minari_store_path() / target[len("minari:") :]
    if where.exists() and not overwrite:
        raise HybridRLError(f"{target} exists; pass --overwrite to replace it")


def main() -> None:
    """Entry point: run the app, turning bad-input errors into one line and exit code 2."""
    try:
        app()
    except HybridRLError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)


def _resume_command(argv: list[str]) -> str:
    """The command line that continues an interrupted ``hybridrl run``."""
    import shlex

    args = list(argv[1:])
    if "--resume" not in args:
        args.append("--resume")
    return shlex.join(["hybridrl", *args])


if __name__ == "__main__":
    main()
