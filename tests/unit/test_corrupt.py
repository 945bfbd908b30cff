"""Tests of hybridrl.data.corrupt (RIQL data corruption, Yang et al., ICLR 2024)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from hybridrl.data.corrupt import corrupt_dataset
from hybridrl.data.dataset import Dataset, DatasetMetadata
from hybridrl.data.transitions import make_transitions
from hybridrl.types import HybridRLError, SpaceSpec

OBS_SPACE = SpaceSpec(
    kind="box", shape=(3,), dtype="float32", low=(-np.inf,) * 3, high=(np.inf,) * 3
)
ACT_SPACE = SpaceSpec(kind="box", shape=(2,), dtype="float32", low=(-1.0,) * 2, high=(1.0,) * 2)
OBS_SCALE = np.array([1.0, 3.0, 0.2])


def make_dataset(n: int = 2000, ep_len: int = 100, seed: int = 0) -> Dataset:
    """Episodes of ``ep_len`` steps, alternately ending in a terminal and a time-out."""
    rng = np.random.default_rng(seed)
    n_ep = n // ep_len
    obs, nxt = [], []
    for _ in range(n_ep):
        seq = rng.normal(size=(ep_len + 1, 3)) * OBS_SCALE
        obs.append(seq[:-1])
        nxt.append(seq[1:])
    ends = np.zeros(n, bool)
    ends[ep_len - 1 :: ep_len] = True
    term = ends & (np.arange(n) // ep_len % 2 == 0)
    tout = ends & ~term
    t = make_transitions(
        np.concatenate(obs),
        rng.uniform(-0.9, 0.9, size=(n, 2)),
        rng.normal(size=n),
        np.concatenate(nxt),
        term,
        tout,
    )
    meta = DatasetMetadata(OBS_SPACE, ACT_SPACE, env_id="Toy-v0", source="test", name="toy")
    return Dataset.create(t, meta)


@pytest.fixture(scope="module")
def big() -> Dataset:
    return make_dataset(20_000)


@pytest.fixture(scope="module")
def small() -> Dataset:
    return make_dataset(2_000)


def std_of(ds: Dataset, field: str) -> np.ndarray:
    return np.asarray(getattr(ds.transitions, field), np.float64).std(axis=0)


def assert_within_rate(mask: np.ndarray, rate: float) -> None:
    n = mask.size
    tol = 3 * np.sqrt(n * rate * (1 - rate))
    assert abs(mask.sum() - n * rate) <= tol


# --------------------------------------------------------------------------- random
@pytest.mark.parametrize(
    ("kind", "field"), [("observations", "observations"), ("dynamics", "next_observations")]
)
def test_random_state_noise(big, kind, field):
    out = corrupt_dataset(big, kind, rate=0.3, scale=0.5, seed=1)
    mask = out.transitions.extras[f"corrupted_{kind}"]
    assert mask.dtype == bool
    assert_within_rate(mask, 0.3)
    clean = np.asarray(getattr(big.transitions, field), np.float64)
    new = np.asarray(getattr(out.transitions, field), np.float64)
    np.testing.assert_array_equal(new[~mask], clean[~mask])
    diff = np.abs(new[mask] - clean[mask])
    bound = 0.5 * std_of(big, field)
    assert np.all(diff <= bound * (1 + 1e-5) + 1e-6)
    assert np.all(np.any(diff > 0, axis=1))
    # Noise is uniform over the box: it fills it (largest |δ| near ε·std in every dimension).
    assert np.all(diff.max(axis=0) > 0.95 * bound)
    # Other fields are untouched.
    other = "next_observations" if field == "observations" else "observations"
    np.testing.assert_array_equal(getattr(out.transitions, other), getattr(big.transitions, other))
    np.testing.assert_array_equal(out.transitions.rewards, big.transitions.rewards)
    np.testing.assert_array_equal(out.transitions.actions, big.transitions.actions)


def test_random_actions_clipped_by_default(big):
    out = corrupt_dataset(big, "actions", scale=2.0, seed=2)
    act = np.asarray(out.transitions.actions)
    mask = out.transitions.extras["corrupted_actions"]
    assert_within_rate(mask, 0.3)
    assert act.min() >= -1.0 and act.max() <= 1.0
    np.testing.assert_array_equal(act[~mask], big.transitions.actions[~mask])
    assert np.isclose(np.abs(act[mask]), 1.0).any()  # some hit the bounds


def test_random_actions_unclipped_reproduce_riql(big):
    out = corrupt_dataset(big, "actions", scale=2.0, seed=2, clip_actions=False)
    clipped = corrupt_dataset(big, "actions", scale=2.0, seed=2)
    act = np.asarray(out.transitions.actions, np.float64)
    mask = out.transitions.extras["corrupted_actions"]
    assert np.abs(act).max() > 1.0  # RIQL lets actions leave the space
    diff = np.abs(act[mask] - big.transitions.actions[mask])
    assert np.all(diff <= 2.0 * std_of(big, "actions") * (1 + 1e-5))
    np.testing.assert_allclose(clipped.transitions.actions, np.clip(act, -1, 1), atol=1e-7)


def test_random_rewards(big):
    out = corrupt_dataset(big, "rewards", scale=0.5, seed=3)
    mask = out.transitions.extras["corrupted_rewards"]
    assert_within_rate(mask, 0.3)
    r = np.asarray(out.transitions.rewards)
    assert np.all(np.abs(r[mask]) <= 15.0)
    assert r[mask].max() > 14.0 and r[mask].min() < -14.0  # U(-30ε, 30ε) fills the range
    np.testing.assert_array_equal(r[~mask], big.transitions.rewards[~mask])


@pytest.mark.parametrize("rate", [0.0, 1.0])
def test_rate_extremes(small, rate):
    out = corrupt_dataset(small, "rewards", mode="adversarial", rate=rate, scale=1.0)
    mask = out.transitions.extras["corrupted_rewards"]
    assert mask.all() if rate == 1.0 else not mask.any()


def test_determinism_and_seeds(small):
    a = corrupt_dataset(small, ["observations", "rewards"], seed=7)
    b = corrupt_dataset(small, ["observations", "rewards"], seed=7)
    c = corrupt_dataset(small, ["observations", "rewards"], seed=8)
    assert a.content_hash() == b.content_hash()
    assert a.content_hash() != c.content_hash()
    ma, mc = (
        a.transitions.extras["corrupted_observations"],
        c.transitions.extras["corrupted_observations"],
    )
    assert not np.array_equal(ma, mc)


def test_several_kinds_pick_rows_independently(big):
    out = corrupt_dataset(big, ["observations", "actions", "rewards", "dynamics"], seed=4)
    masks = {
        k: out.transitions.extras[f"corrupted_{k}"]
        for k in ("observations", "actions", "rewards", "dynamics")
    }
    for m in masks.values():
        assert_within_rate(m, 0.3)
    # Independent selection: overlap of two kinds ~ rate^2.
    both = masks["observations"] & masks["rewards"]
    assert_within_rate(both, 0.09)
    # A kind's rows and noise do not depend on the other kinds requested.
    alone = corrupt_dataset(big, "observations", seed=4)
    np.testing.assert_array_equal(alone.transitions.observations, out.transitions.observations)
    prov = out.metadata.provenance["transforms"][-1]
    assert prov["kind"] == ["observations", "actions", "rewards", "dynamics"]
    assert prov["corrupted"] == {k: int(m.sum()) for k, m in masks.items()}


def test_provenance_and_metadata(small):
    base = small.transform_rewards(scale=2.0)
    out = corrupt_dataset(base, "observations", rate=0.2, scale=0.1, seed=5)
    assert out.metadata.source == "corrupt"
    assert out.metadata.env_id == "Toy-v0" and out.metadata.name == "toy"
    ops = out.metadata.provenance["transforms"]
    assert [op["op"] for op in ops] == ["reward_transform", "corrupt"]
    last = ops[-1]
    mask = out.transitions.extras["corrupted_observations"]
    assert last == {
        "op": "corrupt",
        "kind": ["observations"],
        "mode": "random",
        "rate": 0.2,
        "scale": 0.1,
        "seed": 5,
        "clip_actions": True,
        "corrupted": {"observations": int(mask.sum())},
    }
    assert small.metadata.source == "test"  # input untouched


def test_repeated_corruption_accumulates_mask(small):
    once = corrupt_dataset(small, "rewards", seed=0)
    twice = corrupt_dataset(once, "rewards", seed=1)
    m0 = once.transitions.extras["corrupted_rewards"]
    m1 = twice.transitions.extras["corrupted_rewards"]
    assert np.all(m1 >= m0) and m1.sum() > m0.sum()


def test_mc_returns_warning(small):
    with pytest.warns(UserWarning, match="mc_returns"):
        corrupt_dataset(small.with_mc_returns(0.99), "rewards")


# --------------------------------------------------------------------------- adversarial
def test_adversarial_rewards(big):
    out = corrupt_dataset(big, "rewards", mode="adversarial", scale=0.5, seed=3)
    mask = out.transitions.extras["corrupted_rewards"]
    assert_within_rate(mask, 0.3)
    r = np.asarray(out.transitions.rewards)
    np.testing.assert_allclose(r[mask], -0.5 * big.transitions.rewards[mask], rtol=1e-6)
    np.testing.assert_array_equal(r[~mask], big.transitions.rewards[~mask])
    assert out.metadata.provenance["transforms"][-1]["attack_steps"] == 100


def q_sum_actions(obs, act):
    return jnp.sum(act, axis=-1)


def test_adversarial_actions_reach_lower_box_edge(small):
    eps = 0.5
    # 200 steps of 0.01·ε move δ across the whole box [-ε, ε] whatever its start.
    out = corrupt_dataset(
        small,
        "actions",
        mode="adversarial",
        scale=eps,
        critic=q_sum_actions,
        clip_actions=False,
        attack_steps=200,
    )
    mask = out.transitions.extras["corrupted_actions"]
    assert_within_rate(mask, 0.3)
    act = np.asarray(out.transitions.actions, np.float64)
    clean = np.asarray(small.transitions.actions, np.float64)
    np.testing.assert_allclose(act[mask], clean[mask] - eps * std_of(small, "actions"), atol=1e-5)
    np.testing.assert_array_equal(act[~mask], clean[~mask])


def test_adversarial_actions_default_steps_lower_q_within_box(small):
    eps = 1.0
    out = corrupt_dataset(
        small,
        "actions",
        mode="adversarial",
        scale=eps,
        critic=q_sum_actions,
        seed=9,
        clip_actions=False,
    )
    mask = out.transitions.extras["corrupted_actions"]
    act = np.asarray(out.transitions.actions, np.float64)[mask]
    clean = np.asarray(small.transitions.actions, np.float64)[mask]
    u = (act - clean) / std_of(small, "actions")  # δ in units of std
    # 100 steps of 0.01·ε from u0 ~ U(-ε, ε): u = max(u0 - ε, -ε), in [-ε, 0], mean -0.75ε.
    assert np.all(u <= 1e-5) and np.all(u >= -eps - 1e-5)
    assert np.mean(u) == pytest.approx(-0.75 * eps, abs=0.05 * eps)
    assert np.all(np.asarray(q_sum_actions(None, act)) < np.asarray(q_sum_actions(None, clean)))
    # Clipped (default): same attack, then clipped to the action space.
    default = corrupt_dataset(
        small, "actions", mode="adversarial", scale=eps, critic=q_sum_actions, seed=9
    )
    np.testing.assert_allclose(
        default.transitions.actions, np.clip(out.transitions.actions, -1, 1), atol=1e-7
    )


def test_adversarial_observations_follow_critic_gradient(small):
    w = jnp.array([1.0, -1.0, 2.0])

    def critic(obs, act):  # an ensemble of two identical members: shape (2, B)
        q = obs @ w + 0.0 * jnp.sum(act, -1)
        return jnp.stack([q, q])

    eps = 0.3
    out = corrupt_dataset(
        small,
        "observations",
        mode="adversarial",
        scale=eps,
        critic=critic,
        attack_steps=200,
        seed=1,
    )
    mask = out.transitions.extras["corrupted_observations"]
    obs = np.asarray(out.transitions.observations, np.float64)
    clean = np.asarray(small.transitions.observations, np.float64)
    expected = clean[mask] - eps * std_of(small, "observations") * np.sign(np.asarray(w))
    np.testing.assert_allclose(obs[mask], expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(
        out.transitions.next_observations, small.transitions.next_observations
    )


def test_adversarial_dynamics_uses_policy(small):
    def critic(obs, act):
        return jnp.sum(obs, -1) + 10.0 * jnp.sum(act, -1)

    def policy(obs):  # acts on the (attacked) next state: pushes dimension 1 up, not down
        return -jnp.stack([obs[:, 1], obs[:, 1]], -1)

    # d/ds1 of Q(s, pi(s)) = 1 - 20 < 0: the attack raises dimension 1 and lowers 0 and 2.
    eps = 0.2
    out = corrupt_dataset(
        small,
        "dynamics",
        mode="adversarial",
        scale=eps,
        critic=critic,
        policy=policy,
        attack_steps=200,
    )
    mask = out.transitions.extras["corrupted_dynamics"]
    new = np.asarray(out.transitions.next_observations, np.float64)
    clean = np.asarray(small.transitions.next_observations, np.float64)
    sign = np.array([-1.0, 1.0, -1.0])
    np.testing.assert_allclose(
        new[mask], clean[mask] + eps * std_of(small, "next_observations") * sign, atol=1e-5
    )
    np.testing.assert_array_equal(out.transitions.observations, small.transitions.observations)


def test_adversarial_deterministic(small):
    kw = {"mode": "adversarial", "critic": q_sum_actions, "seed": 3, "attack_steps": 10}
    a = corrupt_dataset(small, "actions", **kw)
    b = corrupt_dataset(small, "actions", **kw)
    np.testing.assert_array_equal(a.transitions.actions, b.transitions.actions)


# --------------------------------------------------------------------------- errors
def test_errors(small):
    with pytest.raises(HybridRLError, match="unknown corruption kind"):
        corrupt_dataset(small, "states")
    with pytest.raises(HybridRLError, match="unknown corruption mode"):
        corrupt_dataset(small, "rewards", mode="worst")
    with pytest.raises(HybridRLError, match=r"rate must be in \[0, 1\]"):
        corrupt_dataset(small, "rewards", rate=1.5)
    with pytest.raises(HybridRLError, match="scale"):
        corrupt_dataset(small, "rewards", scale=-0.1)
    with pytest.raises(HybridRLError, match="at least one kind"):
        corrupt_dataset(small, [])
    with pytest.raises(HybridRLError, match="repeat"):
        corrupt_dataset(small, ["rewards", "rewards"])
    for kind in ("observations", "actions", "dynamics"):
        with pytest.raises(HybridRLError, match="needs critic"):
            corrupt_dataset(small, kind, mode="adversarial")
    with pytest.raises(HybridRLError, match="needs policy"):
        corrupt_dataset(small, "dynamics", mode="adversarial", critic=q_sum_actions)


def test_discrete_actions_rejected():
    obs = np.zeros((4, 3))
    t = make_transitions(obs, np.array([0, 1, 2, 0]), np.ones(4), obs, [0, 0, 0, 1])
    space = SpaceSpec(kind="discrete", shape=(), dtype="int64", n=3)
    ds = Dataset.create(t, DatasetMetadata(OBS_SPACE, space))
    with pytest.raises(HybridRLError, match="continuous"):
        corrupt_dataset(ds, "actions")
    # Rewards (and states) stay well defined with discrete actions.
    out = corrupt_dataset(ds, "rewards", mode="adversarial", rate=1.0)
    np.testing.assert_array_equal(out.transitions.rewards, -np.ones(4))


def test_attack_independent_of_chunking(small, monkeypatch):
    import hybridrl.data.corrupt as corrupt_mod

    def critic(obs, act):
        return jnp.sum(jnp.tanh(obs) * act[:, :1], -1)

    kw = {"mode": "adversarial", "critic": critic, "seed": 2, "attack_steps": 20}
    whole = corrupt_dataset(small, "observations", **kw)
    monkeypatch.setattr(corrupt_mod, "ATTACK_CHUNK", 97)  # several chunks, last one padded
    chunked = corrupt_dataset(small, "observations", **kw)
    np.testing.assert_allclose(
        chunked.transitions.observations, whole.transitions.observations, atol=1e-6
    )
