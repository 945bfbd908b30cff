"""Agent → portable policy: the actor of any registered agent as a `MLPPolicy` (numpy only).

`policy_from_agent` reads the actor network's definition (the flax module behind
``state.actor.apply_fn``: its class, trunk sizes, LayerNorm, log-std clip and whether the std is
state-dependent) and its parameters; no agent is special-cased by name. The three actor heads
of `hybridrl.networks.heads` map onto the kinds of the saved format:

* `TanhGaussianActor` → ``tanh_gaussian``: sac, cql, calql, edac, bc with
  ``nll_actor="tanh_gaussian"``;
* `GaussianActor` → ``gaussian``: iql, awac, bc (its default);
* `DeterministicActor` → ``deterministic``: td3, td3_bc, bc with ``loss="mse"``, iql with
  ``actor="deterministic"``;
* `PPOGaussianActor` → ``linear_gaussian``: ppo, props on Box actions (the mean, clipped to
  [-1, 1]; a free, unclipped log-std);
* `PPOCategoricalActor` → ``categorical``: ppo, props on Discrete actions.

An agent that normalises raw observations inside ``act`` carries its statistics in the state:
a `RunningMeanStd` field ``obs_norm``, applied when its config has ``normalize_observations``
(PPO, PROPS: ``clip((x - mean) / sqrt(var + 1e-8), ±observation_clip)``). They become the
policy's ``obs_mean``/``obs_std``/``obs_clip`` (composed with a run's dataset statistics, if
any), so the policy still takes raw observations.

Dropout (IQL's actor) has no parameters and is the identity when acting, so it is dropped.
`policy_from_run` does the same for a run directory's last checkpoint (`restore.restore_run`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from hybridrl.core.running_norm import NORMALIZE_EPS, RunningMeanStd
from hybridrl.networks.heads import (
    DeterministicActor,
    GaussianActor,
    PPOCategoricalActor,
    PPOGaussianActor,
    TanhGaussianActor,
)
from hybridrl.policies import MLPPolicy
from hybridrl.types import HybridRLError, SpaceSpec

_KINDS: dict[type, str] = {
    TanhGaussianActor: "tanh_gaussian",
    GaussianActor: "gaussian",
    DeterministicActor: "deterministic",
    PPOGaussianActor: "linear_gaussian",
    PPOCategoricalActor: "categorical",
}
# Heads with a fixed trunk activation (no ``activation`` attribute) and no LayerNorm.
_FIXED_TRUNKS: dict[type, str] = {PPOGaussianActor: "tanh", PPOCategoricalActor: "tanh"}
_ACTIVATION_NAMES = ((nn.relu, "relu"), (nn.tanh, "tanh"), (jnp.tanh, "tanh"), (nn.gelu, "gelu"))


def _np(x: Any) -> np.ndarray:
    return np.asarray(x, np.float32)


def _actor_module(state: Any) -> nn.Module:
    actor = getattr(state, "actor", None)
    module = getattr(getattr(actor, "apply_fn", None), "__self__", None)
    if not isinstance(module, nn.Module):
        raise HybridRLError(
            f"policy export needs an agent state with an 'actor' network; got {type(state)}"
        )
    if type(module) not in _KINDS:
        raise HybridRLError(
            f"policy export handles {', '.join(c.__name__ for c in _KINDS)} actors, not "
            f"{type(module).__name__}"
        )
    return module


def _activation_name(fn: Any) -> str:
    for candidate, name in _ACTIVATION_NAMES:
        if fn is candidate:
            return name
    raise HybridRLError(f"policy export: actor activation {fn!r} has no numpy equivalent")


def _internal_obs_norm(state: Any) -> tuple[np.ndarray, np.ndarray, float] | None:
    """``(mean, std, clip)`` of the normalisation the agent applies inside ``act`` (see the
    module docstring), or None."""
    stats = getattr(state, "obs_norm", None)
    if not isinstance(stats, RunningMeanStd) or not state.config.normalize_observations:
        return None
    config = state.config
    mean = _np(stats.mean).reshape(-1)
    # the same float32 operations as RunningMeanStd.normalize
    std = np.sqrt(_np(stats.var).reshape(-1) + np.float32(NORMALIZE_EPS))
    return mean, std, float(np.asarray(config.observation_clip))


def _observation_io(
    state: Any, obs_stats: tuple[np.ndarray, np.ndarray] | None
) -> tuple[np.ndarray | None, np.ndarray | None, float | None]:
    """The policy's ``(obs_mean, obs_std, obs_clip)``: the run's standardization
    ``(x - m1) / s1`` then the agent's own ``(. - m2) / s2``, composed into one
    ``(x - (m1 + m2 s1)) / (s1 s2)``."""
    outer = None if obs_stats is None else (_np(obs_stats[0]), _np(obs_stats[1]))
    inner = _internal_obs_norm(state)
    if inner is None:
        if outer is None:
            return None, None, None
        return outer[0].reshape(-1), outer[1].reshape(-1), None
    mean, std, clip = inner
    if outer is not None:
        m1, s1 = outer[0].reshape(-1), outer[1].reshape(-1)
        mean, std = m1 + mean * s1, s1 * std
    return mean, std, clip


def policy_from_agent(
    state: Any,
    action_space: SpaceSpec,
    *,
    obs_stats: tuple[np.ndarray, np.ndarray] | None = None,
    info: dict[str, Any] | None = None,
) -> MLPPolicy:
    """A portable `MLPPolicy` whose deterministic actions are ``agent.act(state, obs, key,
    deterministic=True)`` mapped onto ``action_space``'s bounds (a Discrete space's indices for
    a categorical actor), for every registered agent.

    ``obs_stats = (mean, std)``: the standardization the agent was trained with (the policy
    then takes raw observations); an agent's own running statistics (``state.obs_norm``) are
    added on top.
    """
    module = _actor_module(state)
    kind = _KINDS[type(module)]
    if kind == "categorical":
        if action_space.kind != "discrete" or action_space.n != module.num_actions:
            raise HybridRLError(
                f"policy export: a categorical actor over {module.num_actions} actions needs a "
                f"Discrete({module.num_actions}) action space, not {action_space.describe()}"
            )
    elif action_space.kind != "box":
        raise HybridRLError(
            f"policy export: a {type(module).__name__} needs a Box action space, not "
            f"{action_space.describe()}"
        )
    params = state.actor.params
    trunk = params["MLP_0"]
    n_hidden = len(module.hidden_dims)
    kernels = [_np(trunk[f"Dense_{i}"]["kernel"]) for i in range(n_hidden)]
    biases = [_np(trunk[f"Dense_{i}"]["bias"]) for i in range(n_hidden)]
    norms = None
    if type(module) not in _FIXED_TRUNKS and module.layer_norm:
        norms = [
            (_np(trunk[f"LayerNorm_{i}"]["scale"]), _np(trunk[f"LayerNorm_{i}"]["bias"]))
            for i in range(n_hidden)
        ]
    log_std = None
    log_std_range: tuple[float, float] | None = (-5.0, 2.0)
    if kind == "deterministic":
        kernels.append(_np(params["Dense_0"]["kernel"]))
        biases.append(_np(params["Dense_0"]["bias"]))
    elif kind == "categorical":
        kernels.append(_np(params["logits"]["kernel"]))
        biases.append(_np(params["logits"]["bias"]))
    elif kind == "linear_gaussian":  # PPO's log-std is a free, unclipped parameter
        kernels.append(_np(params["mean"]["kernel"]))
        biases.append(_np(params["mean"]["bias"]))
        log_std, log_std_range = _np(params["log_std"]), None
    else:
        log_std_range = (float(module.log_std_min), float(module.log_std_max))
        mean, std_head = params["mean"], params["log_std"]
        if isinstance(std_head, Mapping):  # state-dependent: mean and log-std side by side
            kernels.append(np.concatenate([_np(mean["kernel"]), _np(std_head["kernel"])], -1))
            biases.append(np.concatenate([_np(mean["bias"]), _np(std_head["bias"])], -1))
        else:
            kernels.append(_np(mean["kernel"]))
            biases.append(_np(mean["bias"]))
            log_std = _np(std_head)
    obs_mean, obs_std, obs_clip = _observation_io(state, obs_stats)
    box = action_space.kind == "box"
    empty = np.zeros(0, np.float32)
    activation = _FIXED_TRUNKS.get(type(module)) or _activation_name(module.activation)
    return MLPPolicy(
        kernels=kernels,
        biases=biases,
        kind=kind,
        action_low=action_space.low_array.astype(np.float32) if box else empty,
        action_high=action_space.high_array.astype(np.float32) if box else empty,
        activation=activation,
        obs_mean=obs_mean,
        obs_std=obs_std,
        log_std_range=log_std_range,
        info=dict(info or {}),
        layer_norms=norms,
        log_std=log_std,
        num_actions=None if box else action_space.n,
        obs_clip=obs_clip,
    )


def policy_from_run(run_dir: str | os.PathLike[str], dataset: Any = None) -> MLPPolicy:
    """The policy of a run directory's last checkpoint, with its observation normalization and
    its provenance (run dir, recipe, agent, env id, step) in ``info``.

    ``dataset``: only for a run written before run.json recorded its observation statistics
    (they are recomputed from it, after checking that it is the run's dataset)."""
    from hybridrl.training.restore import restore_run

    run = restore_run(run_dir, dataset=dataset)
    return policy_from_agent(
        run.state, run.action_space, obs_stats=run.obs_stats, info=run.provenance()
    )
