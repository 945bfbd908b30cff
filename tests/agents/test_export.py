"""Every agent's policy exports to the portable numpy format and acts as the agent does.

Golden test: the saved-and-reloaded `MLPPolicy` gives ``agent.act(state, obs, key,
deterministic=True)`` mapped onto the action bounds, to 1e-5, with and without observation
normalization; its ``log_prob`` is the agent's distribution's, where the head has one.
"""

from __future__ import annotations

import json
import subprocess
import sys
from types import SimpleNamespace

import jax
import numpy as np
import optax
import pytest

from hybridrl.agents import AGENTS, get_agent
from hybridrl.core.train_state import TrainState
from hybridrl.networks.heads import TanhGaussianActor
from hybridrl.policies import POLICY_FORMAT_VERSION, MLPPolicy
from hybridrl.training.export import policy_from_agent
from hybridrl.types import HybridRLError, SpaceSpec
from tests.agents.test_contract import ACT_DIM, OBS_DIM, TINY_CONFIGS

# Asymmetric bounds, so a wrong affine map cannot pass.
BOX = SpaceSpec("box", (ACT_DIM,), "float32", (-2.0, -0.5), (2.0, 1.5))
# Actor variants the registered configs do not reach by default.
VARIANTS = {
    "bc_mse": ("bc", {"loss": "mse"}),
    "bc_tanh_gaussian": ("bc", {"nll_actor": "tanh_gaussian"}),
    "iql_deterministic": ("iql", {"actor": "deterministic"}),
}
# Policies the one-MLP portable format cannot hold: FamO2O acts with two networks (the balance
# model picks β, the universal actor reads concat(s, φ(β))).
NOT_PORTABLE = {"famo2o": "ConditionedActor"}
CASES = sorted(set(AGENTS) - set(NOT_PORTABLE)) + sorted(VARIANTS)


def _perturbed(state, seed: int):
    """The agent's state with actor parameters moved off their near-zero initialization (the
    final layers start at scale 1e-2; a test of tiny outputs would prove little)."""
    leaves, tree = jax.tree_util.tree_flatten(state.actor.params)
    keys = jax.random.split(jax.random.PRNGKey(seed), len(leaves))
    noisy = [x + 0.5 * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys, strict=True)]
    actor = state.actor.replace(params=jax.tree_util.tree_unflatten(tree, noisy))
    return state.replace(actor=actor)


def _state(case: str):
    name, overrides = VARIANTS.get(case, (case, {}))
    agent = get_agent(name)
    config = TINY_CONFIGS[name](agent).replace(**overrides)
    state = agent.init(config, jax.random.PRNGKey(0), OBS_DIM, ACT_DIM)
    return agent, _perturbed(state, 1)


def _scaled(unit: np.ndarray) -> np.ndarray:
    return BOX.low_array + (unit + 1.0) / 2.0 * (BOX.high_array - BOX.low_array)


def _check_policy(agent_act, state, policy: MLPPolicy, stats, net_input=None) -> None:
    """``net_input(state, x)``: what the actor network sees for the agent's input ``x`` (an
    agent that normalises inside ``act``, PPO's ``apply_observation_norm``); default ``x``."""
    rng = np.random.default_rng(3)
    obs = rng.normal(size=(64, OBS_DIM)).astype(np.float32) * 3.0
    x = obs if stats is None else (obs - stats[0]) / stats[1]
    unit = np.asarray(agent_act(state, x.astype(np.float32), jax.random.PRNGKey(5), True))
    got = policy.act(obs, deterministic=True, rng=np.random.default_rng(0))
    np.testing.assert_allclose(got, _scaled(unit), rtol=1e-5, atol=1e-5)

    seen = x.astype(np.float32) if net_input is None else net_input(state, x.astype(np.float32))
    dist = state.actor.apply_fn({"params": state.actor.params}, seen)
    actions = rng.uniform(-0.9, 0.9, size=(64, ACT_DIM)).astype(np.float32)
    logp = policy.log_prob(obs, _scaled(actions))
    if isinstance(dist, jax.Array):
        assert policy.kind == "deterministic" and logp is None
        return
    assert logp is not None
    half = (BOX.high_array - BOX.low_array) / 2.0
    expected = np.asarray(dist.log_prob(actions)) - np.sum(np.log(half))
    np.testing.assert_allclose(logp, expected, rtol=1e-4, atol=1e-4)
    sampled = policy.act(obs, deterministic=False, rng=np.random.default_rng(1))
    assert np.all(sampled >= BOX.low_array - 1e-6) and np.all(sampled <= BOX.high_array + 1e-6)
    assert not np.allclose(sampled, got)  # a stochastic head samples


