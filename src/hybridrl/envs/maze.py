"""PointMaze tasks in the style of D4RL's maze2d, and the waypoint controller that solves them.

The environments are Gymnasium-Robotics' ``PointMaze_{UMaze,Medium,Large}-v3`` (sparse
reward: 1 within 0.45 of the goal) as *continuing* tasks whose goal moves to a new random cell
whenever it is reached, like D4RL's maze2d collection (Fu et al., 2020). hybridrl registers
them as ``hybridrl/PointMaze-{UMaze,Medium,Large}-v0`` with a flat ``Box(6)`` observation:
the point's position and velocity, then the goal position (maze2d hid the goal in a fixed
evaluation target; here the goal is part of the observation, so one policy serves every goal).
Episodes are cut at D4RL's maze2d horizons: 300, 600 and 800 steps.

`MazeWaypointController` is the scripted expert: breadth-first search over the maze's open
cells from the point's cell to the goal's, then a PD controller towards the next cell centre
(the goal itself in the goal's cell), ``a = clip(10 (w - p) - 1 · v, -1, 1)``: D4RL's
waypoint controller gains (``p_gain=10``, ``d_gain=-1``).
"""

from __future__ import annotations

import contextlib
import io
from collections import deque
from typing import Any

import gymnasium as gym
import numpy as np

from hybridrl.types import HybridRLError

MAZES: dict[str, tuple[str, int]] = {
    "umaze": ("PointMaze_UMaze-v3", 300),
    "medium": ("PointMaze_Medium-v3", 600),
    "large": ("PointMaze_Large-v3", 800),
}
ENV_IDS = {
    name: f"hybridrl/PointMaze-{gr_id.split('_')[1].split('-')[0]}-v0"
    for name, (gr_id, _) in MAZES.items()
}


def _robotics() -> Any:
    try:
        # its import prints a release notice on stderr; keep the CLI's output clean
        with contextlib.redirect_stderr(io.StringIO()):
            import gymnasium_robotics
    except ImportError:
        raise HybridRLError(
            "PointMaze needs the gymnasium-robotics package (pip install gymnasium-robotics)"
        ) from None
    gym.register_envs(gymnasium_robotics)
    return gymnasium_robotics


class GoalObservation(gym.ObservationWrapper):
    """``{observation, achieved_goal, desired_goal}`` → ``[x, y, vx, vy, goal_x, goal_y]``."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (6,), np.float32)

    def observation(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        return np.concatenate([observation["observation"], observation["desired_goal"]]).astype(
            np.float32
        )


def make_point_maze(maze: str = "umaze", **kwargs: Any) -> gym.Env:
    """The continuing, goal-observing PointMaze ``maze`` (umaze, medium or large)."""
    if maze not in MAZES:
        raise HybridRLError(f"unknown maze '{maze}'; available: {', '.join(MAZES)}")
    _robotics()
    gr_id, horizon = MAZES[maze]
    kwargs.setdefault("max_episode_steps", horizon)
    env = gym.make(gr_id, continuing_task=True, reset_target=True, **kwargs)
    return GoalObservation(env)


def register() -> None:
    """Register the ``hybridrl/PointMaze-*`` ids (entry points only: nothing is imported)."""
    for name, env_id in ENV_IDS.items():
        if env_id not in gym.registry:
            # a string entry point: Minari serialises env specs and refuses callables
            gym.register(env_id, entry_point=f"{__name__}:make_point_maze", kwargs={"maze": name})


class MazeWaypointController:
    """BFS over open cells, then PD control towards the next waypoint (see module docstring).

    Observations are batches of ``[x, y, vx, vy, goal_x, goal_y]``; actions are in [-1, 1]
    (PointMaze's action space).
    """

    def __init__(self, maze: str, p_gain: float = 10.0, d_gain: float = -1.0):
        if maze not in MAZES:
            raise HybridRLError(f"unknown maze '{maze}'; available: {', '.join(MAZES)}")
        from gymnasium_robotics.envs.maze import maps

        layout = {"umaze": maps.U_MAZE, "medium": maps.MEDIUM_MAZE, "large": maps.LARGE_MAZE}
        self.maze = maze
        self.grid = np.asarray([[1 if c == 1 else 0 for c in row] for row in layout[maze]], np.int8)
        rows, cols = self.grid.shape
        self.x_center, self.y_center = cols / 2.0, rows / 2.0
        self.p_gain, self.d_gain = p_gain, d_gain
        self._paths: dict[tuple[tuple[int, int], tuple[int, int]], list[tuple[int, int]]] = {}

    def cell(self, xy: np.ndarray) -> tuple[int, int]:
        col = int(np.floor(xy[0] + self.x_center))
        row = int(np.floor(self.y_center - xy[1]))
        rows, cols = self.grid.shape
        return min(max(row, 0), rows - 1), min(max(col, 0), cols - 1)

    def centre(self, cell: tuple[int, int]) -> np.ndarray:
        row, col = cell
        return np.array([col + 0.5 - self.x_center, self.y_center - row - 0.5])

    def path(self, start: tuple[int, int], goal: tuple[int, int]) -> list[tuple[int, int]]:
        """Open cells from ``start`` to ``goal`` inclusive (BFS, cached)."""
        key = (start, goal)
        if key not in self._paths:
            parent: dict[tuple[int, int], tuple[int, int] | None] = {start: None}
            queue = deque([start])
            while queue:
                cur = queue.popleft()
                if cur == goal:
                    break
                for dr, dc in ((1, 0), (-1, 0), (0, 1), (0, -1)):
                    nxt = (cur[0] + dr, cur[1] + dc)
                    if nxt not in parent and self.grid[nxt] == 0:
                        parent[nxt] = cur
                        queue.append(nxt)
            path: list[tuple[int, int]] = []
            node: tuple[int, int] | None = goal if goal in parent else start
            while node is not None:
                path.append(node)
                node = parent[node]
            self._paths[key] = path[::-1]
        return self._paths[key]

    def act(
        self, observations: np.ndarray, *, deterministic: bool, rng: np.random.Generator
    ) -> np.ndarray:
        del deterministic, rng  # the controller is deterministic; noise is added by collect
        obs = np.asarray(observations, np.float64).reshape(-1, 6)
        actions = np.empty((len(obs), 2), np.float32)
        for i, row in enumerate(obs):
            pos, vel, goal = row[:2], row[2:4], row[4:6]
            route = self.path(self.cell(pos), self.cell(goal))
            target = goal if len(route) <= 1 else self.centre(route[1])
            actions[i] = np.clip(self.p_gain * (target - pos) + self.d_gain * vel, -1.0, 1.0)
        return actions

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "scripted",
            "name": f"pointmaze_{self.maze}_waypoints",
            "p_gain": self.p_gain,
            "d_gain": self.d_gain,
        }
