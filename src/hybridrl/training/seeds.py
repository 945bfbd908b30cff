"""Many seeds at once: ``vmap`` an agent's init, updates and acting over a leading seed axis.

As purejaxrl does, K independent runs become one program: every leaf of the agent state gets a
leading axis K (parameters, optimizer moments, and the config's traced hyperparameters), every
seed gets its own PRNG key, and the data (a replay buffer / offline dataset) is shared, not
copied K times. On a GPU K seeds cost little more than one; on a CPU they cost about K times
one, but still compile once.

    keys = jax.random.split(jax.random.PRNGKey(0), K)
    states = init_seeds(sac, config, keys, obs_dim, act_dim)
    states, metrics = scan_updates_seeds(sac.update, states, buffer, update_keys,
                                         num_updates=1000, batch_size=256)   # metrics: (K,)
    actions = act_seeds(sac, states, observations, act_keys, deterministic=True)  # (K, B, A)
    state_3 = select_seed(states, 3)   # an ordinary single-seed state

Seed i of a vmapped run equals the run started alone from ``keys[i]`` (same init, same
minibatches, same noise) up to floating-point reassociation in batched kernels; each seed's
key is split inside `scan_updates` exactly as in a single run, so no two seeds share noise as
long as their keys differ (use `jax.random.split`, never one key K times).

Because the config's numeric hyperparameters are traced leaves, a per-seed sweep is possible:
replace a leaf of ``states.config`` (shape (K,)) with K different values, e.g.
``dataclasses.replace(states, config=dataclasses.replace(states.config, tau=taus))``.
"""

from __future__ import annotations

from functools import partial
from types import ModuleType
from typing import Any

import jax

from hybridrl.data.replay import replay_sample
from hybridrl.training.updates import SampleFn, UpdateFn, scan_updates
from hybridrl.types import HybridRLError


def num_seeds(states: Any) -> int:
    """K, the size of the leading seed axis of a vmapped state."""
    leaves = jax.tree_util.tree_leaves(states)
    if not leaves:
        raise HybridRLError("the state has no array leaves, so no seed axis")
    return int(leaves[0].shape[0])


def _check_keys(keys: jax.Array) -> int:
    # typed keys (jax.random.key) are scalars; raw uint32 keys (PRNGKey) carry a trailing axis
    typed = jax.dtypes.issubdtype(keys.dtype, jax.dtypes.prng_key)
    if keys.ndim < (1 if typed else 2):
        raise HybridRLError("keys must have a leading seed axis: use jax.random.split(key, K)")
    return int(keys.shape[0])


def init_seeds(
    agent: ModuleType, config: Any, keys: jax.Array, observation_dim: int, action_dim: int
) -> Any:
    """``agent.init`` for each of the K ``keys``; every state leaf gains a leading axis K.

    The config is shared: its static fields stay static, its traced leaves are broadcast to
    shape (K,) (one value per seed, so they can differ per seed afterwards).
    """
    _check_keys(keys)
    return jax.vmap(lambda k: agent.init(config, k, observation_dim, action_dim))(keys)


@partial(jax.jit, static_argnames=("update_fn", "sample_fn", "num_updates", "batch_size"))
def scan_updates_seeds(
    update_fn: UpdateFn,
    states: Any,
    data: Any,
    keys: jax.Array,
    *,
    num_updates: int,
    batch_size: int,
    sample_fn: SampleFn = replay_sample,
) -> tuple[Any, dict[str, jax.Array]]:
    """`hybridrl.training.updates.scan_updates` vmapped over the seed axis of ``states`` and
    ``keys`` (K each); ``data`` is shared by all seeds. Returns the K new states and each
    seed's chunk-mean metrics, shape (K,)."""
    if _check_keys(keys) != num_seeds(states):
        raise HybridRLError(f"{keys.shape[0]} keys for {num_seeds(states)} seeds")

    def one(state: Any, d: Any, key: jax.Array) -> tuple[Any, dict[str, jax.Array]]:
        return scan_updates(
            update_fn,
            state,
            d,
            key,
            num_updates=num_updates,
            batch_size=batch_size,
            sample_fn=sample_fn,
        )

    return jax.vmap(one, in_axes=(0, None, 0))(states, data, keys)


def act_seeds(
    agent: ModuleType,
    states: Any,
    observations: jax.Array,
    keys: jax.Array,
    deterministic: bool = False,
    *,
    per_seed_observations: bool = False,
) -> jax.Array:
    """Actions (K, B, A) of the K seeds' policies.

    ``observations`` is one batch (B, ...) shown to every seed, or with
    ``per_seed_observations=True`` a (K, B, ...) stack (e.g. K vectorized environments).
    """
    _check_keys(keys)
    obs_axis = 0 if per_seed_observations else None
    return jax.vmap(lambda s, o, k: agent.act(s, o, k, deterministic), in_axes=(0, obs_axis, 0))(
        states, observations, keys
    )


def select_seed(states: Any, index: int) -> Any:
    """Seed ``index`` of a vmapped state, as an ordinary single-seed state."""
    return jax.tree_util.tree_map(lambda x: x[index], states)
