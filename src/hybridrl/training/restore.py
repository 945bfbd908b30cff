"""A run directory's final agent, without its dataset: what `hybridrl export`, `hybridrl eval`
and ``collect --policy RUN_DIR`` read.

A run directory holds ``run.json`` (the recipe, the settings, the observation statistics and
the action space, see `Runner.run_info`) and ``checkpoints/latest.ckpt`` (the agent state,
the buffers and the counters). The checkpoint's arrays are read into a template whose static
structure (agent module, config, optimizers) is rebuilt from the recipe alone: the agent is
initialized from the recipe's config (as `hybridrl.training.plan.initial_learner`: a Discrete
action space gives ``discrete=True`` and ``n`` actions), then the hooks of every phase the
checkpoint has entered are replayed on it (``SetConfig``, ``SwitchAgent``, ... decide the
state's type and config, as in `hybridrl.training.resume.restore`); hooks that move data
(``SeedBuffer``, ``DropOfflineData``) do not touch the state and are skipped, so no buffer and
no dataset is needed; an on-policy phase's learning-rate schedule (``anneal_lr``) is set on the
config as the phase does. The whole file is read (msgpack has no partial reads; a run's buffer
makes it large), but only the ``state`` entry is restored into the template.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import numpy as np

from hybridrl.agents import get_agent
from hybridrl.envs.make import env_options
from hybridrl.training.checkpoint import load_checkpoint_entry
from hybridrl.training.context import CHECKPOINT
from hybridrl.training.executors.on_policy import with_phase_schedule
from hybridrl.training.phases import Learner, OnPolicy
from hybridrl.training.prepared import observation_stats
from hybridrl.training.recipes import Recipe
from hybridrl.types import HybridRLError, SpaceSpec

# Hooks that move buffers, not the agent state: skipped when no buffer is rebuilt.
_DATA_HOOKS = ("seed_buffer", "drop_offline_data")


@dataclass
class RestoredRun:
    """The final agent of a run directory and what is needed to act with it.

    Attributes:
        run_dir: the directory.
        info: its run.json.
        recipe: the recipe it ran.
        agent_name: the agent in effect at the checkpoint (after switches).
        state: the agent state at the checkpoint.
        obs_stats: ``(mean, std)`` the agent's observations are standardized with, or None.
        observation_dim: the agent's input size.
        action_space: the env's action space (before the [-1, 1] rescaling).
        env_id: the run's environment id.
        env_kwargs: ``gymnasium.make`` options the run recorded (time limit, constructor
            arguments), empty when none.
        counters: the checkpoint's counters (``env_step``, ``update``, ``phase_index``, ...).
    """

    run_dir: Path
    info: dict[str, Any]
    recipe: Recipe
    agent_name: str
    state: Any
    obs_stats: tuple[np.ndarray, np.ndarray] | None
    observation_dim: int
    action_space: SpaceSpec
    env_id: str
    env_kwargs: dict[str, Any]
    counters: dict[str, Any]

    def provenance(self) -> dict[str, Any]:
        """Where an exported policy comes from (stored in its header)."""
        return {
            "source": "hybridrl export",
            "run_dir": str(self.run_dir.resolve()),
            "recipe": self.recipe.name,
            "agent": self.agent_name,
            "env_id": self.env_id,
            "env_kwargs": self.env_kwargs,
            "seed": self.info.get("seed"),
            "env_step": int(self.counters.get("env_step", 0)),
            "update": int(self.counters.get("update", 0)),
            "reference_returns": self.info.get("reference_returns"),
        }


def read_run_json(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """``RUN_DIR/run.json`` as a dict; a clear error when ``run_dir`` is not a run directory."""
    path = Path(run_dir) / "run.json"
    if not path.exists():
        raise HybridRLError(f"{run_dir} is not a run directory (no run.json)")
    try:
        info = json.loads(path.read_text())
        info["fingerprint"]["recipe"], info["fingerprint"]["settings"]["env_id"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise HybridRLError(f"{path} is unreadable or not a hybridrl run.json: {exc}") from exc
    return dict(info)


def env_kwargs_of(settings: dict[str, Any]) -> dict[str, Any]:
    """The ``gymnasium.make`` options a run's settings recorded (time limit and constructor
    arguments, when the settings have them), to remake the run's env exactly."""
    return env_options(settings.get("max_episode_steps"), settings.get("env_kwargs"))


