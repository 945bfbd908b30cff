"""EnvPool as a second vector-env backend, behind the Gymnasium backend's contract.

EnvPool (https://github.com/sail-sg/envpool; the PyPI release 1.2.5 is the one read here)
steps a batch of C++ environments in its own thread pool. It is an optional extra
(``pip install 'hybridrl[envpool]'``); `EnvPoolVectorEnv` makes it look exactly like the vector
env `hybridrl.envs.make.make_vector_env` builds with Gymnasium, so no executor knows which
backend it steps:

- Autoreset ``SAME_STEP``. EnvPool's own is ``NEXT_STEP`` (``envpool/python/
  gymnasium_envpool.py`` declares ``AutoresetMode.NEXT_STEP``: the step after an episode's
  end ignores its action and returns the reset observation). Here every sub-env that ended
  is reset explicitly in the same `step` (``reset(env_id=ended)``, which EnvPool's sync mode
  allows for a subset), its first observation is returned and the true final one goes to
  ``info["final_obs"]`` (an object array, None elsewhere) with the mask ``info["_final_obs"]``,
  as Gymnasium's ``SyncVectorEnv`` writes them. A sub-env reset this way is not done any more,
  so EnvPool's next step steps it with the given action.
- Terminated vs truncated: EnvPool reports ``done`` and ``trunc`` (the time limit) and its
  Gymnasium API sets ``terminated = done & ~trunc``. A step that hits the time limit *and*
  a terminal state at once is therefore reported as truncated only (Gymnasium reports both);
  one step in a time limit's worth, only when the two coincide.
- Seeds. EnvPool fixes each sub-env's seed when the pool is made (``envpool.make(...,
  seed=[s_0, ..., s_{n-1}])``) and ignores ``reset(seed=...)`` with a warning
  (``gymnasium_envpool.py``, ``GymnasiumEnvPoolMixin.reset``). Our runs reset every env with its
  own derived seed at every segment start, so `reset` with seeds *makes a new pool* with those
  seeds (about 0.05 s for 4 Hopper envs), which gives each sub-env the state it would have had
  from a fresh seed: a segment's episodes depend only on its seeds, and a resumed run
  reproduces the uninterrupted one. ``reset()`` without seeds resets the current pool, whose
  generators continue. Seeds are mapped into EnvPool's int32 range bijectively. The same seed
  gives different episodes in the two backends (different generators): results agree in
  distribution, not step for step.
- Actions: Box actions in [-1, 1] are mapped linearly onto the env's bounds (the map of
  Gymnasium's ``RescaleAction``, no clipping); Discrete actions pass through as integers.
- Spaces and dtypes are the Gymnasium env's (made once as a probe, which also gives the same
  errors for unknown ids and unsupported spaces); a task whose EnvPool spaces differ in shape
  or bounds from Gymnasium's is refused. Rewards are float64 as Gymnasium's (EnvPool computes
  them in float32).

Env ids map one to one: EnvPool registers the Gymnasium ids (``Hopper-v5``, ``HalfCheetah-v5``,
``Walker2d-v5``, ``Ant-v5``, ``CartPole-v1``, ``Pendulum-v1``, ...). ``max_episode_steps`` and
constructor arguments go to EnvPool's config, whose names follow Gymnasium's for the MuJoCo
tasks (``ctrl_cost_weight``, ``reset_noise_scale``, ...); one EnvPool lacks is refused.
"""

from __future__ import annotations

import difflib
import warnings
from typing import Any

import gymnasium as gym
import numpy as np

from hybridrl.types import HybridRLError

INSTALL_HINT = "pip install 'hybridrl[envpool]'"
_INT32 = 2**31


def import_envpool() -> Any:
    """The ``envpool`` module, or one `HybridRLError` line saying how to install it."""
    try:
        import envpool
    except ImportError as exc:
        raise HybridRLError(
            f"env_backend 'envpool' needs the envpool package, which is not installed: "
            f"{INSTALL_HINT} (or use --env-backend gymnasium)"
        ) from exc
    return envpool


def envpool_seed(seed: int) -> int:
    """``seed`` (our derived seeds are unsigned 32-bit) in EnvPool's int32 range, one to one."""
    s = int(seed) % 2**32
    return s - 2**32 if s >= _INT32 else s


