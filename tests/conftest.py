"""Shared fixtures: tiny datasets built by hand, with known boundaries."""

from __future__ import annotations

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import gymnasium as gym
import numpy as np
import pytest

from hybridrl.data.dataset import Dataset, DatasetMetadata
from hybridrl.data.transitions import make_transitions
from hybridrl.types import SpaceSpec


def make_chain_dataset(
    episode_lengths: tuple[int, ...] = (3, 4, 2),
    ends: tuple[str, ...] = ("terminal", "timeout", "terminal"),
    obs_dim: int = 3,
    act_dim: int = 2,
    seed: int = 0,
    episode_rewards: tuple[float, ...] | None = None,
) -> Dataset:
    """Episodes whose next observations chain into the following step's observation.

    ``ends[i]`` is ``terminal``, ``timeout`` or ``none`` (the log stops mid-episode).
    ``episode_rewards[i]``, when given, is episode i's constant per-step reward (else random).
    """
    rng = np.random.default_rng(seed)
    obs, nxt, act, rew, term, tout = [], [], [], [], [], []
    rewards = episode_rewards or (None,) * len(episode_lengths)
    for length, end, reward in zip(episode_lengths, ends, rewards, strict=True):
        states = rng.normal(size=(length + 1, obs_dim)).astype(np.float32)
        obs.append(states[:-1])
        nxt.append(states[1:])
        act.append(rng.uniform(-1, 1, size=(length, act_dim)).astype(np.float32))
        rew.append(
            np.full(length, reward, np.float32)
            if reward is not None
            else rng.normal(size=length).astype(np.float32)
        )
        t = np.zeros(length, np.float32)
        o = np.zeros(length, np.float32)
        if end == "terminal":
            t[-1] = 1
        elif end == "timeout":
            o[-1] = 1
        term.append(t)
        tout.append(o)
    transitions = make_transitions(
        np.concatenate(obs),
        np.concatenate(act),
        np.concatenate(rew),
        np.concatenate(nxt),
        np.concatenate(term),
        np.concatenate(tout),
    )
    meta = DatasetMetadata(
        observation_space=SpaceSpec.from_gym(gym.spaces.Box(-np.inf, np.inf, (obs_dim,))),
        action_space=SpaceSpec.from_gym(gym.spaces.Box(-1.0, 1.0, (act_dim,))),
        env_id=None,
        source="test",
        ref_min_score=-10.0,
        ref_max_score=10.0,
        name="chain",
    )
    return Dataset.create(transitions, meta)


@pytest.fixture
def chain_dataset() -> Dataset:
    return make_chain_dataset()


@pytest.fixture(autouse=True)
def _isolated_minari_store(tmp_path_factory: pytest.TempPathFactory, monkeypatch) -> None:
    """Never touch the user's ~/.minari: every test gets its own store."""
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path_factory.mktemp("minari")))


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """Drop JAX's compiled programs after each test module.

    One pytest process compiles thousands of XLA programs across the suite; each keeps memory
    mappings for its code, and near the kernel's limit (vm.max_map_count, 65530 by default)
    LLVM aborts the process in the middle of a compilation.
    """
    yield
    import jax

    jax.clear_caches()
