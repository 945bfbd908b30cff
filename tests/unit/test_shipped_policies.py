"""The behaviour policies shipped in the package are complete and consistent: every suite
dataset of an environment with policies can be rebuilt from the repository alone."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hybridrl.envs.make import env_spaces
from hybridrl.policies import MLPPolicy
from hybridrl.suite.behaviour import list_snapshots, select_medium
from hybridrl.suite.datasets import POLICY_ROOT, SUITE_ENVS

SHIPPED = (
    sorted(p.name for p in POLICY_ROOT.iterdir() if p.is_dir()) if POLICY_ROOT.exists() else []
)


def test_policies_are_shipped_for_suite_envs_only():
    assert SHIPPED, "no behaviour policies in the package"
    assert set(SHIPPED) <= set(SUITE_ENVS)


@pytest.mark.parametrize("env", SHIPPED)
def test_shipped_policy_dir_rebuilds_every_kind(env):
    d = POLICY_ROOT / env
    refs = json.loads((d / "references.json").read_text())
    info = json.loads((d / "behaviour.json").read_text())
    assert refs["episodes"] == 100 and refs["expert"] > refs["random"]
    assert info["env_id"] == SUITE_ENVS[env] and "train-behaviour" in info["command"]
    obs_space, act_space = env_spaces(SUITE_ENVS[env])
    expert = MLPPolicy.load(d / "expert.npz")
    assert expert.kernels[0].shape[0] == obs_space.shape[0]
    assert expert.kernels[-1].shape[1] == 2 * act_space.shape[0]  # mean and log std
    zeros = np.zeros((1, obs_space.shape[0]), np.float32)
    action = expert.act(zeros, deterministic=True, rng=np.random.default_rng(0))
    assert action.shape == (1, act_space.shape[0])
    # the medium snapshot the builder will select is the one the references name, and every
    # snapshot before it (medium-replay) is shipped
    snapshots = list_snapshots(d)
    medium = select_medium(snapshots, expert_return=refs["expert"], random_return=refs["random"])
    assert medium.path.name == refs["medium"]["file"] == snapshots[-1].path.name
    steps = [s.env_step for s in snapshots]
    assert steps == [steps[0] * (i + 1) for i in range(len(steps))]