class EnvPoolVectorEnv(gym.vector.VectorEnv):  # type: ignore[misc]
    """``num_envs`` sub-envs of ``env_id`` stepped by EnvPool, with the Gymnasium backend's
    spaces, action rescaling and ``SAME_STEP`` autoreset (see the module docstring).

    Args:
        env_id: an id EnvPool and Gymnasium both register.
        num_envs: sub-envs.
        reference: the Gymnasium env of ``env_id`` (`make_env`, made with the same options);
            only its spaces are read: this env's are the ones `make_unit_action_env` gives
            it (a Box action space rescaled to [-1, 1]).
        options: EnvPool config values (``max_episode_steps``, constructor arguments).
    """

    metadata = {"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP}  # noqa: RUF012

    def __init__(
        self, env_id: str, num_envs: int, reference: gym.Env, options: dict[str, Any]
    ) -> None:
        self._envpool = import_envpool()
        self.env_id, self.num_envs = env_id, int(num_envs)
        self._options = dict(options)
        self.single_observation_space = reference.observation_space
        raw: Any = reference.action_space
        self.single_action_space = (
            raw
            if isinstance(raw, gym.spaces.Discrete)
            # the space Gymnasium's RescaleAction gives (its dtype is the env's)
            else gym.spaces.Box(-1.0, 1.0, raw.shape, raw.dtype)
        )
        self._reference_action_space = raw
        self.observation_space = gym.vector.utils.batch_space(
            self.single_observation_space, self.num_envs
        )
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, self.num_envs)
        self._seeds = [envpool_seed(i) for i in range(self.num_envs)]
        self._pool = self._make_pool(self._seeds)
        self._fresh = True  # made with self._seeds and not reset or stepped since
        self._check_spaces()
        self._discrete = isinstance(self.single_action_space, gym.spaces.Discrete)
        if not self._discrete:
            raw = self._pool.action_space
            # u in [-1, 1] -> low + (u + 1) (high - low) / 2, Gymnasium's RescaleAction map
            self._scale = (raw.high - raw.low) / 2.0
            self._offset = raw.low + self._scale

    # ---------------------------------------------------------------- construction
    def _make_pool(self, seeds: list[int]) -> Any:
        ep = self._envpool
        if self.env_id not in ep.list_all_envs():
            close = difflib.get_close_matches(self.env_id, ep.list_all_envs(), n=5, cutoff=0.6)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise HybridRLError(
                f"envpool has no task '{self.env_id}'{hint} (or use --env-backend gymnasium)"
            )
        try:
            with warnings.catch_warnings():
                # EnvPool's float32 Boxes built from float64 bounds warn on every make
                warnings.simplefilter("ignore", UserWarning)
                pool = ep.make_gymnasium(
                    self.env_id, num_envs=self.num_envs, seed=list(seeds), **self._options
                )
                _ = pool.observation_space, pool.action_space  # built lazily, warn once made
            return pool
        except TypeError as exc:  # a config key EnvPool's task does not have
            known = sorted(ep.make_spec(self.env_id).config._fields)
            raise HybridRLError(
                f"envpool's {self.env_id} does not take {sorted(self._options)} ({exc}); "
                f"its config keys: {', '.join(known)}"
            ) from exc

    def _check_spaces(self) -> None:
        pool, ref_obs = self._pool, self.single_observation_space
        ref_act: Any = self._reference_action_space
        problem = None
        if pool.observation_space.shape != ref_obs.shape:
            problem = f"observations of shape {pool.observation_space.shape} vs {ref_obs.shape}"
        elif isinstance(ref_act, gym.spaces.Discrete):
            if not isinstance(pool.action_space, gym.spaces.Discrete) or (
                pool.action_space.n != ref_act.n
            ):
                problem = f"actions {pool.action_space} vs {ref_act}"
        elif pool.action_space.shape != ref_act.shape or not (
            np.allclose(pool.action_space.low, ref_act.low)
            and np.allclose(pool.action_space.high, ref_act.high)
        ):
            problem = f"actions {pool.action_space} vs {ref_act}"
        if problem:
            self._pool.close()
            raise HybridRLError(
                f"envpool's {self.env_id} differs from gymnasium's ({problem}); "
                "use --env-backend gymnasium"
            )

    # ------------------------------------------------------------------- the API
    def reset(
        self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset every sub-env; with ``seed`` (an int gives sub-env i ``seed + i``, as
        Gymnasium's vector envs do) the pool is made anew with those seeds."""
        if options:
            raise HybridRLError(f"the envpool backend takes no reset options, got {options}")
        if seed is not None:
            seeds = [seed + i for i in range(self.num_envs)] if isinstance(seed, int) else seed
            if len(seeds) != self.num_envs:
                raise HybridRLError(f"{len(seeds)} seeds for {self.num_envs} envs")
            wanted = [envpool_seed(s) for s in seeds]
            if not (self._fresh and wanted == self._seeds):
                self._pool.close()
                self._pool, self._seeds = self._make_pool(wanted), wanted
        self._fresh = False
        obs, _ = self._pool.reset()
        return self._obs(obs), {}

    def step(
        self, actions: Any
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        self._fresh = False
        obs, rewards, terminated, truncated, info = self._pool.step(self._env_actions(actions))
        order = np.asarray(info["env_id"])
        if np.any(order != np.arange(self.num_envs)):  # sync mode returns all, in order
            raise HybridRLError(f"envpool returned sub-envs {order.tolist()} out of order")
        obs = self._obs(obs)
        terminated, truncated = np.asarray(terminated, bool), np.asarray(truncated, bool)
        out: dict[str, Any] = {k: v for k, v in info.items() if k not in ("env_id", "players")}
        ended = np.flatnonzero(terminated | truncated)
        if ended.size:
            final = np.full(self.num_envs, None, dtype=object)
            for j in ended:
                final[j] = obs[j].copy()
            out["final_obs"], out["_final_obs"] = final, terminated | truncated
            first, reset_info = self._pool.reset(env_id=ended.astype(np.int32))
            if np.any(np.asarray(reset_info["env_id"]) != ended):
                raise HybridRLError("envpool reset other sub-envs than the ones asked for")
            obs[ended] = self._obs(first)
        return obs, np.asarray(rewards, np.float64), terminated, truncated, out

    def close_extras(self, **kwargs: Any) -> None:
        self._pool.close()

    # ------------------------------------------------------------------- helpers
    def _obs(self, obs: Any) -> np.ndarray:
        return np.asarray(obs, dtype=self.single_observation_space.dtype)

    def _env_actions(self, actions: Any) -> np.ndarray:
        a = np.asarray(actions)
        if self._discrete:
            return a.reshape(self.num_envs).astype(np.int32)
        batch = a.reshape(self.num_envs, *self._reference_action_space.shape or ())
        return (self._offset + batch * self._scale).astype(self._pool.action_space.dtype)


def make_envpool_vector_env(
    env_id: str, num_envs: int, reference: gym.Env, **options: Any
) -> EnvPoolVectorEnv:
    """`EnvPoolVectorEnv` of ``env_id`` with EnvPool config values ``options``."""
    return EnvPoolVectorEnv(env_id, num_envs, reference, options)
