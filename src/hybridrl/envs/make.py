"""Environment construction with clear errors for unknown ids and unsupported spaces."""

from __future__ import annotations

import difflib
from typing import Any

import gymnasium as gym
import numpy as np

from hybridrl.types import HybridRLError, SpaceSpec


def make_env(env_id: str, **kwargs: Any) -> gym.Env:
    """``gymnasium.make`` with an error that suggests close ids when ``env_id`` is unknown.

    The spaces are checked up front: hybridrl handles Box observations and Box or Discrete
    actions.
    """
    try:
        env = gym.make(env_id, **kwargs)
    except TypeError as exc:  # an argument the env's constructor does not take
        raise HybridRLError(f"could not make environment '{env_id}' with {kwargs}: {exc}") from exc
    except gym.error.Error as exc:
        if env_id not in gym.registry:
            close = difflib.get_close_matches(env_id, list(gym.registry), n=5, cutoff=0.5)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise HybridRLError(f"unknown environment id '{env_id}'{hint}") from exc
        raise HybridRLError(f"could not make environment '{env_id}': {exc}") from exc
    SpaceSpec.from_gym(env.observation_space)
    SpaceSpec.from_gym(env.action_space)
    return env


def env_spaces(env_id: str, **kwargs: Any) -> tuple[SpaceSpec, SpaceSpec]:
    """Observation and action spaces of ``env_id`` (made with ``kwargs``) as `SpaceSpec`s."""
    env = make_env(env_id, **kwargs)
    try:
        return SpaceSpec.from_gym(env.observation_space), SpaceSpec.from_gym(env.action_space)
    finally:
        env.close()


def make_unit_action_env(env_id: str, **kwargs: Any) -> gym.Env:
    """``env_id`` with Box actions rescaled to [-1, 1], the range every agent acts in."""
    env = make_env(env_id, **kwargs)
    if not isinstance(env.action_space, gym.spaces.Box):
        raise HybridRLError(f"{env_id}: continuous-control agents need a Box action space")
    ones = np.ones(env.action_space.shape, np.float32)
    return gym.wrappers.RescaleAction(env, -ones, ones)


def make_vector_env(
    env_id: str, num_envs: int, *, asynchronous: bool = False, **kwargs: Any
) -> gym.vector.VectorEnv:
    """``num_envs`` copies of `make_unit_action_env` as a Gymnasium vector env.

    Autoreset is ``SAME_STEP``: when a sub-env's episode ends, ``step`` already returns the
    next episode's first observation and puts the true final one in ``info["final_obs"]``, so
    every step yields one complete transition (no dummy step between episodes).
    """
    if num_envs <= 0:
        raise HybridRLError(f"num_envs must be positive, got {num_envs}")
    make_env(env_id, **kwargs).close()  # unknown ids and spaces fail here with a clear error
    fns = [lambda: make_unit_action_env(env_id, **kwargs) for _ in range(num_envs)]
    mode = gym.vector.AutoresetMode.SAME_STEP
    if asynchronous:
        # spawn, not fork: forking a process that runs JAX threads can deadlock
        return gym.vector.AsyncVectorEnv(fns, autoreset_mode=mode, context="spawn")
    return gym.vector.SyncVectorEnv(fns, autoreset_mode=mode)


def env_options(max_episode_steps: int | None, env_kwargs: dict[str, Any] | None) -> dict[str, Any]:
    """``gymnasium.make`` keyword arguments for a time limit and constructor arguments (both
    optional: None keeps the registered ones)."""
    out = dict(env_kwargs or {})
    if max_episode_steps is not None:
        out["max_episode_steps"] = int(max_episode_steps)
    return out


def recorded_env_options(
    env_id: str, provenance: dict[str, Any]
) -> tuple[int | None, dict[str, Any] | None]:
    """The time limit and constructor arguments a dataset recorded for ``env_id`` (a Minari
    dataset's env spec, ``provenance['env_spec']``), where they differ from the registered
    ones; ``(None, None)`` when it recorded none, or for another env id.

    Only differences count, so a dataset made with the registered env changes nothing (and a
    run on it keeps the fingerprint it had before env specs were read).
    """
    spec = provenance.get("env_spec")
    if not isinstance(spec, dict) or spec.get("id") != env_id:
        return None, None
    try:
        registered = gym.spec(env_id)
    except gym.error.Error:
        return None, None
    steps = spec.get("max_episode_steps")
    steps = int(steps) if steps is not None and steps != registered.max_episode_steps else None
    kwargs = {
        k: v
        for k, v in (spec.get("kwargs") or {}).items()
        # rendering is how an env was watched, not what the task is
        if k != "render_mode" and (k not in registered.kwargs or registered.kwargs[k] != v)
    }
    return steps, kwargs or None
