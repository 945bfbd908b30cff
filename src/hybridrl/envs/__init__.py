"""Environments: construction with clear errors, vector envs, and the PointMaze tasks."""

from hybridrl.envs.maze import register as _register_mazes

_register_mazes()
