"""PointMaze: the registered continuing tasks, the waypoint controller and the maze suite."""

from __future__ import annotations

import numpy as np
import pytest

from hybridrl.data.collect import evaluate_policy
from hybridrl.envs.make import env_spaces, make_env
from hybridrl.envs.maze import ENV_IDS, MazeWaypointController
from hybridrl.policies import RandomPolicy, load_policy
from hybridrl.suite.datasets import build_maze, parse_name
from hybridrl.types import HybridRLError


def test_registered_maze_observes_position_velocity_and_goal():
    env = make_env(ENV_IDS["umaze"])
    obs, _ = env.reset(seed=0)
    assert obs.shape == (6,) and obs.dtype == np.float32
    assert env_spaces(ENV_IDS["large"])[1].shape == (2,)
    env.close()


def test_bfs_goes_around_the_u():
    c = MazeWaypointController("umaze")
    # U maze: open cells (1,1..3), (2,3), (3,1..3); from the top-left to the bottom-left arm
    assert c.path((1, 1), (3, 1)) == [(1, 1), (1, 2), (1, 3), (2, 3), (3, 3), (3, 2), (3, 1)]
    assert c.cell(c.centre((3, 2))) == (3, 2)
    with pytest.raises(HybridRLError, match="unknown maze"):
        MazeWaypointController("tiny")


def test_controller_reaches_goals_and_random_does_not():
    env_id = ENV_IDS["umaze"]
    act = env_spaces(env_id)[1]
    controller = evaluate_policy(env_id, load_policy("pointmaze_umaze", act), 4, seed=0)
    random = evaluate_policy(env_id, RandomPolicy(act), 4, seed=0)
    assert controller.mean() >= 2.0 > random.mean() + 1.0


def test_maze_suite_build_is_deterministic():
    entry = parse_name("pointmaze-umaze-v0")
    a = build_maze(entry, steps=600, seed=0, progress=False, reference_episodes=2)
    b = build_maze(entry, steps=600, seed=0, progress=False, reference_episodes=2)
    assert len(a) == 600 and a.content_hash() == b.content_hash()
    assert a.metadata.ref_max_score > a.metadata.ref_min_score
    assert a.transitions.timeouts.sum() == 2  # continuing task: cut every 300 steps only


def test_maze_dataset_round_trips_through_minari():
    """Minari serialises the env spec: the maze ids must register a string entry point."""
    from hybridrl.data import load_dataset, save_dataset

    ds = build_maze(
        parse_name("pointmaze-umaze"), steps=300, seed=0, progress=False, reference_episodes=1
    )
    save_dataset(ds, "minari:hybridrl/pointmaze/umaze-test-v0")
    back = load_dataset("minari:hybridrl/pointmaze/umaze-test-v0")
    assert back.content_hash() == ds.content_hash()
