"""Sweep files: parsing, validation and expansion into trials (no Ray here).

A sweep file is TOML with four tables (docs/sweeps.md)::

    [sweep]                       # how to search
    seeds = [0, 1, 2]
    search = "grid"               # or "random" (then num_samples, search_seed)
    metric = "final_score"        # summary.json key for "best so far"

    [grid]                        # axes: each a non-empty list of values
    recipe = ["iql_finetune", "td3_bc_finetune"]
    dataset = ["data/a.npz", "data/b.npz"]
    "set.actor_lr" = [1e-4, 3e-4]

    [run]                         # the same in every trial: `hybridrl run` options
    env = "Pendulum-v1"
    online_steps = 40
    set = { hidden_dims = [8] }

    [resources]                   # per trial, and the sweep's concurrency
    cpus = 1
    gpus = 0
    max_concurrent = 2
    retries = 3

Every key of ``[grid]`` and ``[run]`` is one of `RUN_KEYS` (a `hybridrl run` option, its
field name with underscores, or ``runner``: "hybridrl" or "d3rlpy", see
`hybridrl.sweep.d3rlpy_trial`) or ``set.FIELD`` (an agent config override). Everything is
validated before any trial starts (`load_sweep` raises `HybridRLError` naming the file and the
field), so a typo does not surface hours into a sweep.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import random
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hybridrl.training.context import RunSettings
from hybridrl.types import HybridRLError

__all__ = [
    "RUNNERS",
    "RUN_KEYS",
    "Resources",
    "SweepSpec",
    "Trial",
    "load_sweep",
    "parse_sweep",
]

# `hybridrl run` options a sweep may set (besides set.FIELD): the recipe, data, env and phase
# budgets, then every RunSettings field but env_id (the `env` key) and seed (`[sweep] seeds`).
BUDGET_KEYS = ("offline_updates", "warmup_steps", "online_steps", "on_policy_steps", "random_steps")
SETTING_KEYS = tuple(
    f.name for f in dataclasses.fields(RunSettings) if f.name not in ("env_id", "seed")
)
RUN_KEYS = ("recipe", "dataset", "env", "runner", "reward_kind", *BUDGET_KEYS, *SETTING_KEYS)
# what runs a trial: `hybridrl run`, or d3rlpy through its adapter (`hybridrl.sweep.d3rlpy_trial`)
RUNNERS = ("hybridrl", "d3rlpy")
SWEEP_KEYS = ("seeds", "search", "num_samples", "search_seed", "metric", "name")
RESOURCE_KEYS = ("cpus", "gpus", "max_concurrent", "retries")
TABLES = ("sweep", "grid", "run", "resources")
# random search: an axis given as a table draws from a distribution instead of a list
DISTRIBUTIONS = ("uniform", "loguniform", "randint")


@dataclass(frozen=True)
class Resources:
    """What each trial reserves from Ray, and how many run at once.

    Attributes:
        cpus: CPUs reserved per trial (a Ray task resource).
        gpus: GPUs (a fraction allowed, e.g. 0.25) per trial.
        max_concurrent: trials running at once (None: as many as Ray's resources allow).
        retries: times a trial whose process died (killed by a signal) is resumed.
    """

    cpus: float = 1.0
    gpus: float = 0.0
    max_concurrent: int | None = None
    retries: int = 3


@dataclass(frozen=True)
class Trial:
    """One point of the search: one `hybridrl run` per seed in ``<out>/<name>/seed_K``.

    Attributes:
        name: directory name, from the values that vary between trials.
        options: run option -> value (``recipe``, ``dataset``, ``env``, budgets, settings).
        overrides: agent config overrides (``--set FIELD=VALUE``).
        label: the report's group: the name without the task axes (dataset, env), so the
            report's rows are methods (recipe and settings) and its strata are tasks.
    """

    name: str
    options: Mapping[str, Any]
    overrides: Mapping[str, Any] = field(default_factory=dict)
    label: str = ""


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep: its trials, seeds, metric and resources."""

    source: str
    trials: tuple[Trial, ...]
    seeds: tuple[int, ...]
    metric: str = "final_score"
    resources: Resources = Resources()
    name: str = "sweep"

    def runs(self) -> list[tuple[Trial, int]]:
        """Every (trial, seed) pair, trial-major."""
        return [(t, k) for t in self.trials for k in self.seeds]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form (written to ``<out>/sweep.json``; a resume checks it)."""
        return {
            "name": self.name,
            "metric": self.metric,
            "seeds": list(self.seeds),
            "resources": dataclasses.asdict(self.resources),
            "trials": [
                {
                    "name": t.name,
                    "label": t.label,
                    "options": dict(t.options),
                    "overrides": dict(t.overrides),
                }
                for t in self.trials
            ],
        }


def load_sweep(path: str | Path) -> SweepSpec:
    """Read and validate a sweep file (`HybridRLError` naming the file and field if bad)."""
    path = Path(path)
    if not path.exists():
        raise HybridRLError(f"sweep file {path} does not exist")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise HybridRLError(f"{path}: not valid TOML: {exc}") from None
    return parse_sweep(data, source=str(path))


def parse_sweep(data: Mapping[str, Any], source: str = "<sweep>") -> SweepSpec:
    """Validate a sweep given as a dict (the TOML file's tables) and expand its trials."""

    def fail(where: str, message: str) -> HybridRLError:
        return HybridRLError(f"{source}: {where}: {message}")

    for table in data:
        if table not in TABLES:
            raise fail(table, f"unknown table; one of {', '.join(TABLES)}")
        if not isinstance(data[table], Mapping):
            raise fail(table, "must be a table")
    sweep, grid = dict(data.get("sweep", {})), dict(data.get("grid", {}))
    fixed, res = dict(data.get("run", {})), dict(data.get("resources", {}))
    _known(sweep, SWEEP_KEYS, "sweep", fail)
    _known(res, RESOURCE_KEYS, "resources", fail)

    seeds = sweep.get("seeds", [0])
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        seeds = [seeds]
    if not isinstance(seeds, list) or not seeds:
        raise fail("[sweep] seeds", "must be a non-empty list of integers")
    if not all(isinstance(k, int) and not isinstance(k, bool) for k in seeds):
        raise fail("[sweep] seeds", f"must be integers, got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise fail("[sweep] seeds", f"repeats a seed: {seeds!r}")
    search = sweep.get("search", "grid")
    if search not in ("grid", "random"):
        raise fail("[sweep] search", f"must be 'grid' or 'random', got {search!r}")
    metric = sweep.get("metric", "final_score")
    if not isinstance(metric, str):
        raise fail("[sweep] metric", "must be a string (a summary.json key)")
    name = sweep.get("name", Path(source).stem or "sweep")

    # [run]'s `set` table is shorthand for set.FIELD keys
    overrides = fixed.pop("set", {})
    if not isinstance(overrides, Mapping):
        raise fail("[run] set", "must be a table of agent config fields")
    fixed.update({f"set.{k}": v for k, v in overrides.items()})
    for table, keys in (("run", fixed), ("grid", grid)):
        for key in keys:
            if not (key.startswith("set.") and len(key) > 4) and key not in RUN_KEYS:
                raise fail(f"[{table}] {key}", "unknown field (a `hybridrl run` option or set.X)")
    both = sorted(set(fixed) & set(grid))
    if both:
        raise fail(f"[grid] {both[0]}", "is also given in [run]")
    for table, keys in (("run", fixed), ("grid", grid)):
        runners = keys.get("runner", [])
        for runner in runners if isinstance(runners, list) else [runners]:
            if runner not in RUNNERS:
                raise fail(
                    f"[{table}] runner", f"unknown runner {runner!r}; one of {', '.join(RUNNERS)}"
                )
    if "recipe" not in fixed and "recipe" not in grid:
        raise fail("recipe", "missing: give it in [grid] or [run]")

    for key, values in grid.items():
        if search == "random" and isinstance(values, Mapping):
            _check_distribution(values, f"[grid] {key}", fail)
        elif not isinstance(values, list):
            raise fail(f"[grid] {key}", "must be a list of values (an axis)")
        elif not values:
            raise fail(f"[grid] {key}", "empty axis: no trial would run")

    if search == "grid":
        if "num_samples" in sweep:
            raise fail("[sweep] num_samples", "is for search = 'random'")
        axes = list(grid)
        points = [
            dict(zip(axes, combo, strict=True))
            for combo in itertools.product(*(grid[a] for a in axes))
        ]
    else:
        num = sweep.get("num_samples")
        if not isinstance(num, int) or isinstance(num, bool) or num < 1:
            raise fail("[sweep] num_samples", "must be a positive integer for random search")
        rng = random.Random(sweep.get("search_seed", 0))
        points = [{k: _draw(v, rng) for k, v in grid.items()} for _ in range(num)]

    resources = _resources(res, fail)
    trials = []
    names: set[str] = set()
    for point in points:
        values = {**fixed, **point}
        options = {k: v for k, v in values.items() if not k.startswith("set.")}
        sets = {k[4:]: v for k, v in values.items() if k.startswith("set.")}
        where = ", ".join(f"{k}={_short(v)}" for k, v in point.items()) or "the trial"
        recipe_name = _check_trial(options, sets, lambda m, w=where: fail(w, m))
        trial_name = _trial_name(point) if point else "trial"
        unique, i = trial_name, 1
        while unique in names:  # random search may draw a point twice
            i += 1
            unique = f"{trial_name}-{i}"
        names.add(unique)
        # the report's row: the recipe's own name (as `hybridrl report` groups runs), then
        # what else varies between trials but the tasks (dataset, env)
        method = {k: v for k, v in point.items() if k not in ("dataset", "env")}
        if options.get("runner") == "d3rlpy":
            method["runner"] = "d3rlpy"
        label = _trial_name({**method, "recipe": recipe_name})
        trials.append(Trial(unique, options, sets, label))
    return SweepSpec(source, tuple(trials), tuple(seeds), metric, resources, str(name))


def _known(table: Mapping[str, Any], keys: tuple[str, ...], name: str, fail: Any) -> None:
    for key in table:
        if key not in keys:
            raise fail(f"[{name}] {key}", f"unknown field; one of {', '.join(keys)}")


def _check_distribution(spec: Mapping[str, Any], where: str, fail: Any) -> None:
    if len(spec) != 1 or next(iter(spec)) not in DISTRIBUTIONS:
        raise fail(where, f"a distribution is one of {', '.join(DISTRIBUTIONS)} = [low, high]")
    kind, bounds = next(iter(spec.items()))
    ok = isinstance(bounds, list) and len(bounds) == 2 and bounds[0] < bounds[1]
    if not ok or (kind == "loguniform" and bounds[0] <= 0):
        raise fail(where, f"{kind} needs [low, high] with low < high, got {bounds!r}")


def _draw(axis: Any, rng: random.Random) -> Any:
    if isinstance(axis, list):
        return axis[rng.randrange(len(axis))]
    kind, (low, high) = next(iter(axis.items()))
    if kind == "uniform":
        return rng.uniform(low, high)
    if kind == "loguniform":
        return math.exp(rng.uniform(math.log(low), math.log(high)))
    return rng.randint(int(low), int(high))


def _resources(res: Mapping[str, Any], fail: Any) -> Resources:
    def number(key: str, default: float, integer: bool = False) -> Any:
        value = res.get(key, default)
        if value is None and key == "max_concurrent":
            return None
        bad = isinstance(value, bool) or not isinstance(value, int if integer else (int, float))
        if bad or value < 0 or (integer and key == "max_concurrent" and value < 1):
            raise fail(f"[resources] {key}", f"must be a non-negative number, got {value!r}")
        return value

    return Resources(
        cpus=float(number("cpus", 1.0)),
        gpus=float(number("gpus", 0.0)),
        max_concurrent=number("max_concurrent", None, integer=True),  # type: ignore[arg-type]
        retries=int(number("retries", 3, integer=True)),
    )


def _check_trial(options: dict[str, Any], sets: dict[str, Any], fail: Any) -> str:
    """The checks `hybridrl run` makes before work, so every trial is known to start (and
    those of the d3rlpy runner); returns the recipe's name."""
    from hybridrl.training.recipes import get_recipe

    recipe_name = options.get("recipe")
    if not isinstance(recipe_name, str):
        raise fail(f"recipe must be a name or a file, got {recipe_name!r}")
    try:
        recipe = get_recipe(recipe_name)
        budget = {k: options[k] for k in BUDGET_KEYS if k in options}
        recipe = recipe.with_budget(**budget)
        if sets:
            recipe = recipe.with_config(**sets)
        recipe.validate()
        if options.get("reward_kind") is not None:
            recipe = recipe.with_reward_kind(options["reward_kind"])
        settings = {k: options[k] for k in SETTING_KEYS if k in options}
        if isinstance(settings.get("reference_returns"), list):
            settings["reference_returns"] = tuple(settings["reference_returns"])
        RunSettings(env_id=str(options.get("env", "")), **settings).validate(recipe)
        if options.get("runner") == "d3rlpy":
            from hybridrl.sweep.d3rlpy_trial import check_trial

            check_trial(recipe, options, sets)
    except (HybridRLError, TypeError, ValueError) as exc:
        raise fail(str(exc)) from None
    if "env" not in options and "dataset" not in options:
        raise fail("needs an env or a dataset (give env or dataset in [grid] or [run])")
    return recipe.name


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, str):
        if value.startswith("minari:") and value.count("/") >= 2:
            # minari:NAMESPACE/ENV/KIND-vN: ENV-KIND-vN (hopper-medium-v0, the suite's names)
            return "-".join(value.removeprefix("minari:").rstrip("/").split("/")[1:])
        # a dataset or recipe path, a minari id: its last part names it
        last = re.split(r"[/:]", value.rstrip("/"))[-1]
        for suffix in (".npz", ".hdf5", ".toml", ".json"):
            last = last.removesuffix(suffix)
        return last
    return json.dumps(value, separators=(",", ":"))


def _trial_name(point: Mapping[str, Any]) -> str:
    """``runner-recipe-dataset-env-key=value...``: the varying values, safe as a directory
    name."""
    leading = ("runner", "recipe", "dataset", "env")
    parts = [_short(point[k]) for k in leading if k in point]
    parts += [f"{k.removeprefix('set.')}={_short(v)}" for k, v in point.items() if k not in leading]
    return re.sub(r"[^A-Za-z0-9_.=,+-]+", "_", "-".join(parts)).strip("_") or "trial"
