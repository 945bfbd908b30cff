"""Environment construction with clear errors for unknown ids and unsupported spaces."""

from __future__ import annotations

import difflib
from typing import Any

import gymnasium as gym

from hybridrl.types import HybridRLError, SpaceSpec


def make_env(env_id: str, **kwargs: Any) -> gym.Env:
    """``gymnasium.make`` with an error that suggests close ids when ``env_id`` is unknown.

    The spaces are checked up front: hybridrl handles Box observations and Box or Discrete
    actions.
    """
    try:
        env = gym.make(env_id, **kwargs)
    except gym.error.Error as exc:
        if env_id not in gym.registry:
            close = difflib.get_close_matches(env_id, list(gym.registry), n=5, cutoff=0.5)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise HybridRLError(f"unknown environment id '{env_id}'{hint}") from exc
        raise HybridRLError(f"could not make environment '{env_id}': {exc}") from exc
    SpaceSpec.from_gym(env.observation_space)
    SpaceSpec.from_gym(env.action_space)
    return env


def env_spaces(env_id: str) -> tuple[SpaceSpec, SpaceSpec]:
    """Observation and action spaces of ``env_id`` as `SpaceSpec`s."""
    env = make_env(env_id)
    try:
        return SpaceSpec.from_gym(env.observation_space), SpaceSpec.from_gym(env.action_space)
    finally:
        env.close()
