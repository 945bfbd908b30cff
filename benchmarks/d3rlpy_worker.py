"""d3rlpy's side of `benchmarks/side_by_side.py`: train one offline algorithm on an npz of plain
arrays and evaluate it in Gymnasium, printing one JSON object.

Runs in d3rlpy's own environment (``.venv-compare``, made by ``scripts/setup-compare``;
d3rlpy pins gymnasium 1.0.0), so it imports nothing from hybridrl. The npz holds
``observations, actions, rewards, terminals, timeouts`` with actions in the env's units.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any


def _algo(name: str, hidden: list[int], batch_size: int, normalize: bool) -> Any:
    import d3rlpy

    enc = d3rlpy.models.VectorEncoderFactory(hidden_units=hidden)
    scaler = d3rlpy.preprocessing.StandardObservationScaler() if normalize else None
    common: dict[str, Any] = {
        "batch_size": batch_size,
        "actor_encoder_factory": enc,
        "critic_encoder_factory": enc,
        "observation_scaler": scaler,
        # hybridrl's agents act in [-1, 1]; d3rlpy does the same with a MinMax action scaler
        "action_scaler": d3rlpy.preprocessing.MinMaxActionScaler(),
    }
    if name == "td3_bc":
        return d3rlpy.algos.TD3PlusBCConfig(**common).create(device="cpu")
    if name == "iql":
        return d3rlpy.algos.IQLConfig(value_encoder_factory=enc, **common).create(device="cpu")
    if name == "cql":
        # d3rlpy's default tunes α with a Lagrange multiplier (threshold 10); hybridrl's CQL, as
        # the official MuJoCo setting (Kumar et al., 2020), keeps α = 5 fixed. alpha lr 0 with
        # initial α 1 leaves d3rlpy's penalty at conservative_weight 5 × (gap − threshold),
        # whose constant shift has no gradient: the same objective.
        return d3rlpy.algos.CQLConfig(alpha_learning_rate=0.0, **common).create(device="cpu")
    if name == "bc":
        return d3rlpy.algos.BCConfig(
            batch_size=batch_size,
            encoder_factory=enc,
            observation_scaler=scaler,
            action_scaler=d3rlpy.preprocessing.MinMaxActionScaler(),
        ).create(device="cpu")
    raise SystemExit(f"unknown algorithm {name}")


def _evaluate(algo: Any, env_id: str, episodes: int, seed: int) -> list[float]:
    import gymnasium as gym
    import numpy as np

    env = gym.make(env_id)
    returns = []
    for i in range(episodes):
        obs, _ = env.reset(seed=seed + i)
        done, total = False, 0.0
        while not done:
            action = algo.predict(np.asarray(obs, np.float32)[None])[0]
            obs, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    env.close()
    return returns


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--env", required=True)
    parser.add_argument("--algo", required=True)
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--eval-interval", type=int, required=True)
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hidden", default="256,256")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--normalize-observations", action="store_true")
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()

    import d3rlpy
    import numpy as np
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    d3rlpy.seed(args.seed)
    with np.load(args.data) as f:
        data = {k: f[k] for k in f.files}
    dataset = d3rlpy.dataset.MDPDataset(
        observations=data["observations"].astype(np.float32),
        actions=data["actions"].astype(np.float32),
        rewards=data["rewards"].astype(np.float32),
        terminals=data["terminals"].astype(np.float32),
        timeouts=data["timeouts"].astype(np.float32),
    )
    hidden = [int(h) for h in args.hidden.split(",")]
    algo = _algo(args.algo, hidden, args.batch_size, args.normalize_observations)
    # what d3rlpy's fit() does before training: fit the scalers on the dataset
    for scaler in (algo.config.observation_scaler, algo.config.action_scaler):
        if scaler is not None and not scaler.built:
            scaler.fit_with_transition_picker(dataset.episodes, dataset.transition_picker)
    algo.build_with_dataset(dataset)
    evals: list[dict[str, Any]] = []
    start = time.perf_counter()
    train_time = 0.0
    done = 0
    while done < args.steps:
        n = min(args.eval_interval, args.steps - done)
        t0 = time.perf_counter()
        for _ in range(n):
            algo.update(dataset.sample_transition_batch(args.batch_size))
        train_time += time.perf_counter() - t0
        done += n
        returns = _evaluate(algo, args.env, args.eval_episodes, args.seed + 10_000)
        evals.append(
            {
                "update": done,
                "return_mean": float(np.mean(returns)),
                "return_std": float(np.std(returns)),
                "time_s": round(time.perf_counter() - start, 3),
            }
        )
    print(
        json.dumps(
            {
                "d3rlpy_version": d3rlpy.__version__,
                "torch": torch.__version__,
                "evaluations": evals,
                "train_time_s": train_time,
                "wall_time_s": time.perf_counter() - start,
            }
        )
    )


if __name__ == "__main__":
    main()