@pytest.mark.parametrize("normalize", [False, True], ids=["raw", "normalized"])
@pytest.mark.parametrize("case", CASES)
def test_exported_policy_acts_like_the_agent(case, normalize, tmp_path):
    agent, state = _state(case)
    rng = np.random.default_rng(2)
    stats = (
        (
            rng.normal(size=OBS_DIM).astype(np.float32),
            rng.uniform(0.5, 2, OBS_DIM).astype(np.float32),
        )
        if normalize
        else None
    )
    exported = policy_from_agent(state, BOX, obs_stats=stats, info={"agent": case})
    policy = MLPPolicy.load(exported.save(tmp_path / "p.npz"))
    assert policy.info == {"agent": case}
    _check_policy(agent.act, state, policy, stats, getattr(agent, "apply_observation_norm", None))


def test_layer_norm_trunk_and_state_independent_std(tmp_path):
    """Heads no registered agent builds today still export exactly (format version 2)."""
    net = TanhGaussianActor((8, 8), ACT_DIM, layer_norm=True, state_dependent_std=False)
    params = net.init(jax.random.PRNGKey(0), np.zeros((1, OBS_DIM), np.float32))["params"]
    assert "LayerNorm_0" in params["MLP_0"]
    actor = TrainState.create(apply_fn=net.apply, params=params, tx=optax.sgd(0.1))
    leaves, tree = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(jax.random.PRNGKey(4), len(leaves))
    noisy = [x + 0.5 * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys, strict=True)]
    state = SimpleNamespace(actor=actor.replace(params=jax.tree_util.tree_unflatten(tree, noisy)))

    def act(s, obs, key, deterministic):
        return s.actor.apply_fn({"params": s.actor.params}, obs).mode()

    policy = MLPPolicy.load(policy_from_agent(state, BOX).save(tmp_path / "ln.npz"))
    assert policy.layer_norms is not None and policy.log_std is not None
    _check_policy(act, state, policy, None)


def test_saved_header_has_the_format_version(tmp_path):
    _, state = _state("iql")
    path = policy_from_agent(state, BOX).save(tmp_path / "p.npz")
    with np.load(path) as data:
        header = json.loads(str(data["__policy__"]))
    # the lowest version that holds the policy: version-2 readers still read it
    assert header["format_version"] == 2 and POLICY_FORMAT_VERSION == 3
    assert header["kind"] == "gaussian" and header["state_independent_std"] is True
    header["format_version"] = 99
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["__policy__"] = np.array(json.dumps(header))
    np.savez(tmp_path / "future.npz", **arrays)
    with pytest.raises(HybridRLError, match=r"future\.npz has format version 99"):
        MLPPolicy.load(tmp_path / "future.npz")


def test_policies_import_and_act_without_jax(tmp_path):
    _, state = _state("awac")
    path = policy_from_agent(state, BOX).save(tmp_path / "p.npz")
    code = (
        "import sys, numpy as np\n"
        "from hybridrl.policies import MLPPolicy, load_policy\n"
        f"p = MLPPolicy.load({str(path)!r})\n"
        f"a = p.act(np.zeros((2, {OBS_DIM}), np.float32), deterministic=True,"
        " rng=np.random.default_rng(0))\n"
        "assert a.shape == (2, 2), a.shape\n"
        "assert 'jax' not in sys.modules and 'flax' not in sys.modules, 'jax imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_version_1_files_still_load(tmp_path):
    """The shipped behaviour policies are format version 1 files: read and act as before."""
    from importlib.resources import files

    path = files("hybridrl") / "suite" / "policies" / "hopper" / "expert.npz"
    with np.load(str(path)) as data:
        assert json.loads(str(data["__policy__"]))["format_version"] == 1
    policy = MLPPolicy.load(str(path))
    assert policy.kind == "tanh_gaussian" and policy.layer_norms is None and policy.log_std is None
    obs = np.random.default_rng(0).normal(size=(4, policy.observation_dim)).astype(np.float32)
    det = policy.act(obs, deterministic=True, rng=np.random.default_rng(0))
    again = MLPPolicy.load(policy.save(tmp_path / "v2.npz"))  # rewritten as version 2
    assert again.format_version == 2
    np.testing.assert_array_equal(again.act(obs, deterministic=True, rng=None), det)
    np.testing.assert_array_equal(again.log_prob(obs, det), policy.log_prob(obs, det))


@pytest.mark.parametrize("name", sorted(NOT_PORTABLE))
def test_composite_policies_are_refused_by_name(name):
    agent = get_agent(name)
    state = agent.init(TINY_CONFIGS[name](agent), jax.random.PRNGKey(0), OBS_DIM, ACT_DIM)
    with pytest.raises(HybridRLError, match=NOT_PORTABLE[name]):
        policy_from_agent(state, BOX)
