"""Agent → portable policy: the actor of any registered agent as a `MLPPolicy` (numpy only).

`policy_from_agent` reads the actor network's definition (the flax module behind
``state.actor.apply_fn``: its class, trunk sizes, LayerNorm, log-std clip and whether the std is
state-dependent) and its parameters; no agent is special-cased by name. The three actor heads
of `hybridrl.networks.heads` map onto the three kinds of the saved format:

* `TanhGaussianActor` → ``tanh_gaussian``: sac, cql, calql, edac, bc with
  ``nll_actor="tanh_gaussian"``;
* `GaussianActor` → ``gaussian``: iql, awac, bc (its default);
* `DeterministicActor` → ``deterministic``: td3, td3_bc, bc with ``loss="mse"``, iql with
  ``actor="deterministic"``.

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

from hybridrl.networks.heads import DeterministicActor, GaussianActor, TanhGaussianActor
from hybridrl.policies import MLPPolicy
from hybridrl.types import HybridRLError, SpaceSpec

_KINDS: dict[type, str] = {
    TanhGaussianActor: "tanh_gaussian",
    GaussianActor: "gaussian",
    DeterministicActor: "deterministic",
}
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


def policy_from_agent(
    state: Any,
    action_space: SpaceSpec,
    *,
    obs_stats: tuple[np.ndarray, np.ndarray] | None = None,
    info: dict[str, Any] | None = None,
) -> MLPPolicy:
    """A portable `MLPPolicy` whose deterministic actions are ``agent.act(state, obs, key,
    deterministic=True)`` mapped onto ``action_space``'s bounds, for every registered agent.

    ``obs_stats = (mean, std)``: the standardization the agent was trained with (the policy
    then takes raw observations).
    """
    if action_space.kind != "box":
        raise HybridRLError("policy export needs a Box action space")
    module = _actor_module(state)
    kind = _KINDS[type(module)]
    params = state.actor.params
    trunk = params["MLP_0"]
    n_hidden = len(module.hidden_dims)
    kernels = [_np(trunk[f"Dense_{i}"]["kernel"]) for i in range(n_hidden)]
    biases = [_np(trunk[f"Dense_{i}"]["bias"]) for i in range(n_hidden)]
    norms = None
    if module.layer_norm:
        norms = [
            (_np(trunk[f"LayerNorm_{i}"]["scale"]), _np(trunk[f"LayerNorm_{i}"]["bias"]))
            for i in range(n_hidden)
        ]
    log_std = None
    log_std_range = (-5.0, 2.0)
    if kind == "deterministic":
        kernels.append(_np(params["Dense_0"]["kernel"]))
        biases.append(_np(params["Dense_0"]["bias"]))
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
    obs_mean, obs_std = obs_stats if obs_stats is not None else (None, None)
    return MLPPolicy(
        kernels=kernels,
        biases=biases,
        kind=kind,
        action_low=action_space.low_array.astype(np.float32),
        action_high=action_space.high_array.astype(np.float32),
        activation=_activation_name(module.activation),
        obs_mean=None if obs_mean is None else _np(obs_mean).reshape(-1),
        obs_std=None if obs_std is None else _np(obs_std).reshape(-1),
        log_std_range=log_std_range,
        info=dict(info or {}),
        layer_norms=norms,
        log_std=log_std,
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