def restore_run(run_dir: str | os.PathLike[str], *, dataset: Any = None) -> RestoredRun:
    """The agent state of ``run_dir``'s latest checkpoint (see the module docstring).

    ``dataset`` is needed only for a run written before run.json recorded its observation
    statistics, when its recipe normalizes observations: the statistics are then recomputed
    from it (it must be the run's dataset, checked by content hash).
    """
    run_dir = Path(run_dir)
    info = read_run_json(run_dir)
    run_json = run_dir / "run.json"
    recipe = Recipe.from_dict(info["fingerprint"]["recipe"], source=str(run_json))
    settings = info["fingerprint"]["settings"]
    env_id = str(settings["env_id"])
    env_kwargs = env_kwargs_of(settings)
    ckpt = run_dir / CHECKPOINT
    if not ckpt.exists():
        raise HybridRLError(
            f"run {run_dir} has no checkpoint ({CHECKPOINT}): it stopped before its first one"
        )
    obs_dim, action_space = _spaces(info, env_id, env_kwargs)
    obs_stats = _obs_stats(info, recipe, run_json, dataset)

    def template_of(meta: dict[str, Any]) -> Any:
        return _state_template(recipe, meta.get("counters", {}), settings, obs_dim, action_space)

    state, meta = load_checkpoint_entry(ckpt, "state", template_of)
    return RestoredRun(
        run_dir=run_dir,
        info=info,
        recipe=recipe,
        agent_name=str(meta.get("agent_name", recipe.agent)),
        state=state,
        obs_stats=obs_stats,
        observation_dim=obs_dim,
        action_space=action_space,
        env_id=env_id,
        env_kwargs=env_kwargs,
        counters=dict(meta.get("counters", {})),
    )


def _obs_stats(
    info: dict[str, Any], recipe: Recipe, run_json: Path, dataset: Any
) -> tuple[np.ndarray, np.ndarray] | None:
    io = info.get("policy_io")
    if isinstance(io, dict) and "observation_stats" in io:
        stats = io["observation_stats"]
        if stats is None:
            return None
        return np.asarray(stats["mean"], np.float32), np.asarray(stats["std"], np.float32)
    if not recipe.normalize_observations:
        return None
    if dataset is None:
        raise HybridRLError(
            f"{run_json}: the recipe normalizes observations but this run (written by an older "
            "hybridrl) did not record their statistics; pass the run's dataset (--dataset) "
            "to recompute them"
        )
    recorded = (info["fingerprint"].get("dataset") or {}).get("hash")
    if recorded is not None and dataset.content_hash() != recorded:
        name = dataset.metadata.name or "dataset"
        raise HybridRLError(
            f"dataset {name} is not the one {run_json} was trained on (content hash differs)"
        )
    mean, std = observation_stats(dataset, recipe.observation_stats)
    return np.asarray(mean, np.float32), np.asarray(std, np.float32)


def _spaces(info: dict[str, Any], env_id: str, env_kwargs: dict[str, Any]) -> tuple[int, SpaceSpec]:
    """The agent's input size and the env's action space: from run.json, or (a run written
    before run.json recorded them) from the env itself."""
    io = info.get("policy_io")
    if isinstance(io, dict) and "action_space" in io and "observation_dim" in io:
        return int(io["observation_dim"]), SpaceSpec.from_json(io["action_space"])
    from hybridrl.envs.make import env_spaces

    obs_space, action_space = env_spaces(env_id, **env_kwargs)
    return int(np.prod(obs_space.shape)), action_space


def _state_template(
    recipe: Recipe,
    counters: dict[str, Any],
    settings: dict[str, Any],
    obs_dim: int,
    action_space: SpaceSpec,
) -> Any:
    """The agent state with the checkpoint's static structure: init, then the hooks of every
    phase the checkpoint has entered (as `Runner._restore` replays them)."""
    module = get_agent(recipe.agent)
    key = jax.random.fold_in(jax.random.PRNGKey(int(settings.get("seed", 0))), 1)
    discrete = action_space.kind == "discrete"
    act_dim = int(action_space.n or 0) if discrete else int(np.prod(action_space.shape))
    kwargs = {"discrete": True} if discrete else {}
    # One compiled init rather than one small compile per eager op (seconds on a CPU).
    init = jax.jit(module.init, static_argnums=(2, 3), static_argnames=tuple(kwargs))
    state = init(recipe.agent_config(), key, obs_dim, act_dim, **kwargs)
    learner = Learner(recipe.agent, state, None, None)
    entered = int(counters.get("phase_index", 0)) + (1 if counters.get("phase_started") else 0)
    num_envs = int(settings.get("num_envs", 1))
    for phase in recipe.phases[:entered]:
        for hook in phase.hooks:
            if hook.kind not in _DATA_HOOKS:
                learner = hook.apply(learner)
        if isinstance(phase, OnPolicy):
            learner = with_phase_schedule(phase, learner, num_envs)
    return learner.state
