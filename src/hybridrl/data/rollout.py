"""On-policy rollouts as pytrees, and generalized advantage estimation (GAE).

A `Rollout` holds T steps of N parallel environments, time-major: every field has leading axes
(T, N). Observations are stored *normalised* (as the policy saw them) and rewards *already
scaled* (see `hybridrl.agents.ppo.normalize_observations` / ``normalize_rewards``).

Episode boundaries are explicit (GUIDE rule 4):

* ``terminals[t]``: the step ended in a terminal state: do not bootstrap from it;
* ``timeouts[t]``: the episode was cut without a terminal state (a time limit, or the end of
  a segment the runner stops at): bootstrap from the value of the true final observation,
  but do not let the advantage recursion flow into the next episode;
* ``next_observations[t]``: the observation after step t, the *true final* observation where
  an episode ended (the vector env's ``final_obs``), else the next step's observation.

With ``next_observations`` stored, V(next_obs) also covers the last step of the rollout, which
CleanRL's PPO handles with a separate ``next_value``.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import struct

from hybridrl.types import Array, HybridRLError

__all__ = ["Rollout", "RolloutBatch", "concatenate", "gae", "keep_last"]


@struct.dataclass
class Rollout:
    """T steps of N environments (time-major).

    Attributes:
        observations: (T, N, obs_dim) float32, normalised.
        actions: (T, N, act_dim) float32 (the unclipped policy samples) or (T, N) int32.
        rewards: (T, N) float32, already scaled.
        terminals: (T, N) float32 0/1.
        timeouts: (T, N) float32 0/1, episode cut without a terminal state.
        next_observations: (T, N, obs_dim) float32, normalised; the true final observation
            where an episode ended.
    """

    observations: jax.Array
    actions: jax.Array
    rewards: jax.Array
    terminals: jax.Array
    timeouts: jax.Array
    next_observations: jax.Array

    @property
    def num_steps(self) -> int:
        """T."""
        return int(self.rewards.shape[0])

    @property
    def num_envs(self) -> int:
        """N."""
        return int(self.rewards.shape[1])


@struct.dataclass
class RolloutBatch:
    """A rollout flattened to T*N rows, with what a PPO update reads.

    Attributes:
        observations: (B, obs_dim); actions: (B, act_dim) or (B,);
        log_probs: (B,) log π_old(a|s); values: (B,) V_old(s);
        advantages: (B,) GAE advantages; returns: (B,) advantages + values (value targets).
    """

    observations: jax.Array
    actions: jax.Array
    log_probs: jax.Array
    values: jax.Array
    advantages: jax.Array
    returns: jax.Array


def gae(
    rewards: Array,
    values: Array,
    next_values: Array,
    terminals: Array,
    timeouts: Array,
    discount: float | Array,
    lam: float | Array,
) -> tuple[jax.Array, jax.Array]:
    """Generalized advantage estimation (Schulman et al., 2016, Eq. 16) over (T, N) arrays.

    ``δ_t = r_t + γ (1 - terminal_t) V(s'_t) - V(s_t)``,
    ``A_t = δ_t + γ λ (1 - end_t) A_{t+1}`` with ``end_t = terminal_t OR timeout_t`` and
    ``A_T = 0``; returns ``(A, A + V)``, computed by a reverse ``lax.scan`` over time.

    A time-out bootstraps from V of the true final observation but cuts the recursion (SB3's
    handling); CleanRL treats a truncation like a termination (no bootstrap).

    Args:
        rewards, values, terminals, timeouts: (T, N); ``values`` = V(s_t).
        next_values: (T, N), V(s'_t) of the observation after each step (the true final
            observation where an episode ended).
        discount: γ; lam: λ (may be traced).
    """
    rewards = jnp.asarray(rewards, jnp.float32)
    values = jnp.asarray(values, jnp.float32)
    next_values = jnp.asarray(next_values, jnp.float32)
    terminals = jnp.asarray(terminals, jnp.float32)
    ends = jnp.maximum(terminals, jnp.asarray(timeouts, jnp.float32))
    deltas = rewards + discount * (1.0 - terminals) * next_values - values

    def step(next_adv: jax.Array, xs: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
        delta, end = xs
        adv = delta + discount * lam * (1.0 - end) * next_adv
        return adv, adv

    _, advantages = jax.lax.scan(step, jnp.zeros_like(deltas[0]), (deltas, ends), reverse=True)
    return advantages, advantages + values


def concatenate(rollouts: Sequence[Rollout]) -> Rollout:
    """Rollouts of the same N environments joined along time (axis 0), in the given order.

    When they were collected one after the other, the last step of one continues into the
    first step of the next (its ``next_observations`` is that first observation), so GAE over
    the concatenation flows through the seams as over one long rollout; mark a seam with a
    timeout to cut it.
    """
    if not rollouts:
        raise HybridRLError("concatenate needs at least one rollout")
    envs = {r.num_envs for r in rollouts}
    if len(envs) != 1:
        raise HybridRLError(f"rollouts of different numbers of environments: {sorted(envs)}")
    return jax.tree_util.tree_map(lambda *xs: jnp.concatenate(xs, axis=0), *rollouts)


def keep_last(buffer: Rollout | None, new: Rollout, b: int) -> Rollout:
    """FIFO of rollouts: ``new`` appended after ``buffer`` (time order kept), then only the
    last ``b * T`` steps kept, T = ``new.num_steps`` (the last ``b`` rollouts of that length).

    ``buffer=None`` starts one. The result's length grows to ``b * T`` over the first ``b``
    calls and then stays fixed (so a jitted consumer compiles at most ``b`` times).
    """
    if b < 1:
        raise HybridRLError(f"keep_last keeps at least one rollout, got b={b}")
    joined = new if buffer is None else concatenate([buffer, new])
    keep = b * new.num_steps
    if joined.num_steps <= keep:
        return joined
    return jax.tree_util.tree_map(lambda x: x[-keep:], joined)
