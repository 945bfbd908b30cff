"""The one transition format of hybridrl.

A `Transitions` pytree holds N transitions as parallel arrays:

========================  ==========  ===================================================
field                     shape       meaning
========================  ==========  ===================================================
``observations``          (N, *obs)   s_t
``actions``               (N, *act)   a_t
``rewards``               (N,)        r_t
``next_observations``     (N, *obs)   s_{t+1} (the true next state, also at a time-out)
``terminals``             (N,)        1 when s_{t+1} is terminal: stop bootstrapping
``timeouts``              (N,)        1 when the episode was cut after this step without
                                      terminating (time limit, end of logging)
``extras``                dict        optional per-step arrays of leading size N, e.g.
                                      ``mc_returns``, ``behavior_log_probs``, ``episode_ids``
========================  ==========  ===================================================

Actions in a Box space are float32 of shape (N, *act); in a Discrete(n) space they are int64
indices in ``[0, n)`` of shape (N,) (the space's metadata kind is ``"discrete"`` with ``n``;
`hybridrl.data.dataset.check_against_spaces` enforces both).

An episode ends at a step with ``terminals or timeouts``. The TD target is
``r + gamma * (1 - terminals) * V(s')``; time-outs never stop bootstrapping. Nothing in the
library infers an episode boundary silently: loaders that must infer them say so in the
dataset metadata (``boundaries_inferred``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from flax import struct

from hybridrl.types import Array, DatasetError

CORE_FIELDS = (
    "observations",
    "actions",
    "rewards",
    "next_observations",
    "terminals",
    "timeouts",
)


@struct.dataclass
class Transitions:
    """N transitions as a pytree of arrays (numpy on the host, jax on the device)."""

    observations: Array
    actions: Array
    rewards: Array
    next_observations: Array
    terminals: Array
    timeouts: Array
    extras: dict[str, Array] = struct.field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.rewards.shape[0])

    def replace(self, **changes: Any) -> Transitions:
        """A copy with some fields changed (typed twin of flax's generated ``replace``)."""
        return dataclasses.replace(self, **changes)

    def map(self, fn: Callable[[Array], Array]) -> Transitions:
        """Apply ``fn`` to every array (core fields and extras)."""
        return jax.tree_util.tree_map(fn, self)

    def take(self, index: Array) -> Transitions:
        """Rows ``index`` (an integer array, a slice or a boolean mask) of every field."""
        return self.map(lambda x: x[index])

    @property
    def episode_ends(self) -> np.ndarray:
        """Boolean mask of the steps after which an episode ends (terminal or time-out)."""
        return np.logical_or(np.asarray(self.terminals) > 0, np.asarray(self.timeouts) > 0)

    def as_numpy(self) -> Transitions:
        return self.map(np.asarray)


def make_transitions(
    observations: Array,
    actions: Array,
    rewards: Array,
    next_observations: Array,
    terminals: Array,
    timeouts: Array | None = None,
    extras: dict[str, Array] | None = None,
) -> Transitions:
    """Build `Transitions` from numpy-like arrays with the library's dtypes.

    Observations keep their dtype (float64 is cast to float32); float actions are float32 and
    integer (discrete) actions int64; rewards are float32, terminals/timeouts are float32 0/1
    flags (convenient inside TD targets).
    """
    obs = _as_float(observations)
    next_obs = _as_float(next_observations)
    act = np.asarray(actions)
    if np.issubdtype(act.dtype, np.floating):
        act = act.astype(np.float32)
    elif np.issubdtype(act.dtype, np.integer):
        act = act.astype(np.int64)  # discrete actions: one int64 index per step
    n = np.asarray(rewards).shape[0]
    return Transitions(
        observations=obs,
        actions=act,
        rewards=np.asarray(rewards, dtype=np.float32).reshape(n),
        next_observations=next_obs,
        terminals=np.asarray(terminals).astype(np.float32).reshape(n),
        timeouts=(
            np.zeros(n, np.float32)
            if timeouts is None
            else np.asarray(timeouts).astype(np.float32).reshape(n)
        ),
        extras={k: np.asarray(v) for k, v in (extras or {}).items()},
    )


def _as_float(x: Array) -> np.ndarray:
    x = np.asarray(x)
    return x.astype(np.float32) if x.dtype == np.float64 else x


def validate_transitions(t: Transitions, *, path: str | None = None) -> None:
    """Raise `DatasetError` naming the file and field on malformed data.

    Checks: every field has the same leading length, rewards/flags are 1-D, observations and
    next observations share a shape, flags are 0/1, and no float field holds NaN or inf.
    """
    n = len(t)
    fields: dict[str, Any] = {name: getattr(t, name) for name in CORE_FIELDS}
    fields.update({f"extras/{k}": v for k, v in t.extras.items()})
    for name, value in fields.items():
        arr = np.asarray(value)
        if arr.ndim == 0 or arr.shape[0] != n:
            raise DatasetError(
                f"has {arr.shape[0] if arr.ndim else 'no'} rows but 'rewards' has {n}",
                path=path,
                field=name,
            )
        if np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
            bad = np.flatnonzero(~np.all(np.isfinite(arr.reshape(n, -1)), axis=1))
            raise DatasetError(
                f"holds NaN or inf in {bad.size} rows (first at row {int(bad[0])})",
                path=path,
                field=name,
            )
    for name in ("rewards", "terminals", "timeouts"):
        if np.asarray(fields[name]).ndim != 1:
            raise DatasetError(
                f"must be 1-D, got shape {np.asarray(fields[name]).shape}", path=path, field=name
            )
    for name in ("terminals", "timeouts"):
        arr = np.asarray(fields[name])
        if not np.all((arr == 0) | (arr == 1)):
            raise DatasetError("must hold only 0/1 flags", path=path, field=name)
    obs_shape = np.asarray(t.observations).shape
    if np.asarray(t.next_observations).shape != obs_shape:
        raise DatasetError(
            f"shape {np.asarray(t.next_observations).shape} differs from observations' {obs_shape}",
            path=path,
            field="next_observations",
        )


def episode_slices(t: Transitions) -> list[slice]:
    """Contiguous index ranges of the episodes, in order.

    An episode ends after a step with ``terminals or timeouts``. A trailing run of steps with
    neither flag (the log stopped mid-episode) is returned as a last, incomplete episode; see
    `trailing_episode_complete`.
    """
    ends = np.flatnonzero(t.episode_ends)
    starts = np.concatenate([[0], ends + 1])
    stops = np.concatenate([ends + 1, [len(t)]])
    return [slice(int(a), int(b)) for a, b in zip(starts, stops, strict=True) if b > a]


def trailing_episode_complete(t: Transitions) -> bool:
    """Whether the last step of the data closes an episode."""
    return len(t) == 0 or bool(t.episode_ends[-1])


def episode_ids(t: Transitions) -> np.ndarray:
    """Integer id of the episode each step belongs to (0, 1, ... in order)."""
    ends = t.episode_ends.astype(np.int64)
    return np.concatenate([[0], np.cumsum(ends)[:-1]]) if len(t) else np.zeros(0, np.int64)


def find_discontinuities(t: Transitions, atol: float = 1e-6) -> np.ndarray:
    """Steps t with no end flag whose next observation is not the observation at t+1.

    Such a step hides an episode boundary; a well-formed dataset has none.
    """
    if len(t) < 2:
        return np.zeros(0, np.int64)
    nxt = np.asarray(t.next_observations[:-1]).reshape(len(t) - 1, -1)
    cur = np.asarray(t.observations[1:]).reshape(len(t) - 1, -1)
    jump = ~np.all(np.isclose(nxt, cur, atol=atol, rtol=0.0), axis=1)
    return np.flatnonzero(jump & ~t.episode_ends[:-1])


def discounted_returns_to_go(t: Transitions, gamma: float) -> np.ndarray:
    """Per-step discounted return to go within each episode: G_t = r_t + gamma * G_{t+1}.

    The sum stops at each episode's last step (terminal, time-out or end of data), so steps of a
    cut episode do not see rewards the log never recorded.
    """
    rewards = np.asarray(t.rewards, dtype=np.float64)
    out = np.zeros_like(rewards)
    ends = t.episode_ends
    running = 0.0
    for i in range(len(rewards) - 1, -1, -1):
        if ends[i] or i == len(rewards) - 1:
            running = 0.0
        running = rewards[i] + gamma * running
        out[i] = running
    return out.astype(np.float32)


def calql_mc_returns(
    t: Transitions,
    gamma: float,
    *,
    sparse_reward: bool = False,
    failure_reward: float | None = None,
) -> np.ndarray:
    """Monte-Carlo returns used by Cal-QL's lower bound (Nakamoto et al., 2023, Eq. 5).

    ``G_t = sum_{k>=0} gamma^k r_{t+k}`` within the episode (`discounted_returns_to_go`). With
    ``sparse_reward=True`` an episode whose rewards all equal ``failure_reward`` (it never
    reached the goal; default: the dataset's minimum reward) gets the value of failing forever,
    ``failure_reward / (1 - gamma)``, at every step, as the official Cal-QL code does for the
    sparse-reward AntMaze/Adroit tasks.
    """
    mc = discounted_returns_to_go(t, gamma)
    if not sparse_reward:
        return mc
    rewards = np.asarray(t.rewards, dtype=np.float64)
    fail = float(rewards.min()) if failure_reward is None else float(failure_reward)
    for sl in episode_slices(t):
        if np.all(np.isclose(rewards[sl], fail)):
            mc[sl] = fail / (1.0 - gamma)
    return mc


def next_actions(t: Transitions, atol: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    """The dataset's next action a'_t = a_{t+1} of every step, from episode order, and a mask
    of the steps that have one (ReBRAC's critic penalty, Tarasov et al., 2023).

    Returns ``(next_actions, has_next_action)``: ``next_actions[t] = actions[t + 1]`` and
    ``has_next_action[t] = 1.0`` for a step that is not an episode's last; at an episode's
    last step there is no recorded next action, so ``next_actions[t]`` is zeros and the mask
    0.0. That covers

    - a terminal step (``terminals``): the TD target does not bootstrap there anyway;
    - a time-out step (``timeouts``): the target bootstraps from ``next_observations``, but
      the action taken there was never recorded; a consumer must drop the term that needs it
      (ReBRAC's penalty is multiplied by the mask);
    - the last row of the data, whatever its flags (a trailing cut episode included).

    Boundaries are never guessed: a step with no end flag whose ``next_observations`` differs
    from the next row's observation (`find_discontinuities`) would pair it with another
    episode's action, so it raises `DatasetError` instead.
    """
    n = len(t)
    if t.actions.ndim < 2:
        raise DatasetError(
            "next actions need continuous (Box) actions of shape (N, A)", field="actions"
        )
    hidden = find_discontinuities(t, atol=atol)
    if hidden.size:
        raise DatasetError(
            f"{hidden.size} step(s) (first: {int(hidden[0])}) have no end flag, but their next "
            "observation is not the next row's observation: the next action is unknown there "
            "(mark the episode boundaries with terminals or timeouts)",
            field="next_observations",
        )
    actions = np.asarray(t.actions, np.float32)
    valid = np.zeros(n, bool)
    if n > 1:
        valid[:-1] = ~t.episode_ends[:-1]
    out = np.zeros_like(actions)
    out[:-1] = np.where(valid[:-1, None], actions[1:], 0.0)
    return out, valid.astype(np.float32)


def concatenate(parts: list[Transitions]) -> Transitions:
    """Stack transitions end to end; extras must be present in every part."""
    if not parts:
        raise DatasetError("cannot concatenate an empty list of datasets")
    keys = set(parts[0].extras)
    for p in parts[1:]:
        if set(p.extras) != keys:
            raise DatasetError(
                f"extras differ between datasets: {sorted(keys)} vs {sorted(p.extras)}",
                field="extras",
            )
    return jax.tree_util.tree_map(lambda *xs: np.concatenate(xs, axis=0), *parts)
