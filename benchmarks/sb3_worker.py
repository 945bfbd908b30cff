"""Stable-Baselines3's PPO or SAC at hybridrl's settings, timed (runs in ``.venv-sb3``).

    .venv-sb3/bin/python benchmarks/sb3_worker.py ppo Hopper-v5 --steps 20000 --num-envs 1

Prints one JSON line: ``{"algo", "env", "steps", "num_envs", "wall_s", "steps_per_s"}``. The
settings mirror hybridrl's recipes: PPO as CleanRL's ``ppo_continuous_action.py`` (rollouts of
2048 per env, 10 epochs of 32 minibatches, 64-64 tanh networks, lr 3e-4 annealed, running
observation and reward normalisation clipped at 10); SAC with 2x256 ReLU networks, batch 256,
one update per env step after ``--learning-starts`` random steps (no updates before them).
"""

from __future__ import annotations

import argparse
import json
import time

import gymnasium as gym
import torch
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecNormalize


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("algo", choices=("ppo", "sac"))
    p.add_argument("env")
    p.add_argument("--steps", type=int, default=20_000)
    p.add_argument("--num-envs", type=int, default=1)
    p.add_argument("--learning-starts", type=int, default=1000)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    if a.algo == "ppo":
        venv = VecNormalize(make_vec_env(a.env, n_envs=a.num_envs, seed=0), clip_obs=10.0)
        batch = 2048 * a.num_envs
        model = PPO(
            "MlpPolicy",
            venv,
            n_steps=2048,
            batch_size=batch // 32,
            n_epochs=10,
            learning_rate=lambda frac: 3e-4 * frac,
            policy_kwargs={
                "net_arch": {"pi": [64, 64], "vf": [64, 64]},
                "activation_fn": torch.nn.Tanh,
            },
            device="cpu",
            seed=0,
        )
    else:
        env = gym.make(a.env)
        model = SAC(
            "MlpPolicy",
            env,
            batch_size=256,
            learning_starts=a.learning_starts,
            train_freq=1,
            gradient_steps=1,
            policy_kwargs={"net_arch": [256, 256]},
            device="cpu",
            seed=0,
        )
    start = time.perf_counter()
    model.learn(total_timesteps=a.steps)
    wall = time.perf_counter() - start
    print(
        json.dumps(
            {
                "algo": a.algo,
                "env": a.env,
                "steps": a.steps,
                "num_envs": a.num_envs,
                "wall_s": round(wall, 2),
                "steps_per_s": round(a.steps / wall, 1),
                "torch_threads": torch.get_num_threads(),
            }
        )
    )


if __name__ == "__main__":
    main()
