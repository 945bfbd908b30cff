"""PPO's and PROPS' policies export to the portable format (kinds ``linear_gaussian`` and
``categorical``, format version 3) and act as ``agent.act`` does on RAW observations: the
state's running statistics (not the run's) standardize them, then the config's clip.

Golden test: for states with non-trivial running statistics and perturbed actor parameters,
the saved-and-reloaded policy's deterministic actions equal ``agent.act(state, obs, key,
deterministic=True)`` (Box: mapped onto the bounds, to 1e-5; Discrete: the same indices).
"""

from __future__ import annotations

import dataclasses
import json
from functools import cache

import jax
import numpy as np
import pytest

from hybridrl.agents import get_agent
from hybridrl.policies import MLPPolicy
from hybridrl.training.export import policy_from_agent
from hybridrl.types import HybridRLError, SpaceSpec

OBS_DIM, ACT_DIM, N_ACTIONS = 5, 2, 4
BOX = SpaceSpec("box", (ACT_DIM,), "float32", (-2.0, -0.5), (2.0, 1.5))  # asymmetric
DISCRETE = SpaceSpec("discrete", (), "int64", n=N_ACTIONS)
# (agent, action kind, normalize_observations)
CASES = [
    ("ppo", "box", True),
    ("ppo", "box", False),
    ("ppo", "discrete", True),
    ("ppo", "discrete", False),
    ("props", "box", True),
    ("props", "discrete", True),
]


def _state(name: str, kind: str, normalize: bool):
    """A tiny agent state whose actor parameters are moved off their orthogonal init and whose
    observation statistics have seen shifted, scaled data (mean ≠ 0, var ≠ 1)."""
    agent, state = _built(name, kind)
    config = dataclasses.replace(state.config, normalize_observations=normalize)
    return agent, state.replace(config=config)


@cache
def _built(name: str, kind: str):
    """One compiled call per agent and action kind, shared by the tests (eagerly, the many
    small ops of the orthogonal inits take seconds to compile on a CPU)."""
    agent = get_agent(name)
    discrete = kind == "discrete"
    act_dim = N_ACTIONS if discrete else ACT_DIM
    rng = np.random.default_rng(2)
    data = rng.normal(size=(300, OBS_DIM)) * rng.uniform(0.1, 5, OBS_DIM) + rng.normal(
        0, 3, OBS_DIM
    )

    def build(config, data):
        state = agent.init(config, jax.random.PRNGKey(0), OBS_DIM, act_dim, discrete=discrete)
        leaves, tree = jax.tree_util.tree_flatten(state.actor.params)
        keys = jax.random.split(jax.random.PRNGKey(1), len(leaves))
        noisy = [x + 0.5 * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys, strict=True)]
        actor = state.actor.replace(params=jax.tree_util.tree_unflatten(tree, noisy))
        return state.replace(actor=actor, obs_norm=state.obs_norm.update(data))

    return agent, jax.jit(build)(agent.Config(hidden_dims=(8, 8)), data.astype(np.float32))


