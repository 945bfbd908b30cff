"""On-policy phases through `run`, the path users take: PPO learns CartPole, rollouts and
checkpoints fall where the phase says, kept batches travel in the checkpoint, and a recipe
that mixes the families wrongly is refused before any work."""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import numpy as np
import pytest

from hybridrl.training.phases import Online, OnPolicy
from hybridrl.training.recipes import Recipe, get_recipe
from hybridrl.training.runner import run
from hybridrl.types import HybridRLError

QUIET: dict[str, Any] = {"progress": False, "eval_episodes": 1}


def _ppo(steps: int, rollout_steps: int, **phase: Any) -> Recipe:
    recipe = get_recipe("ppo_discrete").with_budget(on_policy_steps=steps)
    phases = tuple(
        dataclasses.replace(p, rollout_steps=rollout_steps, **phase) for p in recipe.phases
    )
    return dataclasses.replace(recipe, phases=phases)


def test_ppo_learns_cartpole_through_run(tmp_path):
    """The stochastic policy's training episodes: ~20 steps at first, >= 150 at the end.
    (Evaluation uses the argmax policy, which an untrained net often balances by chance,
    so the training episodes are the measure here.)"""
    recipe = _ppo(14_336, 32, anneal_lr=False).with_config(learning_rate=1e-3)
    result = run(
        recipe,
        "CartPole-v1",
        run_dir=tmp_path,
        num_envs=16,
        eval_interval=10**6,
        checkpoint_interval=10**6,
        **QUIET,
    )
    episodes = [r["return"] for r in result.records if r["kind"] == "episode" and not r["cut"]]
    first, last = np.mean(episodes[:16]), np.mean(episodes[-10:])
    assert first < 40 and last >= 150, (first, last)
    updates = [r for r in result.records if r["kind"] == "train"]
    assert len(updates) == 14_336 // (16 * 32) == result.summary["total_updates"]
    assert {"policy_loss", "value_loss", "approx_kl", "explained_variance"} <= set(updates[0])


def test_rollouts_checkpoints_and_a_shorter_last_rollout(tmp_path, monkeypatch):
    """40 env steps in rollouts of 2 x 8 = 16: updates at 16, 32 and a last one of 8;
    checkpoints at the first rollout boundary at or after each multiple of 20."""
    from hybridrl.training.runner import Runner

    written: list[int] = []
    original = Runner._checkpoint

    def recording(self: Runner, learner: Any, key: Any, c: Any, logger: Any) -> None:
        written.append(c.env_step)
        original(self, learner, key, c, logger)

    monkeypatch.setattr(Runner, "_checkpoint", recording)
    recipe = _ppo(40, 8, keep_batches=2).with_config(hidden_dims=(8,), num_minibatches=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # checkpoints cut CartPole's episodes at this size
        result = run(
            recipe,
            "CartPole-v1",
            run_dir=tmp_path,
            num_envs=2,
            eval_interval=16,
            checkpoint_interval=20,
            **QUIET,
        )
    train = [r["env_step"] for r in result.records if r["kind"] == "train"]
    assert train == [16, 32, 40]
    assert written == [32, 40]  # 32: first boundary past 20; 40: the phase's end
    evals = [r["env_step"] for r in result.records if r["kind"] == "eval"]
    assert evals == [16, 32, 40]
    # b = 2 rollouts kept: the last full one (8 steps) and the short last one (4 steps)
    assert result.learner.rollouts is not None
    assert result.learner.rollouts.num_steps == 8 and result.learner.rollouts.num_envs == 2
    cut = [r for r in result.records if r["kind"] == "episode" and r["cut"]]
    assert cut and all(r["env_step"] in (32, 40) for r in cut)


def test_agents_and_phases_of_the_wrong_family_are_refused(tmp_path, monkeypatch):
    with pytest.raises(HybridRLError, match=r"CartPole-v1 has a Discrete\(2\) action space; "):
        run(get_recipe("sac").with_budget(online_steps=4), "CartPole-v1", run_dir=tmp_path)
    replay_ppo = Recipe("bad", "ppo", (Online(steps=4),))
    with pytest.raises(HybridRLError, match="updates from replay, but agent 'ppo' is on-policy"):
        run(replay_ppo, "CartPole-v1", run_dir=tmp_path)
    on_policy_sac = Recipe("bad", "sac", (OnPolicy(steps=4),))
    with pytest.raises(HybridRLError, match="is on-policy, but agent 'sac' learns from replay"):
        run(on_policy_sac, "Pendulum-v1", run_dir=tmp_path)
    both = _ppo(64, 8, anneal_lr=True).with_config(anneal_iterations=3)
    with pytest.raises(HybridRLError, match="keep one of the two"):
        run(both, "CartPole-v1", run_dir=tmp_path)
    from hybridrl.agents import ppo

    monkeypatch.setattr(ppo, "SPEC", dataclasses.replace(ppo.SPEC, sampling_error=False))
    measured = Recipe("bad", "ppo", (OnPolicy(steps=4, sampling_error_interval=1),))
    with pytest.raises(HybridRLError, match="sampling_error_interval needs an agent"):
        run(measured, "Pendulum-v1", run_dir=tmp_path)
    assert not any(tmp_path.iterdir())  # refused before anything was written


def test_anneal_lr_decays_over_the_phase(tmp_path):
    recipe = _ppo(64, 8, anneal_lr=True).with_config(hidden_dims=(8,), num_minibatches=2)
    result = run(
        recipe,
        "CartPole-v1",
        run_dir=tmp_path,
        num_envs=2,
        eval_interval=10**6,
        checkpoint_interval=10**6,
        **QUIET,
    )
    rates = [r["learning_rate"] for r in result.records if r["kind"] == "train"]
    lr = 2.5e-4  # ppo_discrete's; 4 updates: lr * (1 - i / 4)
    np.testing.assert_allclose(rates, [lr, 0.75 * lr, 0.5 * lr, 0.25 * lr], rtol=1e-6)
    assert result.state.config.anneal_iterations == 4


def test_props_then_ppo_switches_off_the_behaviour_adaptation(tmp_path):
    """PROPS for a first phase, then plain PPO: the switch carries the PPO fields, removes
    PROPS's behaviour settings (its SWITCH_REMOVES) and stops the behaviour updates."""
    from hybridrl.training.phases import SwitchAgent

    recipe = get_recipe("props").with_config(
        hidden_dims=(8,), num_minibatches=2, props_num_steps=8, props_num_minibatches=2
    )
    first = dataclasses.replace(recipe.phases[0], name="props", steps=32, rollout_steps=8)
    second = dataclasses.replace(first, name="ppo", hooks=(SwitchAgent("ppo"),))
    recipe = dataclasses.replace(recipe, phases=(first, second))
    result = run(
        recipe,
        "CartPole-v1",
        run_dir=tmp_path,
        num_envs=2,
        eval_interval=10**6,
        checkpoint_interval=10**6,
        **QUIET,
    )
    assert result.learner.agent_name == "ppo"
    train = [r for r in result.records if r["kind"] == "train"]
    assert {r["phase"] for r in train} == {"props", "ppo"}
    behaviour = [r for r in train if any(k.startswith("behaviour_") for k in r)]
    assert behaviour and all(r["phase"] == "props" for r in behaviour)
