"""Behaviour-policy export and snapshots (the start of the D4RL-style suite)."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from hybridrl.agents import sac
from hybridrl.policies import MLPPolicy, policy_from_agent
from hybridrl.suite.behaviour import Snapshot, list_snapshots, select_medium, train_behaviour
from hybridrl.types import HybridRLError, SpaceSpec

BOX = SpaceSpec("box", (2,), "float32", (-2.0, -0.5), (2.0, 1.5))


def test_exported_policy_acts_like_the_agent(tmp_path):
    state = sac.init(sac.Config(hidden_dims=(16, 16)), jax.random.PRNGKey(0), 3, 2)
    obs = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    policy = policy_from_agent(state, BOX, info={"note": "x"})
    policy = MLPPolicy.load(policy.save(tmp_path / "p.npz"))
    unit = np.asarray(sac.act(state, obs, jax.random.PRNGKey(1), deterministic=True))
    expected = BOX.low_array + (unit + 1) / 2 * (BOX.high_array - BOX.low_array)
    got = policy.act(obs, deterministic=True, rng=np.random.default_rng(0))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    assert policy.info["note"] == "x" and policy.log_std_range == (-20.0, 2.0)
    # every other agent exports too: tests/agents/test_export.py


def test_train_behaviour_writes_snapshots_and_an_expert(tmp_path):
    snaps = train_behaviour(
        "Pendulum-v1",
        tmp_path,
        steps=400,
        eval_interval=200,
        eval_episodes=2,
        random_steps=100,
        progress=False,
    )
    assert [s.env_step for s in snaps] == [200, 400]
    assert list_snapshots(tmp_path) == snaps
    assert (tmp_path / "expert.npz").exists() and (tmp_path / "behaviour.json").exists()
    assert MLPPolicy.load(tmp_path / "expert.npz").info["env_step"] == 400


def test_select_medium_uses_the_return_threshold(tmp_path):
    snaps = [Snapshot(tmp_path / f"{i}", i, r) for i, r in enumerate([0.0, 20.0, 40.0, 35.0])]
    assert select_medium(snaps, expert_return=90.0, random_return=0.0).env_step == 2
    with pytest.raises(HybridRLError, match="no snapshot reaches"):
        select_medium(snaps, expert_return=300.0, random_return=0.0)


def _fake_policy_dir(root, env="pendulum"):
    """Hand-made snapshots at env steps 100, 200, 300 with returns 10, 20, 40 (random 0,
    expert 90: the medium threshold 30 is first reached at step 300)."""
    import json

    from hybridrl.policies import MLPPolicy

    rng = np.random.default_rng(0)
    d = root / env

    def policy(step, ret):
        return MLPPolicy(
            kernels=[
                rng.normal(size=(3, 8)).astype(np.float32) * 0.3,
                rng.normal(size=(8, 2)).astype(np.float32) * 0.3,
            ],
            biases=[np.zeros(8, np.float32), np.zeros(2, np.float32)],
            kind="tanh_gaussian",
            action_low=np.array([-2.0], np.float32),
            action_high=np.array([2.0], np.float32),
            info={"env_step": step, "return_mean": ret},
        )

    for step, ret in ((100, 10.0), (200, 20.0), (300, 40.0)):
        policy(step, ret).save(d / "snapshots" / f"step_{step:08d}.npz")
    policy(300, 90.0).save(d / "expert.npz")
    (d / "references.json").write_text(json.dumps({"random": 0.0, "expert": 90.0}))
    (d / "behaviour.json").write_text(json.dumps({"env_id": "Pendulum-v1"}))
    return root


def test_suite_builds_every_kind_deterministically(tmp_path, monkeypatch):
    from hybridrl.suite import datasets as suite

    monkeypatch.setattr(suite, "SUITE_ENVS", {"pendulum": "Pendulum-v1"})
    root = _fake_policy_dir(tmp_path)
    sizes = {}
    for kind in suite.KINDS:
        entry = suite.parse_name(f"pendulum-{kind}-v0")
        ds = suite.build(entry, steps=200, root=root, progress=False)
        sizes[kind] = len(ds)
        assert ds.metadata.ref_min_score == 0.0 and ds.metadata.ref_max_score == 90.0
        again = suite.build(entry, steps=200, root=root, progress=False)
        assert again.content_hash() == ds.content_hash()
    # replay: [0,100) random, [100,200) snapshot 100, [200,300) snapshot 200; medium = 300
    assert sizes == {
        "random": 200,
        "medium": 200,
        "medium-replay": 300,
        "expert": 200,
        "medium-expert": 400,
    }
    # medium-expert is the medium and expert datasets themselves (as D4RL), and reuses built ones
    parts = {
        k: suite.build(suite.parse_name(f"pendulum-{k}"), steps=200, root=root, progress=False)
        for k in ("medium", "expert")
    }

    def medium_expert(steps, built=None):
        name = suite.parse_name("pendulum-medium-expert")
        return suite.build(name, steps=steps, root=root, progress=False, built=built)

    me = medium_expert(200)
    for field in ("observations", "actions", "rewards"):
        np.testing.assert_array_equal(
            getattr(me.transitions, field),
            np.concatenate([getattr(parts[k].transitions, field) for k in parts]),
        )
    asked = []

    def built(part):
        asked.append(part.kind)
        return parts[part.kind]

    assert medium_expert(200, built).content_hash() == me.content_hash()
    assert asked == ["medium", "expert"]
    # stored datasets of another size (or seed) are rebuilt, not reused
    assert len(medium_expert(100, built)) == 200
    with pytest.raises(HybridRLError, match="unknown suite dataset 'pendulum-good-v0'"):
        suite.parse_name("pendulum-good-v0")
    (root / "pendulum" / "expert.npz").unlink()
    with pytest.raises(HybridRLError, match=r"expert\.npz is missing"):
        suite.build(suite.parse_name("pendulum-expert"), steps=10, root=root, progress=False)


def test_publish_keeps_the_expert_and_the_snapshots_up_to_medium(tmp_path):
    import json

    from hybridrl.suite.behaviour import finalize_behaviour, publish

    src = _fake_policy_dir(tmp_path / "train")
    (src / "pendulum" / "expert.npz").unlink()
    finalize_behaviour(src / "pendulum", "Pendulum-v1", steps=1000)
    info = json.loads((src / "pendulum" / "behaviour.json").read_text())
    assert info["trained_steps"] == 300 and info["planned_steps"] == 1000
    refs = publish(src / "pendulum", "pendulum", tmp_path / "root", reference_episodes=2)
    dest = tmp_path / "root" / "pendulum"
    kept = sorted(p.name for p in (dest / "snapshots").iterdir())
    medium = refs["medium"]["env_step"]
    assert kept == [f"step_{s:08d}.npz" for s in (100, 200, 300) if s <= medium]
    assert (dest / "expert.npz").exists()
    assert json.loads((dest / "references.json").read_text())["episodes"] == 2
    # publishing again after the medium moved earlier leaves no stale snapshot behind
    (dest / "snapshots" / "step_00000900.npz").write_bytes(b"stale")
    publish(src / "pendulum", "pendulum", tmp_path / "root", reference_episodes=2)
    assert sorted(p.name for p in (dest / "snapshots").iterdir()) == kept


def test_finalize_takes_the_latest_or_the_best_snapshot_as_expert(tmp_path):
    import json

    from hybridrl.policies import MLPPolicy
    from hybridrl.suite.behaviour import finalize_behaviour

    d = _fake_policy_dir(tmp_path) / "pendulum"
    # A training that ended in a collapse: the last snapshot is worse than the one before.
    last = MLPPolicy.load(d / "snapshots" / "step_00000300.npz")
    last.info["return_mean"] = 5.0
    last.save(d / "snapshots" / "step_00000300.npz")
    best = MLPPolicy.load(d / "snapshots" / "step_00000200.npz")

    finalize_behaviour(d, "Pendulum-v1", steps=300, expert="best", command="train it")
    chosen = MLPPolicy.load(d / "expert.npz")
    assert chosen.info["env_step"] == 200
    np.testing.assert_array_equal(chosen.kernels[0], best.kernels[0])
    info = json.loads((d / "behaviour.json").read_text())
    assert info["expert"] == {"choice": "best", "file": "step_00000200.npz"}

    finalize_behaviour(d, "Pendulum-v1", steps=300)
    assert MLPPolicy.load(d / "expert.npz").info["env_step"] == 300
    # finalizing again (as publish does) keeps the training's command line
    assert json.loads((d / "behaviour.json").read_text())["command"] == "train it"
    with pytest.raises(HybridRLError, match="unknown expert choice 'median'"):
        finalize_behaviour(d, "Pendulum-v1", steps=300, expert="median")


def test_best_stochastic_expert_is_the_best_sampled_candidate(tmp_path):
    import json

    from hybridrl.policies import MLPPolicy
    from hybridrl.suite.behaviour import finalize_behaviour

    d = _fake_policy_dir(tmp_path) / "pendulum"
    # returns 10, 38, 40: the snapshots at 200 and 300 are within 80% of the best
    snap = MLPPolicy.load(d / "snapshots" / "step_00000200.npz")
    snap.info["return_mean"] = 38.0
    snap.save(d / "snapshots" / "step_00000200.npz")
    finalize_behaviour(d, "Pendulum-v1", steps=300, expert="best-stochastic")
    expert = json.loads((d / "behaviour.json").read_text())["expert"]
    sampled = expert["sampled_returns"]
    assert sorted(sampled) == ["step_00000200.npz", "step_00000300.npz"]
    assert expert["file"] == max(sampled, key=sampled.get)
    chosen = MLPPolicy.load(d / "expert.npz")
    assert f"step_{chosen.info['env_step']:08d}.npz" == expert["file"]