def _raw_observations(n: int = 64) -> np.ndarray:
    """Raw observations, a quarter of them far out (their standardized values exceed the
    clip of 10, so a missing clip shows)."""
    rng = np.random.default_rng(3)
    obs = rng.normal(0, 3, size=(n, OBS_DIM)) * rng.uniform(0.1, 5, OBS_DIM)
    obs[: n // 4] *= 40.0
    return obs.astype(np.float32)


def _space(kind: str) -> SpaceSpec:
    return DISCRETE if kind == "discrete" else BOX


@pytest.mark.parametrize(("name", "kind", "normalize"), CASES)
def test_exported_policy_acts_like_the_agent(name, kind, normalize, tmp_path):
    agent, state = _state(name, kind, normalize)
    policy = MLPPolicy.load(
        policy_from_agent(state, _space(kind), info={"agent": name}).save(tmp_path / "p.npz")
    )
    assert policy.kind == ("categorical" if kind == "discrete" else "linear_gaussian")
    assert policy.info == {"agent": name}
    assert (policy.obs_clip is not None) == normalize
    obs = _raw_observations()
    if normalize:  # the clip is exercised
        assert np.abs(np.asarray(agent.apply_observation_norm(state, obs))).max() == 10.0
    expected = np.asarray(agent.act(state, obs, jax.random.PRNGKey(5), True))
    got = policy.act(obs, deterministic=True, rng=np.random.default_rng(0))
    if kind == "discrete":
        assert got.dtype == np.int64 and got.shape == (len(obs),)
        np.testing.assert_array_equal(got, expected)
        assert len(set(got.tolist())) > 1  # not a constant policy
    else:
        unit = BOX.low_array + (expected + 1.0) / 2.0 * (BOX.high_array - BOX.low_array)
        np.testing.assert_allclose(got, unit, rtol=1e-5, atol=1e-5)
        assert np.any(np.abs(expected) == 1.0) and np.any(np.abs(expected) < 1.0)  # clipped

    # log_prob is the agent's distribution's, on what its network sees
    dist = state.actor.apply_fn(
        {"params": state.actor.params}, agent.apply_observation_norm(state, obs)
    )
    rng = np.random.default_rng(4)
    if kind == "discrete":
        actions = rng.integers(0, N_ACTIONS, size=len(obs))
        expected_logp = np.asarray(dist.log_prob(actions))
        np.testing.assert_allclose(policy.log_prob(obs, actions), expected_logp, atol=1e-4)
    else:
        unit_actions = rng.uniform(-0.9, 0.9, size=(len(obs), ACT_DIM)).astype(np.float32)
        half = (BOX.high_array - BOX.low_array) / 2.0
        scaled = BOX.low_array + (unit_actions + 1.0) * half
        expected_logp = np.asarray(dist.log_prob(unit_actions)) - np.sum(np.log(half))
        np.testing.assert_allclose(policy.log_prob(obs, scaled), expected_logp, atol=1e-4)


def test_stochastic_actions_follow_the_agents_distribution():
    """Box: ``clip(mean + σ ε, -1, 1)`` mapped to the bounds, σ = exp(log_std) of the state
    (unclipped); Discrete: samples with the softmax's frequencies."""
    agent, state = _state("ppo", "box", True)
    box = policy_from_agent(state, BOX)
    obs = _raw_observations(256)
    samples = box.act(obs, deterministic=False, rng=np.random.default_rng(1))
    dist = state.actor.apply_fn(
        {"params": state.actor.params}, agent.apply_observation_norm(state, obs)
    )
    eps = np.random.default_rng(1).standard_normal((len(obs), ACT_DIM))
    unit = np.clip(np.asarray(dist.mean) + np.exp(np.asarray(dist.log_std)) * eps, -1.0, 1.0)
    expected = BOX.low_array + (unit + 1.0) / 2.0 * (BOX.high_array - BOX.low_array)
    np.testing.assert_allclose(samples, expected, rtol=1e-5, atol=1e-5)
    det = box.act(obs, deterministic=True, rng=np.random.default_rng(0))
    assert not np.allclose(samples, det)

    agent, dstate = _state("ppo", "discrete", True)
    cat = policy_from_agent(dstate, DISCRETE)
    one = np.repeat(obs[-1:], 4000, axis=0)
    draws = cat.act(one, deterministic=False, rng=np.random.default_rng(2))
    ddist = dstate.actor.apply_fn(
        {"params": dstate.actor.params}, agent.apply_observation_norm(dstate, one[:1])
    )
    probs = np.asarray(jax.nn.softmax(ddist.logits))[0]
    freq = np.bincount(draws, minlength=N_ACTIONS) / len(draws)
    np.testing.assert_allclose(freq, probs, atol=0.03)


def test_format_version_3_header_and_round_trip(tmp_path):
    _, state = _state("ppo", "discrete", True)
    path = policy_from_agent(state, DISCRETE).save(tmp_path / "cat.npz")
    with np.load(path) as data:
        header = json.loads(str(data["__policy__"]))
        assert "action_low" not in data.files  # a Discrete space has no bounds
    assert header["format_version"] == 3 and header["kind"] == "categorical"
    assert header["num_actions"] == N_ACTIONS and header["obs_clip"] == 10.0
    loaded = MLPPolicy.load(path)
    assert loaded.num_actions == N_ACTIONS and loaded.action_dim == 1

    _, box_state = _state("ppo", "box", False)
    box = policy_from_agent(box_state, BOX)
    loaded_box = MLPPolicy.load(box.save(tmp_path / "box.npz"))
    with np.load(tmp_path / "box.npz") as data:
        header = json.loads(str(data["__policy__"]))
    assert header["format_version"] == 3 and header["log_std_range"] is None
    assert loaded_box.log_std_range is None and loaded_box.obs_clip is None
    np.testing.assert_array_equal(loaded_box.log_std, box.log_std)
    for a, b in zip(loaded_box.kernels, box.kernels, strict=True):
        np.testing.assert_array_equal(a, b)


def test_spaces_are_checked():
    _, state = _state("ppo", "discrete", False)
    cat = policy_from_agent(state, DISCRETE)
    cat.check_spaces(OBS_DIM, DISCRETE, where="p.npz", env="E")
    with pytest.raises(HybridRLError, match=r"p\.npz acts in Discrete\(4\); E's"):
        cat.check_spaces(OBS_DIM, SpaceSpec("discrete", (), "int64", n=3), where="p.npz", env="E")
    with pytest.raises(HybridRLError, match=r"Discrete\(4\)"):
        cat.check_spaces(OBS_DIM, BOX, where="p.npz", env="E")
    with pytest.raises(HybridRLError, match="needs a Discrete"):
        policy_from_agent(state, BOX)
    _, box_state = _state("ppo", "box", False)
    with pytest.raises(HybridRLError, match="needs a Box"):
        policy_from_agent(box_state, DISCRETE)
    with pytest.raises(HybridRLError, match="num_actions"):
        MLPPolicy(
            kernels=cat.kernels,
            biases=cat.biases,
            kind="categorical",
            action_low=cat.action_low,
            action_high=cat.action_high,
            num_actions=3,
        )
