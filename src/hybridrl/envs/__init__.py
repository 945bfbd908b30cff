"""Environments: construction with clear errors, vector envs, the PointMaze tasks and the
HNPG paper's combination lock (Comblock)."""

from hybridrl.envs.comblock import register as _register_comblock
from hybridrl.envs.maze import register as _register_mazes

_register_mazes()
_register_comblock()
