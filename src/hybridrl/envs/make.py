"""Environment construction with clear errors for unknown ids and unsupported spaces."""

from __future__ import annotations

import difflib
from typing import Any

import gymnasium as gym
import numpy as np

from hybridrl.envs.comblock import prepare_comblock
from hybridrl.envs.minigrid import prepare_minigrid
from hybridrl.types import HybridRLError, SpaceSpec


def make_env(env_id: str, **kwargs: Any) -> gym.Env:
    """``gymnasium.make`` with an error that suggests close ids when ``env_id`` is unknown.

    The spaces are checked up front: hybridrl handles Box observations and Box or Discrete
    actions. MiniGrid tasks take an observation adapter in the id
    (``minigrid-onehot/MiniGrid-Empty-5x5-v0``, `hybridrl.envs.minigrid`); a Comblock of any
    horizon is registered on first use (``hybridrl/Comblock-H7-v0``, `hybridrl.envs.comblock`).
    """
    prepare_minigrid(env_id)
    prepare_comblock(env_id)
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


ACTION_KINDS = ("box", "discrete")
"""The action-space kinds an agent can declare (`hybridrl.agents.spec.AgentSpec.action_kinds`)."""


def check_action_kind(
    env_id: str,
    space: gym.Space | SpaceSpec,
    action_kinds: tuple[str, ...] = ("box",),
    *,
    agent: str | None = None,
) -> SpaceSpec:
    """``space`` as a `SpaceSpec`, or one `HybridRLError` line when an agent that acts only in
    ``action_kinds`` cannot act in it, e.g. ``CartPole-v1 has a Discrete(2) action space;
    agent 'sac' acts only in box spaces``."""
    unknown = [k for k in action_kinds if k not in ACTION_KINDS]
    if unknown or not action_kinds:
        raise HybridRLError(
            f"action_kinds must be a non-empty subset of {ACTION_KINDS}, got {action_kinds}"
        )
    spec = space if isinstance(space, SpaceSpec) else SpaceSpec.from_gym(space)
    if spec.kind not in action_kinds:
        who = f"agent '{agent}'" if agent else "the agent"
        kinds = " or ".join(action_kinds)
        raise HybridRLError(
            f"{env_id} has a {spec.describe()} action space; {who} acts only in {kinds} spaces"
        )
    return spec


def make_unit_action_env(
    env_id: str,
    *,
    action_kinds: tuple[str, ...] = ("box",),
    agent: str | None = None,
    **kwargs: Any,
) -> gym.Env:
    """``env_id`` as agents see it: Box actions rescaled to [-1, 1] (the range every
    continuous agent acts in), Discrete actions passed through unchanged (integers in
    ``[0, n)``).

    ``action_kinds`` are the kinds of action space the caller's agent supports (its
    ``SPEC.action_kinds``; ``agent`` names it in the error): another kind is refused with one
    line naming the env, its action space and the supported kinds. The default, Box only,
    is what every agent before discrete support could use.
    """
    env = make_env(env_id, **kwargs)
    try:
        spec = check_action_kind(env_id, env.action_space, action_kinds, agent=agent)
    except HybridRLError:
        env.close()
        raise
    if spec.kind == "discrete":
        return env
    ones = np.ones(spec.shape, np.float32)
    return gym.wrappers.RescaleAction(env, -ones, ones)


ENV_BACKENDS = ("gymnasium", "envpool")
"""Vector-env engines (`make_vector_env`'s ``backend``, the run setting ``env_backend``)."""


def make_vector_env(
    env_id: str,
    num_envs: int,
    *,
    asynchronous: bool = False,
    action_kinds: tuple[str, ...] = ("box",),
    agent: str | None = None,
    backend: str = "gymnasium",
    **kwargs: Any,
) -> gym.vector.VectorEnv:
    """``num_envs`` copies of `make_unit_action_env` as a Gymnasium vector env.

    Autoreset is ``SAME_STEP``: when a sub-env's episode ends, ``step`` already returns the
    next episode's first observation and puts the true final one in ``info["final_obs"]``, so
    every step yields one complete transition (no dummy step between episodes). A Discrete
    action space gives a ``MultiDiscrete`` batch space: ``step`` takes an integer array of
    shape ``(num_envs,)``. ``action_kinds`` and ``agent``: as in `make_unit_action_env`.

    ``backend`` (`ENV_BACKENDS`): ``"envpool"`` steps the sub-envs with EnvPool (an optional
    extra) behind this same contract (`hybridrl.envs.envpool_backend`); ``asynchronous`` is
    then refused (EnvPool has its own threads).
    """
    if num_envs <= 0:
        raise HybridRLError(f"num_envs must be positive, got {num_envs}")
    if backend not in ENV_BACKENDS:
        raise HybridRLError(f"env_backend must be one of {ENV_BACKENDS}, got {backend!r}")
    if backend == "envpool" and asynchronous:
        raise HybridRLError(
            "asynchronous envs are for the gymnasium backend; envpool steps its envs in its "
            "own threads"
        )
    # unknown ids, unsupported spaces and an action kind the agent lacks fail here, clearly
    probe = make_env(env_id, **kwargs)
    try:
        check_action_kind(env_id, probe.action_space, action_kinds, agent=agent)
        if backend == "envpool":
            from hybridrl.envs.envpool_backend import make_envpool_vector_env

            return make_envpool_vector_env(env_id, num_envs, probe, **kwargs)
    finally:
        probe.close()
    fns = [
        lambda: make_unit_action_env(env_id, action_kinds=action_kinds, agent=agent, **kwargs)
        for _ in range(num_envs)
    ]
    mode = gym.vector.AutoresetMode.SAME_STEP
    if asynchronous:
        # spawn, not fork: forking a process that runs JAX threads can deadlock
        return gym.vector.AsyncVectorEnv(fns, autoreset_mode=mode, context="spawn")
    return gym.vector.SyncVectorEnv(fns, autoreset_mode=mode)


def env_actions(actions: Any, space: gym.Space, num: int | None = None) -> np.ndarray:
    """An agent's batch of actions as a Gymnasium env takes them: for a Discrete space an
    int64 array of shape ``(num,)`` (a ``(num, 1)`` batch is flattened), refused with one line
    unless every action is an integer in ``[0, n)``; any other space unchanged.

    Args:
        actions: the agent's actions (jax or numpy), one row per sub-env.
        space: one sub-env's action space (``envs.single_action_space``).
        num: the expected batch size (``envs.num_envs``); None accepts any.
    """
    out = np.asarray(actions)
    if not isinstance(space, gym.spaces.Discrete):
        return out
    n, start = int(space.n), int(space.start)
    flat = out.reshape(-1) if out.ndim == 2 and out.shape[1] == 1 else out
    integral = np.issubdtype(flat.dtype, np.integer)
    wrong_shape = flat.ndim != 1 or (num is not None and flat.shape[0] != num)
    if wrong_shape or not integral or np.any(flat < start) or np.any(flat >= start + n):
        raise HybridRLError(
            f"a {type(space).__name__}({n}) action space takes integer actions in "
            f"[{start}, {start + n}), one per sub-env; the agent gave {out.dtype} actions of "
            f"shape {out.shape}" + (f" in [{flat.min()}, {flat.max()}]" if flat.size else "")
        )
    return flat.astype(np.int64)


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
    prepare_minigrid(env_id)  # a MiniGrid adapter id is registered on first use
    prepare_comblock(env_id)  # so is a Comblock of an unlisted horizon
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
