"""Offline training: an agent, a `Dataset`, and chunks of jitted updates.

Agents work with actions in [-1, 1]; `train_offline` maps the dataset's actions from the
action space's bounds into that range (and `evaluate` acts in an env rescaled the same way),
and optionally standardizes observations (TD3+BC does), returning the statistics so the
evaluation env can apply them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import jax
import numpy as np
from tqdm.auto import tqdm

from hybridrl.data.dataset import Dataset
from hybridrl.data.replay import from_dataset
from hybridrl.data.transitions import Transitions
from hybridrl.training.updates import scan_updates
from hybridrl.types import HybridRLError


@dataclass
class OfflineResult:
    """The trained state, the observation statistics used (if any) and the last metrics."""

    state: Any
    obs_stats: tuple[np.ndarray, np.ndarray] | None = None
    metrics: dict[str, float] = field(default_factory=dict)


def unit_actions(ds: Dataset) -> Transitions:
    """The dataset's transitions with Box actions mapped affinely onto [-1, 1]."""
    space = ds.metadata.action_space
    if space.kind != "box":
        raise HybridRLError("continuous-control agents need a Box action space")
    lo, hi = space.low_array, space.high_array
    if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
        raise HybridRLError("actions need finite bounds to be mapped onto [-1, 1]")
    t = ds.transitions
    unit = 2.0 * (np.asarray(t.actions, np.float64) - lo) / (hi - lo) - 1.0
    return t.replace(actions=np.clip(unit, -1.0, 1.0).astype(np.float32))


def train_offline(
    agent: ModuleType,
    config: Any,
    dataset: Dataset,
    *,
    num_updates: int,
    batch_size: int = 256,
    seed: int = 0,
    normalize_observations: bool = False,
    chunk_size: int = 1000,
    progress: bool = True,
) -> OfflineResult:
    """Train ``agent`` for ``num_updates`` updates on uniform minibatches of ``dataset``."""
    if num_updates <= 0:
        raise HybridRLError(f"num_updates must be positive, got {num_updates}")
    obs_stats = None
    if normalize_observations:
        obs_stats = dataset.observation_stats()
        dataset = dataset.normalize_observations(*obs_stats)
    transitions = unit_actions(dataset)
    obs_dim = int(np.prod(transitions.observations.shape[1:]))
    act_dim = int(np.prod(transitions.actions.shape[1:]))
    key = jax.random.PRNGKey(seed)
    key, k_init = jax.random.split(key)
    state = agent.init(config, k_init, obs_dim, act_dim)
    buffer = from_dataset(transitions)
    metrics: dict[str, jax.Array] = {}
    done = 0
    with tqdm(total=num_updates, disable=not progress, desc="offline") as bar:
        while done < num_updates:
            n = min(chunk_size, num_updates - done)
            key, k = jax.random.split(key)
            state, metrics = scan_updates(
                agent.update, state, buffer, k, num_updates=n, batch_size=batch_size
            )
            done += n
            bar.update(n)
    return OfflineResult(
        state=state, obs_stats=obs_stats, metrics={k: float(v) for k, v in metrics.items()}
    )
