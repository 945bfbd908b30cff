"""MiniGrid tasks as hybridrl takes them: a flat Box observation chosen by the env id.

MiniGrid (Farama ``minigrid``, the optional extra ``hybridrl[minigrid]``) observes a Dict
(``image``: the agent's 7x7 partial view, three codes per cell (object, colour, state);
``direction``: 0-3; ``mission``: a text) and acts in ``Discrete(7)``. hybridrl handles Box
observations only, so a MiniGrid task is named together with an *observation adapter*, as
the env id ``minigrid-<adapter>/<MiniGrid id>``:

* ``minigrid-onehot/MiniGrid-Empty-5x5-v0``: each cell of the view one-hot encoded (object,
  colour and state bits, the layout of minigrid's ``OneHotPartialObsWrapper``: 11 + 6 + 3 = 20
  bits), flattened, then the direction one-hot: ``7 * 7 * 20 + 4 = 984`` values in {0, 1}.
* ``minigrid-image/MiniGrid-Empty-5x5-v0``: minigrid's ``ImgObsWrapper`` (the view's codes
  without direction or mission) flattened to ``7 * 7 * 3 = 147`` values, as float32. The view
  is egocentric, which is why ``ImgObsWrapper``-based agents (e.g. torch-ac's, used by
  uoe-agents/imitation-learning-pcg) learn without the direction.

Because the adapter is part of the id, everything that records an env id (a dataset's
metadata, ``run.json``, a resume's fingerprint, an exported policy's env) rebuilds the same
observation. The mission string is dropped: tasks whose mission changes between episodes
(BabyAI, GoToDoor, GoToObject, Fetch, PutNear, ...) are then partly unobserved. A plain
MiniGrid id, whose observation is the Dict, is refused in one line that names both forms.

`prepare_minigrid` is called by `hybridrl.envs.make.make_env` before ``gymnasium.make``: it
imports minigrid (which registers its ids) only for MiniGrid ids and registers an adapter id
on first use, so that subprocess vector envs (spawned workers) register it too.
"""

from __future__ import annotations

import os
from typing import Any

import gymnasium as gym
import numpy as np

from hybridrl.types import HybridRLError

__all__ = ["ADAPTERS", "adapter_id", "is_minigrid_id", "make_adapted", "prepare_minigrid"]

ADAPTERS = {
    "onehot": "one-hot partial view + direction",
    "image": "minigrid's ImgObsWrapper, flattened",
}
"""Observation adapters: the ``<adapter>`` of ``minigrid-<adapter>/<MiniGrid id>``."""

_NAMESPACE_PREFIX = "minigrid-"
_PREFIXES = ("MiniGrid-", "BabyAI-")  # the ids minigrid registers


def adapter_id(base_id: str, adapter: str = "onehot") -> str:
    """The hybridrl env id of MiniGrid task ``base_id`` seen through ``adapter``."""
    return f"{_NAMESPACE_PREFIX}{adapter}/{base_id}"


def _split(env_id: str) -> tuple[str, str] | None:
    """``(adapter, base_id)`` of an adapter id, None for any other id."""
    namespace, slash, base = env_id.partition("/")
    if not slash or not namespace.startswith(_NAMESPACE_PREFIX):
        return None
    return namespace[len(_NAMESPACE_PREFIX) :], base


def is_minigrid_id(env_id: str) -> bool:
    """True for a MiniGrid task, plain (``MiniGrid-...``, ``BabyAI-...``) or adapted."""
    return env_id.startswith(_PREFIXES) or _split(env_id) is not None


def _import_minigrid(env_id: str) -> None:
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")  # its import greets on stdout
    try:
        import minigrid  # noqa: F401  (registers the MiniGrid-* and BabyAI-* ids)
    except ImportError:
        raise HybridRLError(
            f"{env_id} needs the minigrid package: pip install 'hybridrl[minigrid]'"
        ) from None


def _dict_observation_error(base_id: str) -> HybridRLError:
    forms = " or ".join(f"'{adapter_id(base_id, a)}' ({what})" for a, what in ADAPTERS.items())
    return HybridRLError(
        f"{base_id} has Dict observations (image, direction, mission), which hybridrl does not "
        f"take; name an observation adapter in the env id: {forms}"
    )


