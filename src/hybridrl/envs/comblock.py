"""The continuous combination lock ("Comblock") of the HNPG paper, with its optimal policy and
its ε-greedy offline data.

Source: Zhou, Sekhari, Song, Sun, "Offline Data Enhanced On-Policy Policy Gradient with
Provable Guarantees" (ICLR 2024); environment ``lock_continuous.py`` (class ``Lock``) and data
``collect_offline.py`` (``eps_greedy_actions``, ``collect_offline_buffer``) of
YifeiZhou02/HNPG @ 7d7ace1. docs/envs.md and docs/agents/npg.md describe it.

Dynamics (one episode is exactly ``H`` steps):

- latent states A (0), B (1) and the dead state C (2); the episode starts in A or B with
  probability ½ each (``p_switch``);
- a level h has one correct action for A and one for B (``opt_a[h]``, ``opt_b[h]``, drawn
  once from ``lock_seed``, so an env id names one lock);
- the agent's action is a vector a ∈ R^10; the env draws the discrete action k ~ softmax(a/τ),
  τ = 0.1;
- the correct k keeps the agent in {A, B}, switching between them with probability
  ``p_switch``; any other k (and every k in C) leads to C, forever;
- reward: only on the last step, 1 for the correct action from A or B; otherwise the
  "anti-reward" 0.1 with probability ``p_anti_r`` = ½ (a distractor: the official code
  draws it on every wrong step but returns it only on the last one, and so does this one);
- observation: x = one-hot(latent) ⊕ one-hot(h) (index 3 + h) plus N(0, σ²) noise on the
  first H + 3 entries, zero-padded to d = 2^⌈log2(H + 4)⌉ and rotated by the unnormalised
  d × d Hadamard matrix M (entries ±1, M Mᵀ = d I): obs = M x.

Deviations (docs/agents/npg.md lists them): the action space is declared Box(-1, 1)
(the official declares Box(0, 1) and never enforces it; hybridrl's runner clips policy
samples to the box, and the ε-greedy data, one-hot or uniform in [0, 1]^10, lies inside it);
the randomness comes from Gymnasium's seeded generator, not numpy's global one.
"""

from __future__ import annotations

import math
import re
from typing import Any

import gymnasium as gym
import numpy as np
import scipy.linalg

import hybridrl
from hybridrl.data.dataset import Dataset, DatasetMetadata
from hybridrl.data.transitions import make_transitions
from hybridrl.types import HybridRLError, SpaceSpec

HORIZONS = (3, 5, 10, 20, 50)
"""Horizons registered eagerly as ``hybridrl/Comblock-H{H}-v0``; any other H is registered
on first use by `prepare_comblock` (``make_env``)."""

_ID = re.compile(r"^hybridrl/Comblock-H(\d+)-v0$")
A, B, DEAD = 0, 1, 2
NUM_LATENTS = 3


def comblock_id(horizon: int) -> str:
    return f"hybridrl/Comblock-H{horizon}-v0"


def observation_dim(horizon: int) -> int:
    """2^⌈log2(H + 4)⌉: room for 3 latents and H + 1 levels (h = H after the last step)."""
    return 2 ** math.ceil(math.log2(horizon + 4))


