"""Dataset actions for agents that act on [-1, 1].

Agents never see the environment's action bounds: `unit_actions` maps a dataset's Box actions
from the action space's bounds onto [-1, 1] (the runner's prepared data does this for every
offline phase), and the environments are rescaled the same way
(`hybridrl.envs.make.make_unit_action_env`).
"""

from __future__ import annotations

import numpy as np

from hybridrl.data.dataset import Dataset
from hybridrl.data.transitions import Transitions
from hybridrl.types import HybridRLError


def unit_actions(ds: Dataset) -> Transitions:
    """The dataset's transitions with Box actions mapped affinely onto [-1, 1]."""
    space = ds.metadata.action_space
    if space.kind != "box":
        raise HybridRLError("continuous-control agents need a Box action space")
    lo, hi = space.low_array, space.high_array
    if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
        raise HybridRLError("actions need finite bounds to be mapped onto [-1, 1]")
    t = ds.transitions
    unit = 2.0 * (np.asarray(t.actions, np.float64) - lo) / (hi - lo) - 1.0
    return t.replace(actions=np.clip(unit, -1.0, 1.0).astype(np.float32))