def prepare_minigrid(env_id: str) -> None:
    """Make ``env_id`` ready for ``gymnasium.make`` when it is a MiniGrid id; nothing otherwise.

    A plain MiniGrid id is refused (`HybridRLError`, one line naming the adapter ids); an
    adapter id is registered on first use. Unknown adapters, a missing ``minigrid`` package
    and unknown MiniGrid ids are refused in one line (the last with close ids).
    """
    if not is_minigrid_id(env_id):
        return
    split = _split(env_id)
    if split is None:
        _import_minigrid(env_id)
        if env_id in gym.registry:
            raise _dict_observation_error(env_id)
        return  # an unknown id: make_env names close ones
    if env_id in gym.registry:
        return
    _import_minigrid(env_id)
    adapter, base_id = split
    if adapter not in ADAPTERS:
        raise HybridRLError(
            f"{env_id}: unknown MiniGrid observation adapter '{adapter}'; use one of "
            + ", ".join(f"{_NAMESPACE_PREFIX}{a}/" for a in ADAPTERS)
        )
    if base_id not in gym.registry or not base_id.startswith(_PREFIXES):
        import difflib

        ids = [i for i in gym.registry if i.startswith(_PREFIXES)]
        close = difflib.get_close_matches(base_id, ids, n=3, cutoff=0.5)
        hint = (
            f"; did you mean {', '.join(adapter_id(c, adapter) for c in close)}?" if close else ""
        )
        raise HybridRLError(f"{env_id}: unknown MiniGrid id '{base_id}'{hint}")
    gym.register(
        id=env_id,
        entry_point="hybridrl.envs.minigrid:make_adapted",
        kwargs={"base_id": base_id, "adapter": adapter},
        # minigrid's envs end their episodes themselves (max_steps) and register no time limit
        max_episode_steps=gym.spec(base_id).max_episode_steps,
    )


def make_adapted(base_id: str, adapter: str, **kwargs: Any) -> gym.Env:
    """``gymnasium.make(base_id, **kwargs)`` seen through ``adapter`` (the registered entry
    point of the adapter ids; ``kwargs`` such as ``size`` or ``render_mode`` go to minigrid)."""
    env = gym.make(base_id, **kwargs)
    if adapter == "image":
        from minigrid.wrappers import ImgObsWrapper

        return FlatImage(ImgObsWrapper(env))
    return OneHotView(env)


def _code_sizes() -> tuple[int, int, int]:
    from minigrid.core.constants import COLOR_TO_IDX, OBJECT_TO_IDX, STATE_TO_IDX

    return len(OBJECT_TO_IDX), len(COLOR_TO_IDX), len(STATE_TO_IDX)


class FlatImage(gym.ObservationWrapper):
    """An ``(h, w, 3)`` code image as a float32 vector of ``h * w * 3`` values; the bounds are
    the code ranges (object 0-10, colour 0-5, state 0-2) rather than minigrid's 0-255."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        shape = env.observation_space.shape
        assert shape is not None and len(shape) == 3 and shape[2] == 3, shape
        high = np.broadcast_to(np.array(_code_sizes(), np.float32) - 1, shape).ravel()
        self.observation_space = gym.spaces.Box(np.zeros_like(high), high, dtype=np.float32)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return np.asarray(observation, np.float32).ravel()


class OneHotView(gym.ObservationWrapper):
    """The Dict observation as ``[one-hot view (h * w * 20), one-hot direction (4)]``.

    The view's bits are minigrid's ``OneHotPartialObsWrapper`` layout (cell ``(i, j)`` sets
    bit ``object``, ``n_objects + colour`` and ``n_objects + n_colours + state``), computed with
    one indexing operation instead of its per-cell Python loop.
    """

    def __init__(self, env: gym.Env):
        super().__init__(env)
        image = env.observation_space["image"]  # type: ignore[index]
        h, w, _ = image.shape
        n_obj, n_col, n_state = _code_sizes()
        self._offsets = np.array([0, n_obj, n_obj + n_col], np.intp)
        self._bits = n_obj + n_col + n_state
        self._dirs = int(env.observation_space["direction"].n)  # type: ignore[index]
        size = h * w * self._bits + self._dirs
        self.observation_space = gym.spaces.Box(0.0, 1.0, (size,), np.float32)

    def observation(self, observation: dict[str, Any]) -> np.ndarray:
        image = np.asarray(observation["image"], np.intp)
        h, w, _ = image.shape
        view = np.zeros((h, w, self._bits), np.float32)
        rows, cols = np.indices((h, w))
        view[rows[..., None], cols[..., None], image + self._offsets] = 1.0
        direction = np.zeros(self._dirs, np.float32)
        direction[int(observation["direction"])] = 1.0
        return np.concatenate([view.ravel(), direction])