class ComblockEnv(gym.Env[np.ndarray, np.ndarray]):
    """The continuous combination lock (module docstring). ``info`` carries the latent state
    (``latent``), the level (``h``) and, after a step, the discrete action (``discrete_action``).

    Args:
        horizon: H, the number of steps of every episode.
        action_dim: number of discrete actions (and width of the continuous action).
        p_switch, p_anti_r, anti_r, noise, temperature: the official defaults (0.5, 0.5, 0.1,
            0.1, 0.1).
        lock_seed: seed of the combination (``opt_a``, ``opt_b``); episodes are seeded by
            ``reset(seed=...)`` as usual.
    """

    metadata = {"render_modes": []}  # noqa: RUF012 (gymnasium declares it an instance attribute)

    def __init__(
        self,
        horizon: int = 10,
        action_dim: int = 10,
        p_switch: float = 0.5,
        p_anti_r: float = 0.5,
        anti_r: float = 0.1,
        noise: float = 0.1,
        temperature: float = 0.1,
        lock_seed: int = 0,
    ):
        if horizon < 1 or action_dim < 2:
            raise HybridRLError(
                f"Comblock needs horizon >= 1 and action_dim >= 2, got {horizon}, {action_dim}"
            )
        self.horizon, self.action_dim = int(horizon), int(action_dim)
        self.p_switch, self.p_anti_r, self.anti_r = p_switch, p_anti_r, anti_r
        self.noise, self.temperature = noise, temperature
        self.obs_dim = observation_dim(self.horizon)
        self.rotation = scipy.linalg.hadamard(self.obs_dim).astype(np.float64)
        lock = np.random.default_rng(lock_seed)
        self.opt_a = lock.integers(0, self.action_dim, size=self.horizon)
        self.opt_b = lock.integers(0, self.action_dim, size=self.horizon)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (self.obs_dim,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (self.action_dim,), np.float32)
        self.latent, self.h = A, 0

    # ------------------------------------------------------------------------- gym API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self.h = 0
        self.latent = A if self.np_random.random() < self.p_switch else B
        return self._observation(), {"latent": self.latent, "h": self.h}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self.h >= self.horizon:
            raise HybridRLError("Comblock: step after the episode's last step; call reset")
        rng = self.np_random
        # Both draws every step, in the official order, whatever the branch.
        switch = rng.random() < self.p_switch
        anti = rng.random() < self.p_anti_r
        k = self.discrete_action(np.asarray(action, np.float64), rng)
        correct = self.latent != DEAD and k == self.correct_action(self.latent, self.h)
        last = self.h == self.horizon - 1
        # the correct action keeps A/B (switching, except on the last step); else dead
        nxt = DEAD
        if correct:
            nxt = (1 - self.latent) if (switch and not last) else self.latent
        reward = 0.0
        if last:
            reward = 1.0 if correct else (self.anti_r if anti else 0.0)
        self.latent, self.h = nxt, self.h + 1
        info = {"latent": self.latent, "h": self.h, "discrete_action": k}
        return self._observation(), reward, last, False, info

    # ------------------------------------------------------------------------ helpers
    def discrete_action(self, action: np.ndarray, rng: np.random.Generator) -> int:
        """k ~ softmax(a / τ) (shifted by the max: the same distribution without overflow)."""
        logits = action / self.temperature
        p = np.exp(logits - logits.max())
        return int(rng.choice(self.action_dim, p=p / p.sum()))

    def correct_action(self, latent: int, h: int) -> int:
        """The action that keeps ``latent`` alive at level ``h`` (B's for the dead state, as
        the official ε-greedy policy does: any action from C leads to C)."""
        return int(self.opt_a[h] if latent == A else self.opt_b[h])

    def _observation(self) -> np.ndarray:
        x = np.zeros(self.obs_dim)
        live = self.horizon + NUM_LATENTS
        x[:live] = self.np_random.normal(0.0, self.noise, live)
        x[self.latent] += 1.0
        x[NUM_LATENTS + self.h] += 1.0
        return (self.rotation @ x).astype(np.float32)

    def decode(self, observations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(latent, h) of a batch of observations: undo the rotation (Mᵀ M = d I) and take the
        argmax of each one-hot block; exact unless the noise (σ = 0.1) exceeds ½."""
        x = (
            np.asarray(observations, np.float64).reshape(-1, self.obs_dim)
            @ self.rotation
            / self.obs_dim
        )
        latent = np.argmax(x[:, :NUM_LATENTS], axis=1)
        h = np.argmax(x[:, NUM_LATENTS : NUM_LATENTS + self.horizon + 1], axis=1)
        return latent, h


def optimal_action_vector(env: ComblockEnv, latent: int, h: int) -> np.ndarray:
    """The official greedy action vector: one-hot of the correct action (softmax(a/0.1) picks
    it with probability e^10 / (e^10 + 9) ≈ 0.9996)."""
    a = np.zeros(env.action_dim, np.float32)
    a[env.correct_action(latent, h)] = 1.0
    return a


class ComblockOptimalPolicy:
    """π*: decodes the latent state and level from the observation and plays the one-hot of
    the correct action (a `hybridrl.policies.Policy`, so ``collect`` and ``eval`` take it).
    With ``epsilon`` > 0 each action is, with that probability, uniform in [0, 1]^10 instead
    (``eps_greedy_actions``)."""

    def __init__(self, env: ComblockEnv, epsilon: float = 0.0):
        self.env, self.epsilon = env, float(epsilon)

    def act(
        self, observations: np.ndarray, *, deterministic: bool, rng: np.random.Generator
    ) -> np.ndarray:
        latent, h = self.env.decode(observations)
        out = np.stack(
            [
                optimal_action_vector(self.env, int(s), int(t))
                for s, t in zip(latent, h, strict=True)
            ]
        )
        if not deterministic and self.epsilon > 0:
            explore = rng.random(len(out)) < self.epsilon
            out[explore] = rng.random((int(explore.sum()), self.env.action_dim))
        return out

    def describe(self) -> dict[str, Any]:
        return {"kind": "scripted", "name": "comblock_optimal", "epsilon": self.epsilon}


def collect_offline(
    horizon: int,
    num_episodes: int,
    *,
    epsilon: float | None = None,
    seed: int = 0,
    env_kwargs: dict[str, Any] | None = None,
) -> Dataset:
    """HNPG's offline data: ``num_episodes`` episodes of π* with ε-greedy exploration (ε = 1/H
    by default, as ``collect_offline_buffer`` calls ``eps_greedy_actions(env, 1/horizon)``).

    The greedy action uses the true latent state (as the official collector reads
    ``env.get_state()``), not the decoded one. Every episode ends with ``terminals = 1`` on its
    H-th step (the lock always terminates; no time-outs). Deterministic for ``seed``.
    """
    if num_episodes < 1:
        raise HybridRLError(f"num_episodes must be positive, got {num_episodes}")
    eps = 1.0 / horizon if epsilon is None else float(epsilon)
    if not 0.0 <= eps <= 1.0:
        raise HybridRLError(f"epsilon must be in [0, 1], got {eps}")
    env = ComblockEnv(horizon=horizon, **(env_kwargs or {}))
    rng = np.random.default_rng(seed)
    n = num_episodes * horizon
    obs = np.zeros((n, env.obs_dim), np.float32)
    next_obs = np.zeros_like(obs)
    actions = np.zeros((n, env.action_dim), np.float32)
    rewards = np.zeros(n, np.float32)
    terminals = np.zeros(n, np.float32)
    reached = 0
    i = 0
    for episode in range(num_episodes):
        o, _ = env.reset(seed=seed if episode == 0 else None)  # seeded once, then it continues
        for _ in range(horizon):
            if rng.random() < eps:
                a = rng.random(env.action_dim).astype(np.float32)
            else:
                a = optimal_action_vector(env, env.latent, env.h)
            o2, r, term, _, info = env.step(a)
            obs[i], actions[i], rewards[i], next_obs[i], terminals[i] = o, a, r, o2, float(term)
            o, i = o2, i + 1
        reached += int(info["latent"] != DEAD)
    env_id = comblock_id(horizon)
    meta = DatasetMetadata(
        observation_space=SpaceSpec.from_gym(env.observation_space),
        action_space=SpaceSpec.from_gym(env.action_space),
        env_id=env_id,
        source="collect",
        provenance={
            "policy": {"kind": "scripted", "name": "comblock_optimal", "epsilon": eps},
            "seed": seed,
            "num_episodes": num_episodes,
            "env_kwargs": env_kwargs or {},
            "episodes_reaching_the_end": reached,
            "reference": "YifeiZhou02/HNPG@7d7ace1 collect_offline.py",
            "hybridrl_version": hybridrl.__version__,
            "gymnasium_version": gym.__version__,
        },
        # a random policy almost never opens the lock (its return is ~0.05, the anti-reward);
        # π* opens it with probability ~0.9996^H: 0 and 1 make the score 100 × P(open).
        ref_min_score=0.0,
        ref_max_score=1.0,
        name=f"comblock-H{horizon}-eps-greedy",
    )
    t = make_transitions(
        observations=obs,
        actions=actions,
        rewards=rewards,
        next_observations=next_obs,
        terminals=terminals,
        timeouts=np.zeros(n, np.float32),
    )
    return Dataset.create(t, meta)


def prepare_comblock(env_id: str) -> None:
    """Register ``hybridrl/Comblock-H<n>-v0`` for any n on first use; nothing for other ids."""
    m = _ID.match(env_id)
    if m is not None and env_id not in gym.registry:
        _register(int(m.group(1)))


def _register(horizon: int) -> None:
    gym.register(
        comblock_id(horizon),
        entry_point=f"{__name__}:ComblockEnv",
        kwargs={"horizon": horizon},
        # no TimeLimit: every episode terminates after exactly H steps
        disable_env_checker=True,
    )


def register() -> None:
    """Register the `HORIZONS` ids (entry points only)."""
    for horizon in HORIZONS:
        if comblock_id(horizon) not in gym.registry:
            _register(horizon)
