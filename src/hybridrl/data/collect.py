"""Roll out a behaviour policy in a Gymnasium environment into a `Dataset`.

Box and Discrete action spaces are both recorded: discrete actions as int64 indices of shape
(N,) (see `hybridrl.data.transitions`), with only epsilon-random noise (``random_action_prob``).
Boundaries are recorded exactly: ``terminated`` becomes ``terminals``, ``truncated`` (time
limit) becomes ``timeouts``, and when the step budget ends mid-episode the last step is marked
as a time-out (``provenance['final_episode_cut']`` says so). The whole run is deterministic for
a seed: the environment is seeded once at the first reset, and all policy and noise
randomness comes from one ``numpy`` generator derived from the same seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from tqdm.auto import tqdm

import hybridrl
from hybridrl.data.dataset import Dataset, DatasetMetadata
from hybridrl.data.transitions import make_transitions
from hybridrl.envs.make import make_env
from hybridrl.policies import Policy, RandomPolicy
from hybridrl.types import HybridRLError, SpaceSpec


@dataclass(frozen=True)
class NoiseConfig:
    """Exploration added to the behaviour policy's actions.

    Attributes:
        gaussian_std: std of Gaussian noise, as a fraction of each action dimension's
            half-range; the noisy action is clipped to the bounds.
        random_action_prob: probability of replacing the action by a uniform random one
            (the epsilon-random noise used to build D4RL's maze2d-style datasets).
    """

    gaussian_std: float = 0.0
    random_action_prob: float = 0.0

    def __post_init__(self) -> None:
        if self.gaussian_std < 0:
            raise HybridRLError(f"action noise std must be >= 0, got {self.gaussian_std}")
        if not 0.0 <= self.random_action_prob <= 1.0:
            raise HybridRLError(
                f"random action probability must be in [0, 1], got {self.random_action_prob}"
            )


def collect(
    env_id: str,
    policy: Policy | None = None,
    *,
    num_steps: int | None = None,
    num_episodes: int | None = None,
    seed: int = 0,
    deterministic: bool = False,
    noise: NoiseConfig | None = None,
    ref_min_score: float | None = None,
    ref_max_score: float | None = None,
    random_reference_episodes: int = 10,
    name: str | None = None,
    env_kwargs: dict[str, Any] | None = None,
    progress: bool = True,
) -> Dataset:
    """Collect ``num_steps`` transitions or ``num_episodes`` episodes (exactly one of them).

    Args:
        env_id: a Gymnasium id (e.g. ``Pendulum-v1``, ``Hopper-v5``).
        policy: the behaviour policy; default uniform random.
        deterministic: ask the policy for its deterministic action (noise is still added).
        noise: exploration noise on top of the policy.
        ref_min_score: return of a random policy; when None, measured by rolling out a random
            policy for ``random_reference_episodes`` episodes (0 disables).
        ref_max_score: return of an expert policy, when the user knows it.
        progress: show a progress bar.
    """
    if (num_steps is None) == (num_episodes is None):
        raise HybridRLError("give exactly one of num_steps or num_episodes")
    budget = num_steps if num_steps is not None else num_episodes
    if budget is None or budget <= 0:
        raise HybridRLError(f"the collection budget must be positive, got {budget}")
    noise = noise or NoiseConfig()
    env = make_env(env_id, **(env_kwargs or {}))
    obs_space = SpaceSpec.from_gym(env.observation_space)
    act_space = SpaceSpec.from_gym(env.action_space)
    if act_space.kind == "discrete" and noise.gaussian_std > 0:
        env.close()
        raise HybridRLError(
            f"{env_id} has a {act_space.describe()} action space: Gaussian action noise needs a "
            "Box; use random_action_prob (epsilon-random actions) instead"
        )
    policy = policy or RandomPolicy(act_space)
    rng = np.random.default_rng(seed)
    try:
        steps = _rollout(
            env,
            policy,
            act_space,
            rng,
            seed,
            num_steps,
            num_episodes,
            deterministic,
            noise,
            progress,
        )
    finally:
        env.close()
    t = make_transitions(**steps.pop("arrays"))
    if ref_min_score is None and random_reference_episodes > 0:
        ref_min_score = random_policy_return(
            env_id, random_reference_episodes, seed=seed + 1_000_003, env_kwargs=env_kwargs
        )
    meta = DatasetMetadata(
        observation_space=obs_space,
        action_space=act_space,
        env_id=env_id,
        source="collect",
        provenance={
            "policy": policy.describe(),
            "seed": seed,
            "deterministic": deterministic,
            "gaussian_std": noise.gaussian_std,
            "random_action_prob": noise.random_action_prob,
            "num_steps": num_steps,
            "num_episodes": num_episodes,
            "env_kwargs": env_kwargs or {},
            "random_reference_episodes": random_reference_episodes,
            "hybridrl_version": hybridrl.__version__,
            "gymnasium_version": gym.__version__,
            **steps,
        },
        ref_min_score=ref_min_score,
        ref_max_score=ref_max_score,
        name=name or f"{env_id}-{policy.describe()['kind']}",
    )
    return Dataset.create(t, meta)


def _rollout(
    env: gym.Env,
    policy: Policy,
    act_space: SpaceSpec,
    rng: np.random.Generator,
    seed: int,
    num_steps: int | None,
    num_episodes: int | None,
    deterministic: bool,
    noise: NoiseConfig,
    progress: bool,
) -> dict[str, Any]:
    cols: dict[str, list[Any]] = {
        k: [] for k in ("obs", "act", "rew", "next", "term", "trunc", "logp")
    }
    # The behaviour policy's log-density of each action, when it is the action's true density:
    # a stochastic policy that can evaluate it, with no noise added on top.
    log_prob_fn = getattr(policy, "log_prob", None)
    noisy = noise.gaussian_std > 0 or noise.random_action_prob > 0
    if deterministic or noisy:
        log_prob_fn = None
    obs, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    episodes_done, step = 0, 0
    total = num_steps if num_steps is not None else num_episodes
    unit = "step" if num_steps is not None else "episode"
    episode_return, returns = 0.0, []
    with tqdm(total=total, unit=unit, disable=not progress, desc="collect") as bar:
        while True:
            action = policy.act(obs[None], deterministic=deterministic, rng=rng)[0]
            action = apply_noise(action, act_space, noise, rng)
            if log_prob_fn is not None:
                logp = log_prob_fn(obs[None], np.asarray(action)[None])
                if logp is None:  # a deterministic head has no density
                    log_prob_fn = None
                else:
                    cols["logp"].append(logp[0])
            next_obs, reward, terminated, truncated, _ = env.step(action)
            cols["obs"].append(obs)
            cols["act"].append(action)
            cols["rew"].append(reward)
            cols["next"].append(next_obs)
            cols["term"].append(terminated)
            cols["trunc"].append(truncated and not terminated)
            step += 1
            episode_return += float(reward)
            if num_steps is not None:
                bar.update(1)
            if terminated or truncated:
                episodes_done += 1
                returns.append(episode_return)
                episode_return = 0.0
                if num_episodes is not None:
                    bar.update(1)
                    bar.set_postfix(ret=f"{np.mean(returns[-10:]):.1f}")
                if num_episodes is not None and episodes_done >= num_episodes:
                    break
                obs, _ = env.reset()
            else:
                obs = next_obs
            if num_steps is not None and step >= num_steps:
                break
    final_cut = not (cols["term"][-1] or cols["trunc"][-1])
    if final_cut:
        cols["trunc"][-1] = True  # the log stops here: an explicit cut, never a silent one
    arrays: dict[str, Any] = {
        "observations": np.stack(cols["obs"]),
        "actions": np.stack(cols["act"]),
        "rewards": np.asarray(cols["rew"], np.float32),
        "next_observations": np.stack(cols["next"]),
        "terminals": np.asarray(cols["term"]),
        "timeouts": np.asarray(cols["trunc"]),
    }
    if cols["logp"]:
        arrays["extras"] = {"behavior_log_probs": np.asarray(cols["logp"], np.float32)}
    return {"arrays": arrays, "final_episode_cut": final_cut, "complete_episodes": episodes_done}


def apply_noise(
    action: np.ndarray, space: SpaceSpec, noise: NoiseConfig, rng: np.random.Generator
) -> np.ndarray:
    """One action with ``noise`` applied (Gaussian, then epsilon-random), clipped to bounds.

    A discrete action (an integer in ``[0, n)``, refused otherwise) takes only the
    epsilon-random noise and is returned as an int64 scalar."""
    if space.kind == "discrete":
        assert space.n is not None
        checked = _discrete_action(action, space.n)
        if noise.random_action_prob > 0 and rng.random() < noise.random_action_prob:
            return np.asarray(rng.integers(0, space.n), np.int64)
        return checked
    lo, hi = space.low_array, space.high_array
    action = np.asarray(action, dtype=np.float64).reshape(space.shape)
    if noise.gaussian_std > 0:
        half_range = np.where(np.isfinite(hi - lo), (hi - lo) / 2.0, 1.0)
        action = action + noise.gaussian_std * half_range * rng.standard_normal(space.shape)
    if noise.random_action_prob > 0 and rng.random() < noise.random_action_prob:
        action = rng.uniform(lo, hi)
    return np.clip(action, lo, hi).astype(np.float32)


def _discrete_action(action: Any, n: int) -> np.ndarray:
    """A policy's action for a Discrete(n) space as an int64 scalar; one clear line when it is
    not a single integer in [0, n) (a float would be stored and then refused by the loader)."""
    a = np.asarray(action)
    if a.size != 1 or not np.issubdtype(a.dtype, np.integer) or not 0 <= int(a.ravel()[0]) < n:
        raise HybridRLError(
            f"the behaviour policy gave the action {a.tolist()!r} ({a.dtype}) for a "
            f"Discrete({n}) action space, which takes one integer in [0, {n})"
        )
    return a.reshape(()).astype(np.int64)


def evaluate_policy(
    env_id: str,
    policy: Policy,
    num_episodes: int,
    *,
    seed: int = 0,
    deterministic: bool = True,
    env_kwargs: dict[str, Any] | None = None,
) -> np.ndarray:
    """Undiscounted returns of ``num_episodes`` episodes of ``policy`` (no noise)."""
    ds = collect(
        env_id,
        policy,
        num_episodes=num_episodes,
        seed=seed,
        deterministic=deterministic,
        random_reference_episodes=0,
        env_kwargs=env_kwargs,
        progress=False,
    )
    return ds.episode_returns()


def random_policy_return(
    env_id: str, num_episodes: int, *, seed: int = 0, env_kwargs: dict[str, Any] | None = None
) -> float:
    """Mean return of the uniform random policy (the 0 of normalized scores)."""
    env = make_env(env_id, **(env_kwargs or {}))
    space = SpaceSpec.from_gym(env.action_space)
    env.close()
    returns = evaluate_policy(
        env_id, RandomPolicy(space), num_episodes, seed=seed, env_kwargs=env_kwargs
    )
    return float(np.mean(returns))
