"""Exact resume for every registered recipe, killed in each of its phases.

A kill is simulated in-process: the run raises (a `BaseException`, as nothing should catch a
kill) just before it would write the checkpoint *after* the chosen one, so the directory holds
that checkpoint plus every record logged since (the lines a real kill leaves behind). The run
is then resumed and must match the uninterrupted run record for record and bit for bit.
The one real SIGKILL of a child process is `test_runner.py::test_resume_after_sigkill_...`.
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from typing import Any

import jax
import numpy as np
import pytest

from hybridrl.agents import agent_spec, get_agent
from hybridrl.training.phases import Offline, OnPolicy
from hybridrl.training.recipes import RECIPES, Recipe, get_recipe
from hybridrl.training.runner import Runner, run
from hybridrl.training.weighting import with_sampler

SETTINGS: dict[str, Any] = {
    "num_envs": 2,
    "eval_episodes": 1,
    "eval_interval": 8,
    "offline_eval_interval": 4,
    "checkpoint_interval": 4,
    "log_interval": 2,
    "chunk_size": 2,
    "progress": False,
}
# Where a kill can land: inside each phase kind, and at the switch (the checkpoint written
# when pretraining ends, before the next phase's hooks ran: SeedBuffer's case).
WHERE = ("offline", "switch", "warmup", "online", "on_policy")


class _Killed(BaseException):
    """Stands for SIGKILL: nothing in the runner may catch it."""


def _recipe(name: str) -> Recipe:
    name, _, sampler = name.partition("@")  # NAME@SAMPLER: a trajectory-weighted sampler
    recipe = (
        get_recipe(name)
        .with_budget(
            offline_updates=8, warmup_steps=8, online_steps=16, random_steps=4, on_policy_steps=16
        )
        .with_config(hidden_dims=(8,))
    )
    if agent_spec(recipe.agent).on_policy:
        # rollouts of 2 steps x 2 envs: a checkpoint after every update, some kept batches
        phases = tuple(
            dataclasses.replace(p, rollout_steps=2) if isinstance(p, OnPolicy) else p
            for p in recipe.phases
        )
        recipe = dataclasses.replace(recipe, phases=phases)
        fields = {f.name for f in dataclasses.fields(get_agent(recipe.agent).Config)}
        if "num_minibatches" in fields:  # PPO's family (NPG takes whole batches)
            recipe = recipe.with_config(num_minibatches=2, update_epochs=2)
        if recipe.agent == "props":  # behaviour updates inside rollouts and at their ends
            recipe = recipe.with_config(props_num_steps=2, props_update_epochs=2)
    if sampler:
        recipe = with_sampler(recipe, sampler)
    if "num_qs" in recipe.config:
        recipe = recipe.with_config(num_qs=2)
    if recipe.agent in ("cql", "calql"):
        recipe = recipe.with_config(num_samples=2)
    return recipe


def _kinds(name: str) -> set[str]:
    phases = _recipe(name).phases
    kinds = {p.kind for p in phases if p.env_steps or isinstance(p, Offline)}
    offline_then_more = any(
        isinstance(p, Offline) and i < len(phases) - 1 for i, p in enumerate(phases)
    )
    return kinds | ({"switch"} if offline_then_more else set())


# NAME@SAMPLER: the recipe with a trajectory-weighted sampler (its CDF is derived from the
# dataset, never checkpointed, so a resumed run must recompute the same one).
WEIGHTED = ["rlpd@advantage", "offline:iql@return"]
CASES = [
    (n, w) for n in [*sorted(RECIPES), "offline:iql", *WEIGHTED] for w in WHERE if w in _kinds(n)
]
# The default tier kills each phase kind and each executor path at least once (offline,
# the switch, a frozen warm-up, replay online with and without a dataset, mixed batches,
# Monte-Carlo rows, the on-policy family with kept batches, a behaviour policy and discrete
# actions); the rest of the matrix, the same paths under other agents, is the slow tier.
DEFAULT_TIER = {
    ("wsrl", "switch"),
    ("wsrl", "warmup"),
    ("wsrl", "online"),
    ("iql_finetune", "offline"),
    ("calql", "online"),
    ("rlpd", "online"),
    ("rlpd@advantage", "online"),
    ("sac", "online"),
    ("ppo_buffer", "on_policy"),
    ("ppo_discrete", "on_policy"),
    ("props", "on_policy"),
    ("hnpg", "on_policy"),  # dataset rows drawn per update (their key is part of the run's)
    ("rebrac_finetune", "online"),  # the β_a decay, a function of the update counter
}
assert set(CASES) >= DEFAULT_TIER, "a default-tier case names no recipe phase"
PARAMS = [
    pytest.param(n, w, id=f"{n}-{w}", marks=() if (n, w) in DEFAULT_TIER else pytest.mark.slow)
    for n, w in CASES
]


def _category(runner: Runner, c: Any) -> str | None:
    phases = runner.recipe.phases
    if c.phase_index >= len(phases):
        return None  # the end of the run
    if c.phase_progress == 0 and not c.phase_started:
        previous = phases[c.phase_index - 1] if c.phase_index else None
        return "switch" if isinstance(previous, Offline) else None
    return phases[c.phase_index].kind


def _run(name: str, run_dir: Path, dataset: Any, **kw: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # checkpoints cut every episode at this size
        return run(_recipe(name), "Pendulum-v1", dataset=dataset, run_dir=run_dir, **SETTINGS, **kw)


@pytest.fixture(scope="module")
def references(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return {}


def _reference(
    name: str, cache: dict[str, Any], root: Path, dataset: Any, monkeypatch: pytest.MonkeyPatch
) -> tuple[Any, list[str | None]]:
    """The uninterrupted run, and the category of each checkpoint it wrote, in order."""
    if name not in cache:
        categories: list[str | None] = []
        original = Runner._checkpoint

        def recording(self: Runner, learner: Any, key: Any, c: Any, logger: Any) -> None:
            categories.append(_category(self, c))
            original(self, learner, key, c, logger)

        with monkeypatch.context() as m:
            m.setattr(Runner, "_checkpoint", recording)
            result = _run(name, root / name.replace(":", "_").replace("@", "_"), dataset)
        cache[name] = (result, categories)
    return cache[name]


def _strip(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k != "time_s"} for r in records]


@pytest.mark.parametrize(("name", "where"), PARAMS)
def test_a_run_killed_anywhere_resumes_to_the_uninterrupted_run(
    name, where, references, pendulum_small, tmp_path_factory, monkeypatch
):
    dataset = pendulum_small if _recipe(name).needs_dataset or name != "sac" else None
    root = tmp_path_factory.getbasetemp() / "resume_matrix_reference"
    reference, categories = _reference(name, references, root, dataset, monkeypatch)
    chosen = categories.index(where)  # the first checkpoint of that kind
    assert chosen + 1 < len(categories), "no later checkpoint to be killed before"

    original = Runner._checkpoint
    written = []

    def killing(self: Runner, learner: Any, key: Any, c: Any, logger: Any) -> None:
        if len(written) == chosen + 1:
            raise _Killed
        original(self, learner, key, c, logger)
        written.append(c.env_step)

    killed = tmp_path_factory.mktemp("killed")
    with monkeypatch.context() as m, pytest.raises(_Killed):
        m.setattr(Runner, "_checkpoint", killing)
        _run(name, killed, dataset)
    assert not (killed / "summary.json").exists()

    lines: list[str] = []
    resumed = _run(name, killed, dataset, resume=True, echo=lines.append)
    assert lines and "resumed from the checkpoint at" in lines[0]

    assert _strip(resumed.records) == _strip(reference.records)
    assert resumed.summary["final_score"] == reference.summary["final_score"]
    for a, b in zip(
        jax.tree_util.tree_leaves(resumed.state),
        jax.tree_util.tree_leaves(reference.state),
        strict=True,
    ):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
